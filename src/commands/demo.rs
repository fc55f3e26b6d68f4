//! `cemflow demo`: the embedded default. Synthesises a realistic capture of users behind
//! access and core elements with injected faults, runs it through cemflow, and prints
//! what cemflow found next to the ground truth.

use anyhow::Context;
use cemflow_ingest::capture::read_files;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowTable};
use cemflow_ingest::synth::{generate, FaultSpec, SynthConfig};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// The default scenario: three faults at different levels.
pub const DEFAULT_FAULTS: &str =
    "access:olt2:congestion@4-10m,server:video.example:slow@8-14m,core:bng2:delay@13-18m";

/// Arguments of `cemflow demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Directory for the capture, truth and topology (default: a temporary directory,
    /// removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Subscribers.
    #[arg(long, default_value_t = 200)]
    pub users: u32,
    /// Minutes of traffic.
    #[arg(long, default_value_t = 20)]
    pub minutes: u32,
    /// Faults to inject (see `cemflow synth --help`).
    #[arg(long, default_value = DEFAULT_FAULTS)]
    pub faults: String,
    /// PRNG seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Per access element and fault phase: handshake client-leg RTTs seen by the probe.
#[derive(Default)]
struct LegStats {
    client_ms: Vec<f32>,
    server_ms: Vec<f32>,
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// Runs the command.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    let capture = dir.join("demo.pcap");
    let truth = dir.join("truth.json");
    let topology = dir.join("topology.csv");
    let faults =
        FaultSpec::parse_list(&args.faults).map_err(|e| crate::InputError(e.to_string()))?;
    let cfg = SynthConfig {
        users: args.users,
        minutes: args.minutes,
        seed: args.seed,
        faults,
        scenario: "demo".into(),
        ..SynthConfig::default()
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "1. synthesising {} users behind {} access and {} core elements for {} minutes",
        cfg.users, cfg.access_elements, cfg.core_elements, cfg.minutes
    )?;
    let summary = generate(
        &cfg,
        BufWriter::new(File::create(&capture).with_context(|| capture.display().to_string())?),
        Some(BufWriter::new(File::create(&truth)?)),
        Some(BufWriter::new(File::create(&topology)?)),
    )?;
    writeln!(
        out,
        "   {} packets, {} flows -> {}",
        summary.packets,
        summary.flows,
        capture.display()
    )?;
    for f in &cfg.faults {
        writeln!(out, "   injected fault: {f}")?;
    }

    writeln!(out, "2. decoding flows (DPI, catalog, per-flow KPIs)")?;
    let (users, _) = cemflow_ingest::synth::topology(&cfg)?;
    let access_of: BTreeMap<std::net::IpAddr, String> = users
        .iter()
        .map(|u| (std::net::IpAddr::V4(u.ip), u.access.clone()))
        .collect();
    let mut table = FlowTable::new(FlowConfig::default());
    let mut by_category: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut legs: BTreeMap<String, LegStats> = BTreeMap::new();
    let mut sink = |r: FlowRecord| {
        if let FlowRecord::End(e) = r {
            *by_category.entry(e.class.category.as_str()).or_default() += 1;
            if let Some(access) = access_of.get(&e.meta.client_ip) {
                let s = legs.entry(access.clone()).or_default();
                s.client_ms.extend(e.kpi.hs_rtt_client_ms);
                s.server_ms.extend(e.kpi.hs_rtt_server_ms);
            }
        }
    };
    read_files(
        std::slice::from_ref(&capture),
        &mut table,
        &mut sink,
        |_| {},
    )?;
    table.finish(&mut sink);
    let stats = table.stats();
    writeln!(
        out,
        "   {} packets, {} flows; by category: {}",
        stats.packets,
        stats.flows_ended,
        by_category
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out, "   handshake RTT legs per access element (median ms):")?;
    writeln!(
        out,
        "   {:<10} {:>12} {:>12}",
        "access", "client leg", "server leg"
    )?;
    for (access, s) in legs.iter_mut() {
        let c = median(&mut s.client_ms).map_or("-".into(), |v| format!("{v:.1}"));
        let sv = median(&mut s.server_ms).map_or("-".into(), |v| format!("{v:.1}"));
        writeln!(out, "   {access:<10} {c:>12} {sv:>12}")?;
    }
    writeln!(out, "   ground truth: {}", truth.display())?;
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// A fresh private directory under the system temp dir.
fn tempdir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let d = base.join(format!("cemflow-demo-{}-{i}", std::process::id()));
        if std::fs::create_dir(&d).is_ok() {
            return Ok(d);
        }
    }
    anyhow::bail!(
        "cannot create a temporary directory under {}",
        base.display()
    )
}
