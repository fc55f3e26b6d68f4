//! `cemflow evaluate` (hidden): scores demarcation verdicts and the poor-user list against
//! a synthesizer ground truth (`cemflow synth --truth`), as steps 3–4 of `cemflow demo` do.
//! For tuning and tests.

use crate::commands::demo::{score_against_truth, ScoredVerdict};
use crate::output::{Format, RowWriter};
use anyhow::Context;
use cemflow_dataflow::PSEUDO_KEY_ENV;
use cemflow_lakehouse::Lake;
use cemflow_queries::{poor_users, DemarcationConfig, PoorUsersQuery, QuerySession};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `cemflow evaluate`.
#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// Lake root the synthesised capture was ingested into.
    #[arg(long, value_name = "DIR")]
    pub lake: PathBuf,
    /// Ground truth JSON written by `cemflow synth --truth`.
    #[arg(long, value_name = "FILE")]
    pub truth: PathBuf,
    /// Topology CSV written by `cemflow synth --topology` (and used at ingest).
    #[arg(long, value_name = "FILE")]
    pub topology: PathBuf,
    /// Pseudonymisation key used at ingest.
    #[arg(long = "pseudo-key", env = PSEUDO_KEY_ENV, hide_env_values = true)]
    pub pseudo_key: String,
    /// `table`: the summary only; `jsonl`/`csv`: one row per expected verdict, then the
    /// summary on stderr.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

const TABLE_COLUMNS: &[&str] = &[
    "user",
    "at",
    "truth_verdict",
    "truth_element",
    "verdict",
    "element",
    "correct",
];

/// Runs the command: prints `accuracy: C/N (P %); per truth verdict: level c/n, …` and
/// the poor-user list's precision and recall.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let score = score_against_truth(&args.lake, &args.truth, &args.topology, &args.pseudo_key)?;
    let poor = score_poor_users(&args.lake, &args.truth, &args.topology, &args.pseudo_key)?;
    let summary = format!("{}\n{}", summarize(&score), summarize_poor(&poor));
    let mut out = std::io::stdout().lock();
    if args.format == Format::Table {
        writeln!(out, "{summary}")?;
    } else {
        let mut w = RowWriter::new(args.format, &mut out, TABLE_COLUMNS);
        for r in &score {
            w.write(r)?;
        }
        w.finish()?;
        for p in &poor {
            eprintln!("poor-users at {}: {}", p.at, serde_json::to_string(p)?);
        }
        eprintln!("{summary}");
    }
    Ok(())
}

