//! Output rows of the dataflow: what the lakehouse writes to the `user_minute`,
//! `element_minute`, `anomalies` and `flows` tables.
//!
//! All rows are keyed by pseudonymised users (`user_key`, SPEC §1): no raw subscriber IP,
//! IMSI or MSISDN appears in any row. Server addresses are kept.
//!
//! Times are epoch seconds (UTC). `window_start_s` is aligned to the window length (one
//! minute by default), so `window_start_s % 60 == 0` with the default configuration.
//! Optional KPIs are `None` when no flow of the group measured them (for example RTT on a
//! UDP-only category); they are never zero-filled.

use cemflow_ingest::flow::FlowSummary;
use serde::{Deserialize, Serialize};

/// Category name of the overall row of a user-minute (all categories together).
pub const CATEGORY_ALL: &str = "all";

/// One user's experience in one window for one service category, plus one row with
/// `category = "all"` per user-window (the overall CEI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMinute {
    /// Window start, epoch seconds (UTC), aligned to the window length (minute).
    pub window_start_s: i64,
    /// Pseudonymised user: HMAC-SHA256(key, user id) truncated to 16 lowercase hex chars.
    pub user_key: String,
    /// Service category: `video`, `live`, `gaming`, `voice`, `web`, `download`, `other`,
    /// or `all` for the user's overall row.
    pub category: String,
    /// Access element the user sits behind (topology, else the client /24 or /56 prefix).
    pub access_element: String,
    /// Core element the user sits behind (topology, else `core0`).
    pub core_element: String,
    /// Number of flows with activity in the window (flow slices).
    pub flows: u32,
    /// Active seconds: time with data in flight (max of the two directions per flow, summed
    /// over flows, capped at the window length); the weight of the category in the overall
    /// CEI. Seconds.
    pub active_s: f32,
    /// Server → client IP bytes in the window. Bytes.
    pub bytes_down: u64,
    /// Client → server IP bytes in the window. Bytes.
    pub bytes_up: u64,
    /// Downstream throughput while transferring: downstream payload bits / downstream active
    /// time. Mbit/s (10⁶ bit/s).
    pub throughput_down_mbps: Option<f32>,
    /// Client-leg RTT (probe → client → probe: access + home), sample-weighted mean. ms.
    pub rtt_client_ms: Option<f32>,
    /// Server-leg RTT (probe → server → probe: core + internet), sample-weighted mean. ms.
    pub rtt_server_ms: Option<f32>,
    /// TCP retransmitted segments / data segments, both directions. Fraction in [0, 1].
    pub retrans_rate: Option<f32>,
    /// Packet loss: RTP lost/expected when RTP was measured, else TCP segments lost
    /// (upstream + downstream of the probe) / data segments. Percent in [0, 100].
    pub loss_pct: Option<f32>,
    /// Worst RTP interarrival jitter (RFC 3550) among the flows. ms.
    pub jitter_ms: Option<f32>,
    /// Median web transaction time (TCP handshake + TLS handshake + TTFB, whichever were
    /// measured) over the flows that measured one. ms.
    pub txn_ms: Option<f32>,
    /// Median HTTP time to first byte over the flows that measured one. ms.
    pub ttfb_ms: Option<f32>,
    /// Mean opinion score of the category (SPEC §5 model), in [1, 4.5]; for `all`, the
    /// MOS equivalent of the overall CEI.
    pub mos: f32,
    /// Customer experience index: `100·(MOS − 1)/3.5`, in [0, 100]; for `all`, the
    /// active-seconds-weighted mean of the category CEIs with the worst-critical rule.
    pub cei: f32,
    /// Poor minute: `cei < poor_cei` (default 60); on the `all` row also when a rated
    /// category of the minute is poor (`[cei.poor] category_poor`). Set on every row; the *poor user* rule (≥ 3 poor overall minutes in the last 15) is applied
    /// on the `all` rows by queries (see `cei::PoorUserTracker`).
    pub poor: bool,
    /// Server element (prefix `/24` IPv4 or `/48` IPv6, then `|app` when the catalog named
    /// the app, as in [`ElementMinute::element_id`]) carrying the most flows of the group
    /// that were poor on their own (ties: most downstream bytes), for demarcation; `None`
    /// when no flow was poor.
    pub worst_server: Option<String>,
    /// Where the row's evidence came from: the probe's packets, or flow telemetry
    /// (IPFIX/NetFlow records of an exporter that sees subscribers: volume and
    /// throughput only).
    pub source: RowSource,
}

/// Evidence behind a [`UserMinute`] row (lake column `source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowSource {
    /// Packets seen by the probe (`cemflow ingest` / `capture`): every KPI.
    #[default]
    Probe,
    /// Flow records (`cemflow telemetry`): flows, active time, volume and throughput; no
    /// RTT, loss or transaction times, so the CEI rests on throughput alone.
    FlowTelemetry,
}

