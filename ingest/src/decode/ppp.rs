//! PPPoE session frames and PPP (with optional HDLC address/control and compressed
//! protocol field).

use super::{be16, ip, mpls, Ctx, Decoded, Decoder, Skip};

/// PPPoE session header (6 bytes) followed by the PPP protocol field.
pub(crate) fn decode_pppoe_session<'a>(
    d: &Decoder,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    if p.len() < 8 {
        return Err(Skip::TruncatedPppoe);
    }
    let proto = be16(p, 6).unwrap_or(0);
    decode_ppp_proto(d, proto, &p[8..], ctx, out)
}

/// A PPP frame: optional `ff 03` address/control, then a 1- or 2-byte protocol.
pub(crate) fn decode_ppp_frame<'a>(
    d: &Decoder,
    mut p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    if p.len() >= 2 && p[0] == 0xff && p[1] == 0x03 {
        p = &p[2..];
    }
    let first = *p.first().ok_or(Skip::TruncatedPppoe)?;
    // Protocol field compression: an odd first byte is a 1-byte protocol.
    let (proto, hdr) = if first & 1 == 1 {
        (first as u16, 1)
    } else {
        (be16(p, 0).ok_or(Skip::TruncatedPppoe)?, 2)
    };
    decode_ppp_proto(d, proto, &p[hdr..], ctx, out)
}

fn decode_ppp_proto<'a>(
    d: &Decoder,
    proto: u16,
    p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    match proto {
        0x0021 => ip::decode_ipv4(d, p, ctx, out),
        0x0057 => ip::decode_ipv6(d, p, ctx, out),
        0x0281 => mpls::decode_mpls(d, p, ctx, out),
        _ => Err(Skip::NonIp),
    }
}
