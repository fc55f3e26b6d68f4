//! TCP sequence/ACK analysis of one connection as seen from a probe between client and
//! server: split handshake RTT, running RTT samples per leg, retransmissions, reordering,
//! loss upstream vs downstream of the probe, zero windows and resets.
//!
//! The state is fixed-size (no allocation, ever): per direction a ring of
//! [`RING`] outstanding segments for RTT samples and a list of [`HOLES`] open sequence
//! holes. All sequence arithmetic is modulo 2³² (RFC 1982 style comparisons), and every
//! input — random sequence numbers, missing handshake, mid-stream start, timestamps going
//! backwards — is accepted without panicking.
//!
//! # Classification of a segment that does not advance the sequence space
//!
//! A segment carrying data (or SYN/FIN) whose start lies below the highest sequence end
//! seen in its direction is, except for keep-alives (0 or 1 byte at `highest − 1`):
//!
//! * **`retransmissions`** — counted exactly like tshark's `tcp.analysis.retransmission`
//!   (plain, fast and spurious retransmissions), i.e. every such segment except the ones
//!   tshark calls out-of-order (arriving less than the reordering threshold after the
//!   highest sequence advanced, and not ending at the highest end). The threshold is the
//!   handshake RTT (both legs) when measured, else 3 ms, as in tshark.
//! * **`out_of_order`** — the segment filled (part of) a hole the probe saw open, i.e.
//!   bytes the probe had never seen.
//! * **`loss_upstream`** — a hole fill arriving at least the reordering threshold after
//!   the hole opened: the original was lost between the sender and the probe. A faster
//!   fill is plain reordering, not loss.
//! * **`loss_downstream`** — bytes the probe had already seen, sent again, and not yet
//!   acknowledged by the receiver as far as the probe saw (spurious retransmissions of
//!   acknowledged data are not a loss): the original (or its ACK) was lost beyond the
//!   probe, on the receiver's side.
//!
//! So `loss_upstream + loss_downstream` need not equal `retransmissions`.
//!
//! Other counters: `data_segments` counts segments with payload except keep-alives;
//! `zero_windows` counts segments advertising window 0 that are not SYN, FIN or RST (as
//! tshark's `tcp.analysis.zero_window`); `resets` counts RST segments, whose sequence and
//! ACK numbers are otherwise ignored. A SYN with a new initial sequence number (port reuse
//! within one flow, or a SYN after a mid-stream start) restarts the sequence analysis;
//! the flow keeps its first measured handshake.
//!
//! # RTT samples
//!
//! * Handshake: server leg = first SYN/ACK − last SYN before it (Karn: when the SYN was
//!   retransmitted, the SYN/ACK answers the last one, so the sample is still valid);
//!   client leg = first client ACK of the SYN/ACK (`ack = synack.seq + 1`, no SYN) − last
//!   SYN/ACK before it (when the SYN/ACK was retransmitted, the ACK answers the last one
//!   that reached the client; measuring from the first would add the server's RTO to the
//!   access leg). The sum is tshark's `initial_rtt` except when the SYN/ACK was
//!   retransmitted.
//! * Running: data of the server (end sequence E, time t) acknowledged by the client with
//!   `ack == E` at t′ gives a client-leg sample t′ − t; client data acknowledged by the
//!   server gives a server-leg sample. Only exact matches are used (as tshark's
//!   `ack_rtt`; SYN and FIN alone are not sampled, the handshake has its own fields): a
//!   cumulative ACK landing elsewhere may also cover data the ring did not
//!   record and would bias the sample. Karn's rule: a retransmission in a direction drops
//!   the outstanding samples above its start and no new samples are recorded until the
//!   receiver acknowledges everything sent before the retransmission; no samples are
//!   recorded while a hole is open either (the receiver's cumulative ACK waits for it).

use crate::decode::{tcp_flags, TcpInfo};

use super::SliceKpi;

/// Outstanding data segments (end sequence, send time) kept per direction for running
/// RTT samples. When full, new segments are not recorded until ACKs free entries
/// (keeping the oldest keeps samples flowing in bulk transfers).
pub const RING: usize = 8;

/// Open sequence holes kept per direction; when full, the two closest holes are merged
/// (over-approximating the unseen range).
pub const HOLES: usize = 4;

/// Reordering threshold when no handshake RTT is known (tshark's default), µs.
const DEFAULT_REORDER_US: u32 = 3_000;

