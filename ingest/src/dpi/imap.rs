//! IMAP: the untagged "* OK" / "* PREAUTH" greeting of the server.

use super::{DpiInput, DpiState, Verdict};

/// Probe: first server packets.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    if !p.c2s() && st.pkts(1) == 1 && (b.starts_with(b"* OK") || b.starts_with(b"* PREAUTH")) {
        return Verdict::Certain("IMAP", false);
    }
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
