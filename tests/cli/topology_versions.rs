//! A topology versioned by validity time (issue 10 item 3): a user moved from olt1 to olt2
//! at T is attributed to olt1 before T and to olt2 from T on, both in its `user_minute`
//! rows (ingest resolves the topology at each window start) and in `demarcate`'s element.

use crate::util::{bin, jsonl};
use cemflow_dataflow::Pseudonymizer;
use std::process::{Command, Output};

const KEY: &str = "test-topology-versions-key";
/// `cemflow synth`'s default capture start (minute-aligned).
const START: i64 = 1_736_150_400;
/// The move: five minutes into the capture.
const T: i64 = START + 300;

fn run(args: &mut Command) -> Output {
    let out = args.env("CEMFLOW_PSEUDO_KEY", KEY).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn moved_user_is_attributed_by_validity_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("cap.pcap");
    let topo = dir.path().join("topo.csv");
    let versioned = dir.path().join("versioned.csv");
    let lake = dir.path().join("lake");
    // olt2 congested for the whole capture; 12 users per access element.
    run(Command::new(bin())
        .args(["synth", "--users", "36", "--access-elements", "3"])
        .args(["--core-elements", "1", "--minutes", "10", "--seed", "3"])
        .args([
            "--volume",
            "0.01",
            "--faults",
            "access:olt2:congestion@0-10m",
        ])
        .arg("--out")
        .arg(&cap)
        .arg("--topology")
        .arg(&topo));
    // Versioned copy: the first olt2 user sat on olt1 until T.
    let text = std::fs::read_to_string(&topo).expect("topology");
    let mut out = String::from(
        "user,home_id,access_element,core_element,region,plan_mbps,valid_from,valid_to\n",
    );
    let mut mover: Option<(String, String)> = None;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let c: Vec<&str> = line.split(',').collect();
        assert_eq!(c.len(), 6, "synth topology line {line}");
        if mover.is_none() && c[2] == "olt2" {
            mover = Some((c[0].to_string(), c[1].to_string()));
            out += &format!("{},{},olt1,{},{},{},,{T}\n", c[0], c[1], c[3], c[4], c[5]);
            out += &format!("{line},2025-01-06T08:05:00Z,\n");
        } else {
            out += &format!("{line},,\n");
        }
    }
    std::fs::write(&versioned, out).expect("write topology");
    let (ip, home) = mover.expect("a user on olt2");
    run(Command::new(bin())
        .args(["ingest", "--no-progress", "--topology"])
        .arg(&versioned)
        .arg("--lake")
        .arg(&lake)
        .arg(&cap));

    // user_minute: olt1 before T, olt2 from T on.
    let key = Pseudonymizer::new(KEY.as_bytes())
        .expect("key")
        .user_key(&home);
    let sql = format!(
        "SELECT CAST(to_unixtime(window_start) AS BIGINT) AS ws, access_element \
         FROM user_minute WHERE user_key = '{key}' AND category = 'all' ORDER BY ws"
    );
    let o = run(Command::new(bin())
        .args(["sql", "--format", "json", "--lake"])
        .arg(&lake)
        .args(["-e", &sql]));
    let rows = jsonl(&o.stdout);
    let before: Vec<&str> = rows
        .iter()
        .filter(|r| r["ws"].as_i64() < Some(T))
        .filter_map(|r| r["access_element"].as_str())
        .collect();
    let after: Vec<&str> = rows
        .iter()
        .filter(|r| r["ws"].as_i64() >= Some(T))
        .filter_map(|r| r["access_element"].as_str())
        .collect();
    assert!(!before.is_empty() && !after.is_empty(), "{rows:?}");
    assert!(before.iter().all(|a| *a == "olt1"), "{rows:?}");
    assert!(after.iter().all(|a| *a == "olt2"), "{rows:?}");

    // demarcate: the raw IP resolves to the same user at both times; the element is the
    // one valid during the complaint's episode.
    let demarcate = |at: i64| {
        let o = run(Command::new(bin())
            .args(["demarcate", "--no-store", "--format", "jsonl", "--topology"])
            .arg(&versioned)
            .arg("--lake")
            .arg(&lake)
            .args(["--user", &ip, "--at", &at.to_string(), "--window", "5m"]));
        jsonl(&o.stdout).remove(0)
    };
    let early = demarcate(T - 1);
    assert_eq!(early["user_key"], key.as_str(), "{early}");
    assert_eq!(early["evidence"]["access_element"], "olt1", "{early}");
    assert_ne!(early["verdict"], "access", "olt1 is healthy: {early}");
    let late = demarcate(START + 600);
    assert_eq!(late["evidence"]["access_element"], "olt2", "{late}");
    assert_eq!(late["verdict"], "access", "{late}");
    assert_eq!(late["element"], "olt2", "{late}");
}
