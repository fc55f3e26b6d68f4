//! Bounded server-address → DNS name cache, fed by the DNS answers the DPI sees, used to
//! name later flows to those addresses that carry no SNI or Host of their own (a TLS
//! ClientHello without SNI, plain TCP, UDP): the flow table classifies them by that name.
//!
//! One cache per flow table. Fixed capacity with CLOCK replacement (second chance: an
//! entry used since the hand last passed survives one more turn), so memory is bounded
//! (≈ 100 bytes per entry plus the name) and no operation scans the whole cache.
//!
//! TTL-aware: an entry expires at answer time + the record's TTL, but never sooner than
//! [`MIN_TTL_S`] (clients and their OS caches keep using an address well past short CDN
//! TTLs; connections are typically opened seconds to minutes after the lookup) and never
//! later than [`MAX_TTL_S`]. When several names resolve to one address the latest answer
//! wins, as it is the one a client that just looked it up will connect for.

type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;

/// Shortest lifetime of an entry, seconds.
pub const MIN_TTL_S: u32 = 300;
/// Longest lifetime of an entry, seconds.
pub const MAX_TTL_S: u32 = 86_400;
/// Default capacity (entries) of a flow table's cache.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// One address record of a DNS answer: the address and its TTL (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Address from an A or AAAA record.
    pub addr: IpAddr,
    /// Record TTL, seconds.
    pub ttl_s: u32,
}

#[derive(Debug)]
struct Slot {
    addr: IpAddr,
    name: Box<str>,
    expires_ns: u64,
    /// CLOCK reference bit: used (or inserted) since the hand last passed.
    referenced: bool,
}

/// Bounded address → name cache with CLOCK replacement.
#[derive(Debug)]
pub struct DnsCache {
    capacity: usize,
    index: HashMap<IpAddr, u32>,
    slots: Vec<Slot>,
    hand: usize,
    inserted: u64,
    replaced: u64,
    hits: u64,
}

impl Default for DnsCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl DnsCache {
    /// An empty cache holding at most `capacity` addresses (0 disables it).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(u32::MAX as usize);
        DnsCache {
            capacity,
            index: HashMap::with_hasher(Default::default()),
            slots: Vec::new(),
            hand: 0,
            inserted: 0,
            replaced: 0,
            hits: 0,
        }
    }

    /// Addresses held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Most addresses held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// (answers inserted, entries replaced by the CLOCK hand, lookups that found a name).
    pub fn counters(&self) -> (u64, u64, u64) {
        (self.inserted, self.replaced, self.hits)
    }

    /// Remembers that `name` resolved to `a.addr` at `now_ns`.
    pub fn insert(&mut self, name: &str, a: DnsAnswer, now_ns: u64) {
        if self.capacity == 0 || name.is_empty() || name == "." {
            return;
        }
        let ttl = a.ttl_s.clamp(MIN_TTL_S, MAX_TTL_S);
        let expires_ns = now_ns.saturating_add(u64::from(ttl) * 1_000_000_000);
        self.inserted += 1;
        if let Some(&i) = self.index.get(&a.addr) {
            if let Some(s) = self.slots.get_mut(i as usize) {
                if &*s.name != name {
                    s.name = name.into();
                }
                s.expires_ns = expires_ns;
                s.referenced = true;
            }
            return;
        }
        let slot = Slot {
            addr: a.addr,
            name: name.into(),
            expires_ns,
            referenced: false,
        };
        if self.slots.len() < self.capacity {
            self.index.insert(a.addr, self.slots.len() as u32);
            self.slots.push(slot);
            return;
        }
        let victim = self.advance_hand(now_ns);
        self.replaced += 1;
        let old = std::mem::replace(&mut self.slots[victim], slot);
        self.index.remove(&old.addr);
        self.index.insert(a.addr, victim as u32);
    }

    /// The name an earlier DNS answer gave for `addr`, unless expired at `now_ns`.
    pub fn lookup(&mut self, addr: IpAddr, now_ns: u64) -> Option<&str> {
        let i = *self.index.get(&addr)? as usize;
        let s = self.slots.get_mut(i)?;
        if s.expires_ns < now_ns {
            return None;
        }
        s.referenced = true;
        self.hits += 1;
        Some(&s.name)
    }

    /// CLOCK: the first slot from the hand that is expired or not referenced (clearing
    /// reference bits on the way); at most two turns.
    fn advance_hand(&mut self, now_ns: u64) -> usize {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let i = self.hand;
            self.hand = (self.hand + 1) % n;
            let s = &mut self.slots[i];
            if s.expires_ns < now_ns || !s.referenced {
                return i;
            }
            s.referenced = false;
        }
        let i = self.hand;
        self.hand = (self.hand + 1) % n;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn v4(d: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, d])
    }

    fn ans(d: u8, ttl_s: u32) -> DnsAnswer {
        DnsAnswer { addr: v4(d), ttl_s }
    }

    #[test]
    fn remembers_and_expires_with_ttl_floor_and_cap() {
        let mut c = DnsCache::new(8);
        c.insert("www.example.com", ans(1, 30), 10 * S);
        // a 30 s TTL still lives MIN_TTL_S
        assert_eq!(c.lookup(v4(1), 10 * S + 299 * S), Some("www.example.com"));
        assert_eq!(c.lookup(v4(1), 10 * S + 301 * S), None);
        c.insert("long.example.com", ans(2, u32::MAX), 0);
        assert!(c.lookup(v4(2), u64::from(MAX_TTL_S) * S).is_some());
        assert!(c.lookup(v4(2), u64::from(MAX_TTL_S) * S + 1).is_none());
        assert_eq!(c.lookup(v4(3), 0), None);
    }

    #[test]
    fn latest_answer_wins() {
        let mut c = DnsCache::new(8);
        c.insert("a.example.com", ans(1, 600), 0);
        c.insert("b.example.com", ans(1, 600), S);
        assert_eq!(c.lookup(v4(1), 2 * S), Some("b.example.com"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn bounded_with_second_chance() {
        let mut c = DnsCache::new(4);
        for d in 1..=4 {
            c.insert(&format!("h{d}.example.com"), ans(d, 600), 0);
        }
        // use 1 and 3: the hand spares them once
        assert!(c.lookup(v4(1), 1).is_some());
        assert!(c.lookup(v4(3), 1).is_some());
        c.insert("h5.example.com", ans(5, 600), 2);
        c.insert("h6.example.com", ans(6, 600), 3);
        assert_eq!(c.len(), 4);
        assert!(c.lookup(v4(1), 4).is_some());
        assert!(c.lookup(v4(3), 4).is_some());
        assert!(c.lookup(v4(2), 4).is_none());
        assert!(c.lookup(v4(4), 4).is_none());
        assert!(c.lookup(v4(5), 4).is_some());
        assert!(c.lookup(v4(6), 4).is_some());
        // many more inserts never grow it
        for d in 7..=200u8 {
            c.insert("x.example.com", ans(d, 600), 5);
        }
        assert_eq!(c.len(), 4);
        assert_eq!(c.index.len(), 4);
        assert_eq!(c.counters().1, 196);
    }

    #[test]
    fn disabled_and_bad_names() {
        let mut c = DnsCache::new(0);
        c.insert("a.example.com", ans(1, 600), 0);
        assert!(c.is_empty());
        let mut c = DnsCache::new(2);
        c.insert("", ans(1, 600), 0);
        c.insert(".", ans(1, 600), 0);
        assert!(c.is_empty());
    }
}
