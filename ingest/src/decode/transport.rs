//! The transport-level view of one packet (addresses, ports, lengths, TCP header fields),
//! and the TCP/UDP/ICMP/SCTP header parsers that fill it.

use super::{be16, be32, Skip};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Encapsulation a flow was carried in (or, for a carrier layer, the tunnel it carries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum TunnelKind {
    /// Not tunnelled.
    #[default]
    None = 0,
    /// GTP-U (3GPP user plane, UDP 2152).
    Gtpu = 1,
    /// VXLAN (UDP 4789/8472).
    Vxlan = 2,
    /// Geneve (UDP 6081).
    Geneve = 3,
    /// GRE (incl. ERSPAN, PPTP enhanced GRE).
    Gre = 4,
    /// IPv4/IPv6 in IPv4/IPv6.
    IpIp = 5,
    /// Teredo (IPv6 in UDP 3544).
    Teredo = 6,
    /// AYIYA (UDP 5072).
    Ayiya = 7,
}

impl TunnelKind {
    /// Lower-case name as used in flow output (`gtpu`, `vxlan`, …); `None` for no tunnel.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            TunnelKind::None => return None,
            TunnelKind::Gtpu => "gtpu",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::IpIp => "ipip",
            TunnelKind::Teredo => "teredo",
            TunnelKind::Ayiya => "ayiya",
        })
    }

    /// Protocol name of a carrier flow of this tunnel (`l7_proto` of the outer UDP flow).
    pub fn carrier_proto(self) -> Option<&'static str> {
        Some(match self {
            TunnelKind::Gtpu => "GTP",
            TunnelKind::Vxlan => "VXLAN",
            TunnelKind::Geneve => "Geneve",
            TunnelKind::Teredo => "Teredo",
            TunnelKind::Ayiya => "AYIYA",
            _ => return None,
        })
    }

    /// Inverse of `as u8`.
    pub fn from_u8(v: u8) -> TunnelKind {
        match v {
            1 => TunnelKind::Gtpu,
            2 => TunnelKind::Vxlan,
            3 => TunnelKind::Geneve,
            4 => TunnelKind::Gre,
            5 => TunnelKind::IpIp,
            6 => TunnelKind::Teredo,
            7 => TunnelKind::Ayiya,
            _ => TunnelKind::None,
        }
    }
}

/// TCP header fields the flow table and KPIs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE, CWR).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Receive window (unscaled).
    pub window: u16,
}

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// One packet as a flow sees it: a borrowed view, no copies of payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Transport<'a> {
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address (IPv4 in the first 4 bytes, rest zero).
    pub src: [u8; 16],
    /// Destination address (same layout).
    pub dst: [u8; 16],
    /// IP protocol number of the transport (6 TCP, 17 UDP, 1 ICMP, …).
    pub proto: u8,
    /// Source port (0 for port-less protocols and non-first fragments until attributed).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP bytes of this packet as Zeek counts them (IP total length; for a non-first
    /// fragment only its payload, so a datagram's fragments add up to its reassembled size).
    pub ip_len: u32,
    /// L4 payload length on the wire (from the IP length), whatever was captured.
    pub payload_len: u32,
    /// Captured L4 payload (may be shorter than `payload_len` under a snaplen).
    pub payload: &'a [u8],
    /// TCP header fields, for TCP.
    pub tcp: Option<TcpInfo>,
    /// Tunnel this packet was carried in.
    pub tunnel: TunnelKind,
    /// Tunnel id when it identifies a virtual network (VXLAN/Geneve VNI, GRE key); part of the flow key.
    pub tunnel_id: u32,
    /// GTP-U TEID of the carrying tunnel (recorded, not part of the key: it differs per direction).
    pub teid: u32,
    /// Set when this layer is itself the carrier of a UDP tunnel.
    pub carrier_of: TunnelKind,
    /// IP fragment information.
    pub frag: Fragment,
    /// The TCP/UDP header was cut short (tiny fragment, snaplen): the packet counts in a
    /// port-less flow of its addresses, as nDPI does.
    pub l4_truncated: bool,
}

/// IPv4/IPv6 fragmentation state of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fragment {
    /// Not a fragment.
    #[default]
    No,
    /// First fragment (offset 0, more fragments): carries the L4 header.
    First {
        /// IP identification.
        id: u32,
    },
    /// A later fragment: no L4 header; ports must come from the first fragment.
    Later {
        /// IP identification.
        id: u32,
        /// Offset of this fragment's data in the datagram's IP payload, bytes.
        offset: u32,
        /// More fragments follow (this is not the datagram's last fragment).
        more: bool,
    },
}

