//! Telnet: option negotiation (IAC WILL/WONT/DO/DONT with a small option code) at the
//! start of a segment, as nDPI does.

use super::{DpiInput, DpiState, Verdict};

fn is_negotiation(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == 0xff && (0xfb..=0xfe).contains(&b[1]) && b[2] < 0x28
}

/// Probe: negotiation in one of the first packets.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    if is_negotiation(p.payload) {
        return Verdict::Certain("Telnet", false);
    }
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
