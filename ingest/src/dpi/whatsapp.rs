//! WhatsApp chat: the client's first segment starts with the "WA" protocol header
//! ("WA" + major/minor version bytes) or the "ED\0\x01" edge routing prologue.

use super::{DpiInput, DpiState, Verdict};

/// Probe: the client's first payload packet.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    if p.c2s() && st.pkts(0) == 1 {
        let b = p.payload;
        let wa = b.len() >= 4 && &b[..2] == b"WA" && b[2] <= 9 && b[3] <= 9;
        let ed = b.starts_with(b"ED\x00\x01");
        if wa || ed {
            return Verdict::Certain("WhatsApp", false);
        }
        return Verdict::NotForUs;
    }
    if st.pkts(0) >= 1 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