/// `accuracy: C/N (P %); per truth verdict: level c/n, …`.
pub fn summarize(score: &[ScoredVerdict]) -> String {
    let mut by_level: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in score {
        let e = by_level.entry(r.truth_verdict.as_str()).or_default();
        e.1 += 1;
        if r.correct {
            e.0 += 1;
        }
    }
    let correct = score.iter().filter(|r| r.correct).count();
    format!(
        "accuracy: {correct}/{} ({:.0} %); per truth verdict: {}",
        score.len(),
        100.0 * correct as f64 / score.len().max(1) as f64,
        by_level
            .iter()
            .map(|(v, (c, n))| format!("{v} {c}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The poor-user list at one instant scored against the synthesizer's impairment truth.
///
/// Truth at `at`: over the lookback windows of the list (the 15 windows ending with `at`'s),
/// a user is **poor** when the faults impaired it (truth `faults[].impaired`) in at least
/// 3 of them, **healthy** when no fault active in the lookback touched its packets, and
/// ambiguous otherwise (touched, impaired in fewer minutes: listed or not, neither counts).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PoorScore {
    /// Evaluation instant, epoch seconds.
    pub at: i64,
    /// Users the list holds.
    pub listed: usize,
    /// Users the truth says are poor.
    pub truth_poor: usize,
    /// Listed and poor.
    pub true_pos: usize,
    /// Listed and healthy.
    pub false_pos: usize,
    /// Poor, not listed (raw users).
    pub missed: Vec<String>,
    /// Healthy, listed (raw users).
    pub false_alarms: Vec<String>,
}

/// Runs the poor-user list (SPEC §5 defaults) at every complaint instant of the truth's
/// `expected` entries (the truth's end minute when there are none) and scores it.
pub fn score_poor_users(
    lake: &Path,
    truth: &Path,
    topology: &Path,
    key: &str,
) -> anyhow::Result<Vec<PoorScore>> {
    let text = std::fs::read_to_string(truth).with_context(|| truth.display().to_string())?;
    let t: serde_json::Value = serde_json::from_str(&text)?;
    let resolver = crate::commands::demarcate::resolver(Some(key), Some(&topology.to_path_buf()))?;
    let mut ip_of: HashMap<String, String> = HashMap::new();
    for u in t["users"].as_array().into_iter().flatten() {
        if let Some(ip) = u["user"].as_str() {
            let k = resolver
                .user_key(ip)
                .map_err(crate::commands::demarcate::input_or)?;
            ip_of.insert(k, ip.to_string());
        }
    }
    let mut instants: BTreeSet<i64> = t["expected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["at"].as_i64())
        .collect();
    if instants.is_empty() {
        instants.insert(t["end"].as_i64().unwrap_or_default() - 60);
    }
    let faults = t["faults"].as_array().cloned().unwrap_or_default();
    let q0 = PoorUsersQuery {
        demarcate: false,
        ..PoorUsersQuery::default()
    };
    let lake = Arc::new(Lake::open_existing(&lake.display().to_string())?);
    let session = QuerySession::open_blocking(lake).context("opening the lake")?;
    let minute = q0.minute_s;
    let mut out = Vec::new();
    for at in instants {
        let at_w = at.div_euclid(minute) * minute;
        let from = at_w - (q0.lookback_minutes as i64 - 1) * minute;
        let mut impaired: HashMap<&str, BTreeSet<i64>> = HashMap::new();
        let mut touched: BTreeSet<&str> = BTreeSet::new();
        for f in &faults {
            let (fs, fe) = (
                f["start"].as_i64().unwrap_or_default(),
                f["end"].as_i64().unwrap_or_default(),
            );
            if fe <= from || fs >= at_w + minute {
                continue;
            }
            touched.extend(
                f["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_str()),
            );
            for i in f["impaired"].as_array().into_iter().flatten() {
                let Some(u) = i["user"].as_str() else {
                    continue;
                };
                for m in i["minutes"].as_array().into_iter().flatten() {
                    let w = m.as_i64().unwrap_or_default().div_euclid(minute) * minute;
                    if (from..=at_w).contains(&w) {
                        impaired.entry(u).or_default().insert(w);
                    }
                }
            }
        }
        let poor: BTreeSet<&str> = impaired
            .iter()
            .filter(|(_, m)| m.len() >= q0.min_minutes)
            .map(|(u, _)| *u)
            .collect();
        let q = PoorUsersQuery {
            at_s: Some(at),
            ..q0.clone()
        };
        let list = session
            .block_on(poor_users(
                &session,
                &q,
                &resolver,
                &DemarcationConfig::default(),
            ))
            .map_err(crate::commands::demarcate::input_or)?;
        let listed: BTreeSet<String> = list
            .iter()
            .map(|u| {
                ip_of
                    .get(&u.user_key)
                    .cloned()
                    .unwrap_or_else(|| u.user_key.clone())
            })
            .collect();
        out.push(PoorScore {
            at,
            listed: listed.len(),
            truth_poor: poor.len(),
            true_pos: listed.iter().filter(|u| poor.contains(u.as_str())).count(),
            false_pos: listed
                .iter()
                .filter(|u| !touched.contains(u.as_str()))
                .count(),
            missed: poor
                .iter()
                .filter(|u| !listed.contains(**u))
                .map(|u| u.to_string())
                .collect(),
            false_alarms: listed
                .iter()
                .filter(|u| !touched.contains(u.as_str()))
                .cloned()
                .collect(),
        });
    }
    Ok(out)
}

/// `poor users: precision TP/(TP+FP) (P %), recall TP/N (R %) over K instants`.
pub fn summarize_poor(score: &[PoorScore]) -> String {
    let tp: usize = score.iter().map(|s| s.true_pos).sum();
    let fp: usize = score.iter().map(|s| s.false_pos).sum();
    let n: usize = score.iter().map(|s| s.truth_poor).sum();
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "n/a".to_string()
        } else {
            format!("{:.0} %", 100.0 * a as f64 / b as f64)
        }
    };
    format!(
        "poor users: precision {tp}/{} ({}), recall {tp}/{n} ({}) over {} instants",
        tp + fp,
        pct(tp, tp + fp),
        pct(tp, n),
        score.len()
    )
}