impl Transport<'_> {
    /// Source address as an [`IpAddr`].
    pub fn src_ip(&self) -> IpAddr {
        addr(self.ip_version, &self.src)
    }

    /// Destination address as an [`IpAddr`].
    pub fn dst_ip(&self) -> IpAddr {
        addr(self.ip_version, &self.dst)
    }
}

/// Builds an [`IpAddr`] from the 16-byte address layout used in flow keys.
pub fn addr(version: u8, b: &[u8; 16]) -> IpAddr {
    if version == 6 {
        IpAddr::V6(Ipv6Addr::from(*b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// Fills ports, TCP fields and payload for the L4 header at the start of `l4`.
/// `wire_len` is the L4 length according to the IP header.
pub(crate) fn parse_l4<'a>(t: &mut Transport<'a>, l4: &'a [u8], wire_len: u32) -> Result<(), Skip> {
    match t.proto {
        6 | 17 | 136 if l4.len() < if t.proto == 6 { 20 } else { 8 } => {
            t.l4_truncated = true;
            t.payload_len = wire_len;
        }
        6 => {
            t.src_port = be16(l4, 0).unwrap_or(0);
            t.dst_port = be16(l4, 2).unwrap_or(0);
            let data_off = ((l4[12] >> 4) as usize) * 4;
            t.tcp = Some(TcpInfo {
                flags: l4[13],
                seq: be32(l4, 4).unwrap_or(0),
                ack: be32(l4, 8).unwrap_or(0),
                window: be16(l4, 14).unwrap_or(0),
            });
            let hdr = data_off.max(20);
            t.payload_len = wire_len.saturating_sub(hdr as u32);
            t.payload = bounded(l4, hdr, t.payload_len);
        }
        17 | 136 => {
            // UDP and UDP-Lite share the port layout.
            t.src_port = be16(l4, 0).unwrap_or(0);
            t.dst_port = be16(l4, 2).unwrap_or(0);
            t.payload_len = wire_len.saturating_sub(8);
            t.payload = bounded(l4, 8, t.payload_len);
        }
        132 => {
            // SCTP: common header has ports; chunks are the payload.
            if l4.len() >= 4 {
                t.src_port = be16(l4, 0).unwrap_or(0);
                t.dst_port = be16(l4, 2).unwrap_or(0);
            }
            t.payload_len = wire_len.saturating_sub(12);
            t.payload = bounded(l4, 12, t.payload_len);
        }
        1 | 58 => {
            // ICMP: Zeek-style "ports": a request/reply pair shares (request, reply) types
            // so both directions meet in one flow; other messages are (type, code).
            if let (Some(&ty), Some(&code)) = (l4.first(), l4.get(1)) {
                let (sp, dp) = icmp_ports(t.proto == 58, ty, code);
                t.src_port = sp;
                t.dst_port = dp;
            }
            t.payload_len = wire_len;
            t.payload = bounded(l4, 0, wire_len);
        }
        _ => {
            // Other protocols: port-less, keyed on addresses (as nDPI does).
            t.payload_len = wire_len;
            t.payload = bounded(l4, 0, wire_len);
        }
    }
    Ok(())
}

/// Request/reply message pairs of ICMPv4 and ICMPv6 (request type, reply type).
const ICMP4_PAIRS: [(u8, u8); 5] = [(8, 0), (13, 14), (15, 16), (17, 18), (10, 9)];
const ICMP6_PAIRS: [(u8, u8); 5] = [(128, 129), (133, 134), (135, 136), (130, 131), (139, 140)];

/// The (source, destination) "ports" of an ICMP message, as Zeek assigns them.
fn icmp_ports(v6: bool, ty: u8, code: u8) -> (u16, u16) {
    let pairs = if v6 { &ICMP6_PAIRS } else { &ICMP4_PAIRS };
    for &(req, rep) in pairs {
        if ty == req {
            return (req as u16, rep as u16);
        }
        if ty == rep {
            return (rep as u16, req as u16);
        }
    }
    (ty as u16, code as u16)
}

/// `b[start..]` cut to at most `len` bytes; empty when `start` is past the end.
#[inline]
pub(crate) fn bounded(b: &[u8], start: usize, len: u32) -> &[u8] {
    match b.get(start..) {
        Some(s) => &s[..s.len().min(len as usize)],
        None => &[],
    }
}
