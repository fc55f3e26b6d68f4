//! Flow records of an exporter that sees subscribers → the per-user aggregation:
//! `user_minute` rows with `source = 'flow_telemetry'` (flows, active time, volume,
//! throughput).
//!
//! A record with a subscriber endpoint (see [`SubscriberPolicy`]) is one direction of a
//! connection: the subscriber is the client, the other endpoint the server. Its bytes are
//! spread over the minutes its `[flow_start, flow_end]` covers, in proportion to the
//! overlap, and the overlap is the direction's active time in that minute (a record is the
//! exporter's view of a flow: it has no idle gaps to subtract). Both directions of a
//! connection (same 5-tuple, swapped) meet in one flow slice per minute. Payload bytes are
//! estimated as IP bytes minus 40 (TCP) / 28 (UDP) / 20 bytes of headers per packet.
//! Classification is the catalog's by server prefix, then server port (a record carries
//! no SNI). Placement and pseudonymisation are the probe's ([`Enricher`]), so a user's
//! `user_key` and elements are the same in both sources.
//!
//! Minutes close when the newest export time seen passes the minute's end plus the
//! lateness (`--user-lateness`, default 300 s: set it at least to the exporters' active
//! timeout); bytes of a record that fall in an already closed minute are counted as late
//! and left out of `user_minute` (the record itself is in `flow_telemetry`). At the end of
//! the input every open minute closes. The rows are aggregated by the dataflow's own
//! [`user_window`] with the default CEI model: with neither RTT, loss nor transaction
//! times, only throughput-rated categories (video, live, download) get a MOS, the others
//! are rated 100 (no evidence), as for probe flows without KPIs. Queries that rate users
//! (`poor-users`, `demarcate`, `report`) use probe rows only.

use super::privacy::SubscriberPolicy;
use cemflow_dataflow::{
    user_window, CeiConfig, Enricher, Pseudonymizer, RowSource, Topology, UserMinute, UserSlice,
};
use cemflow_ingest::catalog::{Catalog, Category};
use cemflow_ingest::decode::TunnelKind;
use cemflow_ingest::flow::{DirCounters, FlowClass, FlowMeta, FlowSlice};
use cemflow_ingest::kpi::SliceKpi;
use cemflow_ingest::telemetry::FlowTelemetry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Window length, seconds.
const WINDOW_S: i64 = 60;
/// Most connection slices held open before the oldest minutes are closed early.
const MAX_OPEN_SLICES: usize = 4 << 20;

/// One direction-merged connection in one minute.
#[derive(Debug)]
struct Conn {
    l4: u8,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    /// Client → server, server → client.
    dirs: [DirCounters; 2],
    /// Active ns per direction `[up, down]`.
    active_ns: [u64; 2],
}

/// What the feed did, for the run summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserFeedStats {
    /// Records with a subscriber endpoint (both endpoints subscribers: the source is
    /// taken as the subscriber).
    pub subscriber_records: u64,
    /// Records whose bytes fell (partly) into minutes already closed.
    pub late_records: u64,
    /// `user_minute` rows produced.
    pub rows: u64,
}

/// Aggregates subscriber flow records into `user_minute` rows.
pub struct UserFeed {
    enricher: Enricher,
    catalog: Catalog,
    cfg: CeiConfig,
    lateness_s: i64,
    /// minute start → connection key → counters.
    open: BTreeMap<i64, HashMap<u64, Conn>>,
    open_slices: usize,
    /// Minutes before this are closed.
    closed_before: i64,
    /// Newest export time seen, epoch s.
    clock: i64,
    /// Counters.
    pub stats: UserFeedStats,
}

impl UserFeed {
    /// A feed placing users with `topology` and `pseudo` (the probe's rules).
    pub fn new(
        pseudo: Pseudonymizer,
        topology: Arc<Topology>,
        catalog: Catalog,
        lateness_s: i64,
    ) -> UserFeed {
        UserFeed {
            enricher: Enricher::new(pseudo, topology),
            catalog,
            cfg: CeiConfig::default(),
            lateness_s: lateness_s.max(0),
            open: BTreeMap::new(),
            open_slices: 0,
            closed_before: i64::MIN,
            clock: i64::MIN,
            stats: UserFeedStats::default(),
        }
    }

