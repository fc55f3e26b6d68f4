//! `cemflow telemetry`: the network's own telemetry into the lake.
//!
//! * `--ipfix-listen ADDR`: a UDP collector for IPFIX (RFC 7011) and NetFlow v9
//!   (RFC 3954) exports. Runs until SIGINT/SIGTERM or `--duration`; records go to
//!   `flow_telemetry`, committed at least every `--commit-interval` (60 s) and on
//!   shutdown, by a writer thread so receiving never waits on storage.
//! * `--from-pcap FILE…`: the same decoding for captures holding exports (any UDP
//!   datagram that parses as an IPFIX message or NetFlow v9 packet header).
//! * `--kpi FILE|DIR…`: element KPI files (`ts,element_id,metric,value`, CSV or JSONL) on
//!   the minute grid → `telemetry`; directories are loaded, then watched for new files
//!   while the collector runs (without a collector: load and exit).
//!
//! Subscriber endpoints of flow records are written only as pseudonyms (see
//! [`privacy`]). Records with a subscriber endpoint also feed the per-user aggregation:
//! `user_minute` rows with `source = 'flow_telemetry'` (volume, throughput; see
//! [`user_feed`]). Exactly once: pcap records are committed per capture-time minute under a
//! source id derived from the files (a re-run skips them); each KPI file is its own
//! source; the live collector's commits carry increasing keys (epoch seconds of the
//! commit) under `--source-id` (default `ipfix-<listen address>`).

mod kpi_feed;
mod privacy;
mod reassembly;
mod user_feed;
mod writer;

use crate::commands::pipeline::load_enrichment;
use crate::shutdown::{install_signal_handlers, parse_duration, STOP};
use crate::InputError;
use anyhow::Context;
use cemflow_dataflow::UserMinute;
use cemflow_ingest::decode::{addr, Decoded, Decoder, Fragment, LinkType};
use cemflow_ingest::source::CaptureReader;
use cemflow_ingest::telemetry::udp::{UdpSource, MAX_DATAGRAM};
use cemflow_ingest::telemetry::{Collector, CollectorStats, FlowTelemetry};
use cemflow_lakehouse::{FlowTelemetryRow, Lake, Table, TableBatches};
use kpi_feed::KpiFeed;
use privacy::{Prefix, SubscriberPolicy, DEFAULT_SUBSCRIBER_PREFIXES};
use reassembly::UdpReassembler;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use user_feed::UserFeed;
use writer::{Job, Writer};

/// Arguments of `cemflow telemetry`.
#[derive(clap::Args, Debug)]
pub struct TelemetryArgs {
    /// Lake root (a directory, or an object-store URI).
    #[arg(long, env = "CEMFLOW_LAKE")]
    pub lake: String,
    /// Listen for IPFIX / NetFlow v9 exports on this UDP address (e.g. 0.0.0.0:4739).
    #[arg(long, value_name = "ADDR")]
    pub ipfix_listen: Option<String>,
    /// Capture files (pcap/pcapng, .gz/.zst) holding IPFIX / NetFlow v9 exports.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub from_pcap: Vec<PathBuf>,
    /// Element KPI files (CSV/JSONL `ts,element_id,metric,value`) or directories of them.
    #[arg(long, value_name = "FILE|DIR", num_args = 1..)]
    pub kpi: Vec<PathBuf>,
    /// Stop the collector after this long (e.g. 90s, 30m, 2h); default: until
    /// SIGINT/SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Topology CSV: endpoints it matches are subscribers (pseudonymised by line).
    #[arg(long, env = "CEMFLOW_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    /// App catalog TOML merged over the built-in one (classifies subscriber records by
    /// server prefix and port for `user_minute`).
    #[arg(long, env = "CEMFLOW_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Seconds a minute of the per-user aggregation waits for late flow records after
    /// it ends (by export time); set it at least to the exporters' active timeout.
    #[arg(long, default_value_t = 300)]
    pub user_lateness: u64,
    /// Subscriber address prefixes (CIDR, repeatable), replacing the defaults 10/8,
    /// 172.16/12, 192.168/16, 100.64/10, fc00::/7. Endpoints inside are pseudonymised.
    #[arg(long, value_name = "CIDR", num_args = 1..)]
    pub subscriber_prefix: Vec<String>,
    /// Source id of the live collector's commits (default `ipfix-<listen address>`).
    #[arg(long)]
    pub source_id: Option<String>,
    /// Collector commit interval, seconds.
    #[arg(long, default_value_t = 60)]
    pub commit_interval: u64,
    /// Socket receive buffer asked for, bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub rcvbuf: usize,
}

