//! The dataflow's input record, [`UserSlice`]: a [`FlowSlice`] pseudonymised and placed in
//! the topology at the ingest boundary (SPEC §1: the raw client IP never enters the
//! dataflow, so it is never exchanged between workers or processes).
//!
//! [`Enricher`] does the conversion with per-address caches (HMAC and topology lookups are
//! done once per client address, server prefixes once per server address).

use crate::pseudo::{key_hex, Pseudonymizer};
use crate::rows::{FlowRow, RowSource};
use crate::topology::{Span, Topology};
use cemflow_ingest::catalog::Category;
use cemflow_ingest::decode::TunnelKind;
use cemflow_ingest::flow::{FlowEnd, FlowSlice, FlowSummary};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// One flow's activity in one window, keyed by the user's pseudonym.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserSlice {
    /// Window start, epoch seconds.
    pub window_start_s: i64,
    /// User pseudonym (64-bit form of `user_key`).
    pub user: u64,
    /// Flow id (for per-flow evidence).
    pub flow_id: u64,
    /// Access element of the user (shared, so a slice is cheap to copy).
    #[serde(with = "arc_str")]
    pub access_element: Arc<str>,
    /// Core element of the user.
    #[serde(with = "arc_str")]
    pub core_element: Arc<str>,
    /// Subscriber plan, Mbit/s, when the topology gives it.
    pub plan_mbps: Option<f32>,
    /// Server element: server prefix, `|app` appended when the catalog named the app.
    #[serde(with = "arc_str")]
    pub server: Arc<str>,
    /// Service category.
    pub category: Category,
    /// Bitrate the application needs, Mbit/s (catalog).
    pub required_mbps: Option<f32>,
    /// IP protocol.
    pub l4: u8,
    /// Server → client IP bytes.
    pub bytes_down: u64,
    /// Client → server IP bytes.
    pub bytes_up: u64,
    /// Server → client payload bytes.
    pub payload_down: u64,
    /// Time with data in flight per direction `[up, down]`, ns.
    pub active_ns: [u64; 2],
    /// Client-leg RTT: sum of samples (ms) and sample count (a handshake-only measurement
    /// counts as one sample).
    pub rtt_client: (f32, u32),
    /// Server-leg RTT: sum (ms) and count.
    pub rtt_server: (f32, u32),
    /// TCP data segments, both directions.
    pub data_segments: u32,
    /// TCP retransmissions, both directions.
    pub retransmissions: u32,
    /// TCP segments lost upstream + downstream of the probe, both directions.
    pub lost_segments: u32,
    /// RTP packets expected and lost.
    pub rtp: (u32, u32),
    /// RTP jitter, ms.
    pub jitter_ms: Option<f32>,
    /// Web transaction time (TCP + TLS handshake + TTFB, whichever measured), ms.
    pub txn_ms: Option<f32>,
    /// HTTP time to first byte, ms.
    pub ttfb_ms: Option<f32>,
    /// Where the slice came from (probe packets or a flow-telemetry record).
    pub source: RowSource,
}

/// Pseudonymises and places flows (one per reading worker).
#[derive(Debug)]
pub struct Enricher {
    pseudo: Pseudonymizer,
    topology: Arc<Topology>,
    clients: HashMap<IpAddr, Arc<Placed>>,
    servers: HashMap<IpAddr, Arc<str>>,
    /// Server elements by (server address, app).
    server_elements: HashMap<(IpAddr, Option<Arc<str>>), Arc<str>>,
    cache_cap: usize,
}

/// A client address resolved once (for the time span its answer holds).
#[derive(Debug)]
struct Placed {
    span: Span,
    /// A topology row matches the address: a known subscriber.
    known: bool,
    user: u64,
    access: Arc<str>,
    core: Arc<str>,
    plan: Option<f32>,
}

