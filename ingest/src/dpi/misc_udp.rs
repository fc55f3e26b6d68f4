//! Cheap UDP signatures: Dropbox LAN sync (17500), Spotify discovery
//! (57621), Steam in-home streaming discovery (27036), Discord voice (IP discovery and
//! keep-alives), Telegram calls (ports 500–600), Steam Datagram Relay pings, Genshin
//! Impact (KCP handshake).

use super::util::find;
use super::{DpiInput, DpiState, Verdict};

/// Probe: first datagram of either direction.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let both = |port: u16| p.client_port == port && p.server_port == port;
    let name = if both(17500) && b.first() == Some(&b'{') && find(b, b"\"host_int\"").is_some() {
        "Dropbox"
    } else if both(57621) && b.starts_with(b"SpotUdp") {
        "Spotify"
    } else if p.has_port(27036) && b.starts_with(&[0xff, 0xff, 0xff, 0xff, 0x21, 0x4c, 0x5f, 0xa0])
    {
        "Steam"
    } else if b.starts_with(&[0x13, 0x37, 0xca, 0xfe])
        || (b.len() == 74 && (b.starts_with(&[0, 1, 0, 0x46]) || b.starts_with(&[0, 2, 0, 0x46])))
    {
        "Discord"
    } else if (500..=600).contains(&p.server_port) && b.len() >= 24 && b[16..24] == [0xff; 8] {
        "Telegram"
    } else if b.len() >= 100 && b.get(2..8) == Some(b"sdping") {
        // Steam Datagram Relay ping (as nDPI: short pings are zero-padded to ≥ 100 bytes)
        "SteamDatagramRelay"
    } else if b.len() == 20
        && b.starts_with(&[0, 0, 0, 0xff])
        && b[12..20] == [0x49, 0x96, 0x02, 0xd2, 0xff, 0xff, 0xff, 0xff]
    {
        "GenshinImpact"
    } else {
        return if st.total_pkts() >= 3 {
            Verdict::NotForUs
        } else {
            Verdict::Unsure
        };
    };
    Verdict::Certain(name, false)
}
