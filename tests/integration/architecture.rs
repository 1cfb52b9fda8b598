//! ARCHITECTURE.md's invariants, checked on the sources: what is deliberately absent.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    assert!(!files.is_empty(), "{dir} has sources");
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The page talks to the engine in protocol messages only: it names no module that needs
/// burn, and Trunk builds it without the engine feature (which would make its wasm four times
/// larger).
#[test]
fn the_page_never_links_the_engine() {
    let engine_modules = [
        "walf_lab::engine",
        "walf_lab::model",
        "walf_lab::measure",
        "walf_lab::pretrain",
        "walf_lab::weights",
        "walf_lab::tokenizer",
        "walf_lab::readback",
        "walf_lab::rng",
        "walf_lab::device",
        "walf_lab::walf::WalfTrainer",
        "walf_lab::walf::WalfConfig",
        "burn",
    ];
    for (path, text) in sources("src/bin/walf-app") {
        for name in engine_modules {
            assert!(
                !text.contains(name),
                "{} names {name}: the page must not link the engine",
                path.display()
            );
        }
    }
    let index =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("index.html")).unwrap();
    let page_link = index
        .lines()
        .find(|l| l.contains(r#"data-bin="walf-app""#))
        .expect("index.html builds the page");
    assert!(
        page_link.contains("data-cargo-no-default-features"),
        "{page_link}"
    );
}

/// The engine takes bytes and returns values: no files, threads, network or browser APIs, so
/// the same code runs natively and in the browser's worker. Only the native front end's helpers
/// (`folder`, `device`) and the front ends themselves touch those.
#[test]
fn the_engine_opens_no_files_and_knows_no_browser() {
    let allowed = [
        "/src/bin/",
        "/src/cli/",
        "/src/folder.rs",
        "/src/device.rs",
        "/src/main.rs",
    ];
    let mut checked = 0;
    for (path, text) in sources("src") {
        let shown = path.display().to_string().replace('\\', "/");
        if allowed.iter().any(|a| shown.contains(a)) {
            continue;
        }
        checked += 1;
        for name in [
            "std::fs",
            "std::thread",
            "std::net",
            "web_sys",
            "js_sys",
            "wasm_bindgen",
        ] {
            assert!(!text.contains(name), "{shown} uses {name}");
        }
    }
    assert!(checked > 20, "the engine's files were found ({checked})");
}

/// The engine answers in its own types; only the page's side (`protocol`, `view`, `share`) and
/// the front ends read the page's messages.
#[test]
fn the_engine_never_reads_the_pages_messages() {
    let page_side = [
        "/src/protocol.rs",
        "/src/view.rs",
        "/src/view/",
        "/src/share.rs",
        "/src/bin/",
        "/src/cli/",
    ];
    for (path, text) in sources("src") {
        let shown = path.display().to_string().replace('\\', "/");
        if page_side.iter().any(|a| shown.contains(a)) {
            continue;
        }
        assert!(
            !text.contains("crate::protocol") && !text.contains("protocol::"),
            "{shown} reads the page's protocol"
        );
    }
}
