//! BitTorrent: the peer-wire handshake ("\x13BitTorrent protocol") over TCP and DHT
//! bencoded messages ("d1:ad2:id20:…", "d1:rd2:id20:…") over UDP.

use super::{DpiInput, DpiState, Verdict};

/// Probe: first packets only.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    let b = p.payload;
    let ok = if p.is_tcp() {
        b.starts_with(b"\x13BitTorrent protocol")
    } else if p.is_udp() {
        b.starts_with(b"d1:ad2:id20:") || b.starts_with(b"d1:rd2:id20:")
    } else {
        return Verdict::NotForUs;
    };
    if ok {
        Verdict::Certain("BitTorrent", false)
    } else if st.total_pkts() >= 3 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}