    /// Adds one record (ignored unless an endpoint is a subscriber).
    pub fn add(&mut self, r: &FlowTelemetry, policy: &SubscriberPolicy) {
        let f = &r.fields;
        self.clock = self.clock.max(r.export_ts_s);
        let (Some(src), Some(dst)) = (f.src, f.dst) else {
            return;
        };
        let (client, server, dir) = if policy.is_subscriber(src) {
            (
                (src, f.src_port.unwrap_or(0)),
                (dst, f.dst_port.unwrap_or(0)),
                0,
            )
        } else if policy.is_subscriber(dst) {
            (
                (dst, f.dst_port.unwrap_or(0)),
                (src, f.src_port.unwrap_or(0)),
                1,
            )
        } else {
            return;
        };
        self.stats.subscriber_records += 1;
        let l4 = f.l4.unwrap_or(0);
        let bytes = f.bytes.unwrap_or(0);
        let pkts = f.packets.unwrap_or(0);
        let export_ms = r.export_ts_s.saturating_mul(1000);
        let start_ms = f.flow_start_ms.or(f.flow_end_ms).unwrap_or(export_ms);
        let end_ms = f.flow_end_ms.unwrap_or(start_ms).max(start_ms);
        let key = conn_key(l4, client, server);
        let mut late = false;
        let mut done = 0.0;
        for (minute, share, active_ms) in spread(start_ms, end_ms) {
            // Cumulative rounding: the parts add up to the record's counters.
            let part =
                |v: u64| ((v as f64 * (done + share)).round() - (v as f64 * done).round()) as u64;
            let (b, p) = (part(bytes), part(pkts));
            done += share;
            if minute < self.closed_before {
                late = true;
                continue;
            }
            let slot = self.open.entry(minute).or_default();
            let conn = slot.entry(key).or_insert_with(|| {
                self.open_slices += 1;
                Conn {
                    l4,
                    client,
                    server,
                    dirs: [DirCounters::default(); 2],
                    active_ns: [0; 2],
                }
            });
            let d = &mut conn.dirs[dir];
            d.pkts += p;
            d.ip_bytes += b;
            d.frame_bytes += b;
            d.payload_bytes += b.saturating_sub(p.saturating_mul(header_bytes(l4)));
            conn.active_ns[dir] = (conn.active_ns[dir] + active_ms * 1_000_000).min(60_000_000_000);
        }
        if late {
            self.stats.late_records += 1;
        }
    }

    /// Closes the minutes the export clock has passed by more than the lateness (and,
    /// over the memory bound, the oldest ones); their rows, oldest minute first.
    pub fn close_ready(&mut self) -> Vec<UserMinute> {
        let mut out = Vec::new();
        while let Some((&minute, _)) = self.open.first_key_value() {
            let due = self.clock != i64::MIN
                && minute.saturating_add(WINDOW_S + self.lateness_s) <= self.clock;
            if !due && self.open_slices <= MAX_OPEN_SLICES {
                break;
            }
            self.close_first(&mut out);
        }
        out
    }

    /// Closes every open minute (end of input); their rows.
    pub fn close_all(&mut self) -> Vec<UserMinute> {
        let mut out = Vec::new();
        while !self.open.is_empty() {
            self.close_first(&mut out);
        }
        out
    }

    fn close_first(&mut self, out: &mut Vec<UserMinute>) {
        let Some((minute, conns)) = self.open.pop_first() else {
            return;
        };
        self.open_slices = self.open_slices.saturating_sub(conns.len());
        self.closed_before = self.closed_before.max(minute + WINDOW_S);
        let mut by_user: HashMap<u64, Vec<UserSlice>> = HashMap::new();
        for (key, c) in conns {
            let slice = self.flow_slice(minute, key, &c);
            if let Some(mut u) = self.enricher.slice(&slice) {
                u.source = RowSource::FlowTelemetry;
                by_user.entry(u.user).or_default().push(u);
            }
        }
        let mut users: Vec<_> = by_user.into_iter().collect();
        users.sort_unstable_by_key(|(u, _)| *u);
        for (_, mut slices) in users {
            let w = user_window(&self.cfg, WINDOW_S, &mut slices);
            self.stats.rows += w.minutes.len() as u64;
            out.extend(w.minutes);
        }
    }

