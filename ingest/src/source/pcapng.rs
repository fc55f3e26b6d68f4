//! pcapng format: block framing, section and interface state, packet blocks.

use pcap_parser::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le, OptionCode,
};

/// Section Header Block type (same bytes in both byte orders).
pub(super) const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Interface Description Block.
pub(super) const IDB: u32 = 1;
/// Obsolete Packet Block.
pub(super) const PB: u32 = 2;
/// Simple Packet Block.
pub(super) const SPB: u32 = 3;
/// Enhanced Packet Block.
pub(super) const EPB: u32 = 6;

/// Byte-order magic of a section header, as found on disk.
pub(super) const BOM_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
/// Big-endian byte-order magic.
pub(super) const BOM_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

/// Reads a `u32` at `at` (zero if out of range: callers check lengths first).
#[inline]
pub(super) fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Reads a `u16` at `at` (zero if out of range).
#[inline]
pub(super) fn u16_at(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let mut w = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

/// Conversion of raw interface timestamp units to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TsScale {
    /// 10^k units per second with k ≤ 9: multiply by 10^(9-k).
    Mul(u64),
    /// 10^k units per second with 9 < k ≤ 19: divide by 10^(k-9).
    Div(u64),
    /// 2^n units per second: `units * 1e9 >> n`.
    Pow2(u32),
}

impl TsScale {
    /// From an `if_tsresol` option byte; `None` if out of range.
    pub(super) fn from_tsresol(tsresol: u8) -> Option<TsScale> {
        if tsresol & 0x80 != 0 {
            return Some(TsScale::Pow2(u32::from(tsresol & 0x7f)));
        }
        let k = u32::from(tsresol);
        if k <= 9 {
            Some(TsScale::Mul(10u64.pow(9 - k)))
        } else if k <= 19 {
            Some(TsScale::Div(10u64.pow(k - 9)))
        } else {
            None
        }
    }

    #[inline]
    fn to_ns(self, units: u64) -> u128 {
        match self {
            TsScale::Mul(m) => u128::from(units) * u128::from(m),
            TsScale::Div(d) => u128::from(units / d.max(1)),
            TsScale::Pow2(n) => (u128::from(units) * 1_000_000_000) >> n,
        }
    }
}

/// What an Interface Description Block told us about an interface.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interface {
    pub linktype: u32,
    pub snaplen: u32,
    /// `None` when the IDB was malformed or had an unusable `if_tsresol`: packets on this
    /// interface are skipped.
    pub scale: Option<TsScale>,
    /// `if_tsoffset`, seconds.
    pub offset_s: i64,
}

impl Interface {
    /// Timestamp in ns since the epoch, clamped to the `u64` range.
    #[inline]
    pub(super) fn ts_ns(&self, scale: TsScale, ts_high: u32, ts_low: u32) -> u64 {
        let units = (u64::from(ts_high) << 32) | u64::from(ts_low);
        let ns = scale.to_ns(units) as i128 + i128::from(self.offset_s) * 1_000_000_000;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// Parses an IDB (`block` = whole block, lengths already validated).
///
/// `Err` carries the skip reason for a malformed block.
pub(super) fn parse_idb(block: &[u8], big_endian: bool) -> Result<Interface, &'static str> {
    let parsed = if big_endian {
        parse_interfacedescriptionblock_be(block)
    } else {
        parse_interfacedescriptionblock_le(block)
    };
    let idb = parsed
        .map_err(|_| "malformed interface description block")?
        .1;
    let mut tsresol = 6u8;
    let mut offset_s = 0i64;
    for opt in &idb.options {
        let value = opt.as_bytes().unwrap_or(&[]);
        if opt.code == OptionCode::IfTsresol {
            if let Some(&b) = value.first() {
                tsresol = b;
            }
        } else if opt.code == OptionCode::IfTsoffset {
            if let Ok(w) = <[u8; 8]>::try_from(value) {
                offset_s = if big_endian {
                    i64::from_be_bytes(w)
                } else {
                    i64::from_le_bytes(w)
                };
            }
        }
    }
    Ok(Interface {
        linktype: (idb.linktype.0 as u32) & 0xffff,
        snaplen: idb.snaplen,
        scale: TsScale::from_tsresol(tsresol),
        offset_s,
    })
}
