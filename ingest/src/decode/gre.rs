//! GRE (RFC 2784/2890), PPTP's enhanced GRE (version 1) and ERSPAN types II/III.

use super::{be16, ethernet, mpls, ppp, Ctx, Decoded, Decoder, Skip, TunnelKind};

/// Decodes a GRE header and its payload as an inner flow.
pub(crate) fn decode_gre<'a>(
    d: &Decoder,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    let flags = be16(p, 0).ok_or(Skip::BadGre)?;
    let proto = be16(p, 2).ok_or(Skip::BadGre)?;
    let version = flags & 0x7;
    let checksum = flags & 0x8000 != 0;
    let routing = flags & 0x4000 != 0;
    let key = flags & 0x2000 != 0;
    let seq = flags & 0x1000 != 0;
    let mut off = 4usize;
    if checksum || routing {
        off += 4;
    }
    let mut key_val = 0u32;
    if key {
        key_val = super::be32(p, off).ok_or(Skip::BadGre)?;
        off += 4;
    }
    if seq {
        off += 4;
    }
    match version {
        0 => {}
        1 => {
            // Enhanced GRE (PPTP): the key holds payload length + call id; optional ack.
            key_val = 0;
            if flags & 0x0080 != 0 {
                off += 4;
            }
        }
        _ => return Err(Skip::BadGre),
    }
    if routing {
        // Source route entries until a NULL SRE.
        for _ in 0..16 {
            let len = *p.get(off + 3).ok_or(Skip::BadGre)? as usize;
            off += 4 + len;
            if len == 0 {
                break;
            }
        }
    }
    let payload = p.get(off..).ok_or(Skip::BadGre)?;
    let inner = ctx.inside(TunnelKind::Gre, key_val)?;
    match proto {
        0x0800 | 0x86dd => ethernet::decode_ethertype(d, proto, payload, inner, out),
        0x6558 => ethernet::decode_ethernet(d, payload, inner, out),
        0x8847 | 0x8848 => mpls::decode_mpls(d, payload, inner, out),
        0x880b => ppp::decode_ppp_frame(d, payload, inner, out),
        // ERSPAN type II: 8-byte header, then the mirrored Ethernet frame.
        0x88be => {
            let f = payload.get(8..).ok_or(Skip::BadGre)?;
            ethernet::decode_ethernet(d, f, inner, out)
        }
        // ERSPAN type III: 12-byte header (+ 8-byte platform subheader when O is set).
        0x22eb => {
            let o = payload.get(11).ok_or(Skip::BadGre)? & 0x01 != 0;
            let f = payload.get(if o { 20 } else { 12 }..).ok_or(Skip::BadGre)?;
            ethernet::decode_ethernet(d, f, inner, out)
        }
        _ => Err(Skip::NonIp),
    }
}
