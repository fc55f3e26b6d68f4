//! SMTP: a "220" greeting mentioning SMTP (or on a mail port) or an EHLO/HELO command.

use super::ftp::is_220;
use super::util::{find, first_line, starts_with_ci};
use super::{DpiInput, DpiState, Verdict};

/// Probe: greeting and first client command.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let mail_port = p.has_port(25) || p.has_port(587) || p.has_port(2525);
    if !p.c2s() && is_220(b) {
        let line = first_line(b, 256).to_ascii_uppercase();
        if mail_port || find(&line, b"SMTP").is_some() || find(&line, b"MAIL").is_some() {
            return Verdict::Certain("SMTP", false);
        }
        return Verdict::Unsure;
    }
    if p.c2s() && (starts_with_ci(b, b"EHLO ") || starts_with_ci(b, b"HELO ")) {
        return Verdict::Certain("SMTP", false);
    }
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
