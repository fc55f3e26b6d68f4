//! `cemflow`: customer experience management for telecom operators.
//!
//! A thin binary over the library crates (`cemflow-ingest` → `cemflow-dataflow` →
//! `cemflow-lakehouse` → `cemflow-queries`): it parses the command line, runs the
//! command, and turns errors into messages and exit codes (2 for bad input).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod commands;
mod metrics;
mod output;
mod shutdown;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cemflow turns what a probe sees on a mirror port into per-user experience indices and
/// tells, for a complaining customer, where the fault is.
#[derive(Parser, Debug)]
#[command(name = "cemflow", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Synthesise a realistic capture with faults, run it through cemflow, and show what
    /// was found next to the ground truth (the embedded default).
    Demo(commands::demo::DemoArgs),
    /// Print one record per bidirectional flow of capture files (no lake).
    Flows(commands::flows::FlowsArgs),
    /// Ingest captures into the lake: flows, per-user and per-element minutes with CEI,
    /// anomalies (timely dataflow, exactly once per source).
    Ingest(commands::ingest::IngestArgs),
    /// Live probe on mirror ports: capture into the lake continuously, a window a minute
    /// (AF_PACKET, Linux; needs CAP_NET_RAW).
    Capture(commands::capture::CaptureArgs),
    /// Lake maintenance (info, optimize, vacuum) and dimension loads (topology, complaints).
    Lake(commands::lake::LakeArgs),
    /// SQL over the lake: one statement (-e) or an interactive shell.
    Sql(commands::sql::SqlArgs),
    /// The lake over the PostgreSQL wire protocol (psql, psycopg2, BI tools), with
    /// password authentication (SCRAM-SHA-256).
    Serve(commands::serve::ServeArgs),
    /// Users with a poor experience now, with root-cause verdicts.
    PoorUsers(commands::poor_users::PoorUsersArgs),
    /// Complaint demarcation: where is the fault?
    Demarcate(commands::demarcate::DemarcateArgs),
    /// Complaints batch report: report.csv and a self-contained report.html.
    Report(commands::report::ReportArgs),
    /// Synthesise a capture with injected faults, ground truth and topology.
    Synth(commands::synth::SynthArgs),
    /// Network telemetry into the lake: IPFIX / NetFlow v9 collector (or captures of
    /// exports) → flow_telemetry, element KPI files → telemetry.
    Telemetry(commands::telemetry::TelemetryArgs),
    /// Score demarcation verdicts against a `synth --truth` file (tuning, tests).
    #[command(hide = true)]
    Evaluate(commands::evaluate::EvaluateArgs),
}

/// An error that is the input's fault (exit code 2), not cemflow's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CEMFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,buoyant_kernel=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Flows(args) => commands::flows::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Capture(args) => commands::capture::run(args),
        Command::Lake(args) => commands::lake::run(args),
        Command::Sql(args) => commands::sql::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::PoorUsers(args) => commands::poor_users::run(args),
        Command::Demarcate(args) => commands::demarcate::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Synth(args) => commands::synth::run(args),
        Command::Telemetry(args) => commands::telemetry::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`cemflow flows x.pcap | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cemflow: error: {e:#}");
            if e.chain()
                .any(|c| c.is::<InputError>() || c.is::<cemflow_ingest::source::SourceError>())
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