    /// The probe-shaped slice of a connection-minute, classified by the catalog.
    fn flow_slice(&self, minute: i64, key: u64, c: &Conn) -> FlowSlice {
        let class = match self.catalog.classify(None, c.server.0, c.l4, c.server.1) {
            Some(m) => FlowClass {
                app: Some(Arc::from(m.app)),
                category: m.category,
                required_mbps: m.required_mbps,
            },
            None => FlowClass {
                app: None,
                category: Category::Other,
                required_mbps: None,
            },
        };
        FlowSlice {
            meta: FlowMeta {
                flow_id: key,
                l4: c.l4,
                client_ip: c.client.0,
                client_port: c.client.1,
                server_ip: c.server.0,
                server_port: c.server.1,
                vlan: None,
                tunnel: TunnelKind::None,
                tunnel_id: 0,
                carrier_of: TunnelKind::None,
            },
            window_start_ns: (minute.max(0) as u64).saturating_mul(1_000_000_000),
            c2s: c.dirs[0],
            s2c: c.dirs[1],
            l7_proto: None,
            class,
            kpi: SliceKpi {
                active_ns: c.active_ns,
                ..SliceKpi::default()
            },
        }
    }
}

/// Header bytes per packet assumed when estimating payload: IPv4 + TCP/UDP headers.
fn header_bytes(l4: u8) -> u64 {
    match l4 {
        6 => 40,
        17 => 28,
        _ => 20,
    }
}

/// A stable id of a connection (both directions give the same id).
fn conn_key(l4: u8, client: (IpAddr, u16), server: (IpAddr, u16)) -> u64 {
    let mut h = DefaultHasher::new();
    (l4, client, server).hash(&mut h);
    h.finish()
}

