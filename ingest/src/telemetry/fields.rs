//! Information elements cemflow maps (IANA ids shared by NetFlow v9 and IPFIX below 128),
//! the decoded record ([`FlowTelemetry`]), and the per-field decoding step.

use super::wire::{u32_at, uint};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// IANA information element ids used by cemflow (RFC 5102 / IANA IPFIX registry; ids
/// below 128 are the NetFlow v9 field types of RFC 3954).
pub mod ie {
    /// octetDeltaCount (v9 IN_BYTES).
    pub const OCTET_DELTA: u16 = 1;
    /// packetDeltaCount (v9 IN_PKTS).
    pub const PACKET_DELTA: u16 = 2;
    /// protocolIdentifier.
    pub const PROTOCOL: u16 = 4;
    /// ipClassOfService.
    pub const TOS: u16 = 5;
    /// tcpControlBits.
    pub const TCP_FLAGS: u16 = 6;
    /// sourceTransportPort.
    pub const SRC_PORT: u16 = 7;
    /// sourceIPv4Address.
    pub const SRC_V4: u16 = 8;
    /// ingressInterface.
    pub const INPUT_IF: u16 = 10;
    /// destinationTransportPort.
    pub const DST_PORT: u16 = 11;
    /// destinationIPv4Address.
    pub const DST_V4: u16 = 12;
    /// egressInterface.
    pub const OUTPUT_IF: u16 = 14;
    /// bgpSourceAsNumber.
    pub const SRC_AS: u16 = 16;
    /// bgpDestinationAsNumber.
    pub const DST_AS: u16 = 17;
    /// flowEndSysUpTime (v9 LAST_SWITCHED), ms of exporter uptime.
    pub const END_UPTIME: u16 = 21;
    /// flowStartSysUpTime (v9 FIRST_SWITCHED).
    pub const START_UPTIME: u16 = 22;
    /// sourceIPv6Address.
    pub const SRC_V6: u16 = 27;
    /// destinationIPv6Address.
    pub const DST_V6: u16 = 28;
    /// vlanId.
    pub const VLAN: u16 = 58;
    /// flowDirection.
    pub const DIRECTION: u16 = 61;
    /// octetTotalCount.
    pub const OCTET_TOTAL: u16 = 85;
    /// packetTotalCount.
    pub const PACKET_TOTAL: u16 = 86;
    /// flowStartSeconds.
    pub const START_S: u16 = 150;
    /// flowEndSeconds.
    pub const END_S: u16 = 151;
    /// flowStartMilliseconds.
    pub const START_MS: u16 = 152;
    /// flowEndMilliseconds.
    pub const END_MS: u16 = 153;
    /// flowStartMicroseconds (NTP format).
    pub const START_US: u16 = 154;
    /// flowEndMicroseconds (NTP format).
    pub const END_US: u16 = 155;
    /// flowStartNanoseconds (NTP format).
    pub const START_NS: u16 = 156;
    /// flowEndNanoseconds (NTP format).
    pub const END_NS: u16 = 157;
    /// flowStartDeltaMicroseconds (before the export time).
    pub const START_DELTA_US: u16 = 158;
    /// flowEndDeltaMicroseconds.
    pub const END_DELTA_US: u16 = 159;
    /// systemInitTimeMilliseconds (absolute time of uptime 0).
    pub const SYSTEM_INIT_MS: u16 = 160;
    /// flowDurationMilliseconds.
    pub const DURATION_MS: u16 = 161;
    /// dot1qVlanId.
    pub const DOT1Q_VLAN: u16 = 243;
}

/// Length value of a variable-length field in a template (RFC 7011 §7).
pub(crate) const VARIABLE: u16 = 65535;

/// Seconds between the NTP epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

/// What cemflow does with one template field (resolved once per template).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    L4,
    Tos,
    TcpFlags,
    SrcPort,
    DstPort,
    SrcV4,
    DstV4,
    SrcV6,
    DstV6,
    InputIf,
    OutputIf,
    SrcAs,
    DstAs,
    Vlan,
    Direction,
    StartUptime,
    EndUptime,
    StartS,
    EndS,
    StartMs,
    EndMs,
    StartNtp,
    EndNtp,
    StartDeltaUs,
    EndDeltaUs,
    SystemInitMs,
    DurationMs,
    /// Enterprise-specific field, kept raw.
    Enterprise,
    /// Any other IANA field: skipped.
    Other,
}

