//! DHCP (BOOTP with the DHCP magic cookie, UDP 67/68; host name option 12) and DHCPv6
//! (UDP 546/547, message types 1–13).

use super::util::text;
use super::{DpiInput, DpiState, Verdict};

const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];

/// Probe for DHCPv4.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() || !(p.has_port(67) || p.has_port(68)) {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    if b.len() < 240 || !(b[0] == 1 || b[0] == 2) || b[236..240] != COOKIE {
        return Verdict::NotForUs;
    }
    // options: code, len, data; 0 pad, 255 end
    let mut pos = 240;
    while let Some(&code) = b.get(pos) {
        match code {
            0 => pos += 1,
            255 => break,
            _ => {
                let Some(&len) = b.get(pos + 1) else { break };
                let Some(data) = b.get(pos + 2..pos + 2 + usize::from(len)) else {
                    break;
                };
                if code == 12 {
                    if let Some(h) = text(data, 255) {
                        st.res().host.get_or_insert(h);
                    }
                }
                pos += 2 + usize::from(len);
            }
        }
    }
    Verdict::Certain("DHCP", false)
}

/// Probe for DHCPv6.
pub(crate) fn probe_v6(p: &DpiInput<'_>, _st: &mut DpiState) -> Verdict {
    if !p.is_udp() || !(p.has_port(546) || p.has_port(547)) {
        return Verdict::NotForUs;
    }
    match p.payload.first() {
        Some(1..=13) if p.payload.len() >= 4 => Verdict::Certain("DHCPV6", false),
        _ => Verdict::NotForUs,
    }
}
