//! `cemflow capture --interface IF… --lake DIR`: the live probe on a mirror (SPAN) port.
//!
//! Every timely worker reads its own AF_PACKET sockets (one per interface; with several
//! workers the sockets of an interface form a `PACKET_FANOUT` group hashing each flow to
//! one worker) through its own flow table, and the shared pipeline turns flows into
//! windows. Windows are committed as soon as they close (every minute), by a background
//! lake writer so reading never waits on storage. Event time comes from packet
//! timestamps; while a worker's link is idle its clock follows the wall clock, so windows
//! still close. SIGINT/SIGTERM (or `--duration`) ends open flows and windows, commits them
//! and exits 0; a second signal exits at once.
//!
//! Exactly once: each run commits under its own source id (`live-<host>-<interfaces>-
//! <start>`), so a restarted probe never has its first minute skipped as "already
//! committed" by the run before it.

use super::pipeline::{
    load_enrichment, print_totals, run_worker, BackgroundWriter, CommitJob, LakeWriter,
    PacketSource, PipelineShared, Pull, WorkerRole, WorkerSummary,
};
use crate::metrics::{serve, InterfaceSample, Metrics};
use crate::shutdown::{install_signal_handlers, parse_duration, STOP};
use crate::InputError;
use anyhow::Context;
use cemflow_dataflow::DataflowConfig;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowTable};
use cemflow_ingest::live::{
    interface_info, now_ns, Backend, BpfProgram, CaptureOptions, InterfaceCounters, LiveCapture,
    LiveError,
};
use cemflow_lakehouse::Lake;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Arguments of `cemflow capture`.
#[derive(clap::Args, Debug)]
pub struct CaptureArgs {
    /// Interface to capture on (repeat for several mirror ports).
    #[arg(short = 'i', long = "interface", required = true, value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Lake root (a directory, or an object-store URI).
    #[arg(long, env = "CEMFLOW_LAKE")]
    pub lake: String,
    /// Stop after this long (e.g. `90s`, `30m`, `2h`; plain numbers are seconds). Default:
    /// until SIGINT/SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Worker threads; each reads a share of every interface (PACKET_FANOUT by flow hash).
    #[arg(short = 'w', long, default_value_t = 1)]
    pub workers: usize,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. `127.0.0.1:9100`.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Capture only frames matching this pcap filter expression (compiled to classic BPF
    /// by `tcpdump -ddd` at startup), e.g. `not port 22`.
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,
    /// How packets are read: `tpacket` (TPACKET_V3 ring, kernel timestamps) or `pnet`
    /// (pnet's datalink channel, one recvfrom per packet).
    #[arg(long, default_value = "tpacket")]
    pub backend: Backend,
    /// Socket buffer per interface and worker, MiB (the TPACKET_V3 ring, or SO_RCVBUF).
    #[arg(long, default_value_t = 64)]
    pub buffer_mb: usize,
    /// Do not put the interfaces in promiscuous mode.
    #[arg(long)]
    pub no_promiscuous: bool,
    /// Topology CSV `user,home_id,access_element,core_element[,region,plan_mbps]`.
    #[arg(long, env = "CEMFLOW_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    /// App catalog TOML merged over the built-in one.
    #[arg(long, env = "CEMFLOW_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Source id (exactly-once key); default: `live-<host>-<interfaces>-<start epoch s>`,
    /// unique per run.
    #[arg(long)]
    pub source_id: Option<String>,
    /// Allowed lateness of slices, seconds.
    #[arg(long, default_value_t = DataflowConfig::default().lateness_s)]
    pub lateness: i64,
    /// Most flows held at once, per worker.
    #[arg(long, default_value_t = FlowConfig::default().max_flows)]
    pub max_flows: usize,
}

/// How long a worker waits for packets before its clock follows the wall clock.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// An idle tick moves event time to this long before now: packets still in a ring block the
/// kernel has not handed over yet (≤ 50 ms) keep their own minute.
const IDLE_MARGIN_NS: u64 = 1_000_000_000;
/// Commits queued for the lake writer before the workers wait.
const WRITER_QUEUE: usize = 64;

/// Runs the command.
pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    let (pseudo, catalog, topology) =
        load_enrichment(args.catalog.as_deref(), args.topology.as_deref())?;
    let workers = args.workers.max(1);
    let started_unix = now_ns() / 1_000_000_000;
    let source_id = args
        .source_id
        .clone()
        .unwrap_or_else(|| default_source_id(&args.interfaces, started_unix));

