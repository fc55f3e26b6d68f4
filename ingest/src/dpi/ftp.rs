//! FTP control channel: a "220" banner mentioning FTP (or on port 21) followed by client
//! commands (USER, AUTH, FEAT, SYST, …).

use super::util::{find, first_line, starts_with_ci};
use super::{DpiInput, DpiState, Verdict};

/// `DpiState::text` bit: a "220 " greeting was seen from the server.
pub(crate) const SAW_220: u8 = 1;

const COMMANDS: &[&[u8]] = &[
    b"USER ",
    b"AUTH TLS",
    b"AUTH SSL",
    b"FEAT",
    b"SYST",
    b"OPTS ",
];

/// True when the first line is an FTP/SMTP style "220" greeting.
pub(crate) fn is_220(b: &[u8]) -> bool {
    b.starts_with(b"220 ") || b.starts_with(b"220-")
}

/// Probe: greeting and first client command.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    if !p.c2s() && is_220(b) {
        st.text |= SAW_220;
        let line = first_line(b, 256).to_ascii_uppercase();
        if p.has_port(21) || find(&line, b"FTP").is_some() {
            return Verdict::Certain("FTP_CONTROL", false);
        }
        return Verdict::Unsure;
    }
    if p.c2s()
        && COMMANDS.iter().any(|c| starts_with_ci(b, c))
        && (st.text & SAW_220 != 0 || p.has_port(21))
    {
        return Verdict::Certain("FTP_CONTROL", false);
    }
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
