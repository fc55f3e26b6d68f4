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

/// True when a STUN message is WhatsApp's (as nDPI recognises WhatsApp calls): message
/// types 0x0800–0x0802, or one of WhatsApp's private attributes (0x4000–0x4004, 0x4007).
pub(crate) fn is_whatsapp_call(b: &[u8]) -> bool {
    let (Some(ty), Some(len)) = (be16(b, 0), be16(b, 2)) else {
        return false;
    };
    if matches!(ty, 0x0800..=0x0802) {
        return true;
    }
    let end = b.len().min(20 + usize::from(len));
    let mut off = 20;
    while off + 4 <= end {
        let (Some(attr), Some(alen)) = (be16(b, off), be16(b, off + 2)) else {
            break;
        };
        if matches!(attr, 0x4000..=0x4004 | 0x4007) {
            return true;
        }
        off += 4 + ((usize::from(alen) + 3) & !3);
    }
    false
}

/// Probe: a STUN message (first packets only).
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    let msg = if p.is_udp() {
        Some(p.payload).filter(|b| is_stun(b))
    } else if p.is_tcp() {
        Some(p.payload)
            .filter(|b| is_stun(b))
            .or_else(|| p.payload.get(2..).filter(|b| is_stun(b)))
    } else {
        return Verdict::NotForUs;
    };
    if let Some(m) = msg {
        if is_whatsapp_call(m) {
            st.res().app_hint = Some("WhatsAppCall");
        }
        Verdict::Certain("STUN", false)
    } else if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