impl FieldKind {
    /// The kind of IANA field `id` (`pen` = 0) or of an enterprise field.
    pub(crate) fn of(id: u16, pen: u32) -> FieldKind {
        if pen != 0 {
            return FieldKind::Enterprise;
        }
        match id {
            ie::OCTET_DELTA => FieldKind::Bytes,
            ie::PACKET_DELTA => FieldKind::Packets,
            ie::OCTET_TOTAL => FieldKind::BytesTotal,
            ie::PACKET_TOTAL => FieldKind::PacketsTotal,
            ie::PROTOCOL => FieldKind::L4,
            ie::TOS => FieldKind::Tos,
            ie::TCP_FLAGS => FieldKind::TcpFlags,
            ie::SRC_PORT => FieldKind::SrcPort,
            ie::DST_PORT => FieldKind::DstPort,
            ie::SRC_V4 => FieldKind::SrcV4,
            ie::DST_V4 => FieldKind::DstV4,
            ie::SRC_V6 => FieldKind::SrcV6,
            ie::DST_V6 => FieldKind::DstV6,
            ie::INPUT_IF => FieldKind::InputIf,
            ie::OUTPUT_IF => FieldKind::OutputIf,
            ie::SRC_AS => FieldKind::SrcAs,
            ie::DST_AS => FieldKind::DstAs,
            ie::VLAN | ie::DOT1Q_VLAN => FieldKind::Vlan,
            ie::DIRECTION => FieldKind::Direction,
            ie::START_UPTIME => FieldKind::StartUptime,
            ie::END_UPTIME => FieldKind::EndUptime,
            ie::START_S => FieldKind::StartS,
            ie::END_S => FieldKind::EndS,
            ie::START_MS => FieldKind::StartMs,
            ie::END_MS => FieldKind::EndMs,
            ie::START_US | ie::START_NS => FieldKind::StartNtp,
            ie::END_US | ie::END_NS => FieldKind::EndNtp,
            ie::START_DELTA_US => FieldKind::StartDeltaUs,
            ie::END_DELTA_US => FieldKind::EndDeltaUs,
            ie::SYSTEM_INIT_MS => FieldKind::SystemInitMs,
            ie::DURATION_MS => FieldKind::DurationMs,
            _ => FieldKind::Other,
        }
    }
}

/// The flow fields of one data record. Absent fields are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFields {
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source transport port.
    pub src_port: Option<u16>,
    /// Destination transport port.
    pub dst_port: Option<u16>,
    /// IP protocol number.
    pub l4: Option<u8>,
    /// Octets (`octetDeltaCount`, else `octetTotalCount`).
    pub bytes: Option<u64>,
    /// Packets (`packetDeltaCount`, else `packetTotalCount`).
    pub packets: Option<u64>,
    /// TCP flags (low 8 bits of `tcpControlBits`).
    pub tcp_flags: Option<u8>,
    /// IP ToS / traffic class.
    pub tos: Option<u8>,
    /// Ingress ifIndex.
    pub input_if: Option<u32>,
    /// Egress ifIndex.
    pub output_if: Option<u32>,
    /// VLAN id.
    pub vlan: Option<u16>,
    /// Source BGP AS.
    pub src_as: Option<u32>,
    /// Destination BGP AS.
    pub dst_as: Option<u32>,
    /// Flow direction (0 ingress, 1 egress).
    pub direction: Option<u8>,
    /// Flow start, epoch ms (absolute fields, export-time deltas or exporter uptime).
    pub flow_start_ms: Option<i64>,
    /// Flow end, epoch ms.
    pub flow_end_ms: Option<i64>,
    /// Enterprise-specific fields, raw: `<pen>.<id>=<hex>` separated by spaces, in
    /// template order; `None` when the template has none.
    pub enterprise: Option<String>,
}

/// One decoded flow record with the message context it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTelemetry {
    /// Exporter (UDP source address and port).
    pub exporter: SocketAddr,
    /// Observation domain id (IPFIX) or source id (NetFlow v9).
    pub domain: u32,
    /// 9 or 10.
    pub version: u16,
    /// Export time of the message, epoch seconds.
    pub export_ts_s: i64,
    /// The record's fields.
    pub fields: FlowFields,
}

/// Time fields of a record before they are resolved to epoch ms.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RecordTimes {
    start_uptime: Option<u32>,
    end_uptime: Option<u32>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    start_delta_us: Option<u64>,
    end_delta_us: Option<u64>,
    pub(crate) system_init_ms: Option<i64>,
    duration_ms: Option<u64>,
}

/// Header values the times of a record are relative to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeBase {
    /// Export time, epoch seconds.
    pub export_s: i64,
    /// NetFlow v9 header sysUptime (ms); `None` for IPFIX.
    pub sys_uptime_ms: Option<u32>,
    /// Exporter's systemInitTimeMilliseconds learnt from options data (IPFIX).
    pub system_init_ms: Option<i64>,
}

