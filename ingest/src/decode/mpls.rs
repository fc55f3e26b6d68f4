//! MPLS label stacks (unicast and multicast), followed by IPv4/IPv6 or an Ethernet
//! pseudowire (with control word).

use super::{ethernet, ip, Ctx, Decoded, Decoder, Skip};

/// Deepest label stack accepted.
const MAX_LABELS: usize = 16;

/// Walks the label stack to the bottom-of-stack entry and decodes what follows.
pub(crate) fn decode_mpls<'a>(
    d: &Decoder,
    mut p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    for _ in 0..MAX_LABELS {
        let entry = p.get(..4).ok_or(Skip::TruncatedMpls)?;
        let bottom = entry[2] & 0x01 != 0;
        p = &p[4..];
        if bottom {
            return match p.first().map(|b| b >> 4) {
                Some(4) => ip::decode_ipv4(d, p, ctx, out),
                Some(6) => ip::decode_ipv6(d, p, ctx, out),
                // Pseudowire control word (first nibble 0), then an Ethernet frame.
                Some(0) if p.len() >= 4 + 14 => {
                    ethernet::decode_ethernet(d, &p[4..], ctx.deeper()?, out)
                }
                Some(_) => Err(Skip::NonIp),
                None => Err(Skip::TruncatedMpls),
            };
        }
    }
    Err(Skip::TruncatedMpls)
}
