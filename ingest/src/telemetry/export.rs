//! Encoders of IPFIX and NetFlow v9 export messages with a fixed, common template (IPv4
//! and IPv6 5-tuple, counters, times). They are what an exporter sends, used to build
//! test fixtures, the decoder bench and load senders for the collector.

use super::fields::ie;
use std::net::IpAddr;

/// Largest message the encoders produce (fits a 1500-byte MTU with IP/UDP headers).
pub const MAX_MESSAGE: usize = 1400;

/// Template id of the IPv4 flow template.
pub const TEMPLATE_V4: u16 = 256;
/// Template id of the IPv6 flow template.
pub const TEMPLATE_V6: u16 = 257;

/// One flow to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportFlow {
    /// Source address (the family decides the template).
    pub src: IpAddr,
    /// Destination address (same family as `src`; else the record is skipped).
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol.
    pub l4: u8,
    /// TCP flags.
    pub tcp_flags: u8,
    /// Packets.
    pub packets: u64,
    /// Octets.
    pub bytes: u64,
    /// Start, epoch ms.
    pub start_ms: i64,
    /// End, epoch ms.
    pub end_ms: i64,
}

/// (IE, length) of the common fields after the two addresses.
const COMMON: [(u16, u16); 6] = [
    (ie::SRC_PORT, 2),
    (ie::DST_PORT, 2),
    (ie::PROTOCOL, 1),
    (ie::TCP_FLAGS, 1),
    (ie::PACKET_DELTA, 8),
    (ie::OCTET_DELTA, 8),
];

fn record_len(v6: bool) -> usize {
    let addr = if v6 { 32 } else { 8 };
    addr + COMMON.iter().map(|(_, l)| usize::from(*l)).sum::<usize>() + 16
}

fn push16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn push32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn addr_bytes(b: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
    }
}

/// Field list of the v4/v6 template; `times` are the two time fields appended.
fn template_fields(v6: bool, times: [(u16, u16); 2]) -> Vec<(u16, u16)> {
    let (s, d, l) = if v6 {
        (ie::SRC_V6, ie::DST_V6, 16)
    } else {
        (ie::SRC_V4, ie::DST_V4, 4)
    };
    let mut f = vec![(s, l), (d, l)];
    f.extend_from_slice(&COMMON);
    f.extend_from_slice(&times);
    f
}

fn family_flows(flows: &[ExportFlow], v6: bool) -> impl Iterator<Item = &ExportFlow> {
    flows
        .iter()
        .filter(move |f| f.src.is_ipv6() == v6 && f.dst.is_ipv6() == v6)
}

/// Encodes IPFIX messages of one observation domain, numbering them (RFC 7011: the
/// sequence number counts data records).
#[derive(Clone, Debug)]
pub struct IpfixEncoder {
    domain: u32,
    seq: u32,
}

impl IpfixEncoder {
    /// An encoder for observation domain `domain`, sequence starting at `seq`.
    pub fn new(domain: u32, seq: u32) -> IpfixEncoder {
        IpfixEncoder { domain, seq }
    }

    fn header(&self, b: &mut Vec<u8>, export_s: u32) {
        push16(b, 10);
        push16(b, 0); // length, patched in `finish`
        push32(b, export_s);
        push32(b, self.seq);
        push32(b, self.domain);
    }

    fn finish(b: &mut [u8]) {
        let len = (b.len().min(usize::from(u16::MAX)) as u16).to_be_bytes();
        b[2..4].copy_from_slice(&len);
    }

