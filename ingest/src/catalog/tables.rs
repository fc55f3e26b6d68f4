//! Lookup structures behind [`super::Catalog`]: a suffix hash table for names and flattened,
//! sorted interval tables for IP prefixes and port ranges. All lookups are allocation-free.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Longest valid DNS name in presentation form (without the trailing dot).
pub(crate) const MAX_NAME: usize = 253;

/// Small, fast, non-keyed hasher for catalog suffixes. The table is built only from catalog
/// entries (never from traffic), so an unkeyed hash cannot be used to degrade insertions;
/// lookups with attacker-chosen names probe a fixed table.
#[derive(Default, Clone, Copy)]
pub(crate) struct SuffixHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for SuffixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // final avalanche so that the low bits used for bucketing depend on all input bits
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// Which name tables a suffix applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NameSlot {
    /// App index for TLS/QUIC SNI and HTTP Host names.
    pub sni: Option<u32>,
    /// App index for DNS query names.
    pub dns: Option<u32>,
}

/// Which kind of name is being matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameKind {
    Sni,
    Dns,
    Any,
}

/// Suffix table: lower-case suffix (no leading or trailing dot) → app indices.
#[derive(Default, Clone)]
pub(crate) struct NameTable {
    map: HashMap<Box<[u8]>, NameSlot, BuildHasherDefault<SuffixHasher>>,
}

