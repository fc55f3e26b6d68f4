//! `cemflow flows FILE…`: one record per bidirectional flow, straight from captures.

use crate::output::{Format, RowWriter};
use anyhow::Context;
use cemflow_ingest::capture::{open_inputs, read_files};
use cemflow_ingest::catalog::Catalog;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowSummary, FlowTable};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `cemflow flows`.
#[derive(clap::Args, Debug)]
pub struct FlowsArgs {
    /// Capture files (pcap/pcapng, optionally .gz/.zst) or directories of them.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// App catalog TOML merged over the built-in one.
    #[arg(long, env = "CEMFLOW_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Most flows held at once; beyond it the least recently active flow is evicted.
    #[arg(long, default_value_t = FlowConfig::default().max_flows)]
    pub max_flows: usize,
    /// TCP idle timeout, seconds.
    #[arg(long, default_value_t = FlowConfig::default().tcp_idle_s)]
    pub tcp_idle: u64,
    /// UDP/ICMP idle timeout, seconds.
    #[arg(long, default_value_t = FlowConfig::default().udp_idle_s)]
    pub udp_idle: u64,
    /// Timeout after FIN (both ways) or RST, seconds.
    #[arg(long, default_value_t = FlowConfig::default().tcp_closed_s)]
    pub tcp_closed: u64,
}

const TABLE_COLUMNS: &[&str] = &[
    "l4",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "c2s_pkts",
    "s2c_pkts",
    "c2s_bytes",
    "s2c_bytes",
    "l7_proto",
    "app",
    "category",
    "sni",
    "end_reason",
];

/// Runs the command.
pub fn run(args: FlowsArgs) -> anyhow::Result<()> {
    let catalog = Catalog::load_merged(args.catalog.as_deref())?;
    let files = open_inputs(&args.inputs)?;
    let cfg = FlowConfig {
        max_flows: args.max_flows,
        tcp_idle_s: args.tcp_idle,
        udp_idle_s: args.udp_idle,
        tcp_closed_s: args.tcp_closed,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::with_catalog(cfg, catalog);
    let stdout = std::io::stdout().lock();
    let mut writer = RowWriter::new(args.format, std::io::BufWriter::new(stdout), TABLE_COLUMNS);
    let mut failure: Option<anyhow::Error> = None;
    let mut sink = |r: FlowRecord| {
        if let FlowRecord::End(end) = r {
            if failure.is_none() {
                if let Err(e) = writer.write(&FlowSummary::from_end(&end)) {
                    failure = Some(e);
                }
            }
        }
    };
    let files_read = read_files(&files, &mut table, &mut sink, |_| {})?;
    table.finish(&mut sink);
    if let Some(e) = failure {
        return Err(e);
    }
    writer.finish()?;
    report(&table, &files_read).context("writing the summary")?;
    Ok(())
}

/// Prints what was read and skipped to stderr.
fn report(
    table: &FlowTable,
    files: &[cemflow_ingest::capture::FileSummary],
) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    let s = table.stats();
    writeln!(
        err,
        "{} packets, {} flows from {} file(s)",
        s.packets,
        s.flows_ended,
        files.len()
    )?;
    let skipped = s.skipped_total();
    if skipped > 0 {
        let reasons: Vec<String> = s
            .skip_reasons()
            .into_iter()
            .filter(|(r, _)| *r != cemflow_ingest::decode::Skip::NonIp)
            .map(|(r, n)| format!("{n} {}", r.as_str()))
            .collect();
        writeln!(err, "{skipped} packets skipped: {}", reasons.join(", "))?;
    }
    let non_ip = s.skipped[cemflow_ingest::decode::Skip::NonIp.index()];
    if non_ip > 0 {
        writeln!(err, "{non_ip} non-IP frames ignored")?;
    }
    if s.flows_evicted > 0 {
        writeln!(err, "{} flows evicted (flow table full)", s.flows_evicted)?;
    }
    for f in files {
        for (reason, n) in &f.reader_skipped {
            writeln!(err, "{}: {n} records skipped: {reason}", f.path.display())?;
        }
        if let Some(d) = &f.damage {
            writeln!(
                err,
                "{}: damaged capture, read {} packets up to the damage {d}",
                f.path.display(),
                f.packets
            )?;
        }
    }
    Ok(())
}
