//! UDP tunnels: GTP-U, VXLAN, Geneve, Teredo and AYIYA. The carrier UDP flow is kept (as
//! Zeek logs it) and the encapsulated flow is decoded after it.

use super::transport::{Transport, TunnelKind};
use super::{be16, be32, ethernet, ip, Ctx, Decoded, Decoder, Skip};

/// GTP-U port.
const GTPU: u16 = 2152;
/// VXLAN ports (IANA and the Linux default).
const VXLAN: [u16; 2] = [4789, 8472];
/// Geneve port.
const GENEVE: u16 = 6081;
/// Teredo port.
const TEREDO: u16 = 3544;
/// AYIYA port.
const AYIYA: u16 = 5072;

/// Pushes the UDP layer `t`, and when its payload is a recognised tunnel, the inner layers.
pub(crate) fn decode_udp<'a>(
    d: &Decoder,
    mut t: Transport<'a>,
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    let p = t.payload;
    let (sp, dp) = (t.src_port, t.dst_port);
    let kind = if sp == GTPU || dp == GTPU {
        looks_gtpu(p).then_some(TunnelKind::Gtpu)
    } else if VXLAN.contains(&dp) {
        (p.len() >= 8 + 14 && p[0] & 0x08 != 0).then_some(TunnelKind::Vxlan)
    } else if dp == GENEVE || sp == GENEVE {
        (p.len() >= 8 && p[0] >> 6 == 0).then_some(TunnelKind::Geneve)
    } else if sp == TEREDO || dp == TEREDO {
        teredo_inner(p).is_some().then_some(TunnelKind::Teredo)
    } else if sp == AYIYA || dp == AYIYA {
        ayiya_inner(p).is_some().then_some(TunnelKind::Ayiya)
    } else {
        // Teredo relays use other ports: accept a strictly valid IPv6 packet that fills
        // the datagram exactly and has a Teredo (2001::/32) or link-local endpoint, as
        // Zeek's Teredo heuristic does.
        teredo_inner(p)
            .filter(|q| looks_like_teredo_ipv6(q))
            .map(|_| TunnelKind::Teredo)
    };
    let Some(kind) = kind else {
        out.push(t);
        return Ok(());
    };
    t.carrier_of = kind;
    out.push(t);
    // A carrier whose content doesn't decode still counts as its own flow.
    let _ = decode_inner(d, kind, p, ctx, out);
    Ok(())
}

fn decode_inner<'a>(
    d: &Decoder,
    kind: TunnelKind,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    match kind {
        TunnelKind::Gtpu => {
            let (teid, inner) = gtpu_inner(p).ok_or(Skip::NonIp)?;
            let mut c = ctx.inside(TunnelKind::Gtpu, 0)?;
            c.teid = teid;
            ip::decode_ip_any(d, inner, c, out)
        }
        TunnelKind::Vxlan => {
            let vni = be32(p, 4).unwrap_or(0) >> 8;
            ethernet::decode_ethernet(d, &p[8..], ctx.inside(TunnelKind::Vxlan, vni)?, out)
        }
        TunnelKind::Geneve => {
            let optlen = ((p[0] & 0x3f) as usize) * 4;
            let proto = be16(p, 2).unwrap_or(0);
            let vni = be32(p, 4).unwrap_or(0) >> 8;
            let inner = p.get(8 + optlen..).ok_or(Skip::NonIp)?;
            let c = ctx.inside(TunnelKind::Geneve, vni)?;
            match proto {
                0x6558 => ethernet::decode_ethernet(d, inner, c, out),
                _ => ethernet::decode_ethertype(d, proto, inner, c, out),
            }
        }
        TunnelKind::Teredo => {
            let inner = teredo_inner(p).ok_or(Skip::NonIp)?;
            ip::decode_ipv6(d, inner, ctx.inside(TunnelKind::Teredo, 0)?, out)
        }
        TunnelKind::Ayiya => {
            let (next, inner) = ayiya_inner(p).ok_or(Skip::NonIp)?;
            let c = ctx.inside(TunnelKind::Ayiya, 0)?;
            match next {
                4 => ip::decode_ipv4(d, inner, c, out),
                _ => ip::decode_ipv6(d, inner, c, out),
            }
        }
        _ => Err(Skip::NonIp),
    }
}

/// GTPv1 with the protocol-type bit set.
fn looks_gtpu(p: &[u8]) -> bool {
    p.len() >= 8 && p[0] >> 5 == 1 && p[0] & 0x10 != 0
}

/// TEID and T-PDU of a GTP-U G-PDU message (extension headers skipped).
fn gtpu_inner(p: &[u8]) -> Option<(u32, &[u8])> {
    if !looks_gtpu(p) || p[1] != 0xff {
        return None;
    }
    let teid = be32(p, 4)?;
    let mut off = 8usize;
    if p[0] & 0x07 != 0 {
        let mut next = *p.get(11)?;
        off = 12;
        for _ in 0..8 {
            if next == 0 {
                break;
            }
            let len = (*p.get(off)? as usize) * 4;
            if len == 0 {
                return None;
            }
            next = *p.get(off + len - 1)?;
            off += len;
        }
    }
    let inner = p.get(off..)?;
    matches!(inner.first().map(|b| b >> 4), Some(4 | 6)).then_some((teid, inner))
}

/// The IPv6 packet inside a Teredo datagram (after origin/authentication indicators).
fn teredo_inner(mut p: &[u8]) -> Option<&[u8]> {
    if p.len() >= 4 && p[0] == 0 && p[1] == 1 {
        let skip = 4 + p[2] as usize + p[3] as usize + 8 + 1;
        p = p.get(skip..)?;
    }
    if p.len() >= 8 && p[0] == 0 && p[1] == 0 {
        p = &p[8..];
    }
    if p.len() < 40 || p[0] >> 4 != 6 {
        return None;
    }
    let plen = be16(p, 4)? as usize;
    (40 + plen == p.len()).then_some(p)
}

/// An IPv6 packet plausible inside Teredo: a known next header and an endpoint in the
/// Teredo prefix 2001::/32 or link-local fe80::/10.
fn looks_like_teredo_ipv6(q: &[u8]) -> bool {
    let teredo_or_ll =
        |a: &[u8]| a[..4] == [0x20, 0x01, 0, 0] || (a[0] == 0xfe && a[1] & 0xc0 == 0x80);
    q.len() >= 40
        && matches!(q[6], 0 | 6 | 17 | 43 | 44 | 58 | 59 | 60)
        && (teredo_or_ll(&q[8..24]) || teredo_or_ll(&q[24..40]))
}

/// Next-header value and inner packet of an AYIYA forward message.
fn ayiya_inner(p: &[u8]) -> Option<(u8, &[u8])> {
    if p.len() < 8 {
        return None;
    }
    let idlen = 1usize << (p[0] >> 4);
    let siglen = ((p[1] >> 4) as usize) * 4;
    let opcode = p[2] & 0x0f;
    let next = p[3];
    if opcode != 1 || !(next == 4 || next == 41) {
        return None;
    }
    let inner = p.get(8 + idlen + siglen..)?;
    let v = inner.first()? >> 4;
    ((next == 4 && v == 4) || (next == 41 && v == 6)).then_some((next, inner))
}
