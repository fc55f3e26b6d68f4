//! `cemflow demo`: the embedded default. Synthesises a realistic capture of users behind
//! access and core elements with injected faults, runs it through cemflow, and prints
//! what cemflow found next to the ground truth.

use anyhow::Context;
use cemflow_dataflow::{DataflowConfig, PSEUDO_KEY_ENV};
use cemflow_ingest::flow::FlowConfig;
use cemflow_ingest::synth::{generate, FaultSpec, SynthConfig};
use cemflow_lakehouse::Lake;
use cemflow_queries::demarcate::DemarcationRequest;
use cemflow_queries::{demarcate_many, DemarcationConfig, QuerySession};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

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

    writeln!(
        out,
        "2. ingesting into the lake (flows, DPI, KPIs, CEI per user-minute)"
    )?;
    out.flush()?;
    let lake = dir.join("lake");
    if std::env::var_os(PSEUDO_KEY_ENV).is_none() {
        // The demo has no operator key: use a random one for this run.
        let key = format!("demo-{:x}", demo_entropy());
        std::env::set_var(PSEUDO_KEY_ENV, key);
    }
    let key = std::env::var(PSEUDO_KEY_ENV).unwrap_or_default();
    crate::commands::ingest::run(crate::commands::ingest::IngestArgs {
        inputs: vec![capture.clone()],
        lake: lake.display().to_string(),
        workers: 1,
        processes: 1,
        process: 0,
        hostfile: None,
        topology: Some(topology.clone()),
        catalog: None,
        source_id: Some("demo".into()),
        commit_every: 10,
        lateness: DataflowConfig::default().lateness_s,
        max_flows: FlowConfig::default().max_flows,
        no_progress: true,
    })?;

    writeln!(
        out,
        "3. poor-quality users at the end of the capture (with root cause)"
    )?;
    out.flush()?;
    crate::commands::poor_users::run(crate::commands::poor_users::PoorUsersArgs {
        lake: lake.display().to_string(),
        at: None,
        window: "15m".into(),
        min_poor_minutes: 3,
        poor_cei: 60.0,
        category: None,
        no_verdict: false,
        inputs: crate::commands::demarcate::VerdictInputs {
            topology: Some(topology.clone()),
            pseudo_key: Some(key.clone()),
            thresholds: None,
        },
        format: crate::output::Format::Table,
    })?;

    writeln!(out, "4. complaint demarcation against the ground truth")?;
    let score = score_against_truth(&lake, &truth, &topology, &key)?;
    let mut by_level: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &score {
        let e = by_level.entry(r.truth_verdict.clone()).or_default();
        e.1 += 1;
        if r.correct {
            e.0 += 1;
        }
    }
    writeln!(
        out,
        "   {:<16} {:<24} {:<24} ok",
        "user", "truth", "cemflow"
    )?;
    // A few rows per expected verdict (all rows are in `cemflow demarcate` / the lake).
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &score {
        let n = shown.entry(r.truth_verdict.as_str()).or_default();
        *n += 1;
        if *n > 4 {
            continue;
        }
        writeln!(
            out,
            "   {:<16} {:<24} {:<24} {}",
            r.user,
            format!(
                "{} {}",
                r.truth_verdict,
                r.truth_element.as_deref().unwrap_or("")
            ),
            format!("{} {}", r.verdict, r.element.as_deref().unwrap_or("")),
            if r.correct { "yes" } else { "no" }
        )?;
    }
    let correct = score.iter().filter(|r| r.correct).count();
    writeln!(
        out,
        "   accuracy: {correct}/{} ({:.0} %); per truth verdict: {}",
        score.len(),
        100.0 * correct as f64 / score.len().max(1) as f64,
        by_level
            .iter()
            .map(|(v, (c, n))| format!("{v} {c}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let poor = crate::commands::evaluate::score_poor_users(&lake, &truth, &topology, &key)?;
    writeln!(
        out,
        "   {}",
        crate::commands::evaluate::summarize_poor(&poor)
    )?;
    if args.dir.is_some() {
        writeln!(
            out,
            "   files: {} (capture, truth.json, topology.csv, lake/)",
            dir.display()
        )?;
    } else {
        writeln!(
            out,
            "   (run with --dir DIR to keep the capture, truth and lake)"
        )?;
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

/// One expected verdict of the ground truth next to cemflow's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScoredVerdict {
    /// Subscriber (raw IP, from the truth file).
    pub user: String,
    /// Complaint time, epoch seconds.
    pub at: i64,
    /// Expected verdict.
    pub truth_verdict: String,
    /// Expected element (none for `no_fault_found`).
    pub truth_element: Option<String>,
    /// cemflow's verdict.
    pub verdict: String,
    /// cemflow's element.
    pub element: Option<String>,
    /// Verdict equal, and element equal when the truth names one.
    pub correct: bool,
}

/// Demarcates every `expected` entry of a synth `truth.json` against the lake and compares.
pub fn score_against_truth(
    lake: &Path,
    truth: &Path,
    topology: &Path,
    key: &str,
) -> anyhow::Result<Vec<ScoredVerdict>> {
    let text = std::fs::read_to_string(truth).with_context(|| truth.display().to_string())?;
    let t: serde_json::Value = serde_json::from_str(&text)?;
    let resolver = crate::commands::demarcate::resolver(Some(key), Some(&topology.to_path_buf()))?;
    let expected = t["expected"].as_array().cloned().unwrap_or_default();
    let mut reqs = Vec::with_capacity(expected.len());
    for e in &expected {
        let user = e["user"].as_str().unwrap_or_default().to_string();
        reqs.push(DemarcationRequest {
            complaint_id: None,
            user_key: resolver
                .user_key(&user)
                .map_err(crate::commands::demarcate::input_or)?,
            home: resolver.home_id(&user),
            at_s: e["at"].as_i64().unwrap_or_default(),
            window_s: None,
            user,
        });
    }
    let lake = Arc::new(Lake::open_existing(&lake.display().to_string())?);
    let session = QuerySession::open_blocking(lake).context("opening the lake")?;
    let rows = session
        .block_on(demarcate_many(
            &session,
            &reqs,
            &DemarcationConfig::default(),
        ))
        .map_err(crate::commands::demarcate::input_or)?;
    Ok(expected
        .iter()
        .zip(rows)
        .map(|(e, d)| {
            let truth_verdict = e["verdict"].as_str().unwrap_or_default().to_string();
            let truth_element = e["element"].as_str().map(str::to_string);
            let verdict = d.verdict.as_str().to_string();
            let correct = verdict == truth_verdict
                && (truth_verdict == "no_fault_found" || truth_element == d.element);
            ScoredVerdict {
                user: e["user"].as_str().unwrap_or_default().to_string(),
                at: e["at"].as_i64().unwrap_or_default(),
                truth_verdict,
                truth_element,
                verdict,
                element: d.element,
                correct,
            }
        })
        .collect())
}

/// Some entropy for the demo's throwaway key (time and process id; not for production).
fn demo_entropy() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}