/// Rows buffered before the collector commits early.
const FLUSH_ROWS: usize = 1 << 20;
/// Capture-time windows buffered per `--from-pcap` commit.
const PCAP_WINDOWS_PER_COMMIT: usize = 10;
/// How often watched KPI directories are polled.
const KPI_POLL: Duration = Duration::from_secs(2);

/// What the run did besides the collector's own counters.
#[derive(Debug, Default)]
struct RunStats {
    pcap_files: usize,
    pcap_exports: u64,
    pcap_other_udp: u64,
    pcap_truncated: u64,
    damaged: Vec<String>,
    kernel_drops: Option<u64>,
    fragments: reassembly::ReassemblyStats,
    users: user_feed::UserFeedStats,
}

/// Runs the command.
pub fn run(args: TelemetryArgs) -> anyhow::Result<()> {
    if args.ipfix_listen.is_none() && args.from_pcap.is_empty() && args.kpi.is_empty() {
        return Err(InputError(
            "nothing to do: give --ipfix-listen ADDR, --from-pcap FILE… and/or --kpi FILE|DIR…"
                .into(),
        )
        .into());
    }
    let prefixes = if args.subscriber_prefix.is_empty() {
        DEFAULT_SUBSCRIBER_PREFIXES
            .iter()
            .map(|p| Prefix::parse(p))
            .collect::<Result<Vec<_>, _>>()
    } else {
        args.subscriber_prefix
            .iter()
            .flat_map(|s| s.split(','))
            .map(Prefix::parse)
            .collect()
    }
    .map_err(InputError)?;
    let (pseudo, catalog, topology) =
        load_enrichment(args.catalog.as_deref(), args.topology.as_deref())?;
    let topology = Arc::new(topology);
    let mut users = UserFeed::new(
        pseudo.clone(),
        Arc::clone(&topology),
        catalog,
        args.user_lateness.min(i64::MAX as u64) as i64,
    );
    let mut policy = SubscriberPolicy::new(topology, prefixes, pseudo);
    let lake = Lake::open(&args.lake).with_context(|| format!("opening lake {}", args.lake))?;
    let live_source = args.ipfix_listen.as_ref().map(|a| {
        args.source_id
            .clone()
            .unwrap_or_else(|| format!("ipfix-{}", clean(a)))
    });
    let last_live_key = match &live_source {
        Some(s) => lake.committed_window(Table::FlowTelemetry, s)?,
        None => None,
    };
    let writer = Writer::start(lake);
    let mut collector = Collector::new();
    let mut stats = RunStats::default();

    let result = (|| -> anyhow::Result<Option<KpiFeed>> {
        let feed = if args.kpi.is_empty() {
            None
        } else {
            Some(KpiFeed::load_initial(&args.kpi, &writer)?)
        };
        if !args.from_pcap.is_empty() {
            read_pcaps(
                &args,
                &mut collector,
                &mut policy,
                &mut users,
                &writer,
                &mut stats,
            )?;
        }
        let mut feed = feed;
        if let (Some(addr), Some(source)) = (&args.ipfix_listen, &live_source) {
            install_signal_handlers()?;
            let live = Live {
                source_id: source.clone(),
                last_key: last_live_key,
                interval: Duration::from_secs(args.commit_interval.max(1)),
                deadline: args.duration.map(|d| Instant::now() + d),
            };
            listen(
                addr,
                args.rcvbuf,
                live,
                &mut collector,
                &mut policy,
                &mut users,
                &writer,
                feed.as_mut(),
                &mut stats,
            )?;
        }
        Ok(feed)
    })();
    let written = writer.finish();
    let feed = result?;
    let written = written?;
    stats.users = users.stats;
    print_summary(
        &collector.stats(),
        &stats,
        feed.as_ref(),
        &written,
        &args.lake,
    );
    Ok(())
}

/// The live collector's commit state.
struct Live {
    source_id: String,
    /// Key of the last commit of this source (epoch s); new keys are larger.
    last_key: Option<i64>,
    interval: Duration,
    deadline: Option<Instant>,
}

