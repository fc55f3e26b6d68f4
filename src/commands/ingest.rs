//! `cemflow ingest FILE|DIR… --lake DIR`: captures → flow table → timely dataflow (user and
//! element minutes, CEI, anomalies) → Delta Lake tables, exactly once per source.
//!
//! Threads and commits:
//! * every process's first worker reads that process's captures through one flow table and
//!   feeds flow slices into the timely graph (exchanged by user, then by element);
//! * the graph hands each closed window to global worker 0, which commits `user_minute`,
//!   `element_minute` and `anomalies` with the app transaction `cemflow/<source-id>`;
//! * each reading worker commits its finished flows to `flows` with its own app id
//!   (`<source-id>-flows-p<process>`), assigned to the window of the capture clock at which
//!   the flow ended — deterministic, so a re-run skips exactly what was committed.

use crate::InputError;
use anyhow::Context;
use cemflow_dataflow::{
    build, DataflowConfig, Enricher, FlowRow, PlacementConfig, Pseudonymizer, Topology,
    WindowOutput, CATEGORY_ALL, PSEUDO_KEY_ENV,
};
use cemflow_ingest::capture::open_inputs;
use cemflow_ingest::catalog::Catalog;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowStats, FlowTable};
use cemflow_ingest::source::CaptureReader;
use cemflow_lakehouse::{Lake, TableBatches};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Arguments of `cemflow ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Capture files (pcap/pcapng, .gz/.zst) or directories of them.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Lake root (a directory, or an object-store URI).
    #[arg(long, env = "CEMFLOW_LAKE")]
    pub lake: String,
    /// Timely worker threads in this process.
    #[arg(short = 'w', long, default_value_t = 1)]
    pub workers: usize,
    /// Processes in the timely cluster (each reads its own captures).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// This process's index in the cluster (0-based).
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// Cluster host file: one `host:port` line per process.
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Topology CSV `user,home_id,access_element,core_element[,region,plan_mbps]`.
    #[arg(long, env = "CEMFLOW_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    /// App catalog TOML merged over the built-in one.
    #[arg(long, env = "CEMFLOW_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Source id of this ingest (exactly-once key); default: derived from the input paths.
    #[arg(long)]
    pub source_id: Option<String>,
    /// Closed windows buffered per lake commit.
    #[arg(long, default_value_t = 10)]
    pub commit_every: usize,
    /// Allowed lateness of slices, seconds.
    #[arg(long, default_value_t = DataflowConfig::default().lateness_s)]
    pub lateness: i64,
    /// Most flows held at once.
    #[arg(long, default_value_t = FlowConfig::default().max_flows)]
    pub max_flows: usize,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// What one worker did.
#[derive(Default, Debug, Clone)]
struct WorkerSummary {
    stats: Option<FlowStats>,
    files: usize,
    damaged: Vec<String>,
    flows_rows: usize,
    windows: usize,
    user_minutes: usize,
    poor_users: BTreeSet<String>,
    late_slices: u64,
    skipped_rows: usize,
}

/// Runs the command.
pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let key = std::env::var(PSEUDO_KEY_ENV).map_err(|_| {
        InputError(format!(
            "no pseudonymisation key: set {PSEUDO_KEY_ENV} (subscriber ids are hashed with it \
             before they reach the lake)"
        ))
    })?;
    let pseudo = Pseudonymizer::new(key.as_bytes()).map_err(|e| InputError(e.to_string()))?;
    let catalog = Catalog::load_merged(args.catalog.as_deref())?;
    let topology = match &args.topology {
        Some(p) => Topology::from_file(p, PlacementConfig::default())
            .map_err(|e| InputError(e.to_string()))?,
        None => Topology::empty(PlacementConfig::default()),
    };
    let files = open_inputs(&args.inputs)?;
    let source_id = args
        .source_id
        .clone()
        .unwrap_or_else(|| default_source_id(&files));
    // Fail early on a bad lake root.
    drop(Lake::open(&args.lake).with_context(|| format!("opening lake {}", args.lake))?);

    let config = timely_config(&args)?;
    let shared = Arc::new(Shared {
        files,
        catalog,
        topology: Arc::new(topology),
        pseudo,
        lake_root: args.lake.clone(),
        source_id: source_id.clone(),
        commit_every: args.commit_every.max(1),
        workers: args.workers.max(1),
        process: args.process,
        flow_cfg: FlowConfig {
            max_flows: args.max_flows,
            ..FlowConfig::default()
        },
        df_cfg: DataflowConfig {
            lateness_s: args.lateness,
            ..DataflowConfig::default()
        },
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        error: Mutex::new(None),
    });
    let s2 = Arc::clone(&shared);
    let guards = timely::execute(config, move |worker| run_worker(worker, &s2))
        .map_err(|e| anyhow::anyhow!("starting timely workers: {e}"))?;
    let mut total = WorkerSummary::default();
    for r in guards.join() {
        let w = r.map_err(|e| anyhow::anyhow!("worker failed: {e}"))?;
        merge(&mut total, w);
    }
    if let Some(e) = shared
        .error
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .take()
    {
        return Err(e);
    }
    print_summary(&total, &source_id, &args.lake);
    Ok(())
}

/// State shared by all workers of this process.
struct Shared {
    files: Vec<PathBuf>,
    catalog: Catalog,
    topology: Arc<Topology>,
    pseudo: Pseudonymizer,
    lake_root: String,
    source_id: String,
    commit_every: usize,
    workers: usize,
    process: usize,
    flow_cfg: FlowConfig,
    df_cfg: DataflowConfig,
    progress: bool,
    /// First error of any worker (a lake commit failing, a capture vanishing).
    error: Mutex<Option<anyhow::Error>>,
}

impl Shared {
    fn fail(&self, e: anyhow::Error) {
        if let Ok(mut g) = self.error.lock() {
            g.get_or_insert(e);
        }
    }
}

/// Buffers closed windows and commits them in batches (global worker 0).
struct WindowCommitter {
    lake: Lake,
    source_id: String,
    every: usize,
    pending: Vec<(i64, TableBatches)>,
    summary: WorkerSummary,
}

impl WindowCommitter {
    fn on_window(&mut self, out: WindowOutput) -> anyhow::Result<()> {
        let mut b = TableBatches::new();
        b.add_user_minutes(&out.user_minutes)?;
        b.add_element_minutes(&out.element_minutes)?;
        b.add_anomalies(&out.anomalies)?;
        self.summary.windows += 1;
        self.summary.user_minutes += out
            .user_minutes
            .iter()
            .filter(|u| u.category == CATEGORY_ALL)
            .count();
        for u in out
            .user_minutes
            .iter()
            .filter(|u| u.category == CATEGORY_ALL && u.poor)
        {
            self.summary.poor_users.insert(u.user_key.clone());
        }
        self.pending.push((out.window_start_s, b));
        if self.pending.len() >= self.every {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let windows = std::mem::take(&mut self.pending);
        let r = self
            .lake
            .commit_windows(&self.source_id, windows)
            .context("committing windows to the lake")?;
        self.summary.skipped_rows += r.skipped_rows();
        Ok(())
    }
}

/// Finished flows waiting for their window's commit (reading workers).
struct FlowCommitter {
    lake: Lake,
    app_source: String,
    every: usize,
    by_window: BTreeMap<i64, Vec<FlowRow>>,
    rows: usize,
}

impl FlowCommitter {
    /// Commits the flows of windows before `open_window` once enough have accumulated
    /// (all when `force`).
    fn commit_before(&mut self, open_window: i64, force: bool) -> anyhow::Result<()> {
        let closed: Vec<i64> = self
            .by_window
            .range(..open_window)
            .map(|(w, _)| *w)
            .collect();
        if closed.is_empty() || (!force && closed.len() < self.every) {
            return Ok(());
        }
        let mut windows = Vec::with_capacity(closed.len());
        for w in closed {
            if let Some(rows) = self.by_window.remove(&w) {
                let mut b = TableBatches::new();
                b.add_flows(&rows)?;
                self.rows += rows.len();
                windows.push((w, b));
            }
        }
        self.lake
            .commit_windows(&self.app_source, windows)
            .context("committing flows to the lake")?;
        Ok(())
    }
}

fn run_worker(worker: &mut timely::worker::Worker, sh: &Shared) -> WorkerSummary {
    match run_worker_inner(worker, sh) {
        Ok(s) => s,
        Err(e) => {
            sh.fail(e);
            WorkerSummary::default()
        }
    }
}

fn run_worker_inner(
    worker: &mut timely::worker::Worker,
    sh: &Shared,
) -> anyhow::Result<WorkerSummary> {
    let index = worker.index();
    let is_sink = index == 0;
    let is_reader = index.is_multiple_of(sh.workers);
    let committer = if is_sink {
        Some(Rc::new(RefCell::new(WindowCommitter {
            lake: Lake::open(&sh.lake_root)?,
            source_id: sh.source_id.clone(),
            every: sh.commit_every,
            pending: Vec::new(),
            summary: WorkerSummary::default(),
        })))
    } else {
        None
    };
    let sink_error: Rc<RefCell<Option<anyhow::Error>>> = Rc::new(RefCell::new(None));
    let c2 = committer.clone();
    let e2 = Rc::clone(&sink_error);
    let mut pipeline = build(worker, sh.df_cfg.clone(), None, move |out| {
        if let Some(c) = c2.as_ref() {
            if e2.borrow().is_none() {
                if let Err(e) = c.borrow_mut().on_window(out) {
                    *e2.borrow_mut() = Some(e);
                }
            }
        }
    });
    let mut summary = WorkerSummary::default();
    if is_reader {
        let window_s = sh.df_cfg.window_s.max(1);
        let mut flows = FlowCommitter {
            lake: Lake::open(&sh.lake_root)?,
            app_source: format!("{}-flows-p{}", sh.source_id, sh.process),
            every: sh.commit_every,
            by_window: BTreeMap::new(),
            rows: 0,
        };
        let mut table = FlowTable::with_catalog(sh.flow_cfg.clone(), sh.catalog.clone());
        let mut enricher = Enricher::new(sh.pseudo.clone(), Arc::clone(&sh.topology));
        let mut records: Vec<FlowRecord> = Vec::with_capacity(1024);
        let bar = progress_bar(sh.progress);
        let mut clock_s = i64::MIN;
        let mut packets = 0u64;
        let mut drain = |records: &mut Vec<FlowRecord>,
                         input: &mut cemflow_dataflow::SliceInput,
                         flows: &mut FlowCommitter,
                         clock_s: i64| {
            for r in records.drain(..) {
                match r {
                    FlowRecord::Slice(s) => {
                        if let Some(u) = enricher.slice(&s) {
                            input.send(u);
                        }
                    }
                    FlowRecord::End(e) => {
                        let w = clock_s - clock_s.rem_euclid(window_s);
                        flows
                            .by_window
                            .entry(w)
                            .or_default()
                            .push(enricher.flow_row(&e));
                    }
                }
            }
        };
        for path in &sh.files {
            let mut reader = CaptureReader::open(path)?;
            summary.files += 1;
            while let Some(p) = reader.next_packet() {
                packets += 1;
                let ts_s = (p.ts_ns / 1_000_000_000) as i64;
                table.process(
                    p.ts_ns,
                    LinkType::from_linktype(p.linktype),
                    p.data,
                    &mut records,
                );
                if ts_s > clock_s {
                    clock_s = ts_s;
                }
                if !records.is_empty() {
                    drain(&mut records, &mut pipeline.input, &mut flows, clock_s);
                }
                if packets.is_multiple_of(4096) {
                    pipeline.input.advance_clock(clock_s);
                    worker.step();
                    flows.commit_before(clock_s - clock_s.rem_euclid(window_s), false)?;
                    if let Some(b) = &bar {
                        b.set_position(packets);
                        b.set_message(cemflow_ingest::flow::rfc3339_micros(p.ts_ns));
                    }
                    if let Some(e) = sink_error.borrow_mut().take() {
                        return Err(e);
                    }
                }
            }
            if let Some(d) = reader.damage() {
                summary.damaged.push(format!("{}: {d}", path.display()));
            }
        }
        table.finish(&mut records);
        drain(&mut records, &mut pipeline.input, &mut flows, clock_s);
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        pipeline.input.flush();
        summary.late_slices = pipeline.input.late();
        pipeline.finish(worker);
        flows.commit_before(i64::MAX, true)?;
        summary.flows_rows = flows.rows;
        summary.stats = Some(table.stats().clone());
    } else {
        pipeline.finish(worker);
    }
    if let Some(e) = sink_error.borrow_mut().take() {
        return Err(e);
    }
    if let Some(c) = committer {
        let mut c = c.borrow_mut();
        c.flush()?;
        let s = std::mem::take(&mut c.summary);
        merge(&mut summary, s);
    }
    Ok(summary)
}

fn merge(into: &mut WorkerSummary, w: WorkerSummary) {
    if let Some(s) = w.stats {
        let t = into.stats.get_or_insert_with(FlowStats::default);
        t.packets += s.packets;
        t.frame_bytes += s.frame_bytes;
        t.flows_ended += s.flows_ended;
        t.flows_evicted += s.flows_evicted;
        t.l4_truncated += s.l4_truncated;
        for (a, b) in t.skipped.iter_mut().zip(s.skipped) {
            *a += b;
        }
    }
    into.files += w.files;
    into.damaged.extend(w.damaged);
    into.flows_rows += w.flows_rows;
    into.windows += w.windows;
    into.user_minutes += w.user_minutes;
    into.poor_users.extend(w.poor_users);
    into.late_slices += w.late_slices;
    into.skipped_rows += w.skipped_rows;
}

fn print_summary(t: &WorkerSummary, source_id: &str, lake: &str) {
    let s = t.stats.clone().unwrap_or_default();
    eprintln!(
        "ingested {} packets from {} file(s) into {lake} (source {source_id}): {} flows, {} windows, \
         {} user-minutes, {} poor users",
        s.packets,
        t.files,
        t.flows_rows,
        t.windows,
        t.user_minutes,
        t.poor_users.len()
    );
    let skipped = s.skipped_total();
    if skipped > 0 {
        let reasons: Vec<String> = s
            .skip_reasons()
            .into_iter()
            .filter(|(r, _)| *r != cemflow_ingest::decode::Skip::NonIp)
            .map(|(r, n)| format!("{n} {}", r.as_str()))
            .collect();
        eprintln!("{skipped} packets skipped: {}", reasons.join(", "));
    }
    if t.skipped_rows > 0 {
        eprintln!(
            "{} rows of windows already committed by this source were skipped (exactly once)",
            t.skipped_rows
        );
    }
    if t.late_slices > 0 {
        eprintln!(
            "{} flow slices arrived after their window closed",
            t.late_slices
        );
    }
    for d in &t.damaged {
        eprintln!("damaged capture, read up to the damage: {d}");
    }
}

/// A stable source id from the inputs' canonical paths.
fn default_source_id(files: &[PathBuf]) -> String {
    use std::hash::Hasher;
    let mut h = Fnv::new();
    for f in files {
        let c = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        h.write(c.to_string_lossy().as_bytes());
        h.write_u8(0);
    }
    let name = files
        .first()
        .and_then(|f| f.file_stem())
        .map(|s| {
            s.to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        })
        .unwrap_or_else(|| "capture".into());
    format!("{name}-{:08x}", h.finish() as u32)
}

/// A deterministic hasher (FNV-1a): source ids must not change between runs.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn timely_config(args: &IngestArgs) -> anyhow::Result<timely::Config> {
    let mut v: Vec<String> = vec![
        "cemflow".into(),
        "-w".into(),
        args.workers.max(1).to_string(),
    ];
    if args.processes > 1 {
        v.extend([
            "-n".into(),
            args.processes.to_string(),
            "-p".into(),
            args.process.to_string(),
        ]);
        if let Some(h) = &args.hostfile {
            v.extend(["-h".into(), h.display().to_string()]);
        }
    }
    timely::Config::from_args(v.into_iter().skip(1))
        .map_err(|e| InputError(format!("cluster options: {e}")).into())
}

fn progress_bar(on: bool) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos} packets ({per_sec}) capture time {msg} [{elapsed}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    Some(b)
}