impl RecordTimes {
    /// Resolves start/end to epoch ms.
    pub(crate) fn resolve(&self, base: &TimeBase) -> (Option<i64>, Option<i64>) {
        let export_ms = base.export_s.saturating_mul(1000);
        let from_uptime = |up: u32| -> Option<i64> {
            if let Some(sys) = base.sys_uptime_ms {
                // v9: uptime counters wrap at 2^32 ms (≈ 49.7 days).
                Some(export_ms - i64::from(sys.wrapping_sub(up)))
            } else {
                self.system_init_ms
                    .or(base.system_init_ms)
                    .map(|init| init.saturating_add(i64::from(up)))
            }
        };
        let from_delta = |d: u64| export_ms.saturating_sub((d / 1000).min(i64::MAX as u64) as i64);
        let start = self
            .start_ms
            .or_else(|| self.start_delta_us.map(from_delta))
            .or_else(|| self.start_uptime.and_then(from_uptime));
        let mut end = self
            .end_ms
            .or_else(|| self.end_delta_us.map(from_delta))
            .or_else(|| self.end_uptime.and_then(from_uptime));
        if end.is_none() {
            if let (Some(s), Some(d)) = (start, self.duration_ms) {
                end = Some(s.saturating_add(d.min(i64::MAX as u64) as i64));
            }
        }
        (start, end)
    }
}

/// An NTP 64-bit timestamp (RFC 7011 §6.1.9/§6.1.10) as epoch ms.
fn ntp_ms(v: &[u8]) -> Option<i64> {
    let secs = i64::from(u32_at(v, 0)?);
    let frac = u64::from(u32_at(v, 4)?);
    Some((secs - NTP_UNIX_OFFSET_S) * 1000 + ((frac * 1000) >> 32) as i64)
}

fn addr_v4(v: &[u8]) -> Option<IpAddr> {
    let a: [u8; 4] = v.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(a)))
}

fn addr_v6(v: &[u8]) -> Option<IpAddr> {
    let a: [u8; 16] = v.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(a)))
}

fn small<T: TryFrom<u64>>(v: &[u8]) -> Option<T> {
    uint(v).and_then(|x| T::try_from(x).ok())
}

/// Applies one field value to the record being decoded. Values of an unexpected length
/// are ignored (the field stays `None`), never an error.
#[inline]
pub(crate) fn apply(
    kind: FieldKind,
    id: u16,
    pen: u32,
    v: &[u8],
    f: &mut FlowFields,
    t: &mut RecordTimes,
) {
    match kind {
        FieldKind::Bytes => f.bytes = uint(v),
        FieldKind::Packets => f.packets = uint(v),
        FieldKind::BytesTotal => {
            if f.bytes.is_none() {
                f.bytes = uint(v)
            }
        }
        FieldKind::PacketsTotal => {
            if f.packets.is_none() {
                f.packets = uint(v)
            }
        }
        FieldKind::L4 => f.l4 = small(v),
        FieldKind::Tos => f.tos = small(v),
        // tcpControlBits may be 2 bytes (RFC 7125): the flags proper are the low 8 bits.
        FieldKind::TcpFlags => f.tcp_flags = uint(v).map(|x| (x & 0xff) as u8),
        FieldKind::SrcPort => f.src_port = small(v),
        FieldKind::DstPort => f.dst_port = small(v),
        FieldKind::SrcV4 => f.src = addr_v4(v).or(f.src),
        FieldKind::DstV4 => f.dst = addr_v4(v).or(f.dst),
        FieldKind::SrcV6 => f.src = addr_v6(v).or(f.src),
        FieldKind::DstV6 => f.dst = addr_v6(v).or(f.dst),
        FieldKind::InputIf => f.input_if = small(v),
        FieldKind::OutputIf => f.output_if = small(v),
        FieldKind::SrcAs => f.src_as = small(v),
        FieldKind::DstAs => f.dst_as = small(v),
        FieldKind::Vlan => f.vlan = small::<u16>(v).map(|x| x & 0x0fff).or(f.vlan),
        FieldKind::Direction => f.direction = small(v),
        FieldKind::StartUptime => t.start_uptime = small(v),
        FieldKind::EndUptime => t.end_uptime = small(v),
        FieldKind::StartS => t.start_ms = small::<i64>(v).map(|s| s.saturating_mul(1000)),
        FieldKind::EndS => t.end_ms = small::<i64>(v).map(|s| s.saturating_mul(1000)),
        FieldKind::StartMs => t.start_ms = small(v),
        FieldKind::EndMs => t.end_ms = small(v),
        FieldKind::StartNtp => t.start_ms = ntp_ms(v),
        FieldKind::EndNtp => t.end_ms = ntp_ms(v),
        FieldKind::StartDeltaUs => t.start_delta_us = uint(v),
        FieldKind::EndDeltaUs => t.end_delta_us = uint(v),
        FieldKind::SystemInitMs => t.system_init_ms = small(v),
        FieldKind::DurationMs => t.duration_ms = uint(v),
        FieldKind::Enterprise => {
            let s = f.enterprise.get_or_insert_with(String::new);
            if !s.is_empty() {
                s.push(' ');
            }
            let _ = write!(s, "{pen}.{id}=");
            for b in v {
                let _ = write!(s, "{b:02x}");
            }
        }
        FieldKind::Other => {}
    }
}