impl RowSource {
    /// The lake value: `probe` or `flow_telemetry`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowSource::Probe => "probe",
            RowSource::FlowTelemetry => "flow_telemetry",
        }
    }
}

/// One element's aggregate over its users in one window (at the `access`, `core` or
/// `server` level), computed from the users' overall (`all`) rows, or, for the `server`
/// level, from the users' per-server contributions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElementMinute {
    /// Window start, epoch seconds (UTC), aligned to the window length.
    pub window_start_s: i64,
    /// Element level: `access`, `core` or `server`.
    pub level: String,
    /// Element id: topology id for `access`/`core`; for `server` the server prefix
    /// (`203.0.113.0/24`, `2001:db8:1::/48`) followed by `|service` when the catalog named
    /// the service (e.g. `203.0.113.0/24|youtube`).
    pub element_id: String,
    /// Distinct users with activity under the element in the window.
    pub users: u32,
    /// Users whose CEI in the window was below the poor threshold (default 60).
    pub poor_users: u32,
    /// `poor_users / users`, fraction in [0, 1].
    pub poor_share: f32,
    /// Mean of the users' CEIs, in [0, 100].
    pub cei_mean: f32,
    /// 10th percentile of the users' CEIs (nearest rank), in [0, 100].
    pub cei_p10: f32,
    /// Server → client IP bytes of the element's users in the window. Bytes.
    pub bytes_down: u64,
    /// Median over users of their client-leg RTT. ms.
    pub rtt_client_ms_median: Option<f32>,
    /// Median over users of their server-leg RTT. ms.
    pub rtt_server_ms_median: Option<f32>,
    /// Mean over users of their retransmission rate. Fraction in [0, 1].
    pub retrans_rate: Option<f32>,
}

/// One anomaly score: a metric of a user or an element in one window against its
/// baseline. Emitted for every scored (element, metric, window) with a baseline (≥
/// `AnomalyConfig::min_points` points), anomalous or not; for users only the anomalous ones
/// (unless `AnomalyConfig::emit_all_user_rows`), to keep the table small.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRow {
    /// Window start, epoch seconds (UTC).
    pub window_start_s: i64,
    /// `user` or `element`.
    pub entity_kind: String,
    /// `user_key` for users; `level:element_id` for elements (e.g. `access:olt1/pon3`).
    pub entity_id: String,
    /// Metric name: `cei`, `rtt_client_ms`, `rtt_server_ms`, `retrans_rate`,
    /// `throughput_down_mbps`, `poor_share`.
    pub metric: String,
    /// The window's value (unit of the metric).
    pub value: f64,
    /// Median of the baseline values (unit of the metric).
    pub baseline_median: f64,
    /// Median absolute deviation of the baseline values (unit of the metric).
    pub baseline_mad: f64,
    /// Robust z-score `0.6745·|value − median| / MAD` (dimensionless; MAD floored by
    /// `AnomalyConfig::mad_floor(metric)` to avoid division by zero).
    pub score: f64,
    /// `score > threshold` (default 3.5).
    pub anomalous: bool,
    /// Baseline used: `trailing_60m` (operator state) or `hour_of_week` (from the lake).
    pub baseline: String,
}