/// The minutes `[start_ms, end_ms]` covers: (minute start s, share of the record's
/// counters, overlap ms). A zero-length record falls wholly in its minute with no active
/// time.
fn spread(start_ms: i64, end_ms: i64) -> Vec<(i64, f64, u64)> {
    let minute_of = |ms: i64| ms.div_euclid(1000).div_euclid(WINDOW_S) * WINDOW_S;
    let dur = end_ms - start_ms;
    if dur <= 0 {
        return vec![(minute_of(start_ms), 1.0, 0)];
    }
    let mut out = Vec::new();
    let mut m = minute_of(start_ms);
    let last = minute_of(end_ms);
    // Records spanning more than a day are clamped to their last day.
    if last - m > 86_400 {
        m = last - 86_400;
    }
    while m <= last {
        let a = start_ms.max(m * 1000);
        let b = end_ms.min((m + WINDOW_S) * 1000);
        if b > a {
            out.push((m, (b - a) as f64 / dur as f64, (b - a) as u64));
        }
        m += WINDOW_S;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::telemetry::privacy::{Prefix, DEFAULT_SUBSCRIBER_PREFIXES};
    use cemflow_dataflow::PlacementConfig;
    use cemflow_ingest::telemetry::FlowFields;

    fn feed(lateness: i64) -> (UserFeed, SubscriberPolicy, Pseudonymizer) {
        let topo = Arc::new(
            Topology::parse(
                "<t>",
                "10.0.0.0/24,line1,olt1,bng1\n",
                PlacementConfig::default(),
            )
            .unwrap(),
        );
        let pseudo = Pseudonymizer::new(b"k").unwrap();
        let policy = SubscriberPolicy::new(
            Arc::clone(&topo),
            DEFAULT_SUBSCRIBER_PREFIXES
                .iter()
                .map(|p| Prefix::parse(p).unwrap())
                .collect(),
            pseudo.clone(),
        );
        (
            UserFeed::new(pseudo.clone(), topo, Catalog::builtin(), lateness),
            policy,
            pseudo,
        )
    }

    fn rec(
        src: &str,
        dst: &str,
        sp: u16,
        dp: u16,
        bytes: u64,
        start_s: i64,
        end_s: i64,
    ) -> FlowTelemetry {
        FlowTelemetry {
            exporter: "192.0.2.1:9995".parse().unwrap(),
            domain: 0,
            version: 10,
            export_ts_s: end_s + 1,
            fields: FlowFields {
                src: Some(src.parse().unwrap()),
                dst: Some(dst.parse().unwrap()),
                src_port: Some(sp),
                dst_port: Some(dp),
                l4: Some(6),
                bytes: Some(bytes),
                packets: Some(bytes / 1000),
                flow_start_ms: Some(start_s * 1000),
                flow_end_ms: Some(end_s * 1000),
                ..Default::default()
            },
        }
    }

    #[test]
    fn spread_is_proportional() {
        let s = spread(30_000, 150_000);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].0, s[1].0, s[2].0), (0, 60, 120));
        assert!((s[0].1 - 0.25).abs() < 1e-9 && (s[1].1 - 0.5).abs() < 1e-9);
        assert_eq!((s[0].2, s[1].2, s[2].2), (30_000, 60_000, 30_000));
        assert_eq!(spread(61_000, 61_000), vec![(60, 1.0, 0)]);
    }

    #[test]
    fn both_directions_make_one_user_flow() {
        let (mut f, policy, pseudo) = feed(0);
        // Downstream 60 MB over 0:30–1:30, upstream 1 MB, port 443 (web by port).
        f.add(
            &rec("198.18.0.10", "10.0.0.5", 443, 40000, 60_000_000, 30, 90),
            &policy,
        );
        f.add(
            &rec("10.0.0.5", "198.18.0.10", 40000, 443, 1_000_000, 30, 90),
            &policy,
        );
        // A server-to-server record is not a user's.
        f.add(&rec("198.18.0.10", "198.18.0.11", 1, 2, 5, 30, 90), &policy);
        assert_eq!(f.stats.subscriber_records, 2);
        let rows = f.close_all();
        let key = pseudo.user_key("line1");
        let all: Vec<_> = rows.iter().filter(|r| r.category == "all").collect();
        assert_eq!(all.len(), 2, "{rows:?}");
        for r in &rows {
            assert_eq!(r.user_key, key);
            assert_eq!(r.source, RowSource::FlowTelemetry);
            assert_eq!(
                (r.access_element.as_str(), r.core_element.as_str()),
                ("olt1", "bng1")
            );
            assert!(r.rtt_client_ms.is_none() && r.txn_ms.is_none());
        }
        assert_eq!(all[0].window_start_s, 0);
        assert_eq!(all[0].flows, 1);
        assert_eq!((all[0].bytes_down, all[0].bytes_up), (30_000_000, 500_000));
        assert_eq!(
            all.iter().map(|r| r.bytes_down).sum::<u64>(),
            60_000_000,
            "volume is conserved"
        );
        // 30 MB in 30 s of downstream activity, payload = 30 MB − 30 000 packets × 40 B:
        // 28.8 MB · 8 / 30 s = 7.68 Mbit/s.
        let t = all[0].throughput_down_mbps.unwrap();
        assert!((t - 7.68).abs() < 0.01, "{t}");
    }

    #[test]
    fn minutes_close_after_the_lateness_and_late_bytes_are_counted() {
        let (mut f, policy, _) = feed(60);
        f.add(
            &rec("198.18.0.10", "10.0.0.5", 443, 40000, 1000, 0, 10),
            &policy,
        );
        // Export clock 11 s: minute 0 closes at 0 + 60 + 60.
        assert!(f.close_ready().is_empty());
        f.add(
            &rec("198.18.0.10", "10.0.0.6", 443, 40001, 1000, 100, 119),
            &policy,
        );
        let rows = f.close_ready();
        assert!(!rows.is_empty() && rows.iter().all(|r| r.window_start_s == 0));
        f.add(
            &rec("198.18.0.10", "10.0.0.7", 443, 40002, 1000, 50, 70),
            &policy,
        );
        assert_eq!(f.stats.late_records, 1);
        let rest = f.close_all();
        assert!(rest.iter().all(|r| r.window_start_s == 60));
        // The late record's minute-1 share still counts.
        assert_eq!(
            rest.iter()
                .filter(|r| r.category == "all")
                .map(|r| r.bytes_down)
                .sum::<u64>(),
            1000 + 500
        );
    }
}
