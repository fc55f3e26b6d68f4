//! Attribution of later IP fragments to their flow: a bounded, direct-mapped cache from
//! (addresses, protocol, IP id) to the ports seen in the first fragment.

use crate::decode::Transport;
use std::hash::{BuildHasher, Hash};

#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
struct FragKey {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    tunnel_id: u32,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: FragKey,
    ports: (u16, u16),
    used: bool,
}

/// Fixed-size cache: a newer datagram may overwrite an older one's slot (bounded memory).
pub(crate) struct FragCache {
    slots: Vec<Slot>,
    hasher: foldhash::fast::FixedState,
}

impl FragCache {
    pub(crate) fn new(slots: usize) -> Self {
        FragCache {
            slots: vec![Slot::default(); slots.max(1)],
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_f7a9),
        }
    }

    fn key(t: &Transport<'_>, id: u32) -> FragKey {
        FragKey {
            src: t.src,
            dst: t.dst,
            id,
            proto: t.proto,
            tunnel_id: t.tunnel_id,
        }
    }

    fn slot_of(&self, k: &FragKey) -> usize {
        (self.hasher.hash_one(k) as usize) % self.slots.len()
    }

    /// Remembers the ports of a first fragment.
    pub(crate) fn remember(&mut self, t: &Transport<'_>, id: u32) {
        let key = Self::key(t, id);
        let i = self.slot_of(&key);
        self.slots[i] = Slot {
            key,
            ports: (t.src_port, t.dst_port),
            used: true,
        };
    }

    /// Ports of the datagram a later fragment belongs to, if its first fragment was seen.
    pub(crate) fn ports(&self, t: &Transport<'_>, id: u32) -> Option<(u16, u16)> {
        let key = Self::key(t, id);
        let s = &self.slots[self.slot_of(&key)];
        (s.used && s.key == key).then_some(s.ports)
    }
}
