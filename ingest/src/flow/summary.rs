//! The flat, named record of one finished flow: what `cemflow flows` prints and what the
//! lake's `flows` table stores. Field names follow SPEC §4.

use super::record::FlowEnd;
use serde::Serialize;

/// One finished flow, flattened for output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowSummary {
    /// Stable flow id (joins `flows` with slices).
    pub flow_id: String,
    /// IP protocol number.
    pub l4: u8,
    /// Client address.
    pub client_ip: String,
    /// Client port.
    pub client_port: u16,
    /// Server address.
    pub server_ip: String,
    /// Server port.
    pub server_port: u16,
    /// Outermost VLAN id.
    pub vlan: Option<u16>,
    /// Tunnel kind carrying the flow (`gtpu`, `vxlan`, `gre`, `ipip`, `teredo`, …).
    pub tunnel: Option<&'static str>,
    /// VNI / GRE key when the tunnel names a virtual network.
    pub tunnel_id: Option<u32>,
    /// GTP-U TEID of the client → server direction.
    pub teid_c2s: Option<u32>,
    /// GTP-U TEID of the server → client direction.
    pub teid_s2c: Option<u32>,
    /// Client → server packets.
    pub c2s_pkts: u64,
    /// Client → server frame bytes (link layer included, as nDPI counts).
    pub c2s_bytes: u64,
    /// Server → client packets.
    pub s2c_pkts: u64,
    /// Server → client frame bytes.
    pub s2c_bytes: u64,
    /// Client → server IP bytes (as Zeek's `orig_ip_bytes`).
    pub c2s_ip_bytes: u64,
    /// Server → client IP bytes.
    pub s2c_ip_bytes: u64,
    /// Client → server transport payload bytes.
    pub c2s_payload: u64,
    /// Server → client transport payload bytes.
    pub s2c_payload: u64,
    /// Application protocol (nDPI-style name), when identified.
    pub l7_proto: Option<&'static str>,
    /// True when `l7_proto` is only a guess from the port.
    pub l7_by_port: bool,
    /// Application (catalog name).
    pub app: Option<String>,
    /// Service category (`video`, `live`, `gaming`, `voice`, `web`, `download`, `other`).
    pub category: &'static str,
    /// TLS/QUIC server name.
    pub sni: Option<String>,
    /// HTTP Host.
    pub host: Option<String>,
    /// TLS/QUIC ALPN.
    pub alpn: Option<String>,
    /// TLS version (e.g. `1.3`).
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
    /// Duration in seconds.
    pub duration_s: f64,
    /// Why the flow ended (`fin`, `rst`, `idle`, `evicted`, `end_of_input`).
    pub end_reason: &'static str,
    /// TCP flags sent by the client (union).
    pub c2s_tcp_flags: Option<u8>,
    /// TCP flags sent by the server (union).
    pub s2c_tcp_flags: Option<u8>,
    /// Handshake client-leg RTT (ACK − SYN/ACK), ms.
    pub hs_rtt_client_ms: Option<f32>,
    /// Handshake server-leg RTT (SYN/ACK − SYN), ms.
    pub hs_rtt_server_ms: Option<f32>,
    /// Mean running client-leg RTT (server data → client ACK), ms.
    pub rtt_client_ms: Option<f32>,
    /// Mean running server-leg RTT (client data → server ACK), ms.
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
    /// Client → server throughput while transferring (payload / active time), Mbit/s.
    pub c2s_throughput_mbps: Option<f64>,
    /// Server → client throughput while transferring, Mbit/s.
    pub s2c_throughput_mbps: Option<f64>,
    /// TLS/QUIC handshake time (ClientHello → first server application data), ms.
    pub tls_handshake_ms: Option<f32>,
    /// HTTP time to first byte, ms.
    pub http_ttfb_ms: Option<f32>,
    /// DNS response time, ms.
    pub dns_response_ms: Option<f32>,
    /// RTP loss, percent of expected packets.
    pub rtp_loss_pct: Option<f32>,
    /// RTP interarrival jitter (RFC 3550), ms.
    pub rtp_jitter_ms: Option<f32>,
}

