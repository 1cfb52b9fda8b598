//! Hugging Face Hub addresses and what to tell the user when a repository lacks what the engine
//! reads. The download itself is the front end's (the browser's fetch, with its cache).

use crate::error::{Error, Result};

pub const DEFAULT_HUB: &str = "https://huggingface.co";

/// The files of a model folder, in the order they are fetched: the small ones first, so that an
/// unsupported architecture or a missing tokenizer is reported before a large download.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// A repository id: `name` or `owner/name`, of letters, digits, `-`, `_` and `.`.
pub fn check_model_id(id: &str) -> Result<&str> {
    let id = id.trim();
    let parts: Vec<&str> = id.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) || id.contains("..") {
        return Err(Error::Input(format!(
            "{id:?} is not a Hub model id: write it as on the Hub, e.g. bert-base-uncased or \
             distilbert/distilbert-base-uncased"
        )));
    }
    Ok(id)
}

/// The Hub (or mirror) address without a trailing slash.
pub fn check_base(base: &str) -> Result<String> {
    let base = base.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.chars().any(|c| c.is_whitespace()) => {
            Ok(base.to_string())
        }
        _ => Err(Error::Input(format!(
            "{base:?} is not a web address: the Hub is {DEFAULT_HUB}, a mirror is given the same \
             way (http:// or https://)"
        ))),
    }
}

/// Where the Hub serves a file of the main branch.
pub fn resolve_url(base: &str, id: &str, file: &str) -> String {
    format!("{base}/{id}/resolve/main/{file}")
}

/// The browser's Cache Storage that keeps downloaded model files: the worker writes it, the
/// page lists what it keeps and deletes on request.
pub const MODEL_CACHE: &str = "walf-lab-models-v1";

/// A model the browser keeps: the folder its files came from, their addresses and total size.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptModel {
    /// The folder without its scheme: the Hub (or mirror) and the model id,
    /// `huggingface.co/bert-base-uncased`.
    pub label: String,
    pub urls: Vec<String>,
    pub bytes: u64,
}

/// The cache's entries (address, size) grouped by the model folder they belong to, largest
/// first. An address that is not a Hub file (`…/resolve/<revision>/<file>`) is its own entry.
pub fn kept_models(entries: &[(String, u64)]) -> Vec<KeptModel> {
    let mut models: Vec<KeptModel> = Vec::new();
    for (url, bytes) in entries {
        let folder = url
            .rsplit_once("/resolve/")
            .map_or(url.as_str(), |(f, _)| f);
        let label = folder
            .split_once("://")
            .map_or(folder, |(_, rest)| rest)
            .to_string();
        match models.iter_mut().find(|m| m.label == label) {
            Some(m) => {
                m.urls.push(url.clone());
                m.bytes += bytes;
            }
            None => models.push(KeptModel {
                label,
                urls: vec![url.clone()],
                bytes: *bytes,
            }),
        }
    }
    models.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.label.cmp(&b.label)));
    models
}

/// The repository answered 404 for `file`.
pub fn missing_file_message(id: &str, file: &str) -> String {
    match file {
        "config.json" => {
            format!("{id}: no such model on the Hub (or it has no config.json); check the spelling")
        }
        "tokenizer.json" => format!(
            "{id} has no tokenizer.json (only the older vocabulary files), which this app \
             cannot read; pick a repository with a fast tokenizer"
        ),
        "model.safetensors" => format!(
            "{id} has no model.safetensors (perhaps only PyTorch .bin weights, which a browser \
             cannot read safely); pick a repository with safetensors weights"
        ),
        _ => format!("{id} has no {file}"),
    }
}

/// Any other HTTP failure.
pub fn status_message(id: &str, file: &str, status: u16, text: &str) -> String {
    match status {
        401 | 403 => format!(
            "{id} is private or gated (HTTP {status}): the app can only download public models"
        ),
        429 => format!(
            "the Hub is limiting requests (HTTP 429) while fetching {file}; try again later"
        ),
        _ => format!("fetching {file} of {id} failed: HTTP {status} {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_addresses() {
        assert!(check_model_id("bert-base-uncased").is_ok());
        assert_eq!(
            check_model_id(" FacebookAI/roberta-base ").unwrap(),
            "FacebookAI/roberta-base"
        );
        for bad in ["", "a/b/c", "../etc", "x y", "a/", "<script>", ".hidden"] {
            assert!(check_model_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_base("http://127.0.0.1:8123/").unwrap(),
            "http://127.0.0.1:8123"
        );
        assert!(check_base("javascript:alert(1)").is_err());
        assert!(check_base("ftp://x").is_err());
        assert_eq!(
            resolve_url(DEFAULT_HUB, "bert-base-uncased", "config.json"),
            "https://huggingface.co/bert-base-uncased/resolve/main/config.json"
        );
        assert!(missing_file_message("x", "model.safetensors").contains("safetensors"));
        assert!(status_message("x", "config.json", 401, "").contains("private"));
    }

    #[test]
    fn kept_files_are_grouped_by_model() {
        let url = |base: &str, id: &str, file: &str| resolve_url(base, id, file);
        let entries = vec![
            (url(DEFAULT_HUB, "bert-base-uncased", "config.json"), 570),
            (
                url("http://127.0.0.1:9000/mirror", "org/tiny", "config.json"),
                100,
            ),
            (
                url(DEFAULT_HUB, "bert-base-uncased", "model.safetensors"),
                440_000_000,
            ),
            (
                url(
                    "http://127.0.0.1:9000/mirror",
                    "org/tiny",
                    "model.safetensors",
                ),
                5_000,
            ),
            ("https://example.org/other.bin".to_string(), 7),
        ];
        let kept = kept_models(&entries);
        let labels: Vec<&str> = kept.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "huggingface.co/bert-base-uncased",
                "127.0.0.1:9000/mirror/org/tiny",
                "example.org/other.bin"
            ]
        );
        assert_eq!(kept[0].bytes, 440_000_570);
        assert_eq!(kept[0].urls.len(), 2);
        assert_eq!(kept[1].bytes, 5_100);
        assert!(kept_models(&[]).is_empty());
    }
}