    // Interfaces, filter and sockets first: a missing capability, interface or bad filter
    // fails before anything else starts.
    let mut filters = HashMap::new();
    for name in &args.interfaces {
        let info = interface_info(name).map_err(live_error)?;
        if let Some(expr) = &args.bpf {
            if let std::collections::hash_map::Entry::Vacant(e) = filters.entry(info.linktype) {
                e.insert(BpfProgram::compile(expr, info.linktype).map_err(live_error)?);
            }
        }
    }
    let opts = CaptureOptions {
        backend: args.backend,
        buffer_bytes: args.buffer_mb.max(1) << 20,
        promiscuous: !args.no_promiscuous,
        filter: None,
        fanout: (workers > 1).then(|| fanout_base(std::process::id())),
        ..CaptureOptions::default()
    };
    install_signal_handlers()?;
    let mut captures = Vec::with_capacity(workers);
    for _ in 0..workers {
        captures.push(Some(
            LiveCapture::open(&args.interfaces, &opts, &filters).map_err(live_error)?,
        ));
    }
    let captures = Arc::new(Mutex::new(captures));

    let lake = Lake::open(&args.lake).with_context(|| format!("opening lake {}", args.lake))?;
    let metrics = Arc::new(Metrics::new(args.interfaces.clone(), workers));
    let shared = Arc::new(PipelineShared {
        catalog,
        topology: Arc::new(topology),
        pseudo,
        lake_root: args.lake.clone(),
        source_id: source_id.clone(),
        // Live: every window is committed as soon as it closes.
        commit_every: 1,
        flow_cfg: FlowConfig {
            max_flows: args.max_flows,
            ..FlowConfig::default()
        },
        df_cfg: DataflowConfig {
            lateness_s: args.lateness,
            ..DataflowConfig::default()
        },
        error: Mutex::new(None),
        metrics: Some(Arc::clone(&metrics)),
    });
    let (writer, tx) = BackgroundWriter::start(lake, Arc::clone(&shared), WRITER_QUEUE)?;
    let tx = Arc::new(Mutex::new(Some(tx)));
    if let Some(addr) = args.metrics {
        let bound = serve(addr, Arc::clone(&metrics))?;
        eprintln!("metrics on http://{bound}/metrics");
    }
    eprintln!(
        "capturing on {} ({}, {workers} worker(s)) into {} as source {source_id}{}; \
         SIGINT/SIGTERM stops and commits",
        args.interfaces.join(", "),
        args.backend.as_str(),
        args.lake,
        args.bpf
            .as_deref()
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default(),
    );

    let deadline = args.duration.map(|d| Instant::now() + d);
    let totals: Arc<Mutex<Vec<InterfaceCounters>>> = Arc::new(Mutex::new(Vec::new()));
    let config = if workers > 1 {
        timely::Config::process(workers)
    } else {
        timely::Config::thread()
    };
    let (sh, caps, tx2, totals2) = (
        Arc::clone(&shared),
        Arc::clone(&captures),
        Arc::clone(&tx),
        Arc::clone(&totals),
    );
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let cap = caps
            .lock()
            .ok()
            .and_then(|mut v| v.get_mut(index).and_then(Option::take));
        let sender = tx2.lock().ok().and_then(|g| g.clone());
        match capture_worker(worker, &sh, cap, sender, deadline, &totals2) {
            Ok(s) => s,
            Err(e) => {
                sh.fail(e);
                STOP.store(true, Ordering::SeqCst);
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
    // Every worker is done: the last sender goes, the writer drains its queue and stops.
    if let Ok(mut g) = tx.lock() {
        g.take();
    }
    total.skipped_rows += writer.join()?;
    shared.take_error()?;
    print_summary(&total, &totals, &metrics, &source_id, &args.lake);
    Ok(())
}

/// One timely worker: reads its capture until stopped, then flushes.
fn capture_worker(
    worker: &mut timely::worker::Worker,
    sh: &PipelineShared,
    cap: Option<LiveCapture>,
    sender: Option<SyncSender<CommitJob>>,
    deadline: Option<Instant>,
    totals: &Mutex<Vec<InterfaceCounters>>,
) -> anyhow::Result<WorkerSummary> {
    let index = worker.index();
    let cap = cap.ok_or_else(|| anyhow::anyhow!("worker {index}: no capture sockets"))?;
    let tx = sender.ok_or_else(|| anyhow::anyhow!("the lake writer stopped"))?;
    let mut source = LiveSource {
        cap,
        worker: index,
        deadline,
        metrics: sh.metrics.clone(),
    };
    let summary = run_worker(
        worker,
        sh,
        WorkerRole {
            source: Some(&mut source),
            flows_writer: Some(LakeWriter::Background(tx.clone())),
            flows_source: format!("{}-flows-w{index}", sh.source_id),
            windows_writer: (index == 0).then(|| LakeWriter::Background(tx)),
        },
    )?;
    source.cap.refresh_counters();
    source.publish_interfaces();
    if let Ok(mut t) = totals.lock() {
        for c in source.cap.counters() {
            match t.iter_mut().find(|x| x.interface == c.interface) {
                Some(x) => {
                    x.packets += c.packets;
                    x.bytes += c.bytes;
                    x.kernel_drops += c.kernel_drops;
                    x.own_drops += c.own_drops;
                    x.reconnects += c.reconnects;
                }
                None => t.push(c.clone()),
            }
        }
    }
    Ok(summary)
}

/// A worker's live sockets as a packet source.
struct LiveSource {
    cap: LiveCapture,
    worker: usize,
    deadline: Option<Instant>,
    metrics: Option<Arc<Metrics>>,
}

impl LiveSource {
    fn publish_interfaces(&self) {
        if let Some(m) = &self.metrics {
            for (i, c) in self.cap.counters().enumerate() {
                m.set_interface(
                    self.worker,
                    i,
                    InterfaceSample {
                        packets: c.packets,
                        bytes: c.bytes,
                        kernel_drops: c.kernel_drops,
                        own_drops: c.own_drops,
                        reconnects: c.reconnects,
                        up: c.up,
                    },
                );
            }
        }
    }
}

impl PacketSource for LiveSource {
    fn pull<F: FnMut(u64, LinkType, &[u8], u32)>(&mut self, mut f: F) -> anyhow::Result<Pull> {
        if STOP.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Pull::End);
        }
        let n = self
            .cap
            .poll(POLL_TIMEOUT, |p| f(p.ts_ns, p.linktype, p.data, p.wire_len));
        Ok(if n == 0 {
            Pull::Idle {
                now_ns: now_ns().saturating_sub(IDLE_MARGIN_NS),
            }
        } else {
            Pull::Packets
        })
    }

