//! `cemflow demarcate`: complaint demarcation verdicts (SPEC §7, §11), appended to the
//! lake's `demarcations` table.

use crate::output::{Format, RowWriter};
use anyhow::Context;
use cemflow_dataflow::{PlacementConfig, Pseudonymizer, Topology, PSEUDO_KEY_ENV};
use cemflow_lakehouse::Lake;
use cemflow_queries::demarcate::{read_complaints, requests_for, DemarcationRequest};
use cemflow_queries::util::{parse_duration, parse_time};
use cemflow_queries::{
    append_demarcations, demarcate_many, Demarcation, DemarcationConfig, QueryError, QuerySession,
    UserResolver,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `cemflow demarcate`.
#[derive(clap::Args, Debug)]
pub struct DemarcateArgs {
    /// Lake root (directory or URI).
    #[arg(long, env = "CEMFLOW_LAKE", value_name = "DIR")]
    pub lake: String,
    /// The complaining user: raw subscriber IP / IMSI / MSISDN / home id, or a pseudonym.
    #[arg(long, requires = "at", conflicts_with = "complaints")]
    pub user: Option<String>,
    /// Complaint time (RFC 3339 or epoch seconds).
    #[arg(long)]
    pub at: Option<String>,
    /// Complaints CSV `complaint_id,user,reported_at[,service,text]`.
    #[arg(long, value_name = "FILE")]
    pub complaints: Option<PathBuf>,
    /// Window before the complaint (e.g. 30m).
    #[arg(long, default_value = "30m")]
    pub window: String,
    /// How users are resolved and verdicts decided.
    #[command(flatten)]
    pub inputs: VerdictInputs,
    /// Do not append the verdicts to the `demarcations` table.
    #[arg(long)]
    pub no_store: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// The options every verdict-producing command shares (`demarcate`, `report`,
/// `poor-users`): how raw users map to pseudonyms, and the ladder's thresholds.
#[derive(clap::Args, Debug, Default)]
pub struct VerdictInputs {
    /// Topology CSV (maps raw users to subscriber ids and home ids, as at ingest).
    #[arg(long, env = "CEMFLOW_TOPOLOGY", value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Pseudonymisation key (to look up raw users).
    #[arg(long = "pseudo-key", env = PSEUDO_KEY_ENV, hide_env_values = true)]
    pub pseudo_key: Option<String>,
    /// Demarcation thresholds as JSON (fields of `DemarcationConfig`; missing = defaults).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
}

impl VerdictInputs {
    /// The user resolver (pseudonymiser + topology) these options describe.
    pub fn resolver(&self) -> anyhow::Result<UserResolver> {
        resolver(self.pseudo_key.as_deref(), self.topology.as_ref())
    }

    /// The demarcation thresholds, with the window set from a duration like `30m`.
    pub fn config(&self, window: &str) -> anyhow::Result<DemarcationConfig> {
        let mut cfg = thresholds(self.thresholds.as_ref())?;
        cfg.window_s = parse_duration(window).map_err(input_or)?;
        Ok(cfg)
    }
}

const TABLE_COLUMNS: &[&str] = &[
    "complaint_id",
    "user",
    "window_end",
    "verdict",
    "element",
    "confidence",
];

/// A demarcation row with `evidence` as JSON text (CSV and table cells are flat).
#[derive(Serialize)]
struct FlatRow<'a> {
    complaint_id: &'a Option<String>,
    user: &'a str,
    user_key: &'a str,
    window_start: &'a str,
    window_end: &'a str,
    verdict: &'a str,
    element: &'a Option<String>,
    confidence: f64,
    evidence: String,
}

/// Builds the user resolver from `--pseudo-key` and `--topology`.
pub fn resolver(key: Option<&str>, topology: Option<&PathBuf>) -> anyhow::Result<UserResolver> {
    let pseudo = match key.filter(|k| !k.is_empty()) {
        Some(k) => Some(Pseudonymizer::new(k.as_bytes())?),
        None => None,
    };
    let topo = match topology {
        Some(p) => Some(
            Topology::from_file(p, PlacementConfig::default())
                .map_err(|e| crate::InputError(e.to_string()))?,
        ),
        None => None,
    };
    Ok(UserResolver::new(pseudo, topo))
}

/// Maps a queries error to an input error (exit 2) when it is the caller's fault.
pub fn input_or(e: QueryError) -> anyhow::Error {
    if e.is_input() {
        anyhow::Error::new(crate::InputError(e.to_string()))
    } else {
        anyhow::Error::new(e)
    }
}

/// Writes demarcation rows in `format`.
pub fn write_rows(format: Format, rows: &[Demarcation]) -> anyhow::Result<()> {
    let mut w = RowWriter::new(format, std::io::stdout().lock(), TABLE_COLUMNS);
    for d in rows {
        if format == Format::Jsonl {
            w.write(d)?;
        } else {
            w.write(&FlatRow {
                complaint_id: &d.complaint_id,
                user: &d.user,
                user_key: &d.user_key,
                window_start: &d.window_start,
                window_end: &d.window_end,
                verdict: d.verdict.as_str(),
                element: &d.element,
                confidence: d.confidence,
                evidence: d.evidence.to_string(),
            })?;
        }
    }
    w.finish()
}

/// Reads `--thresholds` (JSON) or the defaults.
pub fn thresholds(path: Option<&PathBuf>) -> anyhow::Result<DemarcationConfig> {
    match path {
        None => Ok(DemarcationConfig::default()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| crate::InputError(format!("{}: {e}", p.display())).into())
        }
    }
}

/// Runs the command.
pub fn run(args: DemarcateArgs) -> anyhow::Result<()> {
    let cfg = args.inputs.config(&args.window)?;
    let resolver = args.inputs.resolver()?;
    let reqs: Vec<DemarcationRequest> = match (&args.user, &args.complaints) {
        (Some(u), None) => {
            let at = parse_time(args.at.as_deref().unwrap_or_default()).map_err(input_or)?;
            vec![DemarcationRequest {
                complaint_id: None,
                user: u.clone(),
                user_key: resolver.user_key_at(u, at).map_err(input_or)?,
                at_s: at,
                window_s: None,
                home: resolver.home_id(u),
            }]
        }
        (None, Some(f)) => {
            let c = read_complaints(f).map_err(input_or)?;
            requests_for(&c, &resolver, None).map_err(input_or)?
        }
        _ => {
            return Err(crate::InputError(
                "give either --user U --at T or --complaints FILE.csv".into(),
            )
            .into())
        }
    };
    let lake = Lake::open_existing(&args.lake).map_err(|e| crate::InputError(e.to_string()))?;
    let lake = Arc::new(lake);
    let session = QuerySession::open_blocking(lake.clone()).context("opening the lake")?;
    let rows = session
        .block_on(demarcate_many(&session, &reqs, &cfg))
        .map_err(input_or)?;
    if !args.no_store {
        append_demarcations(&lake, &rows).context("appending to the demarcations table")?;
    }
    write_rows(args.format, &rows)
}
