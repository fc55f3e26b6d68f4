//! The flow table's hash index: flow key hash → slab index, one cache line per lookup.
//!
//! A general-purpose hash table keeps its control bytes and its entries in two arrays, so
//! a lookup in a table larger than the cache misses twice before it even reaches the flow.
//! Here a *group* is one 64-byte cache line holding 15 entries and a counter; an entry is
//! a `u32` packing the slab index (low bits, plus one so that 0 means empty) with the top
//! bits of the hash as a tag (the high bits the index does not need). A lookup reads the
//! home group, compares tags, and checks the flow key of each tag hit (1 in 2^tag_bits
//! false hits). A full group sends inserts on to the next group and counts them in its
//! `overflow`, so lookups continue past a group only when something overflowed it
//! (F14-style), and removals undo the counts along the probe path. No tombstones: memory
//! stays ≈ 4.3 bytes per slot, at most 7/8 of the slots used.

/// Entries per group (the 16th `u32` of the line is the overflow counter).
const SLOTS: usize = 15;

/// Largest fill before the table doubles: 7/8 of the slots.
const MAX_LOAD_NUM: usize = 7;
const MAX_LOAD_DEN: usize = 8;

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Group {
    slots: [u32; SLOTS],
    /// Entries whose probe went past this group (their home group is this one or before).
    overflow: u32,
}

/// Hash index of slab indices (see the module documentation).
pub(super) struct FlowIndex {
    groups: Vec<Group>,
    /// `groups.len() - 1` (a power of two minus one).
    mask: usize,
    len: usize,
    /// Bits of an entry holding slab index + 1; the rest is the tag.
    idx_bits: u32,
}

impl FlowIndex {
    /// An index for slab indices below `max_index`, sized for `capacity` entries.
    pub(super) fn new(max_index: usize, capacity: usize) -> Self {
        // index + 1 must fit in idx_bits (0 marks an empty slot).
        let idx_bits = (usize::BITS - max_index.leading_zeros()).clamp(1, 32);
        let groups = groups_for(capacity);
        FlowIndex {
            groups: vec![Group::default(); groups],
            mask: groups - 1,
            len: 0,
            idx_bits,
        }
    }

    /// Heap bytes of the index.
    pub(super) fn allocation_size(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Group>()
    }

    #[inline]
    fn idx_mask(&self) -> u32 {
        if self.idx_bits >= 32 {
            u32::MAX
        } else {
            (1u32 << self.idx_bits) - 1
        }
    }

    /// The tag of `hash`, in place (above the index bits).
    #[inline]
    fn tag(&self, hash: u64) -> u32 {
        if self.idx_bits >= 32 {
            0
        } else {
            ((hash >> 32) as u32) & !self.idx_mask()
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash as usize) & self.mask
    }

    /// The slab index whose entry has `hash` and for which `eq` holds.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = self.tag(hash);
        let idx_mask = self.idx_mask();
        let mut g = self.home(hash);
        for _ in 0..=self.mask {
            let group = &self.groups[g];
            let mut hits = 0u32;
            for (k, &v) in group.slots.iter().enumerate() {
                hits |= u32::from(v != 0 && v & !idx_mask == tag) << k;
            }
            while hits != 0 {
                let k = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let i = (group.slots[k] & idx_mask) - 1;
                if eq(i) {
                    return Some(i);
                }
            }
            if group.overflow == 0 {
                return None;
            }
            g = (g + 1) & self.mask;
        }
        None
    }

    /// Adds slab index `i` (not present) under `hash`; `rehash(j)` gives the hash of any
    /// present index `j` when the index grows.
    pub(super) fn insert(&mut self, hash: u64, i: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * MAX_LOAD_DEN > self.groups.len() * SLOTS * MAX_LOAD_NUM {
            self.grow(&rehash);
        }
        self.place(hash, i);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, i: u32) {
        let v = self.tag(hash) | (i + 1);
        let mut g = self.home(hash);
        loop {
            let group = &mut self.groups[g];
            if let Some(slot) = group.slots.iter_mut().find(|s| **s == 0) {
                *slot = v;
                return;
            }
            group.overflow += 1;
            g = (g + 1) & self.mask;
        }
    }

    /// Removes slab index `i`, inserted under `hash`. Returns whether it was present.
    pub(super) fn remove(&mut self, hash: u64, i: u32) -> bool {
        let v = self.tag(hash) | (i + 1);
        let home = self.home(hash);
        let mut g = home;
        for _ in 0..=self.mask {
            if let Some(slot) = self.groups[g].slots.iter_mut().find(|s| **s == v) {
                *slot = 0;
                // Undo the overflow counts of the groups this entry's insert went past.
                let mut p = home;
                while p != g {
                    self.groups[p].overflow -= 1;
                    p = (p + 1) & self.mask;
                }
                self.len -= 1;
                return true;
            }
            if self.groups[g].overflow == 0 {
                return false;
            }
            g = (g + 1) & self.mask;
        }
        false
    }

    #[cold]
    fn grow(&mut self, rehash: &impl Fn(u32) -> u64) {
        let idx_mask = self.idx_mask();
        let old = std::mem::take(&mut self.groups);
        let groups = (old.len() * 2).max(groups_for(self.len + 1));
        self.groups = vec![Group::default(); groups];
        self.mask = groups - 1;
        for group in &old {
            for &v in group.slots.iter().filter(|v| **v != 0) {
                let i = (v & idx_mask) - 1;
                self.place(rehash(i), i);
            }
        }
    }
}

