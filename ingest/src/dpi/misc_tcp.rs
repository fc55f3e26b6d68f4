//! Cheap TCP signatures of game protocols: Genshin Impact's framed TCP protocol
//! (`0x01`, 32-bit big-endian PDU length equal to the segment length, message type 1 or 7,
//! `0x4da6` at offset 16; nDPI's signature).

use super::util::{be16, be32};
use super::{DpiInput, DpiState, Verdict};

/// True when `b` is one Genshin Impact TCP PDU.
fn is_genshin(b: &[u8]) -> bool {
    b.len() >= 18
        && b[0] == 0x01
        && be32(b, 1).is_some_and(|n| n as usize == b.len())
        && matches!(b[5], 0x01 | 0x07)
        && be16(b, 16) == Some(0x4da6)
}

/// Probe: the first payload packets of either side.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    if is_genshin(p.payload) {
        return Verdict::Certain("GenshinImpact", false);
    }
    if st.total_pkts() >= 2 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genshin_pdu() {
        let mut b = vec![0u8; 42];
        b[0] = 1;
        b[1..5].copy_from_slice(&42u32.to_be_bytes());
        b[5] = 7;
        b[16..18].copy_from_slice(&[0x4d, 0xa6]);
        assert!(is_genshin(&b));
        b[5] = 2;
        assert!(!is_genshin(&b));
        b[5] = 1;
        assert!(!is_genshin(&b[..41]), "length must match");
        for n in 0..b.len() {
            let _ = is_genshin(&b[..n]);
        }
    }
}
