//! `cemflow lake info|optimize|vacuum|load-topology|load-complaints`: lake maintenance and
//! dimension loads.

use crate::output::{Format, RowWriter};
use crate::InputError;
use anyhow::Context;
use cemflow_dataflow::{PlacementConfig, Pseudonymizer, Topology, PSEUDO_KEY_ENV};
use cemflow_lakehouse::{Lake, OptimizeOptions, Table, VacuumOptions};
use std::path::PathBuf;

/// Arguments of `cemflow lake`.
#[derive(clap::Args, Debug)]
pub struct LakeArgs {
    /// Lake root: a directory, or `s3://bucket/prefix` (credentials, region and endpoint
    /// from the standard AWS_* environment variables; see docs/tables.md).
    #[arg(long, env = "CEMFLOW_LAKE", global = true)]
    pub lake: Option<String>,
    #[command(subcommand)]
    pub command: LakeCommand,
}

/// Lake subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum LakeCommand {
    /// Tables with versions, row counts, files and sizes.
    Info {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Compact small files into ~128 MiB files (bin-packing per partition), optionally
    /// z-ordered by user.
    Optimize {
        /// Tables to optimize (default: all).
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// Target file size, MiB. Files smaller than half of it are rewritten; afterwards
        /// each partition has at most one file below half the target.
        #[arg(long, value_name = "MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
        target_mib: u64,
        /// Z-order `user_key` tables by user_key (rewrites whole partitions; clusters a
        /// user's rows).
        #[arg(long)]
        zorder: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Delete files no longer referenced by any version younger than the retention.
    Vacuum {
        /// Tables to vacuum (default: all).
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// Retention in hours (files removed longer ago than this are deleted).
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
        /// List what would be deleted without deleting.
        #[arg(long)]
        dry_run: bool,
    },
    /// Load the subscriber dimension from a topology CSV (pseudonymised).
    LoadTopology {
        /// Topology CSV `user,home_id,access_element,core_element[,region,plan_mbps]`.
        file: PathBuf,
    },
    /// Load complaints from a CSV `complaint_id,user,reported_at[,service,text]`.
    LoadComplaints {
        /// Complaints CSV.
        file: PathBuf,
        /// Topology CSV used to map raw subscriber ids to their pseudonym.
        #[arg(long, env = "CEMFLOW_TOPOLOGY")]
        topology: Option<PathBuf>,
    },
}

fn tables(names: &[String]) -> anyhow::Result<Vec<Table>> {
    names
        .iter()
        .map(|n| {
            Table::ALL
                .iter()
                .copied()
                .find(|t| t.name() == n)
                .ok_or_else(|| {
                    let all: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
                    InputError(format!("no table {n:?}; tables: {}", all.join(", "))).into()
                })
        })
        .collect()
}

fn pseudonymizer() -> anyhow::Result<Pseudonymizer> {
    let key = std::env::var(PSEUDO_KEY_ENV)
        .map_err(|_| InputError(format!("no pseudonymisation key: set {PSEUDO_KEY_ENV}")))?;
    Pseudonymizer::new(key.as_bytes()).map_err(|e| InputError(e.to_string()).into())
}

/// Runs the command.
pub fn run(args: LakeArgs) -> anyhow::Result<()> {
    let root = args
        .lake
        .ok_or_else(|| InputError("no lake: pass --lake DIR or set CEMFLOW_LAKE".into()))?;
    let mut out = std::io::stdout().lock();
    match args.command {
        LakeCommand::Info { format } => {
            let lake = Lake::open_existing(&root).with_context(|| format!("lake {root}"))?;
            let mut w = RowWriter::new(
                format,
                &mut out,
                &[
                    "table",
                    "version",
                    "rows",
                    "files",
                    "bytes",
                    "partitions",
                    "smallest_file",
                    "largest_file",
                    "schema_version",
                ],
            );
            for t in lake.info()? {
                w.write(&t)?;
            }
            w.finish()?;
        }
        LakeCommand::Optimize {
            tables: t,
            target_mib,
            zorder,
            format,
        } => {
            let lake = Lake::open_existing(&root).with_context(|| format!("lake {root}"))?;
            let opts = OptimizeOptions {
                tables: tables(&t)?,
                target_size: target_mib << 20,
                zorder_user_key: zorder,
                ..OptimizeOptions::default()
            };
            let mut w = RowWriter::new(
                format,
                &mut out,
                &[
                    "table",
                    "partitions_optimized",
                    "files_removed",
                    "files_added",
                    "bytes_removed",
                    "bytes_added",
                    "version",
                ],
            );
            for r in lake.optimize(&opts)? {
                w.write(&r)?;
            }
            w.finish()?;
        }
        LakeCommand::Vacuum {
            tables: t,
            retention_hours,
            dry_run,
        } => {
            let lake = Lake::open_existing(&root).with_context(|| format!("lake {root}"))?;
            let opts = VacuumOptions {
                tables: tables(&t)?,
                retention: std::time::Duration::from_secs(retention_hours * 3600),
                dry_run,
                ..VacuumOptions::default()
            };
            let mut w = RowWriter::new(
                Format::Table,
                &mut out,
                &["table", "files_deleted", "dry_run"],
            );
            for r in lake.vacuum(&opts)? {
                w.write(&r)?;
            }
            w.finish()?;
        }
        LakeCommand::LoadTopology { file } => {
            let lake = Lake::open(&root)?;
            let r = lake.load_topology(&file, &pseudonymizer()?)?;
            report_load(&r);
        }
        LakeCommand::LoadComplaints { file, topology } => {
            let lake = Lake::open(&root)?;
            let topo = match topology {
                Some(p) => Topology::from_file(&p, PlacementConfig::default())
                    .map_err(|e| InputError(e.to_string()))?,
                None => Topology::empty(PlacementConfig::default()),
            };
            let r = lake.load_complaints(&file, &pseudonymizer()?, &topo)?;
            report_load(&r);
        }
    }
    Ok(())
}

fn report_load(r: &cemflow_lakehouse::LoadReport) {
    eprintln!(
        "{}: {} rows loaded, {} duplicates, {} rows rejected",
        r.path,
        r.loaded,
        r.duplicates,
        r.errors.len()
    );
    for e in &r.errors {
        eprintln!("  line {}: {}", e.line, e.reason);
    }
}
