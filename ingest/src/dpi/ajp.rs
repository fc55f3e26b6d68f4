//! AJP13 (Apache JServ Protocol): client packets start 0x12 0x34, server packets "AB",
//! followed by a length matching the segment and a known prefix code.

use super::util::be16;
use super::{DpiInput, DpiState, Verdict};

/// Probe: first packets of either direction.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let len = be16(b, 2).map(usize::from);
    let code = b.get(4).copied();
    let ok = match (b.get(..2), len, code) {
        (Some([0x12, 0x34]), Some(l), Some(c)) => l + 4 <= b.len() && matches!(c, 2 | 7 | 8 | 10),
        (Some(b"AB"), Some(l), Some(c)) => l + 4 <= b.len() && ((3..=6).contains(&c) || c == 9),
        _ => false,
    };
    if ok {
        Verdict::Certain("AJP", false)
    } else if st.total_pkts() >= 3 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
