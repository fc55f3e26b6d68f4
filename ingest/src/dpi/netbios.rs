//! NetBIOS: first-level encoded names (RFC 1001 §14.1) used by the name service (137,
//! parsed by [`super::dns`]) and the datagram service (138, probed here).

use super::util::be16;
use super::{DpiInput, DpiState, Verdict};

/// Decodes a 32-character first-level encoded NetBIOS name ("FHEPFCELEHFCEPFFFACACACACACACAAA"
/// → "workgroup"): suffix byte dropped, padding trimmed, lower-cased as nDPI prints it.
pub(crate) fn decode_netbios_name(enc: &str) -> Option<Box<str>> {
    let label = enc.split('.').next()?.as_bytes();
    if label.len() != 32 {
        return None;
    }
    let mut out = String::with_capacity(16);
    for pair in label.chunks_exact(2).take(15) {
        let (h, l) = (pair[0].wrapping_sub(b'A'), pair[1].wrapping_sub(b'A'));
        if h > 15 || l > 15 {
            return None;
        }
        let c = (h << 4) | l;
        out.push(if (0x20..0x7f).contains(&c) {
            c.to_ascii_lowercase() as char
        } else {
            ' '
        });
    }
    let t = out.trim();
    (!t.is_empty()).then(|| t.into())
}

/// Probe for the NetBIOS datagram service (UDP 138): direct/broadcast datagrams carry the
/// encoded source name at offset 14.
pub(crate) fn probe_datagram(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() || !p.has_port(138) {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let ok = b.len() >= 14 + 34
        && (0x10..=0x16).contains(&b[0])
        && be16(b, 8).is_some_and(|port| port == 138 || p.has_port(port))
        && b[14] == 0x20;
    if !ok {
        return Verdict::NotForUs;
    }
    if let Ok(enc) = std::str::from_utf8(&b[15..47]) {
        if let Some(n) = decode_netbios_name(enc) {
            st.res().host.get_or_insert(n);
        }
    }
    Verdict::Certain("NetBIOS", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(
            decode_netbios_name("FHEPFCELEHFCEPFFFACACACACACACAAA").as_deref(),
            Some("workgroup")
        );
        assert_eq!(decode_netbios_name("ABC"), None);
    }
}
