//! `cemflow report`: a complaints batch as `report.csv` and a self-contained
//! `report.html` (verdict summary, per-complaint CEI timelines, per-element chart).

use crate::commands::demarcate::{input_or, VerdictInputs};
use anyhow::Context;
use cemflow_lakehouse::Lake;
use cemflow_queries::demarcate::{read_complaints, requests_for};
use cemflow_queries::{append_demarcations, build_report, write_report, QuerySession};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `cemflow report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Lake root (directory or URI).
    #[arg(long, env = "CEMFLOW_LAKE", value_name = "DIR")]
    pub lake: String,
    /// Complaints CSV `complaint_id,user,reported_at[,service,text]`.
    #[arg(long, value_name = "FILE")]
    pub complaints: PathBuf,
    /// Output directory (created): `report.csv` and `report.html`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Window before each complaint (e.g. 30m).
    #[arg(long, default_value = "30m")]
    pub window: String,
    /// How users are resolved and verdicts decided.
    #[command(flatten)]
    pub inputs: VerdictInputs,
    /// Also append the verdicts to the `demarcations` table.
    #[arg(long)]
    pub store: bool,
}

/// Runs the command.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let cfg = args.inputs.config(&args.window)?;
    let resolver = args.inputs.resolver()?;
    let complaints = read_complaints(&args.complaints).map_err(input_or)?;
    let reqs = requests_for(&complaints, &resolver, None).map_err(input_or)?;
    let lake = Lake::open_existing(&args.lake).map_err(|e| crate::InputError(e.to_string()))?;
    let lake = Arc::new(lake);
    let session = QuerySession::open_blocking(lake.clone()).context("opening the lake")?;
    let report = session
        .block_on(build_report(&session, &reqs, &cfg, &args.lake))
        .map_err(input_or)?;
    if args.store {
        let rows: Vec<_> = report
            .complaints
            .iter()
            .map(|c| c.demarcation.clone())
            .collect();
        append_demarcations(&lake, &rows).context("appending to the demarcations table")?;
    }
    let (csv, html) = write_report(&report, &args.out).context("writing the report")?;
    eprintln!(
        "{} complaint(s): {} and {}",
        report.complaints.len(),
        csv.display(),
        html.display()
    );
    Ok(())
}
