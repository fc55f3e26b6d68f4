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

use super::pipeline::{
    load_enrichment, print_totals, run_worker, LakeWriter, PacketSource, PipelineShared, Pull,
    WorkerRole, WorkerSummary,
};
use crate::InputError;
use anyhow::Context;
use cemflow_dataflow::DataflowConfig;
use cemflow_ingest::capture::open_inputs;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowTable};
use cemflow_ingest::source::CaptureReader;
use cemflow_lakehouse::Lake;
use std::path::PathBuf;
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

/// Runs the command.
pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let (pseudo, catalog, topology) =
        load_enrichment(args.catalog.as_deref(), args.topology.as_deref())?;
    let files = open_inputs(&args.inputs)?;
    let source_id = args
        .source_id
        .clone()
        .unwrap_or_else(|| default_source_id(&files));
    // Fail early on a bad lake root.
    drop(Lake::open(&args.lake).with_context(|| format!("opening lake {}", args.lake))?);

    let config = timely_config(&args)?;
    let shared = Arc::new(PipelineShared {
        catalog,
        topology: Arc::new(topology),
        pseudo,
        lake_root: args.lake.clone(),
        source_id: source_id.clone(),
        commit_every: args.commit_every.max(1),
        flow_cfg: FlowConfig {
            max_flows: args.max_flows,
            ..FlowConfig::default()
        },
        df_cfg: DataflowConfig {
            lateness_s: args.lateness,
            ..DataflowConfig::default()
        },
        error: Mutex::new(None),
        metrics: None,
    });
    let files = Arc::new(files);
    let workers = args.workers.max(1);
    let process = args.process;
    let progress = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let s2 = Arc::clone(&shared);
    let guards = timely::execute(config, move |worker| {
        match ingest_worker(worker, &s2, &files, workers, process, progress) {
            Ok(s) => s,
            Err(e) => {
                s2.fail(e);
                WorkerSummary::default()
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("starting timely workers: {e}"))?;
    let mut total = WorkerSummary::default();
    for r in guards.join() {
        let w = r.map_err(|e| anyhow::anyhow!("worker failed: {e}"))?;
        total.merge(w);
    }
    shared.take_error()?;
    print_summary(&total, &source_id, &args.lake);
    Ok(())
}

/// One timely worker of `cemflow ingest`: the first worker of each process reads that
/// process's captures; global worker 0 commits the windows.
fn ingest_worker(
    worker: &mut timely::worker::Worker,
    sh: &PipelineShared,
    files: &[PathBuf],
    workers: usize,
    process: usize,
    progress: bool,
) -> anyhow::Result<WorkerSummary> {
    let index = worker.index();
    let is_reader = index.is_multiple_of(workers);
    let windows_writer = if index == 0 {
        Some(LakeWriter::Direct(Lake::open(&sh.lake_root)?))
    } else {
        None
    };
    let mut source = FileSource::new(files, progress);
    let flows_writer = if is_reader {
        Some(LakeWriter::Direct(Lake::open(&sh.lake_root)?))
    } else {
        None
    };
    let mut summary = run_worker(
        worker,
        sh,
        WorkerRole {
            source: is_reader.then_some(&mut source),
            flows_writer,
            flows_source: format!("{}-flows-p{}", sh.source_id, process),
            windows_writer,
        },
    )?;
    if is_reader {
        if let Some(b) = source.bar.take() {
            b.finish_and_clear();
        }
        summary.files += source.opened;
        summary.damaged.append(&mut source.damaged);
    }
    Ok(summary)
}

/// Packets read between two steps of the graph.
const BATCH: usize = 4096;

/// The captures of one process, read in order.
struct FileSource<'a> {
    files: &'a [PathBuf],
    next: usize,
    reader: Option<CaptureReader>,
    opened: usize,
    damaged: Vec<String>,
    packets: u64,
    last_ts_ns: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> FileSource<'a> {
    fn new(files: &'a [PathBuf], progress: bool) -> FileSource<'a> {
        FileSource {
            files,
            next: 0,
            reader: None,
            opened: 0,
            damaged: Vec::new(),
            packets: 0,
            last_ts_ns: 0,
            bar: progress_bar(progress),
        }
    }
}

impl PacketSource for FileSource<'_> {
    fn pull<F: FnMut(u64, LinkType, &[u8], u32)>(&mut self, mut f: F) -> anyhow::Result<Pull> {
        loop {
            let reader = match &mut self.reader {
                Some(r) => r,
                None => {
                    let Some(path) = self.files.get(self.next) else {
                        return Ok(Pull::End);
                    };
                    self.next += 1;
                    self.opened += 1;
                    self.reader.insert(CaptureReader::open(path)?)
                }
            };
            let mut n = 0;
            while n < BATCH {
                let Some(p) = reader.next_packet() else {
                    break;
                };
                n += 1;
                self.last_ts_ns = p.ts_ns;
                f(
                    p.ts_ns,
                    LinkType::from_linktype(p.linktype),
                    p.data,
                    p.wire_len,
                );
            }
            self.packets += n as u64;
            if n < BATCH {
                // This capture is done.
                if let Some(d) = reader.damage() {
                    let path = &self.files[self.next - 1];
                    self.damaged.push(format!("{}: {d}", path.display()));
                }
                self.reader = None;
                if n == 0 {
                    continue;
                }
            }
            return Ok(Pull::Packets);
        }
    }

    fn after_pull(&mut self, _table: &FlowTable, _late: u64) {
        if let Some(b) = &self.bar {
            b.set_position(self.packets);
            b.set_message(cemflow_ingest::flow::rfc3339_micros(self.last_ts_ns));
        }
    }
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
    print_totals(t);
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
