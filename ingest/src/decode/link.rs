//! Link-layer types of captures and their headers (Ethernet, Linux cooked v1/v2, raw IP,
//! BSD null/loopback, PPP).

use super::{be16, ethernet, ip, ppp, Ctx, Decoded, Decoder, Skip};

/// A capture's link type (pcap LINKTYPE_* / DLT_* number), as the decoder understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_LINUX_SLL (113).
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276).
    LinuxSll2,
    /// Raw IP, version from the first nibble (LINKTYPE_RAW 101, DLT_RAW 12/14).
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// BSD loopback with a host-order family word (LINKTYPE_NULL 0).
    Null,
    /// OpenBSD loopback with a network-order family word (LINKTYPE_LOOP 108).
    Loop,
    /// PPP with or without HDLC framing (LINKTYPE_PPP 9, PPP_HDLC 50, PPP_PPPD 166).
    Ppp,
    /// Any other link type: frames are skipped as unsupported.
    Other(u32),
}

impl LinkType {
    /// Maps a pcap LINKTYPE number.
    pub fn from_linktype(n: u32) -> LinkType {
        match n {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            101 | 12 | 14 => LinkType::Raw,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            9 | 50 | 166 => LinkType::Ppp,
            other => LinkType::Other(other),
        }
    }
}

/// Decodes the link header and everything inside it.
pub(crate) fn decode_link<'a>(
    d: &Decoder,
    lt: LinkType,
    f: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    match lt {
        LinkType::Ethernet => ethernet::decode_ethernet(d, f, ctx, out),
        LinkType::LinuxSll => {
            let proto = be16(f, 14).ok_or(Skip::TruncatedLink)?;
            ethernet::decode_ethertype(d, proto, &f[16..], ctx, out)
        }
        LinkType::LinuxSll2 => {
            let proto = be16(f, 0).ok_or(Skip::TruncatedLink)?;
            if f.len() < 20 {
                return Err(Skip::TruncatedLink);
            }
            ethernet::decode_ethertype(d, proto, &f[20..], ctx, out)
        }
        LinkType::Raw => ip::decode_ip_any(d, f, ctx, out),
        LinkType::Ipv4 => ip::decode_ipv4(d, f, ctx, out),
        LinkType::Ipv6 => ip::decode_ipv6(d, f, ctx, out),
        LinkType::Null | LinkType::Loop => {
            let w = f.get(..4).ok_or(Skip::TruncatedLink)?;
            let be = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            let le = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let fam = if lt == LinkType::Loop || be < 256 {
                be
            } else {
                le
            };
            match fam {
                2 => ip::decode_ipv4(d, &f[4..], ctx, out),
                // AF_INET6 differs per OS: Linux/BSD 10/24/28/30.
                10 | 24 | 28 | 30 => ip::decode_ipv6(d, &f[4..], ctx, out),
                _ => Err(Skip::NonIp),
            }
        }
        LinkType::Ppp => ppp::decode_ppp_frame(d, f, ctx, out),
        LinkType::Other(_) => Err(Skip::UnsupportedLinkType),
    }
}
