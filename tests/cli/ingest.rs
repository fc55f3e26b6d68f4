//! `cemflow ingest`: captures into a Delta lake, exactly once, independent of workers and
//! processes (same rows as sets), with no raw subscriber address in any table.

use crate::util::{bin, jsonl};
use cemflow_lakehouse::{Lake, Table};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

const KEY: &str = "test-pseudonym-key";

fn synth(dir: &Path) -> (String, String) {
    let cap = dir.join("in.pcap");
    let topo = dir.join("topo.csv");
    let out = Command::new(bin())
        .args(["synth", "--users", "24", "--minutes", "4", "--seed", "3"])
        .args(["--faults", "access:olt2:congestion@1-4m"])
        .arg("--out")
        .arg(&cap)
        .arg("--topology")
        .arg(&topo)
        .output()
        .expect("synth runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cap.display().to_string(), topo.display().to_string())
}

fn ingest(cap: &str, topo: &str, lake: &Path, workers: &str) -> String {
    let out = Command::new(bin())
        .env("CEMFLOW_PSEUDO_KEY", KEY)
        .args([
            "ingest",
            cap,
            "--topology",
            topo,
            "--no-progress",
            "-w",
            workers,
        ])
        .args(["--source-id", "test-source", "--lake"])
        .arg(lake)
        .output()
        .expect("ingest runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    stderr
}

fn counts(lake: &Path) -> [u64; 4] {
    let l = Lake::open(&lake.display().to_string()).expect("lake");
    [
        Table::Flows,
        Table::UserMinute,
        Table::ElementMinute,
        Table::Anomalies,
    ]
    .map(|t| l.row_count(t).expect("count"))
}

#[test]
fn ingest_is_exactly_once_and_worker_independent() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cap, topo) = synth(dir.path());
    let lake1 = dir.path().join("lake1");
    ingest(&cap, &topo, &lake1, "1");
    let first = counts(&lake1);
    assert!(first[1] > 0 && first[2] > 0, "{first:?}");

    // Every flow `cemflow flows` finds is in the lake.
    let out = Command::new(bin())
        .args(["flows", &cap, "--format", "jsonl"])
        .output()
        .expect("flows");
    assert_eq!(first[0], jsonl(&out.stdout).len() as u64);

    // A re-run of the same source adds nothing.
    let stderr = ingest(&cap, &topo, &lake1, "1");
    assert!(stderr.contains("skipped (exactly once)"), "{stderr}");
    assert_eq!(counts(&lake1), first);

    // Two workers give the same rows.
    let lake2 = dir.path().join("lake2");
    ingest(&cap, &topo, &lake2, "2");
    assert_eq!(counts(&lake2), first);
    assert_eq!(dump(&lake2), dump(&lake1), "-w 2 vs -w 1");
}

/// Every table's rows, sorted, as CSV text (through `cemflow sql`).
fn dump(lake: &Path) -> Vec<(String, String)> {
    let tables = [
        ("flows", "flow_id"),
        ("user_minute", "window_start, user_key, category"),
        ("element_minute", "window_start, level, element_id"),
        ("anomalies", "window_start, entity_kind, entity_id, metric"),
    ];
    tables
        .iter()
        .map(|(t, order)| {
            let out = Command::new(bin())
                .args(["sql", "--format", "csv", "--lake"])
                .arg(lake)
                .args(["-e", &format!("SELECT * FROM {t} ORDER BY {order}")])
                .output()
                .expect("sql runs");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{t}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (t.to_string(), text)
        })
        .collect()
}

/// Splits an Ethernet/IPv4 pcap in two by subscriber: packets whose source or destination
/// is one of `users` at an even index go to `a`, odd to `b` (like two probes each seeing
/// half of the lines, at the same times).
fn split_by_user(cap: &Path, users: &[Ipv4Addr], a: &Path, b: &Path) -> (usize, usize) {
    let bytes = std::fs::read(cap).expect("capture");
    let le = bytes.get(..4) == Some(&[0x4d, 0x3c, 0xb2, 0xa1]) // ns, little-endian
        || bytes.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1]); // µs, little-endian
    assert!(le, "synth writes little-endian pcap");
    let u32le = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let part: std::collections::HashMap<Ipv4Addr, usize> =
        users.iter().enumerate().map(|(i, u)| (*u, i % 2)).collect();
    let mut out = [bytes[..24].to_vec(), bytes[..24].to_vec()];
    let mut n = [0usize; 2];
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32le(at + 8) as usize;
        let rec = &bytes[at..at + 16 + len];
        let frame = &rec[16..];
        let ip = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
        let side = (frame.len() >= 34 && frame[12..14] == [0x08, 0x00])
            .then(|| part.get(&ip(26)).or_else(|| part.get(&ip(30))).copied())
            .flatten()
            .unwrap_or(0);
        out[side].extend_from_slice(rec);
        n[side] += 1;
        at += 16 + len;
    }
    std::fs::write(a, &out[0]).expect("write a");
    std::fs::write(b, &out[1]).expect("write b");
    (n[0], n[1])
}