/// A retransmission within this time of the last duplicate ACK is a fast
/// retransmission (tshark), µs.
const FAST_RETX_US: u32 = 20_000;

/// Handshake state bits.
const HS_SYN: u8 = 1;
const HS_SYNACK: u8 = 2;
/// `hs_pending` bits: handshake legs measured in the current window.
const PENDING_CLIENT: u8 = 1;
const PENDING_SERVER: u8 = 2;

#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

#[inline]
fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

#[inline]
fn seq_ge(a: u32, b: u32) -> bool {
    seq_le(b, a)
}

/// Elapsed µs from `then` to `now` on the tracker's wrapping µs clock; negative spans
/// (timestamps going backwards) count as 0.
#[inline]
fn elapsed_us(now: u32, then: u32) -> u32 {
    let d = now.wrapping_sub(then) as i32;
    d.max(0) as u32
}

#[inline]
fn ns_to_ms(ns: u64) -> f32 {
    (ns as f64 / 1e6) as f32
}

/// Additive counters of one window (or of all past windows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// RTT sample sums, ns, `[client leg, server leg]`.
    rtt_ns: [u64; 2],
    /// RTT sample counts, `[client leg, server leg]`.
    rtt_n: [u32; 2],
    data: [u32; 2],
    retx: [u32; 2],
    ooo: [u32; 2],
    loss_up: [u32; 2],
    loss_down: [u32; 2],
    zero: [u32; 2],
    rst: [u32; 2],
}

fn add2(a: &mut [u32; 2], b: &[u32; 2]) {
    a[0] = a[0].saturating_add(b[0]);
    a[1] = a[1].saturating_add(b[1]);
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.rtt_ns[0] = self.rtt_ns[0].saturating_add(o.rtt_ns[0]);
        self.rtt_ns[1] = self.rtt_ns[1].saturating_add(o.rtt_ns[1]);
        add2(&mut self.rtt_n, &o.rtt_n);
        add2(&mut self.data, &o.data);
        add2(&mut self.retx, &o.retx);
        add2(&mut self.ooo, &o.ooo);
        add2(&mut self.loss_up, &o.loss_up);
        add2(&mut self.loss_down, &o.loss_down);
        add2(&mut self.zero, &o.zero);
        add2(&mut self.rst, &o.rst);
    }

    fn write_into(&self, out: &mut SliceKpi) {
        out.rtt_client_sum_ms += ns_to_ms(self.rtt_ns[0]);
        out.rtt_client_samples = out.rtt_client_samples.saturating_add(self.rtt_n[0]);
        out.rtt_server_sum_ms += ns_to_ms(self.rtt_ns[1]);
        out.rtt_server_samples = out.rtt_server_samples.saturating_add(self.rtt_n[1]);
        add2(&mut out.data_segments, &self.data);
        add2(&mut out.retransmissions, &self.retx);
        add2(&mut out.out_of_order, &self.ooo);
        add2(&mut out.loss_upstream, &self.loss_up);
        add2(&mut out.loss_downstream, &self.loss_down);
        add2(&mut out.zero_windows, &self.zero);
        add2(&mut out.resets, &self.rst);
    }
}

/// A range of sequence space the probe has not seen, below the highest end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hole {
    start: u32,
    end: u32,
    /// When the hole opened (tracker µs clock).
    opened_us: u32,
}

/// Sequence state of one sending direction (plus the ACK state of that side). In
/// declaration order (`repr(C)`): the scalars every segment reads, then the ring, then
/// the holes.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Dir {
    /// Highest sequence end seen (tshark's `nextseq`).
    high: u32,
    /// When `high` last advanced (µs clock).
    high_us: u32,
    /// Initial sequence number (valid when `isn_valid`).
    isn: u32,
    /// Last ACK number sent by this side.
    lastack: u32,
    /// When `lastack` was last updated (µs clock).
    lastack_us: u32,
    /// Karn recovery point: no new RTT samples until the peer acknowledges it.
    recover: u32,
    /// Last window advertised by this side.
    window: u16,
    /// Duplicate ACKs sent by this side in a row.
    dupacks: u8,
    /// Any segment seen in this direction (`high` is valid).
    seen: bool,
    isn_valid: bool,
    /// This side has sent an ACK (`lastack` is valid).
    acked: bool,
    /// In Karn recovery (see `recover`).
    recovery: bool,
    ring_len: u8,
    holes_len: u8,
    /// Outstanding segments (end sequence, send time µs), oldest first.
    ring: [(u32, u32); RING],
    /// Open holes, in sequence order.
    holes: [Hole; HOLES],
}

