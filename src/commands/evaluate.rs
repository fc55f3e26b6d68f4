//! `cemflow evaluate` (hidden): scores demarcation verdicts against a synthesizer ground
//! truth (`cemflow synth --truth`), as step 4 of `cemflow demo` does. For tuning and tests.

use crate::commands::demo::{score_against_truth, ScoredVerdict};
use crate::output::{Format, RowWriter};
use cemflow_dataflow::PSEUDO_KEY_ENV;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

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

/// Runs the command: prints `accuracy: C/N (P %); per truth verdict: level c/n, …`.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let score = score_against_truth(&args.lake, &args.truth, &args.topology, &args.pseudo_key)?;
    let summary = summarize(&score);
    let mut out = std::io::stdout().lock();
    if args.format == Format::Table {
        writeln!(out, "{summary}")?;
    } else {
        let mut w = RowWriter::new(args.format, &mut out, TABLE_COLUMNS);
        for r in &score {
            w.write(r)?;
        }
        w.finish()?;
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
