//! Counters of the flow table's work, for summaries and metrics.

use crate::decode::Skip;

/// What the flow table has seen and done.
#[derive(Clone, Debug, Default)]
pub struct FlowStats {
    /// Frames processed.
    pub packets: u64,
    /// Captured bytes of those frames.
    pub frame_bytes: u64,
    /// Frames skipped or ignored, per [`Skip`] reason (indexed by [`Skip::index`]).
    pub skipped: [u64; Skip::ALL.len()],
    /// Packets whose TCP/UDP header was cut short, counted in port-less flows.
    pub l4_truncated: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows ended (any reason).
    pub flows_ended: u64,
    /// Flows evicted because the table was full.
    pub flows_evicted: u64,
    /// Flow slices emitted.
    pub slices: u64,
}

impl FlowStats {
    /// Frames skipped for a decode error (non-IP frames excluded).
    pub fn skipped_total(&self) -> u64 {
        Skip::ALL
            .iter()
            .filter(|s| **s != Skip::NonIp)
            .map(|s| self.skipped[s.index()])
            .sum()
    }

    /// Non-zero skip counts with their reasons, in a fixed order.
    pub fn skip_reasons(&self) -> Vec<(Skip, u64)> {
        Skip::ALL
            .iter()
            .map(|s| (*s, self.skipped[s.index()]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}