/// One finished flow as stored in the lake's `flows` table.
///
/// **Decision:** the `flows` table is [`FlowSummary`] with `client_ip` replaced by
/// `user_key` (the client port is kept, the server address and port are kept), plus the
/// user's elements and the flow's whole-life KPIs. Build it with [`FlowRow::from_summary`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    /// Stable flow id (16 hex chars), joins with the slices.
    pub flow_id: String,
    /// Pseudonymised client (see [`UserMinute::user_key`]).
    pub user_key: String,
    /// Access element of the client.
    pub access_element: String,
    /// Core element of the client.
    pub core_element: String,
    /// IP protocol number.
    pub l4: u8,
    /// Client port.
    pub client_port: u16,
    /// Server address (kept: not personal data).
    pub server_ip: String,
    /// Server port.
    pub server_port: u16,
    /// Outermost VLAN id.
    pub vlan: Option<u16>,
    /// Tunnel kind carrying the flow (`gtpu`, `vxlan`, …).
    pub tunnel: Option<String>,
    /// VNI / GRE key.
    pub tunnel_id: Option<u32>,
    /// GTP-U TEID client → server.
    pub teid_c2s: Option<u32>,
    /// GTP-U TEID server → client.
    pub teid_s2c: Option<u32>,
    /// Client → server packets.
    pub c2s_pkts: u64,
    /// Client → server frame bytes (link layer included). Bytes.
    pub c2s_bytes: u64,
    /// Server → client packets.
    pub s2c_pkts: u64,
    /// Server → client frame bytes. Bytes.
    pub s2c_bytes: u64,
    /// Client → server IP bytes. Bytes.
    pub c2s_ip_bytes: u64,
    /// Server → client IP bytes. Bytes.
    pub s2c_ip_bytes: u64,
    /// Client → server transport payload. Bytes.
    pub c2s_payload: u64,
    /// Server → client transport payload. Bytes.
    pub s2c_payload: u64,
    /// Application protocol (nDPI-style name).
    pub l7_proto: Option<String>,
    /// True when `l7_proto` is only a port guess.
    pub l7_by_port: bool,
    /// Application (catalog name).
    pub app: Option<String>,
    /// Service category.
    pub category: String,
    /// TLS/QUIC server name.
    pub sni: Option<String>,
    /// HTTP Host.
    pub host: Option<String>,
    /// TLS/QUIC ALPN.
    pub alpn: Option<String>,
    /// TLS version.
    pub tls_version: Option<String>,
    /// QUIC version (hex).
    pub quic_version: Option<String>,
    /// HTTP method.
    pub http_method: Option<String>,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// DNS query name.
    pub dns_query: Option<String>,
    /// DNS query type.
    pub dns_qtype: Option<u16>,
    /// DNS response code.
    pub dns_rcode: Option<u8>,
    /// First packet, RFC 3339 UTC with microseconds.
    pub first_ts: String,
    /// Last packet, RFC 3339 UTC with microseconds.
    pub last_ts: String,
    /// Duration. Seconds.
    pub duration_s: f64,
    /// Why the flow ended.
    pub end_reason: String,
    /// TCP flags sent by the client (union).
    pub c2s_tcp_flags: Option<u8>,
    /// TCP flags sent by the server (union).
    pub s2c_tcp_flags: Option<u8>,
    /// Handshake client-leg RTT (ACK − SYN/ACK). ms.
    pub hs_rtt_client_ms: Option<f32>,
    /// Handshake server-leg RTT (SYN/ACK − SYN). ms.
    pub hs_rtt_server_ms: Option<f32>,
    /// Mean running client-leg RTT (server data → client ACK), else handshake. ms.
    pub rtt_client_ms: Option<f32>,
    /// Mean running server-leg RTT (client data → server ACK), else handshake. ms.
    pub rtt_server_ms: Option<f32>,
    /// Client-leg RTT samples.
    pub rtt_client_samples: u32,
    /// Server-leg RTT samples.
    pub rtt_server_samples: u32,
    /// Retransmitted segments sent by the client.
    pub c2s_retrans: u32,
    /// Retransmitted segments sent by the server.
    pub s2c_retrans: u32,
    /// Out-of-order segments sent by the client.
    pub c2s_ooo: u32,
    /// Out-of-order segments sent by the server.
    pub s2c_ooo: u32,
    /// Client segments lost before the probe (holes later filled).
    pub c2s_loss_upstream: u32,
    /// Server segments lost before the probe.
    pub s2c_loss_upstream: u32,
    /// Client segments lost after the probe (resent although the probe saw them).
    pub c2s_loss_downstream: u32,
    /// Server segments lost after the probe.
    pub s2c_loss_downstream: u32,
    /// Zero-window advertisements by the client.
    pub c2s_zero_windows: u32,
    /// Zero-window advertisements by the server.
    pub s2c_zero_windows: u32,
    /// Client → server throughput while transferring (payload / active time). Mbit/s.
    pub c2s_throughput_mbps: Option<f64>,
    /// Server → client throughput while transferring. Mbit/s.
    pub s2c_throughput_mbps: Option<f64>,
    /// TLS/QUIC handshake time (ClientHello → first server application data). ms.
    pub tls_handshake_ms: Option<f32>,
    /// HTTP time to first byte. ms.
    pub http_ttfb_ms: Option<f32>,
    /// DNS response time. ms.
    pub dns_response_ms: Option<f32>,
    /// RTP loss. Percent of expected packets.
    pub rtp_loss_pct: Option<f32>,
    /// RTP interarrival jitter (RFC 3550). ms.
    pub rtp_jitter_ms: Option<f32>,
}

