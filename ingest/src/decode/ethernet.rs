//! Ethernet II frames and EtherType dispatch, including 802.1Q/802.1ad VLAN tags.

use super::{be16, ip, mpls, ppp, Ctx, Decoded, Decoder, Skip};

/// IPv4 EtherType.
pub(crate) const ETH_IPV4: u16 = 0x0800;
/// IPv6 EtherType.
pub(crate) const ETH_IPV6: u16 = 0x86dd;

/// Decodes an Ethernet II header and its payload.
pub(crate) fn decode_ethernet<'a>(
    d: &Decoder,
    f: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    let ty = be16(f, 12).ok_or(Skip::TruncatedLink)?;
    if f.len() < 14 {
        return Err(Skip::TruncatedLink);
    }
    decode_ethertype(d, ty, &f[14..], ctx, out)
}

/// Decodes the payload of a given EtherType, walking VLAN tags.
pub(crate) fn decode_ethertype<'a>(
    d: &Decoder,
    mut ty: u16,
    mut p: &'a [u8],
    ctx: Ctx,
    out: &mut Decoded<'a>,
) -> Result<(), Skip> {
    let ctx = ctx.deeper()?;
    // VLAN tags (802.1Q, 802.1ad, legacy QinQ 0x9100/0x9200); bounded walk.
    let mut tags = 0;
    while matches!(ty, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
        tags += 1;
        if tags > 8 || p.len() < 4 {
            return Err(Skip::TruncatedVlan);
        }
        // Only the outermost tag of the outermost frame names the flow's VLAN.
        if out.vlan == 0 && ctx.tunnel == super::TunnelKind::None && out.len == 0 {
            out.vlan = be16(p, 0).unwrap_or(0) & 0x0fff;
        }
        ty = be16(p, 2).unwrap_or(0);
        p = &p[4..];
    }
    match ty {
        ETH_IPV4 => ip::decode_ipv4(d, p, ctx, out),
        ETH_IPV6 => ip::decode_ipv6(d, p, ctx, out),
        0x8847 | 0x8848 => mpls::decode_mpls(d, p, ctx, out),
        0x8864 => ppp::decode_pppoe_session(d, p, ctx, out),
        _ => Err(Skip::NonIp),
    }
}
