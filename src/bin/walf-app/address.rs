//! Where the page's own files are: everything served beside it (the bundled models, the
//! held-out text) is addressed from its base, here only.

use walf_lab::protocol::ModelSource;

/// The page's base address (Trunk's public URL), for files served beside it.
pub fn base_url() -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.base_uri().ok().flatten())
        .unwrap_or_else(|| "./".into())
}

/// A bundled model (an id of `protocol::BUNDLED_MODELS`) beside the page.
pub fn bundled_model(id: &str) -> ModelSource {
    ModelSource::bundled(&base_url(), id)
}

/// The default bundled model beside the page.
pub fn default_model() -> ModelSource {
    ModelSource::default_bundled(&base_url())
}

/// The project's held-out text for the masked-LM loss (`public/data/heldout.txt`).
pub fn heldout_text() -> String {
    format!("{}/data/heldout.txt", base_url().trim_end_matches('/'))
}