impl Dir {
    fn reset_seq(&mut self) {
        *self = Dir::default();
    }

    fn push_ring(&mut self, end: u32, now: u32) {
        let n = usize::from(self.ring_len);
        if n < RING {
            self.ring[n] = (end, now);
            self.ring_len += 1;
        }
    }

    /// Drops outstanding entries with end ≤ `ack`.
    fn ack_ring(&mut self, ack: u32) {
        let n = usize::from(self.ring_len);
        let mut w = 0;
        for r in 0..n {
            let e = self.ring[r];
            if seq_gt(e.0, ack) {
                self.ring[w] = e;
                w += 1;
            }
        }
        self.ring_len = w as u8;
    }

    /// Karn: drops outstanding entries ending above `seq`.
    fn karn_truncate(&mut self, seq: u32) {
        let n = usize::from(self.ring_len);
        let mut w = 0;
        for r in 0..n {
            let e = self.ring[r];
            if seq_le(e.0, seq) {
                self.ring[w] = e;
                w += 1;
            }
        }
        self.ring_len = w as u8;
    }

    fn open_hole(&mut self, start: u32, end: u32, now: u32) {
        self.make_room();
        let n = usize::from(self.holes_len);
        if n < HOLES {
            self.holes[n] = Hole {
                start,
                end,
                opened_us: now,
            };
            self.holes_len += 1;
        }
    }

    /// When the hole list is full, merges the two adjacent holes with the smallest seen
    /// range between them (over-approximating the unseen space: a later retransmission
    /// of those seen bytes would be taken for a hole fill).
    fn make_room(&mut self) {
        let n = usize::from(self.holes_len);
        if n < HOLES || n < 2 {
            return;
        }
        let mut best = 0;
        let mut best_gap = u32::MAX;
        for k in 0..n - 1 {
            let gap = self.holes[k + 1].start.wrapping_sub(self.holes[k].end);
            if gap < best_gap {
                best_gap = gap;
                best = k;
            }
        }
        let next = self.holes[best + 1];
        let h = &mut self.holes[best];
        h.end = next.end;
        if seq_lt(next.opened_us, h.opened_us) {
            h.opened_us = next.opened_us;
        }
        self.remove_hole(best + 1);
    }

