//! What the DPI learns on one flow and applies to later flows of the same flow table:
//!
//! * DNS answers (A/AAAA records) → [`DnsCache`]: a later flow to one of those addresses
//!   gets the queried name as [`DpiResult::server_name`](super::DpiResult), which the
//!   catalog classifies when the flow has no SNI or Host of its own;
//! * FTP data connections announced on a control connection (PASV/EPSV replies,
//!   PORT/EPRT commands) → a bounded table of expected `(address, port)` responders; the
//!   data connection is then `FTP_DATA` (as nDPI and Zeek name it) whatever its payload.
//!
//! The flow table calls [`CrossFlow::apply`] when it starts inspecting a flow and
//! [`CrossFlow::learn`] after each inspected packet (a no-op unless the packet's DPI left
//! something to learn).

use super::dns_cache::{DnsAnswer, DnsCache};
use super::DpiState;
type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Expected data connections held at most (oldest dropped first).
pub const EXPECTED_CAPACITY: usize = 1024;
/// An announced data connection not opened within this time is forgotten, ns.
const EXPECT_TTL_NS: u64 = 300 * 1_000_000_000;

/// Per-flow findings waiting for [`CrossFlow::learn`] (allocated only when there are some).
#[derive(Debug, Default)]
pub(crate) struct Learnt {
    /// Address records of a DNS response, for the flow's query name.
    pub dns: Vec<DnsAnswer>,
    /// Announced FTP data connections: responder address (None = the control
    /// connection's server) and port.
    pub expect: Vec<(Option<IpAddr>, u16)>,
}

/// Most address records taken from one DNS response.
pub(crate) const MAX_ANSWERS: usize = 16;

/// Cross-flow DPI state of one flow table.
#[derive(Debug, Default)]
pub struct CrossFlow {
    dns: DnsCache,
    expected: HashMap<(IpAddr, u16), u64>,
    order: VecDeque<(IpAddr, u16)>,
}

impl CrossFlow {
    /// A cross-flow state whose DNS cache holds at most `dns_capacity` addresses.
    pub fn new(dns_capacity: usize) -> Self {
        CrossFlow {
            dns: DnsCache::new(dns_capacity),
            expected: HashMap::with_hasher(Default::default()),
            order: VecDeque::new(),
        }
    }

    /// The DNS cache.
    pub fn dns_cache(&self) -> &DnsCache {
        &self.dns
    }

    /// Labels a flow that is about to be inspected from what earlier flows taught: an
    /// expected FTP data connection, the DNS name of its server.
    pub fn apply(&mut self, dpi: &mut DpiState, server_ip: IpAddr, server_port: u16, now_ns: u64) {
        if !self.expected.is_empty() {
            if let Some(at) = self.expected.remove(&(server_ip, server_port)) {
                if at.saturating_add(EXPECT_TTL_NS) >= now_ns {
                    dpi.set_decided("FTP_DATA");
                }
            }
        }
        if let Some(name) = self.dns.lookup(server_ip, now_ns) {
            dpi.res().server_name = Some(name.into());
        }
    }

    /// Takes what the flow's last packet taught (DNS answers, announced data connections).
    pub fn learn(&mut self, dpi: &mut DpiState, server_ip: IpAddr, now_ns: u64) {
        let Some(l) = dpi.learnt.take() else {
            return;
        };
        if !l.dns.is_empty() {
            if let Some(q) = dpi.result().dns_qname.as_deref() {
                for a in &l.dns {
                    self.dns.insert(q, *a, now_ns);
                }
            }
        }
        for (ip, port) in l.expect {
            self.expect(ip.unwrap_or(server_ip), port, now_ns);
        }
    }

    fn expect(&mut self, ip: IpAddr, port: u16, now_ns: u64) {
        if port == 0 {
            return;
        }
        if self.expected.insert((ip, port), now_ns).is_none() {
            self.order.push_back((ip, port));
        }
        // drop entries already consumed from the order list, then the oldest over the cap
        if self.order.len() > 2 * self.expected.len() + 16 {
            let live = &self.expected;
            self.order.retain(|k| live.contains_key(k));
        }
        while self.expected.len() > EXPECTED_CAPACITY {
            match self.order.pop_front() {
                Some(old) => {
                    self.expected.remove(&old);
                }
                None => break,
            }
        }
    }
}