impl FlowSummary {
    /// Flattens a flow end (classified by the flow table's catalog).
    pub fn from_end(e: &FlowEnd) -> FlowSummary {
        let d = &e.dpi;
        let m = &e.meta;
        let tcp = m.l4 == 6;
        let k = &e.kpi;
        FlowSummary {
            flow_id: format!("{:016x}", m.flow_id),
            l4: m.l4,
            client_ip: m.client_ip.to_string(),
            client_port: m.client_port,
            server_ip: m.server_ip.to_string(),
            server_port: m.server_port,
            vlan: m.vlan,
            tunnel: m.tunnel.name(),
            tunnel_id: (m.tunnel_id != 0).then_some(m.tunnel_id),
            teid_c2s: (e.teids[0] != 0).then_some(e.teids[0]),
            teid_s2c: (e.teids[1] != 0).then_some(e.teids[1]),
            c2s_pkts: e.c2s.pkts,
            c2s_bytes: e.c2s.frame_bytes,
            s2c_pkts: e.s2c.pkts,
            s2c_bytes: e.s2c.frame_bytes,
            c2s_ip_bytes: e.c2s.ip_bytes,
            s2c_ip_bytes: e.s2c.ip_bytes,
            c2s_payload: e.c2s.payload_bytes,
            s2c_payload: e.s2c.payload_bytes,
            l7_proto: d.l7_proto,
            l7_by_port: d.guessed_by_port,
            app: e.class.app.as_deref().map(str::to_string),
            category: e.class.category.as_str(),
            sni: d.sni.as_deref().map(str::to_string),
            host: d.host.as_deref().map(str::to_string),
            alpn: d.alpn.as_deref().map(str::to_string),
            tls_version: d.tls_version.map(tls_version_name),
            quic_version: d.quic_version.map(|v| format!("{v:#010x}")),
            http_method: d.http_method.as_deref().map(str::to_string),
            http_status: d.http_status,
            dns_query: d.dns_qname.as_deref().map(str::to_string),
            dns_qtype: d.dns_qtype,
            dns_rcode: d.dns_rcode,
            first_ts: rfc3339_micros(e.first_ts_ns),
            last_ts: rfc3339_micros(e.last_ts_ns),
            duration_s: e.last_ts_ns.saturating_sub(e.first_ts_ns) as f64 / 1e9,
            end_reason: e.end_reason.as_str(),
            c2s_tcp_flags: tcp.then_some(e.c2s_tcp_flags),
            s2c_tcp_flags: tcp.then_some(e.s2c_tcp_flags),
            hs_rtt_client_ms: k.hs_rtt_client_ms,
            hs_rtt_server_ms: k.hs_rtt_server_ms,
            rtt_client_ms: k.rtt_client_ms(),
            rtt_server_ms: k.rtt_server_ms(),
            rtt_client_samples: k.rtt_client_samples,
            rtt_server_samples: k.rtt_server_samples,
            c2s_retrans: k.retransmissions[0],
            s2c_retrans: k.retransmissions[1],
            c2s_ooo: k.out_of_order[0],
            s2c_ooo: k.out_of_order[1],
            c2s_loss_upstream: k.loss_upstream[0],
            s2c_loss_upstream: k.loss_upstream[1],
            c2s_loss_downstream: k.loss_downstream[0],
            s2c_loss_downstream: k.loss_downstream[1],
            c2s_zero_windows: k.zero_windows[0],
            s2c_zero_windows: k.zero_windows[1],
            c2s_throughput_mbps: mbps(e.c2s.payload_bytes, k.active_ns[0]),
            s2c_throughput_mbps: mbps(e.s2c.payload_bytes, k.active_ns[1]),
            tls_handshake_ms: k.tls_handshake_ms,
            http_ttfb_ms: k.http_ttfb_ms,
            dns_response_ms: k.dns_response_ms,
            rtp_loss_pct: (k.rtp_expected > 0)
                .then(|| 100.0 * k.rtp_lost as f32 / k.rtp_expected as f32),
            rtp_jitter_ms: k.rtp_jitter_ms,
        }
    }
}

/// Throughput in Mbit/s of `bytes` moved in `active_ns`; `None` without active time.
pub fn mbps(bytes: u64, active_ns: u64) -> Option<f64> {
    (active_ns > 0).then(|| bytes as f64 * 8.0 / (active_ns as f64 / 1e9) / 1e6)
}

/// `0x0303` → `"1.2"`, SSL 3.0 → `"ssl3"`, others as hex.
fn tls_version_name(v: u16) -> String {
    match v {
        0x0300 => "ssl3".into(),
        0x0301 => "1.0".into(),
        0x0302 => "1.1".into(),
        0x0303 => "1.2".into(),
        0x0304 => "1.3".into(),
        other => format!("{other:#06x}"),
    }
}

/// Formats ns since the epoch as RFC 3339 UTC with microseconds, without a date library.
pub fn rfc3339_micros(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            rfc3339_micros(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