impl FlowRow {
    /// The row seen from its server side: client and server swapped (ports, per-direction
    /// counters, flags, RTT legs, TCP counts, throughputs), `server_ip` set to
    /// `former_client_ip`. Used when the topology knows the server side, not the client
    /// side, as a subscriber (e.g. an RTP stream whose first packet the remote end sent):
    /// the subscriber is the user, and its address never reaches `server_ip`.
    pub fn reoriented(mut self, former_client_ip: String) -> FlowRow {
        use std::mem::swap;
        self.server_ip = former_client_ip;
        swap(&mut self.client_port, &mut self.server_port);
        swap(&mut self.teid_c2s, &mut self.teid_s2c);
        swap(&mut self.c2s_pkts, &mut self.s2c_pkts);
        swap(&mut self.c2s_bytes, &mut self.s2c_bytes);
        swap(&mut self.c2s_ip_bytes, &mut self.s2c_ip_bytes);
        swap(&mut self.c2s_payload, &mut self.s2c_payload);
        swap(&mut self.c2s_tcp_flags, &mut self.s2c_tcp_flags);
        swap(&mut self.hs_rtt_client_ms, &mut self.hs_rtt_server_ms);
        swap(&mut self.rtt_client_ms, &mut self.rtt_server_ms);
        swap(&mut self.rtt_client_samples, &mut self.rtt_server_samples);
        swap(&mut self.c2s_retrans, &mut self.s2c_retrans);
        swap(&mut self.c2s_ooo, &mut self.s2c_ooo);
        swap(&mut self.c2s_loss_upstream, &mut self.s2c_loss_upstream);
        swap(&mut self.c2s_loss_downstream, &mut self.s2c_loss_downstream);
        swap(&mut self.c2s_zero_windows, &mut self.s2c_zero_windows);
        swap(&mut self.c2s_throughput_mbps, &mut self.s2c_throughput_mbps);
        self
    }

    /// Builds the lake row from a flow summary: drops `client_ip`, sets `user_key` and the
    /// elements.
    pub fn from_summary(
        s: FlowSummary,
        user_key: String,
        access_element: String,
        core_element: String,
    ) -> FlowRow {
        FlowRow {
            flow_id: s.flow_id,
            user_key,
            access_element,
            core_element,
            l4: s.l4,
            client_port: s.client_port,
            server_ip: s.server_ip,
            server_port: s.server_port,
            vlan: s.vlan,
            tunnel: s.tunnel.map(str::to_string),
            tunnel_id: s.tunnel_id,
            teid_c2s: s.teid_c2s,
            teid_s2c: s.teid_s2c,
            c2s_pkts: s.c2s_pkts,
            c2s_bytes: s.c2s_bytes,
            s2c_pkts: s.s2c_pkts,
            s2c_bytes: s.s2c_bytes,
            c2s_ip_bytes: s.c2s_ip_bytes,
            s2c_ip_bytes: s.s2c_ip_bytes,
            c2s_payload: s.c2s_payload,
            s2c_payload: s.s2c_payload,
            l7_proto: s.l7_proto.map(str::to_string),
            l7_by_port: s.l7_by_port,
            app: s.app,
            category: s.category.to_string(),
            sni: s.sni,
            host: s.host,
            alpn: s.alpn,
            tls_version: s.tls_version,
            quic_version: s.quic_version,
            http_method: s.http_method,
            http_status: s.http_status,
            dns_query: s.dns_query,
            dns_qtype: s.dns_qtype,
            dns_rcode: s.dns_rcode,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            duration_s: s.duration_s,
            end_reason: s.end_reason.to_string(),
            c2s_tcp_flags: s.c2s_tcp_flags,
            s2c_tcp_flags: s.s2c_tcp_flags,
            hs_rtt_client_ms: s.hs_rtt_client_ms,
            hs_rtt_server_ms: s.hs_rtt_server_ms,
            rtt_client_ms: s.rtt_client_ms,
            rtt_server_ms: s.rtt_server_ms,
            rtt_client_samples: s.rtt_client_samples,
            rtt_server_samples: s.rtt_server_samples,
            c2s_retrans: s.c2s_retrans,
            s2c_retrans: s.s2c_retrans,
            c2s_ooo: s.c2s_ooo,
            s2c_ooo: s.s2c_ooo,
            c2s_loss_upstream: s.c2s_loss_upstream,
            s2c_loss_upstream: s.s2c_loss_upstream,
            c2s_loss_downstream: s.c2s_loss_downstream,
            s2c_loss_downstream: s.s2c_loss_downstream,
            c2s_zero_windows: s.c2s_zero_windows,
            s2c_zero_windows: s.s2c_zero_windows,
            c2s_throughput_mbps: s.c2s_throughput_mbps,
            s2c_throughput_mbps: s.s2c_throughput_mbps,
            tls_handshake_ms: s.tls_handshake_ms,
            http_ttfb_ms: s.http_ttfb_ms,
            dns_response_ms: s.dns_response_ms,
            rtp_loss_pct: s.rtp_loss_pct,
            rtp_jitter_ms: s.rtp_jitter_ms,
        }
    }
}
