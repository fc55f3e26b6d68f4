//! STUN / TURN (RFC 5389 magic cookie, RFC 3489 classic binding messages), over UDP or
//! TCP (RFC 4571-style 2-byte framing is also accepted for TURN-over-TCP channels).

use super::util::{be16, be32};
use super::{DpiInput, DpiState, Verdict};

const MAGIC: u32 = 0x2112_a442;

/// True when `b` is one STUN message (header length matches).
pub(crate) fn is_stun(b: &[u8]) -> bool {
    let (Some(ty), Some(len)) = (be16(b, 0), be16(b, 2)) else {
        return false;
    };
    if ty & 0xc000 != 0 || len % 4 != 0 || usize::from(len) + 20 > b.len() {
        return false;
    }
    if be32(b, 4) == Some(MAGIC) {
        // some clients (WhatsApp) append data after the message
        return true;
    }
    if usize::from(len) + 20 != b.len() {
        return false;
    }
    // RFC 3489: binding request/response/error, shared secret request/response
    matches!(ty, 0x0001 | 0x0101 | 0x0111 | 0x0002 | 0x0102 | 0x0112)
}

/// Probe: a STUN message (first packets only).
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    let ok = if p.is_udp() {
        is_stun(p.payload)
    } else if p.is_tcp() {
        is_stun(p.payload) || p.payload.get(2..).is_some_and(is_stun)
    } else {
        return Verdict::NotForUs;
    };
    if ok {
        Verdict::Certain("STUN", false)
    } else if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
