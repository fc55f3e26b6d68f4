//! SSH: the identification string ("SSH-2.0-…", "SSH-1.99-…") from either side.

use super::{DpiInput, DpiState, Verdict};

/// Probe: the first payload packet of either direction.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    if b.starts_with(b"SSH-2.0-") || b.starts_with(b"SSH-1.99-") || b.starts_with(b"SSH-1.5-") {
        return Verdict::Certain("SSH", false);
    }
    if st.total_pkts() >= 3 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