    /// Removes `[start, end)` from the open holes. Returns the opening time of the
    /// earliest hole it overlapped, if any.
    fn fill_holes(&mut self, start: u32, end: u32) -> Option<u32> {
        let n = usize::from(self.holes_len);
        if self.holes[..n]
            .iter()
            .any(|h| seq_gt(start, h.start) && seq_lt(end, h.end))
        {
            // the range splits a hole in two: make sure there is a slot
            self.make_room();
        }
        let mut opened: Option<u32> = None;
        let mut i = 0;
        while i < usize::from(self.holes_len) {
            let h = self.holes[i];
            if !(seq_lt(start, h.end) && seq_gt(end, h.start)) {
                i += 1;
                continue;
            }
            opened = Some(match opened {
                Some(o) if seq_le(o, h.opened_us) => o,
                _ => h.opened_us,
            });
            let covers_start = seq_le(start, h.start);
            let covers_end = seq_ge(end, h.end);
            match (covers_start, covers_end) {
                (true, true) => {
                    self.remove_hole(i);
                    continue;
                }
                (true, false) => self.holes[i].start = end,
                (false, true) => self.holes[i].end = start,
                (false, false) => {
                    // split: keep the left part, add the right part when there is room
                    self.holes[i].end = start;
                    let n = usize::from(self.holes_len);
                    if n < HOLES {
                        let mut k = n;
                        while k > i + 1 {
                            self.holes[k] = self.holes[k - 1];
                            k -= 1;
                        }
                        self.holes[i + 1] = Hole {
                            start: end,
                            end: h.end,
                            opened_us: h.opened_us,
                        };
                        self.holes_len += 1;
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        opened
    }

    fn remove_hole(&mut self, i: usize) {
        let n = usize::from(self.holes_len);
        if i >= n {
            return;
        }
        for k in i..n - 1 {
            self.holes[k] = self.holes[k + 1];
        }
        self.holes_len -= 1;
    }

    /// The receiver acknowledged up to `ack`: holes below it were only missed by the
    /// capture (the receiver got the data), drop them.
    fn ack_holes(&mut self, ack: u32) {
        let mut i = 0;
        while i < usize::from(self.holes_len) {
            if seq_le(self.holes[i].end, ack) {
                self.remove_hole(i);
                continue;
            }
            if seq_lt(self.holes[i].start, ack) {
                self.holes[i].start = ack;
            }
            i += 1;
        }
    }
}

/// TCP sequence/ACK analysis of one connection as seen from a probe between client and
/// server. Fixed size (see the `tracker_sizes` test); never allocates.
///
/// Laid out in declaration order (`repr(C)`) for the per-segment path: the fields every
/// segment reads (clock origin, handshake state, window counters, both directions) come
/// first and the handshake timestamps and past windows last, so a segment touches as few
/// cache lines as possible.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct TcpTracker {
    /// Origin of the tracker's µs clock (the first packet's timestamp).
    base_ns: u64,
    /// Handshake RTT (sum of both legs), µs; 0 = unknown. The reordering threshold.
    irtt_us: u32,
    /// `HS_*` bits.
    hs_state: u8,
    /// `PENDING_*` bits.
    hs_pending: u8,
    hs_client_ms: Option<f32>,
    /// Counters of the current window.
    win: Counts,
    dirs: [Dir; 2],
    /// Sequence number of the last SYN/ACK.
    synack_seq: u32,
    hs_server_ms: Option<f32>,
    /// Last SYN before the first SYN/ACK, ns.
    syn_ns: u64,
    /// Last SYN/ACK, ns.
    synack_ns: u64,
    /// Counters of all windows already taken.
    past: Counts,
}

impl TcpTracker {
    /// `first_ts_ns`/`first_flags`/`first_dir` describe the flow's first packet (the table
    /// passes them when it creates the tracker at the 2nd packet, because the first
    /// packet's SYN time is needed for the server-leg handshake RTT). The first packet is
    /// fully accounted (as by [`TcpTracker::on_segment`]).
    pub fn new(
        first_dir: usize,
        first: &TcpInfo,
        first_payload_len: u32,
        first_ts_ns: u64,
    ) -> Self {
        let mut t = Self::blank(first_ts_ns);
        t.on_segment(first_dir, first, first_payload_len, first_ts_ns);
        t
    }

    /// [`TcpTracker::new`] on the heap, built in place (the tracker is 512 bytes: the
    /// flow table keeps it boxed, and a copy from the stack per flow is measurable).
    pub fn new_boxed(
        first_dir: usize,
        first: &TcpInfo,
        first_payload_len: u32,
        first_ts_ns: u64,
    ) -> Box<Self> {
        let mut t = Box::new(Self::blank(first_ts_ns));
        t.on_segment(first_dir, first, first_payload_len, first_ts_ns);
        t
    }

    /// A tracker that has seen nothing yet, its clock starting at `base_ns`.
    #[inline]
    fn blank(base_ns: u64) -> Self {
        TcpTracker {
            base_ns,
            syn_ns: 0,
            synack_ns: 0,
            synack_seq: 0,
            irtt_us: 0,
            hs_client_ms: None,
            hs_server_ms: None,
            hs_state: 0,
            hs_pending: 0,
            dirs: [Dir::default(); 2],
            win: Counts::default(),
            past: Counts::default(),
        }
    }

    /// Accounts one segment. `dir`: 0 = client→server, 1 = server→client (any other
    /// value counts as 1). `payload_len` is the TCP payload length.
    pub fn on_segment(&mut self, dir: usize, tcp: &TcpInfo, payload_len: u32, ts_ns: u64) {
        let d = usize::from(dir != 0);
        let now = self.clock_us(ts_ns);
        let f = tcp.flags;
        let syn = f & tcp_flags::SYN != 0;
        let fin = f & tcp_flags::FIN != 0;
        let rst = f & tcp_flags::RST != 0;
        let ack = f & tcp_flags::ACK != 0;

        if rst {
            self.win.rst[d] = self.win.rst[d].saturating_add(1);
        }
        if tcp.window == 0 && f & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0 {
            self.win.zero[d] = self.win.zero[d].saturating_add(1);
        }
        if rst {
            // a reset carries no sequence or acknowledgement information worth analysing
            return;
        }
        if syn {
            self.on_syn(d, tcp);
        }
        self.handshake(d, tcp, ts_ns);

        let seglen = payload_len
            .wrapping_add(u32::from(syn))
            .wrapping_add(u32::from(fin));
        self.sequence(d, tcp.seq, payload_len, seglen, syn || fin, now);
        if ack {
            self.on_ack(d, tcp, payload_len, now);
        }
    }

    /// Adds this window's KPIs into `out` (handshake RTTs only in the window they were
    /// measured, sums/counts since the last call) and resets the window part.
    pub fn take_window(&mut self, out: &mut SliceKpi) {
        if self.hs_pending & PENDING_CLIENT != 0 {
            out.hs_rtt_client_ms = self.hs_client_ms;
        }
        if self.hs_pending & PENDING_SERVER != 0 {
            out.hs_rtt_server_ms = self.hs_server_ms;
        }
        self.hs_pending = 0;
        self.win.write_into(out);
        self.past.add(&self.win);
        self.win = Counts::default();
    }

    /// Whole-life KPIs into `out` (adds counters, sets the handshake RTTs when measured).
    pub fn totals(&self, out: &mut SliceKpi) {
        if self.hs_client_ms.is_some() {
            out.hs_rtt_client_ms = self.hs_client_ms;
        }
        if self.hs_server_ms.is_some() {
            out.hs_rtt_server_ms = self.hs_server_ms;
        }
        let mut c = self.past;
        c.add(&self.win);
        c.write_into(&mut *out);
    }

    /// The tracker's wrapping µs clock.
    #[inline]
    fn clock_us(&self, ts_ns: u64) -> u32 {
        (ts_ns.saturating_sub(self.base_ns) / 1_000) as u32
    }

    /// Reordering threshold, µs (tshark: the handshake RTT, else 3 ms).
    fn reorder_us(&self) -> u32 {
        if self.irtt_us > 0 {
            self.irtt_us
        } else {
            DEFAULT_REORDER_US
        }
    }

    /// A SYN with a new initial sequence number restarts the sequence analysis (port
    /// reuse within the flow's lifetime, or a SYN after a mid-stream start).
    fn on_syn(&mut self, d: usize, tcp: &TcpInfo) {
        let st = &self.dirs[d];
        if st.isn_valid && st.isn == tcp.seq {
            return; // retransmitted SYN
        }
        let restart = st.seen;
        if d == 0 && restart {
            // a new connection on the same 4-tuple: both directions and the handshake
            self.dirs = [Dir::default(); 2];
            self.hs_state = 0;
        } else if restart {
            self.dirs[d].reset_seq();
        }
        self.dirs[d].isn = tcp.seq;
        self.dirs[d].isn_valid = true;
    }

    fn handshake(&mut self, d: usize, tcp: &TcpInfo, ts_ns: u64) {
        let syn = tcp.flags & tcp_flags::SYN != 0;
        let ack = tcp.flags & tcp_flags::ACK != 0;
        match (d, syn, ack) {
            // last SYN before the SYN/ACK
            (0, true, false) if self.hs_state & HS_SYNACK == 0 => {
                self.syn_ns = ts_ns;
                self.hs_state |= HS_SYN;
            }
            (1, true, true) => {
                let c = &self.dirs[0];
                if c.isn_valid && tcp.ack != c.isn.wrapping_add(1) {
                    return; // does not answer the SYN we saw
                }
                if self.hs_state & HS_SYNACK == 0 {
                    self.hs_state |= HS_SYNACK;
                    if self.hs_state & HS_SYN != 0 && self.hs_server_ms.is_none() {
                        if let Some(dt) = ts_ns.checked_sub(self.syn_ns) {
                            self.hs_server_ms = Some(ns_to_ms(dt));
                            self.hs_pending |= PENDING_SERVER;
                        }
                    }
                }
                // the client leg is measured from the last SYN/ACK before the ACK
                self.synack_ns = ts_ns;
                self.synack_seq = tcp.seq;
            }
            (0, false, true)
                if self.hs_state & HS_SYNACK != 0
                    && self.hs_client_ms.is_none()
                    && tcp.ack == self.synack_seq.wrapping_add(1) =>
            {
                if let Some(dt) = ts_ns.checked_sub(self.synack_ns) {
                    self.hs_client_ms = Some(ns_to_ms(dt));
                    self.hs_pending |= PENDING_CLIENT;
                    if let Some(server) = self.hs_server_ms {
                        let total_us = (f64::from(server) * 1e3 + dt as f64 / 1e3).round();
                        self.irtt_us = total_us.clamp(0.0, f64::from(u32::MAX)) as u32;
                    }
                }
            }
            _ => {}
        }
    }

    /// Sequence analysis of a segment of direction `d` occupying `seglen` sequence
    /// numbers (payload + SYN + FIN).
    fn sequence(&mut self, d: usize, seq: u32, payload: u32, seglen: u32, synfin: bool, now: u32) {
        let end = seq.wrapping_add(seglen);
        let reorder = self.reorder_us();
        let [c0, c1] = &mut self.dirs;
        let (st, rev) = if d == 0 { (c0, &*c1) } else { (c1, &*c0) };

        if !st.seen {
            st.seen = true;
            st.high = end;
            st.high_us = now;
            if payload > 0 {
                self.win.data[d] = self.win.data[d].saturating_add(1);
            }
            if payload > 0 {
                st.push_ring(end, now);
            }
            return;
        }
        // keep-alive: 0 or 1 byte one below the next expected sequence number
        if payload <= 1 && !synfin && seq == st.high.wrapping_sub(1) {
            return;
        }
        if payload > 0 {
            self.win.data[d] = self.win.data[d].saturating_add(1);
        }
        let not_advanced = seq_lt(seq, st.high) && !(payload > 1 && seq == st.high.wrapping_sub(1));
        if !not_advanced {
            if seq_gt(seq, st.high) {
                st.open_hole(st.high, seq, now);
            }
            if seq_gt(end, st.high) {
                st.high = end;
                st.high_us = now;
            }
            if payload > 0 && st.holes_len == 0 && !st.recovery {
                st.push_ring(end, now);
            }
            return;
        }
        if seglen == 0 {
            return; // a pure ACK below the highest sequence: nothing to classify
        }

        // tshark's classification
        let spurious = payload > 0 && rev.acked && seq_le(end, rev.lastack);
        let fast = rev.acked
            && rev.dupacks >= 2
            && rev.lastack == seq
            && elapsed_us(now, rev.lastack_us) < FAST_RETX_US;
        let ooo_timing =
            !spurious && !fast && elapsed_us(now, st.high_us) < reorder && st.high != end;
        if !ooo_timing {
            self.win.retx[d] = self.win.retx[d].saturating_add(1);
        }

        match st.fill_holes(seq, end) {
            Some(opened) => {
                self.win.ooo[d] = self.win.ooo[d].saturating_add(1);
                if elapsed_us(now, opened) >= reorder {
                    self.win.loss_up[d] = self.win.loss_up[d].saturating_add(1);
                }
                st.karn_truncate(seq);
            }
            None => {
                // Karn: ACKs of anything from here up are ambiguous until the receiver
                // has everything sent so far (a spurious retransmission of acknowledged
                // data delays nothing)
                st.karn_truncate(seq);
                if !spurious {
                    self.win.loss_down[d] = self.win.loss_down[d].saturating_add(1);
                    st.recovery = true;
                    st.recover = st.high;
                }
            }
        }
    }

    /// ACK processing of a segment sent by side `d`: duplicate-ACK state of `d`, RTT
    /// samples, holes and Karn recovery of the data direction `1 − d`.
    fn on_ack(&mut self, d: usize, tcp: &TcpInfo, payload: u32, now: u32) {
        let a = tcp.ack;
        let [c0, c1] = &mut self.dirs;
        let (st, data) = if d == 0 { (c0, c1) } else { (c1, c0) };

        if st.acked {
            let plain = tcp.flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0;
            if payload == 0
                && plain
                && tcp.window != 0
                && tcp.window == st.window
                && tcp.seq == st.high
                && a == st.lastack
            {
                st.dupacks = st.dupacks.saturating_add(1);
            }
            if a != st.lastack {
                st.dupacks = 0;
            }
        }
        st.acked = true;
        st.lastack = a;
        st.lastack_us = now;
        st.window = tcp.window;

        if !data.seen {
            return;
        }
        let n = usize::from(data.ring_len);
        if let Some(&(_, sent)) = data.ring[..n].iter().find(|e| e.0 == a) {
            let dt = now.wrapping_sub(sent) as i32;
            if dt >= 0 {
                // d = 0: the client acknowledges server data → client leg (index 0)
                self.win.rtt_ns[d] =
                    self.win.rtt_ns[d].saturating_add(u64::from(dt as u32) * 1_000);
                self.win.rtt_n[d] = self.win.rtt_n[d].saturating_add(1);
            }
        }
        data.ack_ring(a);
        data.ack_holes(a);
        if data.recovery && seq_ge(a, data.recover) {
            data.recovery = false;
        }
    }
}
