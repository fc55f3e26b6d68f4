//! Demarcation accuracy end to end: `synth` (faults at the access, core and server levels)
//! → `ingest` → `evaluate` (verdicts scored against the synthesizer's ground truth).

use crate::util::bin;
use std::process::Command;

const KEY: &str = "test-demarcation-key";

/// Accuracy floor of the small scenario below (60 users, 12 minutes, seed 5): 26/47 (55 %)
/// measured (15 users per access element is thin evidence; the 200-user demo reaches more).
/// Set after the server-prefix, latest-episode and relative-core fixes; below it, a change
/// broke demarcation (or the synthesizer's impairment truth).
const MIN_ACCURACY: f64 = 0.50;

#[test]
fn demarcation_accuracy_on_synth() {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("cap.pcap");
    let truth = dir.path().join("truth.json");
    let topo = dir.path().join("topo.csv");
    let lake = dir.path().join("lake");
    let run = |args: &mut Command| {
        let out = args.env("CEMFLOW_PSEUDO_KEY", KEY).output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(Command::new(bin())
        .args(["synth", "--users", "60", "--minutes", "12", "--seed", "5"])
        .args(["--volume", "0.01", "--faults"])
        .arg("access:olt2:congestion@1-5m,server:video.example:slow@4-8m,core:bng1:loss@7-11m")
        .arg("--out")
        .arg(&cap)
        .arg("--truth")
        .arg(&truth)
        .arg("--topology")
        .arg(&topo));
    run(Command::new(bin())
        .args(["ingest", "--no-progress", "--topology"])
        .arg(&topo)
        .arg("--lake")
        .arg(&lake)
        .arg(&cap));
    let out = run(Command::new(bin())
        .args(["evaluate", "--format", "jsonl", "--lake"])
        .arg(&lake)
        .arg("--truth")
        .arg(&truth)
        .arg("--topology")
        .arg(&topo));
    let rows = crate::util::jsonl(&out.stdout);
    assert!(rows.len() >= 20, "{} expected verdicts", rows.len());
    let ok = |level: Option<&str>| {
        let sel: Vec<_> = rows
            .iter()
            .filter(|r| level.is_none_or(|l| r["truth_verdict"] == l))
            .collect();
        let c = sel.iter().filter(|r| r["correct"] == true).count();
        (c, sel.len())
    };
    let (c, n) = ok(None);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        c as f64 >= MIN_ACCURACY * n as f64,
        "accuracy {c}/{n} below {MIN_ACCURACY}: {summary}"
    );
    // No false alarms: unaffected users are never blamed on an element.
    let (c, n) = ok(Some("no_fault_found"));
    assert_eq!(c, n, "false alarms: {summary}");
}
