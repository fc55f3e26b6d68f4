//! Crash consistency of `cemflow ingest`: `kill -9` at random instants, then a re-run of
//! the same source, must leave every table equal to one clean run's (no lost, no
//! duplicated row).
//!
//! One small synthetic capture (10 one-minute windows, `--commit-every 1`: ≥ 10 window
//! commits per windowed table plus the flows commits) is ingested cleanly into a
//! reference lake; then each of 20 trials ingests it into a fresh lake, SIGKILLs the
//! process at a point drawn by a per-trial seeded PRNG (stratified over the clean run's
//! commits, plus 0–100 ms), re-runs the ingest to completion and compares every table
//! with the reference as a multiset of rows. Trials run three at a time.

use crate::util::bin;
use cemflow_lakehouse::deltalake::arrow::array::RecordBatch;
use cemflow_lakehouse::deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use cemflow_lakehouse::{Lake, Table};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const KEY: &str = "test-pseudonym-key";
const SOURCE: &str = "crash-source";
const TRIALS: usize = 20;
/// Trials run concurrently (each is two short-lived processes mostly waiting on commits).
const PARALLEL: usize = 3;

/// A deterministic PRNG (splitmix64), seeded per trial.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ingest_cmd(cap: &Path, topo: &Path, lake: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env("CEMFLOW_PSEUDO_KEY", KEY)
        .arg("ingest")
        .arg(cap)
        .arg("--topology")
        .arg(topo)
        .args([
            "--no-progress",
            "--commit-every",
            "1",
            "--source-id",
            SOURCE,
        ])
        .arg("--lake")
        .arg(lake);
    c
}

