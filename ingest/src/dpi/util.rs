//! Small bounds-checked helpers shared by the protocol parsers.

/// Big-endian u16 at `off`.
#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Big-endian 24-bit integer at `off`.
#[inline]
pub(crate) fn be24(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(3)?)?;
    Some(u32::from_be_bytes([0, s[0], s[1], s[2]]))
}

/// Big-endian u32 at `off`.
#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Little-endian u32 at `off`.
#[inline]
pub(crate) fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Case-insensitive ASCII prefix test.
#[inline]
pub(crate) fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Finds `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Turns bytes into a bounded printable string (non-printable bytes become '?', at most
/// `max` bytes, surrounding whitespace trimmed). None when empty.
pub(crate) fn text(b: &[u8], max: usize) -> Option<Box<str>> {
    let t = printable_trimmed(b, max);
    if t.is_empty() {
        return None;
    }
    let mut s = String::with_capacity(t.len());
    push_printable(&mut s, t);
    Some(s.into_boxed_str())
}

/// The bytes [`text`] keeps: at most `max`, without surrounding spaces (the only
/// whitespace among printable ASCII; other bytes become '?', which is not trimmed).
pub(crate) fn printable_trimmed(b: &[u8], max: usize) -> &[u8] {
    let b = &b[..b.len().min(max)];
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |i| i + 1);
    &b[start..end]
}

/// Appends `b` to `out`, non-printable bytes as '?'.
pub(crate) fn push_printable(out: &mut String, b: &[u8]) {
    out.extend(b.iter().map(|&c| {
        if (0x20..0x7f).contains(&c) {
            c as char
        } else {
            '?'
        }
    }));
}

/// The first line of `b` (without CR/LF), at most `max` bytes.
pub(crate) fn first_line(b: &[u8], max: usize) -> &[u8] {
    let b = &b[..b.len().min(max)];
    match b.iter().position(|&c| c == b'\r' || c == b'\n') {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Value of the header `name` (case-insensitive) in a CRLF text block, bounded.
pub(crate) fn header_value<'a>(b: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    for line in b.split(|&c| c == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && line[name.len()] == b':'
        {
            let v = &line[name.len() + 1..];
            let start = v
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(v.len());
            return Some(&v[start..]);
        }
    }
    None
}

/// QUIC variable-length integer at `*pos`, advancing it.
#[inline]
pub(crate) fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    let len = 1usize << (first >> 6);
    let s = b.get(*pos..pos.checked_add(len)?)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &s[1..] {
        v = (v << 8) | u64::from(x);
    }
    *pos += len;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_trims_spaces_and_masks_unprintable_bytes() {
        assert_eq!(text(b"  a\tb\xff c  ", 64).as_deref(), Some("a?b? c"));
        assert_eq!(text(b"\tx\n", 64).as_deref(), Some("?x?"));
        assert_eq!(text(b"   ", 64), None);
        assert_eq!(text(b"", 64), None);
        assert_eq!(text(b"abcdef", 3).as_deref(), Some("abc"));
        assert_eq!(text(b"ab   cd", 4).as_deref(), Some("ab"));
    }
}
