//! Google QUIC (Q0xx) with a clear-text CHLO: Q043 and earlier (public header with version
//! flag) and Q046 (long-header invariants, version "Q046"). The CHLO tag/value map carries
//! the SNI and the user agent ("UAID") in clear. Q050 and later (encrypted) are only
//! recognised.

use super::super::util::{find, le32, text};
use super::super::DpiResult;

/// True when `v` is a gQUIC version tag ("Q0xx" / "T0xx").
pub(crate) fn is_gquic_version(v: &[u8]) -> bool {
    v.len() == 4 && (v[0] == b'Q' || v[0] == b'T') && v[1..].iter().all(u8::is_ascii_digit)
}

/// Version of a client gQUIC packet, if it looks like one.
pub(crate) fn gquic_version(b: &[u8]) -> Option<u32> {
    let first = *b.first()?;
    // Q046+: long header, version right after the first byte
    if first & 0x80 != 0 {
        let v = b.get(1..5)?;
        return is_gquic_version(v).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
    }
    // Q043 and earlier: public flags with version (0x01) and 8-byte CID (0x08)
    if first & 0x09 == 0x09 && first & 0x80 == 0 {
        let v = b.get(9..13)?;
        return is_gquic_version(v).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
    }
    None
}

/// Parses a clear-text CHLO in the packet, filling SNI and user agent.
/// Returns true when a CHLO was found.
pub(crate) fn parse_chlo(b: &[u8], res: &mut DpiResult) -> bool {
    let Some(at) = find(b, b"CHLO") else {
        return false;
    };
    let m = &b[at..];
    let Some(&[n0, n1]) = m.get(4..6) else {
        return false;
    };
    let ntags = usize::from(u16::from_le_bytes([n0, n1]));
    if ntags == 0 || ntags > 64 {
        return false;
    }
    let table = 8;
    let values = table + ntags * 8;
    if values > m.len() {
        return false;
    }
    let mut prev = 0usize;
    for i in 0..ntags {
        let e = table + i * 8;
        let tag = &m[e..e + 4];
        let Some(end) = le32(m, e + 4) else {
            return true;
        };
        let end = end as usize;
        if end < prev {
            return true;
        }
        let val = m.get(values + prev..values + end);
        prev = end;
        let Some(val) = val else { return true };
        match tag {
            b"SNI\0" => res.sni = text(val, 255),
            b"UAID" => res.user_agent = text(val, 256),
            _ => {}
        }
    }
    true
}