impl Live {
    /// Commits `rows` and the closed `user_minute` rows under the next key: now (epoch
    /// s), or one more than the last key.
    fn flush(
        &mut self,
        rows: &mut Vec<FlowTelemetryRow>,
        users: Vec<UserMinute>,
        writer: &Writer,
    ) -> anyhow::Result<()> {
        if rows.is_empty() && users.is_empty() {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let key = self.last_key.map_or(now, |k| now.max(k + 1));
        self.last_key = Some(key);
        let mut b = TableBatches::new();
        if !rows.is_empty() {
            b.add_flow_telemetry(rows)?;
        }
        if !users.is_empty() {
            b.add_user_minutes(&users)?;
        }
        rows.clear();
        writer.send(Job {
            source_id: self.source_id.clone(),
            windows: vec![(key, b)],
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn listen(
    addr: &str,
    rcvbuf: usize,
    mut live: Live,
    collector: &mut Collector,
    policy: &mut SubscriberPolicy,
    users: &mut UserFeed,
    writer: &Writer,
    mut feed: Option<&mut KpiFeed>,
    stats: &mut RunStats,
) -> anyhow::Result<()> {
    let src = UdpSource::bind(addr, rcvbuf, Duration::from_millis(200))
        .with_context(|| format!("binding the collector to {addr}"))
        .map_err(|e| InputError(format!("{e:#}")))?;
    eprintln!(
        "collecting IPFIX / NetFlow v9 on {} (receive buffer {} B); SIGINT/SIGTERM stops \
         and commits",
        src.local_addr()?,
        src.rcvbuf()
    );
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out: Vec<FlowTelemetry> = Vec::with_capacity(64);
    let mut pending: Vec<FlowTelemetryRow> = Vec::new();
    let mut last_commit = Instant::now();
    let mut last_poll = Instant::now();
    while !STOP.load(Ordering::SeqCst) && !writer.failed() {
        if live.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some((n, from)) = src.recv(&mut buf)? {
            out.clear();
            collector.process(from, buf.get(..n).unwrap_or_default(), &mut out);
            pending.extend(out.iter().map(|r| policy.row(r)));
            for r in &out {
                users.add(r, policy);
            }
        }
        if pending.len() >= FLUSH_ROWS || last_commit.elapsed() >= live.interval {
            live.flush(&mut pending, users.close_ready(), writer)?;
            last_commit = Instant::now();
        }
        if let Some(f) = feed.as_deref_mut() {
            if f.watches() && last_poll.elapsed() >= KPI_POLL {
                f.poll(writer)?;
                last_poll = Instant::now();
            }
        }
    }
    // Datagrams already queued in the socket are part of what was received: drain them
    // (for at most a second under continuing traffic).
    let drain_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < drain_until {
        let Some((n, from)) = src.recv(&mut buf)? else {
            break;
        };
        out.clear();
        collector.process(from, buf.get(..n).unwrap_or_default(), &mut out);
        pending.extend(out.iter().map(|r| policy.row(r)));
        for r in &out {
            users.add(r, policy);
        }
    }
    live.flush(&mut pending, users.close_all(), writer)?;
    stats.kernel_drops = src.kernel_drops();
    Ok(())
}

/// True when a UDP payload parses as an IPFIX message or a NetFlow v9 packet header
/// (exact IPFIX length; a plausible first v9 FlowSet).
fn looks_like_export(p: &[u8]) -> bool {
    let be16 = |o: usize| p.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match be16(0) {
        Some(10) => p.len() >= 16 && be16(2) == Some(p.len() as u16),
        Some(9) => match (be16(20), be16(22)) {
            (Some(id), Some(len)) => {
                (id <= 1 || id >= 256) && len >= 4 && usize::from(len) <= p.len() - 20
            }
            _ => false,
        },
        _ => false,
    }
}

/// Decodes the exports in `--from-pcap` captures (IP-fragmented datagrams reassembled)
/// and commits them per capture-time minute, with the `user_minute` rows of subscriber
/// records whose minutes closed.
fn read_pcaps(
    args: &TelemetryArgs,
    collector: &mut Collector,
    policy: &mut SubscriberPolicy,
    users: &mut UserFeed,
    writer: &Writer,
    stats: &mut RunStats,
) -> anyhow::Result<()> {
    let files = cemflow_ingest::capture::open_inputs(&args.from_pcap)?;
    let mut commits = PcapCommits {
        source_id: format!("ipfix-pcap-{}", source_hash(&files)),
        pending: BTreeMap::new(),
        flushed: None,
        last_user_key: None,
    };
    let decoder = Decoder { udp_tunnels: false };
    let mut reasm = UdpReassembler::default();
    let mut out: Vec<FlowTelemetry> = Vec::with_capacity(64);
    for path in &files {
        let mut reader = CaptureReader::open(path)?;
        stats.pcap_files += 1;
        while let Some(p) = reader.next_packet() {
            let mut decoded = Decoded::default();
            if decoder
                .decode(LinkType::from_linktype(p.linktype), p.data, &mut decoded)
                .is_err()
            {
                continue;
            }
            let Some(t) = decoded.layers().iter().find(|t| t.proto == 17) else {
                continue;
            };
            let whole;
            let (payload, src_port) = if t.frag == Fragment::No {
                if t.payload.len() < t.payload_len as usize {
                    if matches!(t.payload.get(..2), Some([0, 9] | [0, 10])) {
                        stats.pcap_truncated += 1;
                    } else {
                        stats.pcap_other_udp += 1;
                    }
                    continue;
                }
                (t.payload, t.src_port)
            } else {
                match reasm.push(t) {
                    Some((port, bytes)) => {
                        whole = bytes;
                        (&whole[..], port)
                    }
                    None => continue,
                }
            };
            if !looks_like_export(payload) {
                stats.pcap_other_udp += 1;
                continue;
            }
            stats.pcap_exports += 1;
            let exporter = SocketAddr::new(addr(t.ip_version, &t.src), src_port);
            out.clear();
            collector.process(exporter, payload, &mut out);
            for r in &out {
                users.add(r, policy);
            }
            let ts_s = (p.ts_ns / 1_000_000_000) as i64;
            let minute = ts_s - ts_s.rem_euclid(60);
            // A packet older than what was committed joins the oldest open window.
            let w = commits.flushed.map_or(minute, |f| minute.max(f + 60));
            commits
                .pending
                .entry(w)
                .or_default()
                .extend(out.iter().map(|r| policy.row(r)));
            if commits.pending.len() > PCAP_WINDOWS_PER_COMMIT {
                commits.flush(w, users.close_ready(), writer)?;
            }
        }
        if let Some(d) = reader.damage() {
            stats.damaged.push(format!("{}: {d}", path.display()));
        }
    }
    reasm.finish();
    stats.fragments = reasm.stats;
    commits.flush(i64::MAX, users.close_all(), writer)
}

/// Commit state of `--from-pcap`: `flow_telemetry` rows per capture-time minute, and
/// closed `user_minute` rows riding on the newest window of each commit.
struct PcapCommits {
    source_id: String,
    pending: BTreeMap<i64, Vec<FlowTelemetryRow>>,
    /// Newest `flow_telemetry` window committed.
    flushed: Option<i64>,
    /// Newest key `user_minute` rows were committed under (keys of a table's commits
    /// only grow: exactly once).
    last_user_key: Option<i64>,
}

impl PcapCommits {
    /// Commits the windows before `before`, and `users`.
    fn flush(
        &mut self,
        before: i64,
        users: Vec<UserMinute>,
        writer: &Writer,
    ) -> anyhow::Result<()> {
        let keys: Vec<i64> = self.pending.range(..before).map(|(k, _)| *k).collect();
        let mut windows = Vec::with_capacity(keys.len() + 1);
        for k in keys {
            if let Some(rows) = self.pending.remove(&k) {
                let mut b = TableBatches::new();
                b.add_flow_telemetry(&rows)?;
                windows.push((k, b));
                self.flushed = Some(k);
            }
        }
        if !users.is_empty() {
            let newest = windows.last().map(|(k, _)| *k).or(self.flushed);
            let key = match (newest, self.last_user_key) {
                (Some(n), Some(l)) => n.max(l + 1),
                (Some(n), None) => n,
                (None, Some(l)) => l + 1,
                (None, None) => users.iter().map(|u| u.window_start_s).max().unwrap_or(0),
            };
            self.last_user_key = Some(key);
            match windows.iter_mut().find(|(k, _)| *k == key) {
                Some((_, b)) => b.add_user_minutes(&users)?,
                None => {
                    let mut b = TableBatches::new();
                    b.add_user_minutes(&users)?;
                    windows.push((key, b));
                }
            }
        }
        if windows.is_empty() {
            return Ok(());
        }
        writer.send(Job {
            source_id: self.source_id.clone(),
            windows,
        })
    }
}

fn print_summary(
    c: &CollectorStats,
    s: &RunStats,
    feed: Option<&KpiFeed>,
    w: &writer::Written,
    lake: &str,
) {
    let t = &c.totals;
    if t.packets > 0 || s.pcap_files > 0 {
        eprintln!(
            "flow telemetry: {} records, {} export packets from {} exporter(s); templates: {} \
             received, {} active, {} withdrawn; {} options records",
            t.records,
            t.packets,
            c.exporters,
            t.templates_received,
            c.templates_active,
            t.templates_withdrawn,
            t.options_records
        );
        eprintln!(
            "sequence: {} lost NetFlow v9 export packets, {} lost IPFIX records ({} gaps, {} \
             reordered, {} counter resets)",
            t.lost_packets, t.lost_records, t.sequence_gaps, t.reordered, t.sequence_resets
        );
        let reasons: Vec<String> = t
            .malformed_reasons()
            .into_iter()
            .map(|(m, n)| format!("{n} {m}"))
            .collect();
        eprintln!(
            "malformed: {} ({}); {} data sets of unknown templates skipped",
            t.malformed_total(),
            if reasons.is_empty() {
                "none".into()
            } else {
                reasons.join(", ")
            },
            t.unknown_template_sets
        );
    }
    if s.pcap_files > 0 {
        eprintln!(
            "captures: {} file(s), {} export datagrams ({} reassembled from IP fragments, {} \
             incomplete dropped), {} other UDP datagrams ignored, {} truncated by the snap \
             length",
            s.pcap_files,
            s.pcap_exports,
            s.fragments.reassembled,
            s.fragments.dropped,
            s.pcap_other_udp,
            s.pcap_truncated
        );
    }
    if s.users.subscriber_records > 0 {
        eprintln!(
            "per-user aggregation: {} subscriber records → {} user_minute rows (source \
             flow_telemetry); {} records late for a closed minute",
            s.users.subscriber_records, s.users.rows, s.users.late_records
        );
    }
    for d in &s.damaged {
        eprintln!("damaged capture, read up to the damage: {d}");
    }
    if let Some(drops) = s.kernel_drops {
        eprintln!(
            "collector socket: {drops} datagrams dropped by the kernel (receive buffer full)"
        );
    }
    if let Some(f) = feed {
        let k = &f.totals;
        eprintln!(
            "kpi: {} file(s), {} lines → {} minute samples, {} bad lines skipped",
            k.files, k.good_lines, k.samples, k.bad_lines
        );
    }
    eprintln!(
        "lake {lake}: {} flow_telemetry rows, {} user_minute rows, {} telemetry rows \
         written{}",
        w.flow_rows,
        w.user_rows,
        w.kpi_rows,
        if w.skipped_rows > 0 {
            format!(
                ", {} rows already committed by their source skipped (exactly once)",
                w.skipped_rows
            )
        } else {
            String::new()
        }
    );
}

/// `<first file stem>-<FNV-1a of the canonical paths>`: stable across runs.
pub(crate) fn source_hash(files: &[PathBuf]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let c = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        for b in c.to_string_lossy().bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let name = files
        .first()
        .and_then(|f| f.file_stem())
        .map(|s| clean(&s.to_string_lossy()))
        .unwrap_or_else(|| "input".into());
    format!("{name}-{:08x}", h as u32)
}

/// Keeps `[A-Za-z0-9.-]`, maps the rest to `_` (source ids have no spaces or colons).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn export_sniffing() {
        let mut ipfix = vec![0, 10, 0, 20];
        ipfix.resize(20, 0);
        assert!(looks_like_export(&ipfix));
        ipfix.push(0);
        assert!(!looks_like_export(&ipfix));
        let mut v9 = vec![0u8; 20];
        v9[1] = 9;
        v9.extend_from_slice(&[0, 0, 0, 8, 1, 0, 0, 4]);
        assert!(looks_like_export(&v9));
        v9[23] = 200;
        assert!(!looks_like_export(&v9));
        assert!(!looks_like_export(b"GET / HTTP/1.1"));
    }
}