    /// A message defining the IPv4 and IPv6 templates (flowStart/EndMilliseconds).
    pub fn template_message(&self, export_s: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        self.header(&mut b, export_s);
        let set_start = b.len();
        push16(&mut b, 2);
        push16(&mut b, 0);
        for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
            let fields = template_fields(v6, [(ie::START_MS, 8), (ie::END_MS, 8)]);
            push16(&mut b, id);
            push16(&mut b, fields.len() as u16);
            for (f, l) in fields {
                push16(&mut b, f);
                push16(&mut b, l);
            }
        }
        let set_len = ((b.len() - set_start) as u16).to_be_bytes();
        b[set_start + 2..set_start + 4].copy_from_slice(&set_len);
        Self::finish(&mut b);
        b
    }

    /// Data messages holding `flows` (one data set per family), each at most
    /// [`MAX_MESSAGE`] bytes.
    pub fn data_messages(&mut self, export_s: u32, flows: &[ExportFlow]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (v6, id) in [(false, TEMPLATE_V4), (true, TEMPLATE_V6)] {
            let per_msg = (MAX_MESSAGE - 16 - 4) / record_len(v6);
            let fam: Vec<&ExportFlow> = family_flows(flows, v6).collect();
            for chunk in fam.chunks(per_msg.max(1)) {
                let mut b = Vec::with_capacity(MAX_MESSAGE);
                self.header(&mut b, export_s);
                push16(&mut b, id);
                push16(&mut b, (4 + chunk.len() * record_len(v6)) as u16);
                for f in chunk {
                    encode_common(&mut b, f);
                    b.extend_from_slice(&f.start_ms.to_be_bytes());
                    b.extend_from_slice(&f.end_ms.to_be_bytes());
                }
                Self::finish(&mut b);
                self.seq = self.seq.wrapping_add(chunk.len() as u32);
                out.push(b);
            }
        }
        out
    }
}

fn encode_common(b: &mut Vec<u8>, f: &ExportFlow) {
    addr_bytes(b, f.src);
    addr_bytes(b, f.dst);
    push16(b, f.src_port);
    push16(b, f.dst_port);
    b.push(f.l4);
    b.push(f.tcp_flags);
    b.extend_from_slice(&f.packets.to_be_bytes());
    b.extend_from_slice(&f.bytes.to_be_bytes());
}

/// Encodes NetFlow v9 export packets of one source id, numbering them (RFC 3954: the
/// sequence number counts packets). Flow times are sent as FIRST/LAST_SWITCHED relative
/// to the exporter's boot time.
#[derive(Clone, Debug)]
pub struct NetflowV9Encoder {
    source_id: u32,
    seq: u32,
    boot_ms: i64,
}

impl NetflowV9Encoder {
    /// An encoder for `source_id` of an exporter booted at `boot_ms` (epoch ms).
    pub fn new(source_id: u32, seq: u32, boot_ms: i64) -> NetflowV9Encoder {
        NetflowV9Encoder {
            source_id,
            seq,
            boot_ms,
        }
    }

    fn header(&mut self, b: &mut Vec<u8>, export_s: u32, count: u16) {
        let uptime = (i64::from(export_s) * 1000 - self.boot_ms) as u32;
        push16(b, 9);
        push16(b, count);
        push32(b, uptime);
        push32(b, export_s);
        push32(b, self.seq);
        push32(b, self.source_id);
        self.seq = self.seq.wrapping_add(1);
    }

    /// A packet defining the IPv4 and IPv6 templates.
    pub fn template_packet(&mut self, export_s: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        self.header(&mut b, export_s, 2);
        let set_start = b.len();
        push16(&mut b, 0);
        push16(&mut b, 0);
        for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
            let fields = template_fields(v6, [(ie::START_UPTIME, 4), (ie::END_UPTIME, 4)]);
            push16(&mut b, id);
            push16(&mut b, fields.len() as u16);
            for (f, l) in fields {
                push16(&mut b, f);
                push16(&mut b, l);
            }
        }
        let set_len = ((b.len() - set_start) as u16).to_be_bytes();
        b[set_start + 2..set_start + 4].copy_from_slice(&set_len);
        b
    }

    /// Data packets holding `flows`, each at most [`MAX_MESSAGE`] bytes.
    pub fn data_packets(&mut self, export_s: u32, flows: &[ExportFlow]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (v6, id) in [(false, TEMPLATE_V4), (true, TEMPLATE_V6)] {
            let rec = record_len(v6) - 8; // uptimes are 4 bytes each
            let per_pkt = (MAX_MESSAGE - 20 - 4) / rec;
            let fam: Vec<&ExportFlow> = family_flows(flows, v6).collect();
            for chunk in fam.chunks(per_pkt.max(1)) {
                let mut b = Vec::with_capacity(MAX_MESSAGE);
                self.header(&mut b, export_s, chunk.len() as u16);
                push16(&mut b, id);
                let body = 4 + chunk.len() * rec;
                let padded = body.next_multiple_of(4);
                push16(&mut b, padded as u16);
                for f in chunk {
                    encode_common(&mut b, f);
                    push32(&mut b, (f.start_ms - self.boot_ms) as u32);
                    push32(&mut b, (f.end_ms - self.boot_ms) as u32);
                }
                b.resize(b.len() + (padded - body), 0);
                out.push(b);
            }
        }
        out
    }
}
