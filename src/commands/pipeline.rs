//! The worker pipeline shared by `cemflow ingest` and `cemflow capture`: a packet source →
//! flow table → enrichment (pseudonyms, topology) → timely graph → exactly-once lake
//! commits.
//!
//! * A reading worker pulls batches from its [`PacketSource`] (capture files, or live
//!   sockets that also report idle clock ticks), feeds the flow table, sends the flow
//!   slices into the graph and advances the graph's event clock.
//! * The graph hands each closed window to global worker 0, which commits `user_minute`,
//!   `element_minute` and `anomalies` with the app transaction `cemflow/<source-id>`
//!   ([`WindowCommitter`]).
//! * Each reading worker commits its finished flows to `flows` with its own app id,
//!   assigned to the window of the reader's clock at which the flow ended
//!   ([`FlowCommitter`]).
//! * Commits go straight to the lake (file ingest: a commit error stops the run at once) or
//!   through a [`BackgroundWriter`] thread (live capture: reading never waits on storage).

use crate::metrics::Metrics;
use crate::InputError;
use anyhow::Context;
use cemflow_dataflow::{
    build, DataflowConfig, Enricher, FlowRow, PlacementConfig, Pseudonymizer, SliceInput, Topology,
    WindowOutput, CATEGORY_ALL, PSEUDO_KEY_ENV,
};
use cemflow_ingest::catalog::Catalog;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowStats, FlowTable};
use cemflow_lakehouse::{Lake, TableBatches};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The pseudonymiser (key from `CEMFLOW_PSEUDO_KEY`), the app catalog (built-in merged with
/// `catalog`) and the topology (`topology` CSV, or none) every reader enriches flows with.
pub(crate) fn load_enrichment(
    catalog: Option<&Path>,
    topology: Option<&Path>,
) -> anyhow::Result<(Pseudonymizer, Catalog, Topology)> {
    let key = std::env::var(PSEUDO_KEY_ENV).map_err(|_| {
        InputError(format!(
            "no pseudonymisation key: set {PSEUDO_KEY_ENV} (subscriber ids are hashed with it \
             before they reach the lake)"
        ))
    })?;
    let pseudo = Pseudonymizer::new(key.as_bytes()).map_err(|e| InputError(e.to_string()))?;
    let catalog = Catalog::load_merged(catalog)?;
    let topology = match topology {
        Some(p) => Topology::from_file(p, PlacementConfig::default())
            .map_err(|e| InputError(e.to_string()))?,
        None => Topology::empty(PlacementConfig::default()),
    };
    Ok((pseudo, catalog, topology))
}

/// Settings and state shared by all workers of one process.
pub(crate) struct PipelineShared {
    pub catalog: Catalog,
    pub topology: Arc<Topology>,
    pub pseudo: Pseudonymizer,
    pub lake_root: String,
    pub source_id: String,
    /// Closed windows buffered per lake commit.
    pub commit_every: usize,
    pub flow_cfg: FlowConfig,
    pub df_cfg: DataflowConfig,
    /// First error of any worker or of the background writer.
    pub error: Mutex<Option<anyhow::Error>>,
    /// Live metrics, when served.
    pub metrics: Option<Arc<Metrics>>,
}

impl PipelineShared {
    /// Records the first error (later ones are consequences).
    pub fn fail(&self, e: anyhow::Error) {
        if let Ok(mut g) = self.error.lock() {
            g.get_or_insert(e);
        }
    }

    /// True once some worker or the writer failed.
    pub fn failed(&self) -> bool {
        self.error.lock().map(|g| g.is_some()).unwrap_or(true)
    }

    /// Takes the recorded error.
    pub fn take_error(&self) -> anyhow::Result<()> {
        match self
            .error
            .lock()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))?
            .take()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What one worker did.
#[derive(Default, Debug, Clone)]
pub(crate) struct WorkerSummary {
    pub stats: Option<FlowStats>,
    pub files: usize,
    pub damaged: Vec<String>,
    pub flows_rows: usize,
    pub windows: usize,
    pub user_minutes: usize,
    pub poor_users: BTreeSet<String>,
    pub late_slices: u64,
    pub skipped_rows: usize,
}

impl WorkerSummary {
    /// Adds another worker's summary.
    pub fn merge(&mut self, w: WorkerSummary) {
        if let Some(s) = w.stats {
            let t = self.stats.get_or_insert_with(FlowStats::default);
            t.packets += s.packets;
            t.frame_bytes += s.frame_bytes;
            t.flows_ended += s.flows_ended;
            t.flows_evicted += s.flows_evicted;
            t.l4_truncated += s.l4_truncated;
            for (a, b) in t.skipped.iter_mut().zip(s.skipped) {
                *a += b;
            }
        }
        self.files += w.files;
        self.damaged.extend(w.damaged);
        self.flows_rows += w.flows_rows;
        self.windows += w.windows;
        self.user_minutes += w.user_minutes;
        self.poor_users.extend(w.poor_users);
        self.late_slices += w.late_slices;
        self.skipped_rows += w.skipped_rows;
    }
}

/// Where commits go.
pub(crate) enum LakeWriter {
    /// Committed on the calling thread.
    Direct(Lake),
    /// Queued to the background writer thread.
    Background(SyncSender<CommitJob>),
}

/// Which table family a job commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitKind {
    Windows,
    Flows,
}

