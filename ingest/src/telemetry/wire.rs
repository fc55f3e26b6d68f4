//! Bounds-checked big-endian readers over an export message, and the reasons a message
//! or set is rejected ([`Malformed`]).

/// Why (part of) an export message was rejected. Counted per reason; each reason is
/// logged once per exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Malformed {
    /// Shorter than the message header.
    TruncatedHeader,
    /// Version is neither 9 (NetFlow v9) nor 10 (IPFIX).
    BadVersion,
    /// IPFIX message length differs from the datagram length.
    BadMessageLength,
    /// A set/FlowSet header is cut, its length is below 4 bytes or runs past the message.
    BadSetLength,
    /// A template or options template record is cut or invalid (id < 256, scope count).
    BadTemplate,
    /// A data record runs past its set (a field, or a variable-length field's length,
    /// overflows the set).
    RecordOverrun,
}

impl Malformed {
    /// Every reason, in reporting order.
    pub const ALL: [Malformed; 6] = [
        Malformed::TruncatedHeader,
        Malformed::BadVersion,
        Malformed::BadMessageLength,
        Malformed::BadSetLength,
        Malformed::BadTemplate,
        Malformed::RecordOverrun,
    ];

    /// Human-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::TruncatedHeader => "truncated header",
            Malformed::BadVersion => "unknown version",
            Malformed::BadMessageLength => "message length mismatch",
            Malformed::BadSetLength => "bad set length",
            Malformed::BadTemplate => "bad template record",
            Malformed::RecordOverrun => "data record overruns its set",
        }
    }

    /// Index into per-reason counter arrays.
    pub fn index(self) -> usize {
        Malformed::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Big-endian u16 at `off`.
#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Big-endian u32 at `off`.
#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// An unsigned integer of 1–8 bytes (reduced-size encoding, RFC 7011 §6.2); `None` for
/// other lengths.
#[inline]
pub(crate) fn uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut v = 0u64;
    for &x in b {
        v = (v << 8) | u64::from(x);
    }
    Some(v)
}

/// Length of a variable-length field at `off` (RFC 7011 §7): one byte < 255, or 255
/// followed by a u16. Returns (header bytes, value length).
#[inline]
pub(crate) fn var_len(b: &[u8], off: usize) -> Option<(usize, usize)> {
    let first = *b.get(off)?;
    if first < 255 {
        Some((1, usize::from(first)))
    } else {
        Some((3, usize::from(u16_at(b, off + 1)?)))
    }
}
