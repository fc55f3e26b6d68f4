//! POP3: the "+OK" greeting of the server.

use super::{DpiInput, DpiState, Verdict};

/// Probe: first server packets.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    if !p.c2s() && st.pkts(1) == 1 && p.payload.starts_with(b"+OK") {
        return Verdict::Certain("POP3", false);
    }
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
