//! SSDP (UPnP discovery, UDP 1900): M-SEARCH / NOTIFY requests and HTTP-over-UDP replies.
//! The Host header (usually "239.255.255.250:1900") is reported as the flow's host.

use super::util::{header_value, text};
use super::{DpiInput, DpiState, Verdict};

/// Probe: first datagram only.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let ok = b.starts_with(b"M-SEARCH * HTTP/1.1")
        || b.starts_with(b"NOTIFY * HTTP/1.1")
        || (b.starts_with(b"HTTP/1.1 200") && p.has_port(1900));
    if !ok {
        return Verdict::NotForUs;
    }
    if let Some(h) = header_value(b, b"host").and_then(|v| text(v, 255)) {
        st.res().host.get_or_insert(h);
    }
    Verdict::Certain("SSDP", false)
}
