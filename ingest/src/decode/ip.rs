//! IPv4 and IPv6 headers (options, extension headers, fragments) and the dispatch of their
//! payload to transports, IP-in-IP and GRE.

use super::transport::{parse_l4, Fragment, Transport, TunnelKind};
use super::{be16, be32, gre, tunnel, Ctx, Decoded, Decoder, Skip};

/// Decodes an IP packet whose version is given by its first nibble.
pub(crate) fn decode_ip_any<'a>(
    d: &Decoder,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    match p.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(d, p, ctx, out),
        Some(6) => decode_ipv6(d, p, ctx, out),
        Some(_) => Err(Skip::NonIp),
        None => Err(Skip::TruncatedLink),
    }
}

fn base<'a>(version: u8, ctx: Ctx) -> Transport<'a> {
    Transport {
        ip_version: version,
        tunnel: ctx.tunnel,
        tunnel_id: ctx.tunnel_id,
        teid: ctx.teid,
        ..Transport::default()
    }
}

/// Checks that an IP packet of `total` bytes, of which the `captured` bytes of the slice
/// are present, fits in what the frame had on the wire, and returns the context for its
/// payload (whose uncaptured part is what the packet claims past the slice).
fn within_wire(ctx: Ctx, captured: usize, total: usize) -> Result<Ctx, Skip> {
    let missing = total.saturating_sub(captured);
    if missing > ctx.uncaptured as usize {
        return Err(Skip::IpLengthPastWire);
    }
    Ok(Ctx {
        uncaptured: missing as u32,
        ..ctx
    })
}

/// Decodes an IPv4 header and its payload.
pub(crate) fn decode_ipv4<'a>(
    d: &Decoder,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    if p.len() < 20 {
        return Err(Skip::TruncatedIpv4);
    }
    if p[0] >> 4 != 4 {
        return Err(Skip::BadIpv4);
    }
    let ihl = ((p[0] & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Err(Skip::BadIpv4);
    }
    if p.len() < ihl {
        return Err(Skip::TruncatedIpv4);
    }
    let mut total = be16(p, 2).unwrap_or(0) as usize;
    if total == 0 {
        // Segmentation offload: the length field is left zero; trust the capture.
        total = p.len();
    }
    if total < ihl {
        return Err(Skip::BadIpv4);
    }
    let ctx = within_wire(ctx, p.len(), total)?;
    let mut t = base(4, ctx);
    t.src[..4].copy_from_slice(&p[12..16]);
    t.dst[..4].copy_from_slice(&p[16..20]);
    t.proto = p[9];
    t.ip_len = total as u32;
    let frag = be16(p, 6).unwrap_or(0);
    let offset = frag & 0x1fff;
    let more = frag & 0x2000 != 0;
    let id = be16(p, 4).unwrap_or(0) as u32;
    let l4 = &p[ihl..p.len().min(total)];
    let wire = (total - ihl) as u32;
    if offset > 0 {
        t.frag = Fragment::Later {
            id,
            offset: u32::from(offset) * 8,
            more,
        };
        t.ip_len = wire;
        t.payload_len = wire;
        t.payload = l4;
        out.push(t);
        return Ok(());
    }
    if more {
        t.frag = Fragment::First { id };
    }
    dispatch(d, t, l4, wire, ctx, out)
}

/// Decodes an IPv6 header, walks its extension headers, and decodes the payload.
pub(crate) fn decode_ipv6<'a>(
    d: &Decoder,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    if p.len() < 40 {
        return Err(Skip::TruncatedIpv6);
    }
    if p[0] >> 4 != 6 {
        return Err(Skip::TruncatedIpv6);
    }
    let plen = be16(p, 4).unwrap_or(0) as usize;
    // Jumbograms / offload leave the payload length zero: trust the capture.
    let total = if plen == 0 && p[6] != 59 {
        p.len()
    } else {
        40 + plen
    };
    let ctx = within_wire(ctx, p.len(), total)?;
    let end = p.len().min(total);
    let mut t = base(6, ctx);
    t.src.copy_from_slice(&p[8..24]);
    t.dst.copy_from_slice(&p[24..40]);
    t.ip_len = total as u32;
    let mut next = p[6];
    let mut off = 40usize;
    for _ in 0..16 {
        match next {
            0 | 43 | 60 | 135 | 139 | 140 => {
                let h = p.get(off..off + 2).ok_or(Skip::BadIpv6Extension)?;
                next = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            51 => {
                let h = p.get(off..off + 2).ok_or(Skip::BadIpv6Extension)?;
                next = h[0];
                off += (h[1] as usize + 2) * 4;
            }
            44 => {
                let h = p.get(off..off + 8).ok_or(Skip::BadIpv6Extension)?;
                next = h[0];
                let fo = be16(h, 2).unwrap_or(0);
                let id = be32(h, 4).unwrap_or(0);
                off += 8;
                // Zeek counts the reassembled datagram, which has no fragment header.
                t.ip_len = t.ip_len.saturating_sub(8);
                if fo >> 3 != 0 {
                    t.frag = Fragment::Later {
                        id,
                        offset: u32::from(fo >> 3) * 8,
                        more: fo & 1 != 0,
                    };
                } else if fo & 1 != 0 {
                    t.frag = Fragment::First { id };
                }
            }
            _ => break,
        }
    }
    if off > end {
        return Err(Skip::BadIpv6Extension);
    }
    t.proto = next;
    let l4 = &p[off..end];
    let wire = total.saturating_sub(off) as u32;
    if let Fragment::Later { .. } = t.frag {
        t.ip_len = wire;
        t.payload_len = wire;
        t.payload = l4;
        out.push(t);
        return Ok(());
    }
    dispatch(d, t, l4, wire, ctx, out)
}

/// Hands an IP payload to IP-in-IP, GRE, a UDP tunnel or a plain transport.
fn dispatch<'a>(
    d: &Decoder,
    mut t: Transport<'a>,
    l4: &'a [u8],
    wire: u32,
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    let inner = match t.proto {
        4 => Some(
            ctx.inside(TunnelKind::IpIp, 0)
                .and_then(|c| decode_ipv4(d, l4, c, out)),
        ),
        41 => Some(
            ctx.inside(TunnelKind::IpIp, 0)
                .and_then(|c| decode_ipv6(d, l4, c, out)),
        ),
        47 => Some(gre::decode_gre(d, l4, ctx, out)),
        _ => None,
    };
    match inner {
        // The tunnel carried a flow: the carrier itself has no ports and no conn row.
        Some(Ok(())) => Ok(()),
        // Not decodable as a tunnel: keep the carrier as a port-less flow.
        Some(Err(_)) => {
            parse_l4(&mut t, l4, wire)?;
            out.push(t);
            Ok(())
        }
        None => {
            parse_l4(&mut t, l4, wire)?;
            if t.proto == 17 && d.udp_tunnels && !matches!(t.frag, Fragment::Later { .. }) {
                tunnel::decode_udp(d, t, ctx, out)
            } else {
                out.push(t);
                Ok(())
            }
        }
    }
}
