//! Runs `../shared/conformance/check.py` against `cemflow flows` and holds the pass rate
//! at or above the floor reached so far (raise it when it improves, never lower it).

use crate::util::{bin, conformance_dir};
use std::process::Command;

/// Passed expected rows / all expected rows, nDPI and Zeek sets together.
const PASS_FLOOR: f64 = 0.95;
/// Expected rows matched with exact packet counts.
const EXACT_PACKETS_FLOOR: f64 = 0.97;

#[test]
fn conformance_pass_rate_holds() {
    let Some(dir) = conformance_dir() else {
        eprintln!("skipped: ../shared/conformance not present");
        return;
    };
    let cmd = format!("{} flows {{}} --format jsonl", bin().display());
    let out = Command::new("python3")
        .arg(dir.join("check.py"))
        .args(["--cmd", &cmd, "--json", "--jobs", "2"])
        .output()
        .expect("python3 runs check.py");
    assert!(
        out.status.success(),
        "check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let total = &summary["total"];
    let expected = total["expected"].as_f64().unwrap_or(0.0);
    let passed = total["passed"].as_f64().unwrap_or(0.0);
    let exact = total["counts"]["pkts"][0].as_f64().unwrap_or(0.0);
    assert!(expected > 0.0, "no expected rows: {summary}");
    eprintln!("conformance: {passed}/{expected} passed, {exact}/{expected} exact packet counts");
    assert!(passed / expected >= PASS_FLOOR, "pass rate fell: {total}");
    assert!(
        exact / expected >= EXACT_PACKETS_FLOOR,
        "exact packet rate fell: {total}"
    );
}