/// One commit for the background writer.
pub(crate) struct CommitJob {
    source_id: String,
    kind: CommitKind,
    windows: Vec<(i64, TableBatches)>,
    rows: usize,
}

impl LakeWriter {
    /// Commits (or queues) `windows` under `source_id`; returns the rows skipped as already
    /// committed (0 when queued: the writer thread counts those).
    fn commit(
        &self,
        source_id: &str,
        kind: CommitKind,
        windows: Vec<(i64, TableBatches)>,
        rows: usize,
    ) -> anyhow::Result<usize> {
        match self {
            LakeWriter::Direct(lake) => {
                let r = lake
                    .commit_windows(source_id, windows)
                    .with_context(|| match kind {
                        CommitKind::Windows => "committing windows to the lake",
                        CommitKind::Flows => "committing flows to the lake",
                    })?;
                Ok(r.skipped_rows())
            }
            LakeWriter::Background(tx) => {
                tx.send(CommitJob {
                    source_id: source_id.to_string(),
                    kind,
                    windows,
                    rows,
                })
                .map_err(|_| anyhow::anyhow!("the lake writer thread stopped"))?;
                Ok(0)
            }
        }
    }
}

/// A thread committing queued jobs in order, so capture never waits on storage (up to
/// `capacity` queued commits; beyond that the workers wait, and the kernel counts drops).
pub(crate) struct BackgroundWriter {
    handle: std::thread::JoinHandle<usize>,
}

impl BackgroundWriter {
    /// Starts the thread on `lake`; returns it and the sender workers commit through.
    pub fn start(
        lake: Lake,
        shared: Arc<PipelineShared>,
        capacity: usize,
    ) -> anyhow::Result<(BackgroundWriter, SyncSender<CommitJob>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let handle = std::thread::Builder::new()
            .name("cemflow-lake-writer".into())
            .spawn(move || write_loop(lake, &shared, rx))
            .context("starting the lake writer thread")?;
        Ok((BackgroundWriter { handle }, tx))
    }

    /// Waits until every queued job is committed (all senders dropped); returns the rows
    /// skipped as already committed.
    pub fn join(self) -> anyhow::Result<usize> {
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the lake writer thread panicked"))
    }
}

fn write_loop(lake: Lake, shared: &PipelineShared, rx: Receiver<CommitJob>) -> usize {
    let window_s = shared.df_cfg.window_s.max(1);
    let mut skipped = 0;
    for job in rx {
        if shared.failed() {
            continue;
        }
        let n = job.windows.len();
        let last = job.windows.iter().map(|(w, _)| *w).max();
        match lake.commit_windows(&job.source_id, job.windows) {
            Ok(r) => {
                skipped += r.skipped_rows();
                if let Some(m) = &shared.metrics {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or(Duration::ZERO)
                        .as_secs_f64();
                    match job.kind {
                        CommitKind::Windows => {
                            let end = last.map_or(now, |w| (w + window_s) as f64);
                            m.windows_committed(n as u64, now - end, now);
                        }
                        CommitKind::Flows => m.flow_rows_committed(job.rows as u64),
                    }
                }
            }
            Err(e) => shared.fail(anyhow::Error::new(e).context(match job.kind {
                CommitKind::Windows => "committing windows to the lake",
                CommitKind::Flows => "committing flows to the lake",
            })),
        }
    }
    skipped
}

