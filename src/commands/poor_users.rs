//! `cemflow poor-users`: users with a poor experience now, with their worst category and
//! root-cause verdict (SPEC §5, §7, §11).

use super::demarcate::{input_or, thresholds, VerdictInputs};
use crate::output::{Format, RowWriter};
use anyhow::Context;
use cemflow_lakehouse::Lake;
use cemflow_queries::util::{parse_duration, parse_time};
use cemflow_queries::{poor_users, PoorUsersQuery, QuerySession};
use std::sync::Arc;

/// Arguments of `cemflow poor-users`.
#[derive(clap::Args, Debug)]
pub struct PoorUsersArgs {
    /// Lake root (directory or URI).
    #[arg(long, env = "CEMFLOW_LAKE", value_name = "DIR")]
    pub lake: String,
    /// Evaluation time (RFC 3339 or epoch seconds); default: the latest window in the lake.
    #[arg(long)]
    pub at: Option<String>,
    /// Lookback (the rule counts poor minutes among these windows), e.g. 15m.
    #[arg(long, default_value = "15m")]
    pub window: String,
    /// Least poor minutes in the lookback.
    #[arg(long, default_value_t = 3)]
    pub min_poor_minutes: usize,
    /// CEI below which a minute is poor.
    #[arg(long, default_value_t = 60.0)]
    pub poor_cei: f64,
    /// Only this service category (the rule is applied to its rows).
    #[arg(long)]
    pub category: Option<String>,
    /// Skip the demarcation (no verdict/element; faster).
    #[arg(long)]
    pub no_verdict: bool,
    /// How users are resolved (raw users shown for known pseudonyms) and verdicts decided.
    #[command(flatten)]
    pub inputs: VerdictInputs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

const TABLE_COLUMNS: &[&str] = &[
    "user",
    "cei",
    "poor_minutes",
    "worst_category",
    "verdict",
    "element",
];

/// Runs the command.
pub fn run(args: PoorUsersArgs) -> anyhow::Result<()> {
    let dcfg = thresholds(args.inputs.thresholds.as_ref())?;
    let resolver = args.inputs.resolver()?;
    let lookback = parse_duration(&args.window).map_err(input_or)?;
    let q = PoorUsersQuery {
        at_s: match &args.at {
            Some(t) => Some(parse_time(t).map_err(input_or)?),
            None => None,
        },
        category: args.category.clone(),
        cei_below: args.poor_cei,
        min_minutes: args.min_poor_minutes,
        lookback_minutes: ((lookback + 59) / 60).max(1) as usize,
        minute_s: 60,
        demarcate: !args.no_verdict,
        ..PoorUsersQuery::default()
    };
    let lake = Lake::open_existing(&args.lake).map_err(|e| crate::InputError(e.to_string()))?;
    let session = QuerySession::open_blocking(Arc::new(lake)).context("opening the lake")?;
    let list = session
        .block_on(poor_users(&session, &q, &resolver, &dcfg))
        .map_err(input_or)?;
    let mut w = RowWriter::new(args.format, std::io::stdout().lock(), TABLE_COLUMNS);
    for u in &list {
        w.write(u)?;
    }
    w.finish()
}
