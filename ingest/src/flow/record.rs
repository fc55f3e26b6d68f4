//! The records the flow table emits: a [`FlowSlice`] per active flow per window and a
//! [`FlowEnd`] when a flow expires or the input ends.

use crate::catalog::Category;
use crate::decode::TunnelKind;
use crate::dpi::DpiResult;
use crate::kpi::SliceKpi;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// What a flow is, as far as known: application, service category, required bitrate.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlowClass {
    /// Application from the catalog (by SNI/Host/DNS name, server prefix, or port).
    #[serde(serialize_with = "serialize_opt_arc_str")]
    pub app: Option<Arc<str>>,
    /// Service category (`other` when unknown).
    pub category: Category,
    /// Bitrate the application needs for good quality (video/live), Mbit/s.
    pub required_mbps: Option<f64>,
}

/// Serialises an `Option<Arc<str>>` as an optional string (serde's `rc` feature is off).
fn serialize_opt_arc_str<S: serde::Serializer>(
    v: &Option<Arc<str>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(a) => s.serialize_some(&**a),
        None => s.serialize_none(),
    }
}

/// Who a flow is: endpoints in client → server orientation, and its encapsulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowMeta {
    /// Stable id of the flow (same in its slices and its end record).
    pub flow_id: u64,
    /// IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).
    pub l4: u8,
    /// Client address (sender of the first packet; the SYN's sender for TCP).
    pub client_ip: IpAddr,
    /// Client port (0 for port-less protocols).
    pub client_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// Outermost VLAN id, when tagged.
    pub vlan: Option<u16>,
    /// Tunnel the flow was carried in.
    pub tunnel: TunnelKind,
    /// VNI / GRE key of the tunnel, when it names a virtual network.
    pub tunnel_id: u32,
    /// When this flow is itself a UDP tunnel carrier, the tunnel it carries.
    pub carrier_of: TunnelKind,
}

/// Counters of one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirCounters {
    /// Packets (an IP datagram's later fragments don't add packets).
    pub pkts: u64,
    /// Captured frame bytes, link-layer and outer tunnel headers included (as nDPI counts:
    /// frames of later IP fragments are not counted; `ip_bytes` has the whole datagram).
    pub frame_bytes: u64,
    /// IP bytes: IP total lengths of the flow's own IP header (as Zeek's `*_ip_bytes`).
    pub ip_bytes: u64,
    /// Transport payload bytes (from the IP lengths).
    pub payload_bytes: u64,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Closed by FINs in both directions, then quiet for the closing timeout.
    Fin,
    /// Reset, then quiet for the closing timeout.
    Rst,
    /// Idle for longer than its protocol's timeout.
    Idle,
    /// Evicted because the flow table was full.
    Evicted,
    /// The input ended while the flow was open.
    EndOfInput,
}

impl EndReason {
    /// Name used in outputs (`fin`, `rst`, `idle`, `evicted`, `end_of_input`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Idle => "idle",
            EndReason::Evicted => "evicted",
            EndReason::EndOfInput => "end_of_input",
        }
    }
}

/// One flow's activity within one window (minute).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowSlice {
    /// The flow.
    pub meta: FlowMeta,
    /// Start of the window, ns since the epoch.
    pub window_start_ns: u64,
    /// Client → server counters within the window.
    pub c2s: DirCounters,
    /// Server → client counters within the window.
    pub s2c: DirCounters,
    /// Application-layer protocol as known at the end of the window.
    pub l7_proto: Option<&'static str>,
    /// Application and category as known at the end of the window.
    pub class: FlowClass,
    /// Experience KPIs of the flow within the window.
    pub kpi: SliceKpi,
}

/// A finished flow with its totals and what DPI learnt about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowEnd {
    /// The flow.
    pub meta: FlowMeta,
    /// First packet time, ns since the epoch.
    pub first_ts_ns: u64,
    /// Last packet time, ns since the epoch.
    pub last_ts_ns: u64,
    /// Client → server totals.
    pub c2s: DirCounters,
    /// Server → client totals.
    pub s2c: DirCounters,
    /// Union of TCP flags sent by the client.
    pub c2s_tcp_flags: u8,
    /// Union of TCP flags sent by the server.
    pub s2c_tcp_flags: u8,
    /// GTP-U TEIDs seen in the client → server and server → client directions.
    pub teids: [u32; 2],
    /// Why the flow ended.
    pub end_reason: EndReason,
    /// DPI results (protocol, SNI, host, …); default when no payload was inspected.
    pub dpi: DpiResult,
    /// Application and category.
    pub class: FlowClass,
    /// Experience KPIs over the flow's whole life.
    pub kpi: SliceKpi,
}

/// A record of the flow stream.
// Slices are the frequent record and stay unboxed; the rarer, larger end is boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum FlowRecord {
    /// A flow's counters for one window.
    Slice(FlowSlice),
    /// A flow's end.
    End(Box<FlowEnd>),
}

/// Consumer of the flow stream.
pub trait FlowSink {
    /// Receives one record, in event-time order per flow.
    fn record(&mut self, r: FlowRecord);
}

impl<F: FnMut(FlowRecord)> FlowSink for F {
    fn record(&mut self, r: FlowRecord) {
        self(r)
    }
}

impl FlowSink for Vec<FlowRecord> {
    fn record(&mut self, r: FlowRecord) {
        self.push(r)
    }
}
