//! The protocol registry: every analyzer, in priority order (on one packet the first
//! `Certain` wins), with the transports it applies to.

use super::{
    ajp, bittorrent, dhcp, dns, ftp, http, imap, misc_tcp, misc_udp, netbios, ntp, pop3, quic, rtp,
    sip, smtp, ssdp, ssh, stun, telnet, tls, tunnels, whatsapp, DpiInput, DpiState, Verdict,
};

type ProbeFn = fn(&DpiInput<'_>, &mut DpiState) -> Verdict;
type TrackFn = fn(&DpiInput<'_>, &mut DpiState) -> bool;

/// One analyzer.
pub(crate) struct Entry {
    /// Name for debugging.
    #[allow(dead_code)]
    pub name: &'static str,
    pub tcp: bool,
    pub udp: bool,
    pub probe: ProbeFn,
    /// Called on later packets after a `Certain(_, true)` verdict; returns "more wanted".
    pub track: Option<TrackFn>,
}

const fn e(
    name: &'static str,
    tcp: bool,
    udp: bool,
    probe: ProbeFn,
    track: Option<TrackFn>,
) -> Entry {
    Entry {
        name,
        tcp,
        udp,
        probe,
        track,
    }
}

/// All analyzers, highest priority first.
pub(crate) static REGISTRY: &[Entry] = &[
    e("dns", true, true, dns::probe, Some(dns::track)),
    e("netbios-dgm", false, true, netbios::probe_datagram, None),
    e("dhcp", false, true, dhcp::probe, None),
    e("dhcpv6", false, true, dhcp::probe_v6, None),
    e("ntp", false, true, ntp::probe, None),
    e("ssdp", false, true, ssdp::probe, None),
    e("http", true, false, http::probe, Some(http::track)),
    e("tls", true, false, tls::probe, Some(tls::track)),
    e("quic", false, true, quic::probe, Some(quic::track)),
    e("stun", true, true, stun::probe, None),
    e("sip", true, true, sip::probe, None),
    e("ssh", true, false, ssh::probe, None),
    e("ftp", true, false, ftp::probe, Some(ftp::track)),
    e("smtp", true, false, smtp::probe, None),
    e("pop3", true, false, pop3::probe, None),
    e("imap", true, false, imap::probe, None),
    e("telnet", true, false, telnet::probe, None),
    e("ajp", true, false, ajp::probe, None),
    e("bittorrent", true, true, bittorrent::probe, None),
    e("whatsapp", true, false, whatsapp::probe, None),
    e("tunnels", false, true, tunnels::probe, None),
    e("misc-udp", false, true, misc_udp::probe, None),
    e("misc-tcp", true, false, misc_tcp::probe, None),
    e("rtp", true, true, rtp::probe, None),
];

/// Candidate mask for a flow of IP protocol `l4`.
pub(crate) fn initial_mask(l4: u8) -> u64 {
    REGISTRY.iter().enumerate().fold(0u64, |m, (i, e)| {
        let ok = match l4 {
            6 => e.tcp,
            17 => e.udp,
            _ => false,
        };
        if ok {
            m | (1u64 << i)
        } else {
            m
        }
    })
}

/// Runs the probe of entry `i`.
pub(crate) fn probe(i: usize, p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    match REGISTRY.get(i) {
        Some(e) => (e.probe)(p, st),
        None => Verdict::NotForUs,
    }
}

/// Runs the tracker of entry `i`; false when there is none or it is done.
pub(crate) fn track(i: usize, p: &DpiInput<'_>, st: &mut DpiState) -> bool {
    match REGISTRY.get(i).and_then(|e| e.track) {
        Some(t) => t(p, st),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fits_mask() {
        assert!(super::REGISTRY.len() <= 64);
    }
}
