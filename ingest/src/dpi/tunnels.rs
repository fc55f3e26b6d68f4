//! UDP encapsulations seen as flows of their own (the outer tunnel flow): GTP-U (2152),
//! VXLAN (4789), Geneve (6081), AYIYA (5072) and Teredo (IPv6 in UDP, any port: the
//! payload is an IPv6 packet whose length field matches, possibly after Teredo
//! authentication / origin-indication headers).

use super::util::be16;
use super::{DpiInput, DpiState, Verdict};

/// True when `b` is exactly one IPv6 packet (length field consistent).
fn is_ipv6_packet(b: &[u8]) -> bool {
    b.len() >= 40
        && b[0] >> 4 == 6
        && be16(b, 4).is_some_and(|l| usize::from(l) + 40 == b.len())
        && matches!(b[6], 0 | 6 | 17 | 43 | 44 | 58 | 59 | 60)
}

fn teredo(b: &[u8]) -> bool {
    let mut off = 0;
    if b.starts_with(&[0x00, 0x01]) && b.len() >= 4 {
        // authentication: id len, auth len, id, auth, nonce(8), confirmation(1)
        off = 4 + usize::from(b[2]) + usize::from(b[3]) + 9;
    }
    if b.get(off..off + 2) == Some(&[0x00, 0x00]) {
        off += 8; // origin indication
    }
    b.get(off..).is_some_and(is_ipv6_packet)
}

fn gtpu(b: &[u8]) -> bool {
    // version 1, PT 1, message type G-PDU (0xff) or echo (1/2), length = bytes after 8
    b.len() >= 8
        && b[0] >> 5 == 1
        && b[0] & 0x10 != 0
        && matches!(b[1], 0xff | 1 | 2 | 26 | 254)
        && be16(b, 2).is_some_and(|l| usize::from(l) + 8 == b.len())
}

fn vxlan(b: &[u8]) -> bool {
    b.len() >= 8 + 14 && b[0] & 0x08 != 0 && b[1..4] == [0, 0, 0] && b[7] == 0
}

fn geneve(b: &[u8]) -> bool {
    let opt_len = usize::from(b.first().copied().unwrap_or(0) & 0x3f) * 4;
    b.len() >= 8 + opt_len && b[0] >> 6 == 0 && matches!(be16(b, 2), Some(0x6558 | 0x0800 | 0x86dd))
}

fn ayiya(b: &[u8]) -> bool {
    // identity len/type, signature len/hash method, auth method/opcode, next header
    b.len() >= 12 && b[0] >> 4 <= 4 && matches!(b[2] & 0x0f, 0..=4) && matches!(b[3], 4 | 41 | 59)
}

/// Probe: first datagram of either direction.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let name = if p.has_port(2152) && gtpu(b) {
        "GTP_U"
    } else if p.has_port(4789) && vxlan(b) {
        "VXLAN"
    } else if p.has_port(6081) && geneve(b) {
        "Geneve"
    } else if p.has_port(5072) && ayiya(b) {
        "AYIYA"
    } else if teredo(b) {
        "Teredo"
    } else {
        return if st.total_pkts() >= 3 {
            Verdict::NotForUs
        } else {
            Verdict::Unsure
        };
    };
    Verdict::Certain(name, false)
}
