//! Active transfer time per direction: the time a flow actually had data moving, the
//! denominator of throughput (payload bytes / active time).

use super::SliceKpi;

/// Gaps between consecutive payload packets of one direction at least this long are idle
/// time (think time, user pauses, keep-alives), not transfer time: 500 ms, well above
/// any RTT or pacing interval of a running transfer, well below human pauses.
pub const ACTIVE_IDLE_NS: u64 = 500_000_000;

/// Per direction: sum of the gaps between consecutive payload packets shorter than
/// [`ACTIVE_IDLE_NS`]. A gap counts in the window of the packet that closes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActiveTime {
    /// Timestamp of the last payload packet per direction, ns.
    last_ns: [u64; 2],
    /// Whether `last_ns` is valid per direction.
    seen: [bool; 2],
    /// Active time of the current window, ns.
    win: [u64; 2],
    /// Active time of all windows already taken, ns.
    past: [u64; 2],
}

impl ActiveTime {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts one packet: `dir` 0 = client→server, 1 = server→client (any other value
    /// counts as 1); packets without payload are ignored. Timestamps going backwards
    /// count as a zero gap.
    pub fn on_packet(&mut self, dir: usize, payload_len: u32, ts_ns: u64) {
        if payload_len == 0 {
            return;
        }
        let d = usize::from(dir != 0);
        if self.seen[d] {
            let gap = ts_ns.saturating_sub(self.last_ns[d]);
            if gap < ACTIVE_IDLE_NS {
                self.win[d] = self.win[d].saturating_add(gap);
            }
            self.last_ns[d] = self.last_ns[d].max(ts_ns);
        } else {
            self.seen[d] = true;
            self.last_ns[d] = ts_ns;
        }
    }

    /// Adds this window's active time into `out.active_ns` and resets the window part.
    pub fn take_window(&mut self, out: &mut SliceKpi) {
        for d in 0..2 {
            out.active_ns[d] = out.active_ns[d].saturating_add(self.win[d]);
            self.past[d] = self.past[d].saturating_add(self.win[d]);
            self.win[d] = 0;
        }
    }

    /// Adds the whole-life active time into `out.active_ns`.
    pub fn totals(&self, out: &mut SliceKpi) {
        for d in 0..2 {
            let t = self.past[d].saturating_add(self.win[d]);
            out.active_ns[d] = out.active_ns[d].saturating_add(t);
        }
    }
}