impl Enricher {
    /// An enricher with caches bounded to 1 M addresses each (cleared when full).
    pub fn new(pseudo: Pseudonymizer, topology: Arc<Topology>) -> Enricher {
        Enricher {
            pseudo,
            topology,
            clients: HashMap::new(),
            servers: HashMap::new(),
            server_elements: HashMap::new(),
            cache_cap: 1 << 20,
        }
    }

    /// The topology in use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The pseudonymizer in use.
    pub fn pseudonymizer(&self) -> &Pseudonymizer {
        &self.pseudo
    }

    /// Where `ip` sits at `t_s` (the topology may be versioned by validity time).
    fn placed(&mut self, ip: IpAddr, t_s: i64) -> Arc<Placed> {
        if let Some(p) = self.clients.get(&ip).filter(|p| p.span.contains(t_s)) {
            return Arc::clone(p);
        }
        if self.clients.len() >= self.cache_cap {
            self.clients.clear();
        }
        let (pl, span) = self.topology.place_at(ip, t_s);
        let p = Arc::new(Placed {
            span,
            known: self.topology.lookup_entry(ip).is_some(),
            user: self.pseudo.user_key_u64(&pl.subscriber_id),
            access: pl.access_element.into(),
            core: pl.core_element.into(),
            plan: pl.plan_mbps.map(|v| v as f32),
        });
        self.clients.insert(ip, Arc::clone(&p));
        p
    }

    fn server_prefix(&mut self, ip: IpAddr) -> Arc<str> {
        if let Some(p) = self.servers.get(&ip) {
            return Arc::clone(p);
        }
        if self.servers.len() >= self.cache_cap {
            self.servers.clear();
        }
        let p: Arc<str> = self.topology.server_prefix(ip).into();
        self.servers.insert(ip, Arc::clone(&p));
        p
    }

    /// The server element of `ip` for `app`: its prefix, `|app` appended when known.
    fn server_element(&mut self, ip: IpAddr, app: &Option<Arc<str>>) -> Arc<str> {
        let key = (ip, app.clone());
        if let Some(e) = self.server_elements.get(&key) {
            return Arc::clone(e);
        }
        if self.server_elements.len() >= self.cache_cap {
            self.server_elements.clear();
        }
        let prefix = self.server_prefix(ip);
        let e: Arc<str> = match app.as_deref() {
            Some(app) => format!("{prefix}|{app}").into(),
            None => prefix,
        };
        self.server_elements.insert(key, Arc::clone(&e));
        e
    }

    /// The user side of a flow at `t_s`: the client's placement, or the server's when
    /// the topology knows the server as a subscriber and not the client (the flow's first
    /// packet came from the remote end). `true` when swapped.
    fn user_side(&mut self, client: IpAddr, server: IpAddr, t_s: i64) -> (Arc<Placed>, bool) {
        let c = self.placed(client, t_s);
        if c.known || self.topology.is_empty() {
            return (c, false);
        }
        let s = self.placed(server, t_s);
        if s.known {
            (s, true)
        } else {
            (c, false)
        }
    }