    fn after_pull(&mut self, table: &FlowTable, late_slices: u64) {
        if let Some(m) = &self.metrics {
            let s = table.stats();
            m.set_flows(
                self.worker,
                table.len() as u64,
                s.flows_evicted,
                s.flows_ended,
                late_slices,
            );
        }
        self.publish_interfaces();
    }
}

/// `live-<host>-<if1+if2>-<start epoch s>`: readable, and unique per run.
fn default_source_id(interfaces: &[String], started_unix: u64) -> String {
    let mut host = [0u8; 256];
    // SAFETY: host is a writable buffer of the given length.
    let r = unsafe { libc::gethostname(host.as_mut_ptr() as *mut libc::c_char, host.len()) };
    let host = if r == 0 {
        let end = host.iter().position(|b| *b == 0).unwrap_or(host.len());
        String::from_utf8_lossy(&host[..end]).into_owned()
    } else {
        "probe".into()
    };
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let ifs: Vec<String> = interfaces.iter().map(|i| clean(i)).collect();
    format!("live-{}-{}-{started_unix}", clean(&host), ifs.join("+"))
}

/// Fanout group ids of this process: distinct per process so two probes on one host do not
/// share a group.
fn fanout_base(pid: u32) -> u16 {
    ((pid.wrapping_mul(0x9e37_79b9) >> 16) & 0xffff) as u16
}

fn print_summary(
    t: &WorkerSummary,
    totals: &Mutex<Vec<InterfaceCounters>>,
    metrics: &Metrics,
    source_id: &str,
    lake: &str,
) {
    if let Ok(ifs) = totals.lock() {
        for c in ifs.iter() {
            eprintln!(
                "capture on {}: {} packets, {} bytes, {} kernel drops, {} own drops, {} reconnects",
                c.interface, c.packets, c.bytes, c.kernel_drops, c.own_drops, c.reconnects
            );
        }
    }
    eprintln!(
        "captured into {lake} (source {source_id}): {} flows, {} windows committed, {} \
         user-minutes, {} poor users",
        t.flows_rows,
        metrics.windows(),
        t.user_minutes,
        t.poor_users.len()
    );
    print_totals(t);
}

/// A bad interface name, link type or filter is the input's fault (exit code 2); a missing
/// capability or a failing system call is not.
fn live_error(e: LiveError) -> anyhow::Error {
    match e {
        LiveError::NoSuchInterface(_)
        | LiveError::UnsupportedLink { .. }
        | LiveError::Filter { .. } => InputError(e.to_string()).into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn source_ids_are_clean_and_per_run() {
        let a = default_source_id(&["eth0".into(), "ens1f0.100".into()], 1_700_000_000);
        assert!(a.starts_with("live-"), "{a}");
        assert!(a.ends_with("-eth0+ens1f0.100-1700000000"), "{a}");
        assert!(!a.contains(char::is_whitespace));
        let b = default_source_id(&["eth0".into(), "ens1f0.100".into()], 1_700_000_061);
        assert_ne!(a, b);
    }
}