fn ingest_to_completion(cap: &Path, topo: &Path, lake: &Path) {
    let out = ingest_cmd(cap, topo, lake).output().expect("ingest runs");
    assert!(
        out.status.success(),
        "ingest into {} failed: {}",
        lake.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every table's rows as sorted canonical strings (`column=value` over the columns in
/// name order), so two lakes compare as multisets of rows.
fn snapshot(lake: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let l = Lake::open_existing(&lake.display().to_string()).expect("lake");
    let opts = FormatOptions::default().with_null("NULL");
    let mut tables = BTreeMap::new();
    for t in Table::ALL {
        if !l.table_exists(t).expect("exists") {
            continue;
        }
        let mut rows = Vec::new();
        for b in l.read_table(t, None).expect("read") {
            rows.extend(batch_rows(&b, &opts));
        }
        rows.sort();
        tables.insert(t.name(), rows);
    }
    tables
}

fn batch_rows(b: &RecordBatch, opts: &FormatOptions) -> Vec<String> {
    let schema = b.schema();
    let mut cols: Vec<(String, ArrayFormatter)> = schema
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| {
            (
                f.name().clone(),
                ArrayFormatter::try_new(c.as_ref(), opts).expect("formatter"),
            )
        })
        .collect();
    cols.sort_by(|a, b| a.0.cmp(&b.0));
    (0..b.num_rows())
        .map(|i| {
            cols.iter()
                .map(|(n, f)| format!("{n}={}", f.value(i)))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Rows of `want` missing from `got` (lost) and rows of `got` beyond `want` (duplicated
/// or foreign), both sorted.
fn diff(want: &[String], got: &[String]) -> (usize, usize) {
    let (mut i, mut j, mut lost, mut extra) = (0, 0, 0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                lost += 1;
                i += 1;
            }
            (Some(_), None) => {
                lost += 1;
                i += 1;
            }
            _ => {
                extra += 1;
                j += 1;
            }
        }
    }
    (lost, extra)
}

/// Committed Delta versions (log entries beyond the table's creation) of the windowed
/// tables: where in the ingest the kill landed.
fn commits(lake: &Path) -> usize {
    Table::WINDOWED
        .iter()
        .map(|t| {
            std::fs::read_dir(lake.join(t.name()).join("_delta_log"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                        .count()
                        .saturating_sub(1)
                })
                .unwrap_or(0)
        })
        .sum()
}

struct Trial {
    index: usize,
    delay_ms: u64,
    /// Table commits the kill waited for.
    target: usize,
    /// Runs that finished before their kill point (retried).
    retries: usize,
    commits_at_kill: usize,
    /// Per table: (lost, duplicated) rows after the re-run.
    diffs: Vec<(&'static str, usize, usize)>,
}

#[test]
fn kill_9_during_ingest_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("in.pcap");
    let topo = dir.path().join("topo.csv");
    // 10 one-minute windows, few packets: the ingest time is dominated by its ~15 commit
    // points per windowed table (`--commit-every 1`).
    let out = Command::new(bin())
        .args(["synth", "--users", "8", "--minutes", "10", "--seed", "11"])
        .args(["--activity", "0.3", "--volume", "0.001"])
        .args(["--faults", "access:olt2:congestion@3-7m"])
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

    let reference = dir.path().join("reference");
    let t0 = Instant::now();
    ingest_to_completion(&cap, &topo, &reference);
    let clean = t0.elapsed();
    let full_commits = commits(&reference);
    let want = snapshot(&reference);
    assert!(
        want.get("user_minute").is_some_and(|r| !r.is_empty())
            && want.get("flows").is_some_and(|r| !r.is_empty()),
        "the reference ingest wrote rows: {:?}",
        want.iter().map(|(t, r)| (*t, r.len())).collect::<Vec<_>>()
    );
    assert!(
        commits(&reference) >= 10 * Table::WINDOWED.len(),
        "≥ 10 window commits: {full_commits} table commits"
    );

    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= TRIALS {
                    break;
                }
                // Kill points are stratified over the ingest's progress: trial i waits
                // until about i/TRIALS of the clean run's table commits are in the log,
                // then a random 0–100 ms more (trial 0: during lake creation, before
                // any commit; the last trials: within the final commits). A process
                // that finishes first is retried with the next seed.
                let mut rng = SplitMix(0xc0ff_ee00 + i as u64);
                let lake = dir.path().join(format!("trial-{i:02}"));
                let mut retries = 0;
                let (mut child, t, target) = loop {
                    let _ = std::fs::remove_dir_all(&lake);
                    let frac = match i {
                        0 => 0.0,
                        _ => (i as f64 + rng.unit()) / TRIALS as f64,
                    };
                    // A retry aims a little earlier.
                    let target =
                        ((frac * full_commits as f64) as usize).saturating_sub(2 * retries);
                    let jitter = Duration::from_millis(rng.next() % 100);
                    let mut child = ingest_cmd(&cap, &topo, &lake)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("ingest starts");
                    let t = Instant::now();
                    let mut deadline: Option<Instant> = None;
                    let finished = loop {
                        if child.try_wait().expect("try_wait").is_some() {
                            break true;
                        }
                        let now = Instant::now();
                        match deadline {
                            Some(d) if now >= d => break false,
                            Some(_) => {}
                            None if commits(&lake) >= target => deadline = Some(now + jitter),
                            None => {}
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    };
                    if !finished {
                        break (child, t, target);
                    }
                    let status = child.wait().expect("wait");
                    assert!(status.success(), "trial {i}: ingest failed on its own");
                    retries += 1;
                    assert!(retries < 5, "trial {i}: the ingest always finished first");
                };
                // SIGKILL on Unix.
                child.kill().expect("kill");
                let delay = t.elapsed();
                child.wait().expect("wait");
                let commits_at_kill = commits(&lake);
                ingest_to_completion(&cap, &topo, &lake);
                let got = snapshot(&lake);
                let mut diffs = Vec::new();
                for (table, rows) in &want {
                    let empty = Vec::new();
                    let (lost, dup) = diff(rows, got.get(table).unwrap_or(&empty));
                    diffs.push((*table, lost, dup));
                }
                results.lock().expect("lock").push(Trial {
                    index: i,
                    delay_ms: delay.as_millis() as u64,
                    target,
                    retries,
                    commits_at_kill,
                    diffs,
                });
            });
        }
    });

    let mut trials = results.into_inner().expect("lock");
    trials.sort_by_key(|t| t.index);
    assert_eq!(trials.len(), TRIALS);
    eprintln!(
        "clean ingest {:.2} s, {full_commits} table commits; rows per table: {:?}",
        clean.as_secs_f64(),
        want.iter().map(|(t, r)| (*t, r.len())).collect::<Vec<_>>()
    );
    let mut bad = Vec::new();
    for t in &trials {
        let flawed: Vec<_> = t
            .diffs
            .iter()
            .filter(|(_, l, d)| *l > 0 || *d > 0)
            .collect();
        eprintln!(
            "trial {:2}: killed after {:5} ms (waited for {:3} table commits, {} early \
             finish(es) retried), {:3}/{full_commits} table commits in the log; \
             lost/duplicated: {:?}",
            t.index, t.delay_ms, t.target, t.retries, t.commits_at_kill, flawed
        );
        if !flawed.is_empty() {
            bad.push((t.index, flawed));
        }
    }
    eprintln!(
        "{TRIALS} trials in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        bad.is_empty(),
        "lost or duplicated rows (table, lost, duplicated): {bad:?}"
    );
    assert!(
        trials.iter().any(|t| t.commits_at_kill == 0),
        "some kill lands before the first commit"
    );
    assert!(
        trials
            .iter()
            .any(|t| t.commits_at_kill >= full_commits - Table::WINDOWED.len()),
        "some kill lands in the last commit"
    );
}
