//! Flow table settings: timeouts, window length, memory bound.

use serde::Deserialize;

/// Settings of a [`super::FlowTable`]. Durations are in seconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// TCP idle timeout (Zeek's `tcp_inactivity_timeout`).
    pub tcp_idle_s: u64,
    /// Timeout of a TCP flow after FINs in both directions or a RST.
    pub tcp_closed_s: u64,
    /// UDP, ICMP and other protocols' idle timeout.
    pub udp_idle_s: u64,
    /// Window length for flow slices (one minute by default).
    pub window_s: u64,
    /// Most flows held at once; over it the least recently active flow is evicted.
    pub max_flows: usize,
    /// Entries of the (direct-mapped) IP fragment attribution cache.
    pub fragment_slots: usize,
    /// Run DPI and per-flow KPIs; `false` keeps only flows and counters (used to measure
    /// what DPI and KPIs cost).
    pub inspect: bool,
    /// Server addresses remembered from DNS answers to name later flows (0 disables).
    pub dns_cache_entries: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle_s: 300,
            tcp_closed_s: 10,
            udp_idle_s: 60,
            window_s: 60,
            max_flows: 4_000_000,
            fragment_slots: 4096,
            inspect: true,
            dns_cache_entries: crate::dpi::dns_cache::DEFAULT_CAPACITY,
        }
    }
}