/// Groups (a power of two) holding `capacity` entries within the load limit.
fn groups_for(capacity: usize) -> usize {
    let slots = capacity.max(1) * MAX_LOAD_DEN / MAX_LOAD_NUM + 1;
    slots.div_ceil(SLOTS).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash with few distinct home groups, to force overflows.
    fn clustered(i: u32) -> u64 {
        let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h & !0xff) | u64::from(i % 3)
    }

    #[test]
    fn finds_what_was_inserted_through_overflows_and_growth() {
        let mut ix = FlowIndex::new(1 << 20, 16);
        for i in 0..5_000u32 {
            assert_eq!(ix.find(clustered(i), |j| j == i), None);
            ix.insert(clustered(i), i, clustered);
        }
        assert_eq!(ix.len, 5_000);
        for i in 0..5_000u32 {
            assert_eq!(ix.find(clustered(i), |j| j == i), Some(i), "entry {i}");
        }
        assert_eq!(ix.find(clustered(7_000), |j| j == 7_000), None);
    }

    #[test]
    fn removal_keeps_the_others_reachable_and_undoes_overflow_counts() {
        let mut ix = FlowIndex::new(1 << 20, 16);
        for i in 0..3_000u32 {
            ix.insert(clustered(i), i, clustered);
        }
        for i in (0..3_000u32).filter(|i| i % 2 == 0) {
            assert!(ix.remove(clustered(i), i));
            assert!(!ix.remove(clustered(i), i), "removed twice: {i}");
        }
        for i in 0..3_000u32 {
            let want = (i % 2 == 1).then_some(i);
            assert_eq!(ix.find(clustered(i), |j| j == i), want, "entry {i}");
        }
        for i in (0..3_000u32).filter(|i| i % 2 == 1) {
            assert!(ix.remove(clustered(i), i));
        }
        assert_eq!(ix.len, 0);
        assert!(ix
            .groups
            .iter()
            .all(|g| g.overflow == 0 && g.slots == [0; SLOTS]));
    }

    #[test]
    fn tag_collisions_are_resolved_by_the_key_check() {
        // Every entry has the same hash: only `eq` tells them apart.
        let mut ix = FlowIndex::new(1 << 10, 4);
        for i in 0..100u32 {
            ix.insert(42, i, |_| 42);
        }
        for i in 0..100u32 {
            assert_eq!(ix.find(42, |j| j == i), Some(i));
        }
    }

    #[test]
    fn wide_slab_indices_leave_no_tag_bits_and_still_work() {
        let mut ix = FlowIndex::new(usize::MAX, 4);
        assert_eq!(ix.idx_bits, 32);
        for i in [0u32, 1, u32::MAX - 2] {
            ix.insert(i as u64 * 7919, i, |j| j as u64 * 7919);
        }
        for i in [0u32, 1, u32::MAX - 2] {
            assert_eq!(ix.find(i as u64 * 7919, |j| j == i), Some(i));
        }
    }
}