/// A free TCP port on localhost (bound, then released for timely to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn two_processes_give_the_rows_of_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cap, topo) = synth(dir.path());
    let users: Vec<Ipv4Addr> = std::fs::read_to_string(&topo)
        .expect("topology")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect();
    assert!(users.len() >= 20);
    let (a, b) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    let (na, nb) = split_by_user(Path::new(&cap), &users, &a, &b);
    assert!(na > 1000 && nb > 1000, "{na} {nb}");

    let lake1 = dir.path().join("lake1");
    ingest(&cap, &topo, &lake1, "1");

    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hostfile");
    let lake2 = dir.path().join("lake2");
    let spawn = |i: usize, part: &Path| {
        Command::new(bin())
            .env("CEMFLOW_PSEUDO_KEY", KEY)
            .arg("ingest")
            .arg(part)
            .args([
                "--topology",
                &topo,
                "--no-progress",
                "--source-id",
                "test-source",
            ])
            .args([
                "--processes",
                "2",
                "--process",
                &i.to_string(),
                "--hostfile",
            ])
            .arg(&hosts)
            .arg("--lake")
            .arg(&lake2)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ingest process starts")
    };
    let p0 = spawn(0, &a);
    let p1 = spawn(1, &b);
    for (i, p) in [p0, p1].into_iter().enumerate() {
        let out = p.wait_with_output().expect("process ends");
        assert!(
            out.status.success(),
            "process {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (one, two) = (dump(&lake1), dump(&lake2));
    for ((t, x), (_, y)) in one.iter().zip(&two) {
        let (xs, ys): (HashSet<&str>, HashSet<&str>) = (x.lines().collect(), y.lines().collect());
        // (4 minutes are too short for anomaly baselines: that table may be empty.)
        assert!(xs.len() > 1 || t == "anomalies", "{t} is empty");
        assert_eq!(
            xs.len(),
            ys.len(),
            "{t}: row counts, 1 process vs 2 processes"
        );
        let missing: Vec<&&str> = xs.difference(&ys).take(3).collect();
        assert!(missing.is_empty(), "{t}: rows differ, e.g. {missing:?}");
    }
}

#[test]
fn no_raw_subscriber_address_reaches_the_lake() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cap, topo) = synth(dir.path());
    let lake = dir.path().join("lake");
    ingest(&cap, &topo, &lake, "1");
    let users: Vec<String> = std::fs::read_to_string(&topo)
        .expect("topology")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    assert!(!users.is_empty());
    // Scan every Parquet file of every table for the subscribers' addresses.
    let mut files = Vec::new();
    let mut stack = vec![lake.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet" || x == "json") {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        for u in &users {
            // Parquet stores strings plainly (dictionary/plain pages; zstd may compress
            // them, so also check the decoded columns below).
            assert!(!text.contains(u.as_str()), "{u} found in {}", f.display());
        }
    }
    let l = Lake::open(&lake.display().to_string()).expect("lake");
    for t in [Table::Flows, Table::UserMinute] {
        for b in l.read_table(t, None).expect("read") {
            for c in b.columns() {
                let s = format!("{c:?}");
                for u in &users {
                    assert!(!s.contains(&format!("\"{u}\"")), "{u} in {t:?}");
                }
            }
        }
    }
}

#[test]
fn ingest_without_a_key_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(bin())
        .env_remove("CEMFLOW_PSEUDO_KEY")
        .args(["ingest", "x.pcap", "--lake"])
        .arg(dir.path().join("lake"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CEMFLOW_PSEUDO_KEY"));
}
