//! NTP (UDP 123): 48-byte+ packets with version 1–4 and a client/server/broadcast mode.

use super::{DpiInput, DpiState, Verdict};

/// Probe: first datagram only.
pub(crate) fn probe(p: &DpiInput<'_>, _st: &mut DpiState) -> Verdict {
    if !p.is_udp() || !p.has_port(123) {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let Some(&b0) = b.first() else {
        return Verdict::NotForUs;
    };
    let version = (b0 >> 3) & 0x07;
    let mode = b0 & 0x07;
    if b.len() >= 48 && (1..=4).contains(&version) && (1..=5).contains(&mode) {
        Verdict::Certain("NTP", false)
    } else if b.len() >= 8 && mode >= 6 && (2..=4).contains(&version) {
        // mode 6/7 control and private messages (ntpq/ntpdc)
        Verdict::Certain("NTP", false)
    } else {
        Verdict::NotForUs
    }
}