    /// Converts a flow slice; `None` for flows that are not user traffic (the outer flow
    /// of a tunnel: its inner flows carry the users). The user is the subscriber side
    /// (see [`Enricher::user_side`]): for a swapped flow, down/up and the RTT legs are
    /// taken from the other direction.
    pub fn slice(&mut self, s: &FlowSlice) -> Option<UserSlice> {
        let m = &s.meta;
        if m.carrier_of != TunnelKind::None {
            return None;
        }
        let window_start_s = (s.window_start_ns / 1_000_000_000) as i64;
        let (p, swapped) = self.user_side(m.client_ip, m.server_ip, window_start_s);
        let remote = if swapped { m.client_ip } else { m.server_ip };
        let server = self.server_element(remote, &s.class.app);
        let k = &s.kpi;
        let leg = |sum: f32, n: u32, hs: Option<f32>| match (n, hs) {
            (0, Some(h)) => (h, 1),
            _ => (sum, n),
        };
        let (up, down) = if swapped {
            (&s.s2c, &s.c2s)
        } else {
            (&s.c2s, &s.s2c)
        };
        let rtt_client = leg(
            k.rtt_client_sum_ms,
            k.rtt_client_samples,
            k.hs_rtt_client_ms,
        );
        let rtt_server = leg(
            k.rtt_server_sum_ms,
            k.rtt_server_samples,
            k.hs_rtt_server_ms,
        );
        let (rtt_client, rtt_server) = if swapped {
            (rtt_server, rtt_client)
        } else {
            (rtt_client, rtt_server)
        };
        let active_ns = if swapped {
            [k.active_ns[1], k.active_ns[0]]
        } else {
            k.active_ns
        };
        Some(UserSlice {
            window_start_s,
            user: p.user,
            flow_id: m.flow_id,
            access_element: Arc::clone(&p.access),
            core_element: Arc::clone(&p.core),
            plan_mbps: p.plan,
            server,
            category: s.class.category,
            required_mbps: s.class.required_mbps.map(|v| v as f32),
            l4: m.l4,
            bytes_down: down.ip_bytes,
            bytes_up: up.ip_bytes,
            payload_down: down.payload_bytes,
            active_ns,
            rtt_client,
            rtt_server,
            data_segments: k.data_segments[0].saturating_add(k.data_segments[1]),
            retransmissions: k.retransmissions[0].saturating_add(k.retransmissions[1]),
            lost_segments: k
                .loss_upstream
                .iter()
                .chain(&k.loss_downstream)
                .fold(0u32, |a, &b| a.saturating_add(b)),
            rtp: (k.rtp_expected, k.rtp_lost),
            jitter_ms: k.rtp_jitter_ms,
            txn_ms: k.transaction_ms(),
            ttfb_ms: k.http_ttfb_ms,
            source: RowSource::Probe,
        })
    }

    /// The lake `flows` row of a finished flow; `None` for tunnel carrier flows is *not*
    /// applied here (transport flows are kept in `flows`, keyed by their client's pseudonym).
    /// A flow whose subscriber is the server side is written from that side
    /// ([`FlowRow::reoriented`]), so no subscriber address is ever a `server_ip`.
    pub fn flow_row(&mut self, e: &FlowEnd) -> FlowRow {
        let t_s = (e.first_ts_ns / 1_000_000_000) as i64;
        let (p, swapped) = self.user_side(e.meta.client_ip, e.meta.server_ip, t_s);
        let row = FlowRow::from_summary(
            FlowSummary::from_end(e),
            key_hex(p.user),
            p.access.to_string(),
            p.core.to_string(),
        );
        if swapped {
            row.reoriented(e.meta.client_ip.to_string())
        } else {
            row
        }
    }
}