/// Buffers closed windows and commits them in batches (global worker 0).
pub(crate) struct WindowCommitter {
    writer: LakeWriter,
    source_id: String,
    every: usize,
    pending: Vec<(i64, TableBatches)>,
    pending_rows: usize,
    pub summary: WorkerSummary,
}

impl WindowCommitter {
    pub fn new(writer: LakeWriter, source_id: &str, every: usize) -> WindowCommitter {
        WindowCommitter {
            writer,
            source_id: source_id.to_string(),
            every: every.max(1),
            pending: Vec::new(),
            pending_rows: 0,
            summary: WorkerSummary::default(),
        }
    }

    fn on_window(&mut self, out: WindowOutput) -> anyhow::Result<()> {
        let mut b = TableBatches::new();
        b.add_user_minutes(&out.user_minutes)?;
        b.add_element_minutes(&out.element_minutes)?;
        b.add_anomalies(&out.anomalies)?;
        self.summary.windows += 1;
        self.pending_rows +=
            out.user_minutes.len() + out.element_minutes.len() + out.anomalies.len();
        for u in out
            .user_minutes
            .iter()
            .filter(|u| u.category == CATEGORY_ALL)
        {
            self.summary.user_minutes += 1;
            if u.poor {
                self.summary.poor_users.insert(u.user_key.clone());
            }
        }
        self.pending.push((out.window_start_s, b));
        if self.pending.len() >= self.every {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits what is buffered.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let windows = std::mem::take(&mut self.pending);
        let rows = std::mem::take(&mut self.pending_rows);
        self.summary.skipped_rows +=
            self.writer
                .commit(&self.source_id, CommitKind::Windows, windows, rows)?;
        Ok(())
    }
}

/// Finished flows waiting for their window's commit (reading workers).
pub(crate) struct FlowCommitter {
    writer: LakeWriter,
    app_source: String,
    every: usize,
    by_window: BTreeMap<i64, Vec<FlowRow>>,
    rows: usize,
}

impl FlowCommitter {
    pub fn new(writer: LakeWriter, app_source: String, every: usize) -> FlowCommitter {
        FlowCommitter {
            writer,
            app_source,
            every: every.max(1),
            by_window: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Commits the flows of windows before `open_window` once enough have accumulated
    /// (all when `force`).
    pub fn commit_before(&mut self, open_window: i64, force: bool) -> anyhow::Result<()> {
        let closed: Vec<i64> = self
            .by_window
            .range(..open_window)
            .map(|(w, _)| *w)
            .collect();
        if closed.is_empty() || (!force && closed.len() < self.every) {
            return Ok(());
        }
        let mut windows = Vec::with_capacity(closed.len());
        let mut rows = 0;
        for w in closed {
            if let Some(r) = self.by_window.remove(&w) {
                let mut b = TableBatches::new();
                b.add_flows(&r)?;
                rows += r.len();
                windows.push((w, b));
            }
        }
        self.rows += rows;
        self.writer
            .commit(&self.app_source, CommitKind::Flows, windows, rows)?;
        Ok(())
    }
}

/// What a packet source produced on one pull.
pub(crate) enum Pull {
    /// Packets were delivered (possibly none).
    Packets,
    /// Nothing arrived for a while: event time may move to `now_ns` without a packet
    /// (closing windows on an idle link).
    Idle { now_ns: u64 },
    /// The input ended (files read, or capture stopped).
    End,
}

/// Packets for one reading worker.
pub(crate) trait PacketSource {
    /// Hands a batch of packets to `f(ts_ns, link type, captured frame, wire length)`.
    fn pull<F: FnMut(u64, LinkType, &[u8], u32)>(&mut self, f: F) -> anyhow::Result<Pull>;

    /// Called after each pull with the flow table (progress, metrics).
    fn after_pull(&mut self, _table: &FlowTable, _late_slices: u64) {}
}

/// A reading worker's state: flow table, enrichment, pending flow rows, event clock.
struct Reader {
    table: FlowTable,
    enricher: Enricher,
    records: Vec<FlowRecord>,
    flows: FlowCommitter,
    clock_s: i64,
    window_s: i64,
}

impl Reader {
    fn drain(&mut self, input: &mut SliceInput) {
        for r in self.records.drain(..) {
            match r {
                FlowRecord::Slice(s) => {
                    if let Some(u) = self.enricher.slice(&s) {
                        input.send(u);
                    }
                }
                FlowRecord::End(e) => {
                    let w = self.clock_s - self.clock_s.rem_euclid(self.window_s);
                    self.flows
                        .by_window
                        .entry(w)
                        .or_default()
                        .push(self.enricher.flow_row(&e));
                }
            }
        }
    }

    fn open_window(&self) -> i64 {
        self.clock_s - self.clock_s.rem_euclid(self.window_s)
    }
}

/// How a worker takes part.
pub(crate) struct WorkerRole<'a, S> {
    /// The worker's packet source, when it reads.
    pub source: Option<&'a mut S>,
    /// Lake writer for this worker's flow commits and, on worker 0, window commits.
    pub flows_writer: Option<LakeWriter>,
    /// App source id of this worker's flow commits.
    pub flows_source: String,
    /// Lake writer for the window sink (worker 0 only).
    pub windows_writer: Option<LakeWriter>,
}

/// Runs one worker: builds the graph, reads its source (if any) to the end, drains the
/// graph and commits what is left.
pub(crate) fn run_worker<S: PacketSource>(
    worker: &mut timely::worker::Worker,
    sh: &PipelineShared,
    role: WorkerRole<'_, S>,
) -> anyhow::Result<WorkerSummary> {
    let committer = role.windows_writer.map(|w| {
        Rc::new(RefCell::new(WindowCommitter::new(
            w,
            &sh.source_id,
            sh.commit_every,
        )))
    });
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
    match (role.source, role.flows_writer) {
        (Some(source), Some(writer)) => {
            let mut r = Reader {
                table: FlowTable::with_catalog(sh.flow_cfg.clone(), sh.catalog.clone()),
                enricher: Enricher::new(sh.pseudo.clone(), Arc::clone(&sh.topology)),
                records: Vec::with_capacity(1024),
                flows: FlowCommitter::new(writer, role.flows_source, sh.commit_every),
                clock_s: i64::MIN,
                window_s: sh.df_cfg.window_s.max(1),
            };
            loop {
                let input = &mut pipeline.input;
                let pull = source.pull(|ts_ns, link, frame, wire_len| {
                    r.table
                        .process(ts_ns, link, frame, wire_len, &mut r.records);
                    let ts_s = (ts_ns / 1_000_000_000) as i64;
                    if ts_s > r.clock_s {
                        r.clock_s = ts_s;
                    }
                    if !r.records.is_empty() {
                        r.drain(input);
                    }
                })?;
                match pull {
                    Pull::Packets => {}
                    Pull::Idle { now_ns } => {
                        r.table.advance_to(now_ns, &mut r.records);
                        r.clock_s = r.clock_s.max((now_ns / 1_000_000_000) as i64);
                        r.drain(&mut pipeline.input);
                    }
                    Pull::End => break,
                }
                pipeline.input.advance_clock(r.clock_s);
                worker.step();
                r.flows.commit_before(r.open_window(), false)?;
                source.after_pull(&r.table, pipeline.input.late());
                if let Some(e) = sink_error.borrow_mut().take() {
                    return Err(e);
                }
                if sh.failed() {
                    // Another worker or the writer failed: stop without committing more
                    // (a re-run resumes exactly once); the caller reports the first error.
                    anyhow::bail!("stopped because another worker failed");
                }
            }
            r.table.finish(&mut r.records);
            r.drain(&mut pipeline.input);
            pipeline.input.flush();
            summary.late_slices = pipeline.input.late();
            source.after_pull(&r.table, summary.late_slices);
            pipeline.finish(worker);
            r.flows.commit_before(i64::MAX, true)?;
            summary.flows_rows = r.flows.rows;
            summary.stats = Some(r.table.stats().clone());
        }
        _ => pipeline.finish(worker),
    }
    if let Some(e) = sink_error.borrow_mut().take() {
        return Err(e);
    }
    if let Some(c) = committer {
        let mut c = c.borrow_mut();
        c.flush()?;
        let s = std::mem::take(&mut c.summary);
        summary.merge(s);
    }
    Ok(summary)
}

/// Prints what a run did (stderr), shared by ingest and capture.
pub(crate) fn print_totals(t: &WorkerSummary) {
    let s = t.stats.clone().unwrap_or_default();
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
}
