//! What the benchmark examples share: reading their arguments.
#![allow(dead_code)] // each example uses what it needs

use std::path::PathBuf;

/// The value after `--name`, if given.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The model folder given first, else the bundled default model.
pub fn model_or_bundled(args: &[String]) -> PathBuf {
    args.first()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("public/models/minilm-brown"))
}