/// Serde for `Arc<str>` fields as plain strings (serde's `rc` feature is off): slices and
/// element observations cross process boundaries serialized.
pub(crate) mod arc_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    /// Writes the string.
    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    /// Reads a string into a fresh `Arc<str>`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::PlacementConfig;
    use cemflow_ingest::flow::{DirCounters, FlowClass, FlowMeta};
    use cemflow_ingest::kpi::SliceKpi;

    fn slice(client: &str, carrier_of: TunnelKind) -> FlowSlice {
        FlowSlice {
            meta: FlowMeta {
                flow_id: 7,
                l4: 6,
                client_ip: client.parse().unwrap(),
                client_port: 40000,
                server_ip: "203.0.113.9".parse().unwrap(),
                server_port: 443,
                vlan: None,
                tunnel: TunnelKind::None,
                tunnel_id: 0,
                carrier_of,
            },
            window_start_ns: 1_700_000_040_000_000_000,
            c2s: DirCounters {
                pkts: 10,
                frame_bytes: 1000,
                ip_bytes: 860,
                payload_bytes: 400,
            },
            s2c: DirCounters {
                pkts: 20,
                frame_bytes: 30000,
                ip_bytes: 29000,
                payload_bytes: 28000,
            },
            l7_proto: Some("TLS"),
            class: FlowClass {
                app: Some("youtube".into()),
                category: Category::Video,
                required_mbps: Some(8.0),
            },
            kpi: SliceKpi {
                hs_rtt_client_ms: Some(12.0),
                rtt_server_sum_ms: 90.0,
                rtt_server_samples: 3,
                tls_handshake_ms: Some(40.0),
                data_segments: [5, 20],
                retransmissions: [0, 2],
                loss_upstream: [0, 1],
                active_ns: [1_000, 2_000_000_000],
                ..SliceKpi::default()
            },
        }
    }

    #[test]
    fn pseudonymised_and_placed() {
        let topo = Topology::parse(
            "t",
            "10.0.0.0/24,home-1,olt1,bng1,,100\n",
            PlacementConfig::default(),
        )
        .unwrap();
        let p = Pseudonymizer::new(b"k").unwrap();
        let mut e = Enricher::new(p.clone(), Arc::new(topo));
        let u = e.slice(&slice("10.0.0.5", TunnelKind::None)).unwrap();
        assert_eq!(u.user, p.user_key_u64("home-1"));
        assert_eq!((&*u.access_element, &*u.core_element), ("olt1", "bng1"));
        assert_eq!(u.plan_mbps, Some(100.0));
        assert_eq!(&*u.server, "203.0.113.0/24|youtube");
        assert_eq!(u.window_start_s, 1_700_000_040);
        assert_eq!(u.rtt_client, (12.0, 1));
        assert_eq!(u.rtt_server, (90.0, 3));
        assert_eq!(u.txn_ms, Some(52.0));
        assert_eq!(
            (u.data_segments, u.retransmissions, u.lost_segments),
            (25, 2, 1)
        );
        assert_eq!(
            (u.bytes_down, u.bytes_up, u.payload_down),
            (29000, 860, 28000)
        );
        assert_eq!(u.required_mbps, Some(8.0));
        // No raw address anywhere in the record.
        assert!(!format!("{u:?}").contains("10.0.0.5"));
        // Default placement; carrier flows are not users.
        let u = e.slice(&slice("192.168.1.20", TunnelKind::None)).unwrap();
        assert_eq!(u.user, p.user_key_u64("192.168.1.20"));
        assert_eq!(&*u.access_element, "192.168.1.0/24");
        assert_eq!(&*u.core_element, "core0");
        assert!(e.slice(&slice("192.168.1.20", TunnelKind::Gtpu)).is_none());
    }

    #[test]
    fn a_flow_opened_by_the_remote_end_belongs_to_its_subscriber() {
        let topo = Topology::parse(
            "t",
            "203.0.113.0/24,home-9,olt9,bng9\n",
            PlacementConfig::default(),
        )
        .unwrap();
        let p = Pseudonymizer::new(b"k").unwrap();
        let mut e = Enricher::new(p.clone(), Arc::new(topo));
        // The remote 10.9.9.9 sent first; the server 203.0.113.9 is the subscriber.
        let u = e.slice(&slice("10.9.9.9", TunnelKind::None)).unwrap();
        assert_eq!(u.user, p.user_key_u64("home-9"));
        assert_eq!(
            (&*u.access_element, &*u.server),
            ("olt9", "10.9.9.0/24|youtube")
        );
        assert_eq!(
            (u.bytes_down, u.bytes_up, u.payload_down),
            (860, 29000, 400)
        );
        assert_eq!((u.rtt_client, u.rtt_server), ((90.0, 3), (12.0, 1)));
        assert_eq!(u.active_ns, [2_000_000_000, 1_000]);
        // A known client stays the user, whatever the server is.
        let u = e.slice(&slice("203.0.113.5", TunnelKind::None)).unwrap();
        assert_eq!(
            (u.bytes_down, &*u.server),
            (29000, "203.0.113.0/24|youtube")
        );
    }
}
