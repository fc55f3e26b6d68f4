//! Helpers shared by the CLI tests: run the binary, write small captures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the built `cemflow` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cemflow"))
}

/// Runs `cemflow ARGS…` and returns its output.
pub fn cemflow(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("cemflow runs")
}

/// The shared conformance corpus, when present beside the checkout.
pub fn conformance_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    d.join("check.py").exists().then_some(d)
}

/// Parses JSON Lines output.
pub fn jsonl(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}
