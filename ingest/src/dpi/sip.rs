//! SIP (RFC 3261) over UDP or TCP: a request line ("INVITE sip:…") or a status line
//! ("SIP/2.0 200 OK").

use super::util::first_line;
use super::{DpiInput, DpiState, Verdict};

const METHODS: &[&[u8]] = &[
    b"INVITE",
    b"REGISTER",
    b"OPTIONS",
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"SUBSCRIBE",
    b"NOTIFY",
    b"MESSAGE",
    b"INFO",
    b"PRACK",
    b"UPDATE",
    b"REFER",
    b"PUBLISH",
];

/// True when the first line of `b` is a SIP request or status line.
pub(crate) fn is_sip(b: &[u8]) -> bool {
    // Every SIP start line begins with an upper-case letter: skip the line scan otherwise.
    if !b.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let line = first_line(b, 512);
    if line.starts_with(b"SIP/2.0 ") {
        return line.len() >= 11 && line[8..11].iter().all(u8::is_ascii_digit);
    }
    METHODS.iter().any(|m| {
        line.starts_with(m)
            && line.get(m.len()) == Some(&b' ')
            && (line[m.len() + 1..].starts_with(b"sip:")
                || line[m.len() + 1..].starts_with(b"sips:")
                || line[m.len() + 1..].starts_with(b"tel:"))
            && line.ends_with(b" SIP/2.0")
    })
}

/// Probe: a SIP start line in one of the first packets.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() && !p.is_tcp() {
        return Verdict::NotForUs;
    }
    if is_sip(p.payload) {
        Verdict::Certain("SIP", false)
    } else if st.total_pkts() >= 3 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