impl NameTable {
    pub(crate) fn insert(&mut self, suffix: &str, app: u32, sni: bool, dns: bool) {
        let slot = self
            .map
            .entry(suffix.as_bytes().to_vec().into_boxed_slice())
            .or_default();
        if sni {
            slot.sni = Some(app);
        }
        if dns {
            slot.dns = Some(app);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Longest suffix of `name` (at a label boundary) present in the table for `kind`.
    /// Case-insensitive; one trailing dot ignored; IP literals never match.
    pub(crate) fn lookup(&self, name: &str, kind: NameKind) -> Option<u32> {
        let raw = name.as_bytes();
        let raw = raw.strip_suffix(b".").unwrap_or(raw);
        if raw.is_empty() || raw.len() > MAX_NAME {
            return None;
        }
        // IP literals (a Host header may carry one) are not names.
        if raw[0] == b'[' || raw.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        let buf = &mut buf[..raw.len()];
        for (d, s) in buf.iter_mut().zip(raw) {
            *d = s.to_ascii_lowercase();
        }
        // Strip a ":port" (HTTP Host) if present.
        let mut end = buf.len();
        if let Some(colon) = buf.iter().rposition(|&b| b == b':') {
            if buf[colon + 1..].iter().all(u8::is_ascii_digit) {
                end = colon;
            } else {
                return None; // bare IPv6 literal or garbage
            }
        }
        let name = &buf[..end];
        // Walking labels from the left, the first hit is the longest suffix.
        let mut start = 0usize;
        loop {
            let tail = &name[start..];
            if tail.is_empty() {
                return None;
            }
            if let Some(slot) = self.map.get(tail) {
                let hit = match kind {
                    NameKind::Sni => slot.sni,
                    NameKind::Dns => slot.dns,
                    NameKind::Any => slot.sni.or(slot.dns),
                };
                if hit.is_some() {
                    return hit;
                }
            }
            match tail.iter().position(|&b| b == b'.') {
                Some(dot) => start += dot + 1,
                None => return None,
            }
        }
    }
}

/// Non-overlapping inclusive intervals sorted by start, each labelled with an app index.
#[derive(Clone, Debug, Default)]
pub(crate) struct IntervalTable<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    apps: Vec<u32>,
}

impl<T: Copy + Ord + std::fmt::Debug> IntervalTable<T> {
    #[inline]
    pub(crate) fn lookup(&self, x: T) -> Option<u32> {
        let i = self.starts.partition_point(|s| *s <= x);
        if i == 0 {
            return None;
        }
        (x <= self.ends[i - 1]).then(|| self.apps[i - 1])
    }

    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    fn push(&mut self, start: T, end: T, app: u32) {
        self.starts.push(start);
        self.ends.push(end);
        self.apps.push(app);
    }
}

/// Unsigned integer operations needed to flatten intervals.
pub(crate) trait Point: Copy + Ord + std::fmt::Debug {
    fn checked_succ(self) -> Option<Self>;
    fn checked_pred(self) -> Option<Self>;
}

macro_rules! impl_point {
    ($($t:ty),*) => {$(
        impl Point for $t {
            fn checked_succ(self) -> Option<Self> { self.checked_add(1) }
            fn checked_pred(self) -> Option<Self> { self.checked_sub(1) }
        }
    )*};
}
impl_point!(u16, u32, u128);

/// Flatten CIDR-like ranges (any two are either nested or disjoint) into a table where each
/// point maps to its most specific (innermost) range. For identical ranges, the one given
/// later wins (so user entries, appended after built-in ones, override).
pub(crate) fn flatten_nested<T: Point>(mut ranges: Vec<(T, T, u32)>) -> IntervalTable<T> {
    // outer ranges first at equal starts; stable sort keeps insertion order for equal ranges
    ranges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = IntervalTable {
        starts: Vec::with_capacity(ranges.len()),
        ends: Vec::with_capacity(ranges.len()),
        apps: Vec::with_capacity(ranges.len()),
    };
    // stack of open ranges (end, app); cursor = first point not yet emitted (None = past max)
    let mut stack: Vec<(T, u32)> = Vec::new();
    let mut cursor: Option<T> = None;
    let emit = |out: &mut IntervalTable<T>, cursor: &mut Option<T>, upto: T, app: u32| {
        if let Some(c) = *cursor {
            if c <= upto {
                out.push(c, upto, app);
                // None once the maximum point is emitted: nothing can follow
                *cursor = upto.checked_succ();
            }
        }
    };
    for (s, e, a) in ranges {
        // close ranges that end before s
        while let Some(&(top_end, top_app)) = stack.last() {
            if top_end < s {
                emit(&mut out, &mut cursor, top_end, top_app);
                stack.pop();
            } else {
                break;
            }
        }
        if let Some(&(_, top_app)) = stack.last() {
            if let Some(before) = s.checked_pred() {
                emit(&mut out, &mut cursor, before, top_app);
            }
        }
        cursor = Some(s);
        stack.push((e, a));
    }
    while let Some((top_end, top_app)) = stack.pop() {
        emit(&mut out, &mut cursor, top_end, top_app);
    }
    merge_adjacent(out)
}

/// Flatten arbitrary (possibly partially overlapping) ranges; each point maps to the narrowest
/// covering range, ties going to the later one. Quadratic in the worst case: meant for small
/// tables such as port ranges.
pub(crate) fn flatten_any<T: Point + Into<u128>>(ranges: Vec<(T, T, u32)>) -> IntervalTable<T> {
    let mut bounds: Vec<T> = Vec::with_capacity(ranges.len() * 2);
    for &(s, e, _) in &ranges {
        bounds.push(s);
        if let Some(n) = e.checked_succ() {
            bounds.push(n);
        }
    }
    bounds.sort();
    bounds.dedup();
    let mut out = IntervalTable {
        starts: Vec::new(),
        ends: Vec::new(),
        apps: Vec::new(),
    };
    for (i, &seg_start) in bounds.iter().enumerate() {
        let seg_end = match bounds.get(i + 1) {
            Some(next) => next.checked_pred().expect("bounds strictly increase"),
            None => {
                // last boundary: segment runs to the end of the widest range covering it
                match ranges
                    .iter()
                    .filter(|r| r.0 <= seg_start && seg_start <= r.1)
                    .map(|r| r.1)
                    .max()
                {
                    Some(e) => e,
                    None => continue,
                }
            }
        };
        let mut best: Option<(u128, u32)> = None;
        for &(s, e, a) in &ranges {
            if s <= seg_start && seg_end <= e {
                let width = e.into() - s.into();
                if best.is_none_or(|(w, _)| width <= w) {
                    best = Some((width, a));
                }
            }
        }
        if let Some((_, a)) = best {
            out.push(seg_start, seg_end, a);
        }
    }
    merge_adjacent(out)
}

fn merge_adjacent<T: Point>(t: IntervalTable<T>) -> IntervalTable<T> {
    let mut out: IntervalTable<T> = IntervalTable {
        starts: Vec::with_capacity(t.starts.len()),
        ends: Vec::with_capacity(t.starts.len()),
        apps: Vec::with_capacity(t.starts.len()),
    };
    for i in 0..t.starts.len() {
        let (s, e, a) = (t.starts[i], t.ends[i], t.apps[i]);
        if let (Some(last_e), Some(&last_a)) = (out.ends.last_mut(), out.apps.last()) {
            if last_a == a && (*last_e).checked_succ() == Some(s) {
                *last_e = e;
                continue;
            }
        }
        out.push(s, e, a);
    }
    out.starts.shrink_to_fit();
    out.ends.shrink_to_fit();
    out.apps.shrink_to_fit();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_flattening_prefers_innermost() {
        let t = flatten_nested::<u32>(vec![(0, 99, 1), (10, 19, 2), (12, 13, 3), (50, 59, 4)]);
        assert_eq!(t.lookup(5), Some(1));
        assert_eq!(t.lookup(10), Some(2));
        assert_eq!(t.lookup(12), Some(3));
        assert_eq!(t.lookup(14), Some(2));
        assert_eq!(t.lookup(20), Some(1));
        assert_eq!(t.lookup(55), Some(4));
        assert_eq!(t.lookup(99), Some(1));
        assert_eq!(t.lookup(100), None);
    }

    #[test]
    fn nested_flattening_handles_max_and_duplicates() {
        let t = flatten_nested::<u32>(vec![(0, u32::MAX, 1), (u32::MAX - 3, u32::MAX, 2)]);
        assert_eq!(t.lookup(0), Some(1));
        assert_eq!(t.lookup(u32::MAX), Some(2));
        assert_eq!(t.lookup(u32::MAX - 4), Some(1));
        let t = flatten_nested::<u32>(vec![(10, 19, 1), (10, 19, 2)]);
        assert_eq!(t.lookup(15), Some(2));
    }

    #[test]
    fn any_flattening_prefers_narrowest() {
        let t = flatten_any::<u16>(vec![(1000, 2000, 1), (1500, 2500, 2), (1600, 1610, 3)]);
        assert_eq!(t.lookup(999), None);
        assert_eq!(t.lookup(1200), Some(1));
        assert_eq!(t.lookup(1550), Some(2)); // both cover; equal width → later wins
        assert_eq!(t.lookup(1605), Some(3));
        assert_eq!(t.lookup(2400), Some(2));
        assert_eq!(t.lookup(2501), None);
        let t = flatten_any::<u16>(vec![(65000, 65535, 7)]);
        assert_eq!(t.lookup(65535), Some(7));
    }
}
