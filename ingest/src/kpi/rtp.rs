//! RTP loss and interarrival jitter per direction (RFC 3550 §6.4.1, A.1, A.3, A.8).
//!
//! One stream (SSRC) is tracked per direction. A different SSRC takes over after
//! [`SSRC_SWITCH`] consecutive packets of it (a single stray packet of another source
//! does not disturb the stream); the previous stream's expected/lost counts are kept.
//! Sequence numbers are extended over 16-bit wrap-arounds; a jump of more than
//! `MAX_DROPOUT` is taken as a restart once two consecutive packets confirm it (A.1).
//! Jitter is computed in floating point from the exact arrival times (no quantisation to
//! timestamp units), J += (|D| − J)/16, and reported in ms.

use crate::dpi::RtpHeader;

use super::SliceKpi;

/// Consecutive packets of a new SSRC after which it replaces the tracked stream.
pub const SSRC_SWITCH: u8 = 3;

/// RFC 3550 A.1: largest forward jump still taken as loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: largest backward step still taken as reordering.
const MAX_MISORDER: u32 = 100;
const SEQ_MOD: u32 = 1 << 16;
/// `bad_seq` value meaning "no pending restart".
const NO_BAD_SEQ: u32 = SEQ_MOD + 1;

/// RTP clock rate of a payload type (RFC 3551 static types; dynamic and unknown types are
/// assumed to be 8 kHz audio).
pub fn clock_rate(pt: u8) -> u32 {
    match pt {
        6 => 16_000,
        10 | 11 => 44_100,
        16 => 11_025,
        17 => 22_050,
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => 90_000,
        _ => 8_000,
    }
}

/// One direction's stream state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Stream {
    active: bool,
    have_prev: bool,
    cand_n: u8,
    max_seq: u16,
    ssrc: u32,
    cand_ssrc: u32,
    /// Sequence cycles (multiples of 2¹⁶).
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u32,
    prev_rtp_ts: u32,
    prev_arrival_ns: u64,
    /// Interarrival jitter, timestamp units.
    jitter: f32,
    clock: u32,
    /// Expected/lost of previous streams (SSRC changes, restarts).
    past_expected: u32,
    past_lost: u32,
    /// Expected/lost already reported by `take_window`.
    rep_expected: u32,
    rep_lost: u32,
    /// Largest jitter in the current window / ever, ms.
    win_jitter_ms: Option<f32>,
    max_jitter_ms: Option<f32>,
}

impl Stream {
    fn expected_cur(&self) -> u32 {
        if !self.active {
            return 0;
        }
        let ext_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        ext_max.wrapping_sub(self.base_seq).wrapping_add(1)
    }

    fn lost_cur(&self) -> u32 {
        self.expected_cur().saturating_sub(self.received)
    }

    fn cum_expected(&self) -> u32 {
        self.past_expected.wrapping_add(self.expected_cur())
    }

    fn cum_lost(&self) -> u32 {
        self.past_lost.saturating_add(self.lost_cur())
    }

    /// Moves the current stream's counts into the past ones.
    fn fold(&mut self) {
        self.past_expected = self.cum_expected();
        self.past_lost = self.cum_lost();
        self.received = 0;
        self.active = false;
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = NO_BAD_SEQ;
        self.cycles = 0;
        self.received = 0;
        self.have_prev = false;
        self.active = true;
    }

    fn update(&mut self, h: &RtpHeader, ts_ns: u64) {
        if !self.active {
            self.ssrc = h.ssrc;
            self.cand_n = 0;
            self.jitter = 0.0;
            self.init_seq(h.seq);
        } else if h.ssrc != self.ssrc {
            if self.cand_n > 0 && self.cand_ssrc == h.ssrc {
                self.cand_n = self.cand_n.saturating_add(1);
            } else {
                self.cand_ssrc = h.ssrc;
                self.cand_n = 1;
            }
            if self.cand_n < SSRC_SWITCH {
                return;
            }
            self.fold();
            self.ssrc = h.ssrc;
            self.cand_n = 0;
            self.jitter = 0.0;
            self.init_seq(h.seq);
        } else {
            self.cand_n = 0;
            let udelta = h.seq.wrapping_sub(self.max_seq);
            if udelta < MAX_DROPOUT {
                if h.seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(SEQ_MOD);
                }
                self.max_seq = h.seq;
            } else if u32::from(udelta) <= SEQ_MOD - MAX_MISORDER {
                // a very large jump: a restart when the next packet follows it
                if u32::from(h.seq) == self.bad_seq {
                    self.fold();
                    self.init_seq(h.seq);
                } else {
                    self.bad_seq = (u32::from(h.seq) + 1) & (SEQ_MOD - 1);
                    return;
                }
            }
            // else: duplicate or reordered packet, counted as received
        }
        self.received = self.received.saturating_add(1);

        let clock = clock_rate(h.payload_type);
        self.clock = clock;
        if self.have_prev {
            // Two's-complement difference: exact for arrivals less than 292 years apart,
            // and an i64 converts to f64 in hardware (an i128 needs a library call).
            let dt_ns = ts_ns.wrapping_sub(self.prev_arrival_ns) as i64;
            let dts = h.timestamp.wrapping_sub(self.prev_rtp_ts) as i32;
            let d = dt_ns as f64 * f64::from(clock) / 1e9 - f64::from(dts);
            let j = f64::from(self.jitter);
            self.jitter = (j + (d.abs() - j) / 16.0) as f32;
            let ms = (f64::from(self.jitter) * 1000.0 / f64::from(clock)) as f32;
            self.win_jitter_ms = Some(self.win_jitter_ms.map_or(ms, |m| m.max(ms)));
            self.max_jitter_ms = Some(self.max_jitter_ms.map_or(ms, |m| m.max(ms)));
        }
        self.have_prev = true;
        self.prev_arrival_ns = ts_ns;
        self.prev_rtp_ts = h.timestamp;
    }
}

fn max_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// RTP loss (expected vs received from sequence numbers) and interarrival jitter of a
/// flow, per direction. Fixed size, never allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RtpTracker {
    dirs: [Stream; 2],
}

impl RtpTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts one UDP payload of direction `dir` (0 = client→server, 1 =
    /// server→client; any other value counts as 1) arriving at `ts_ns`. Returns false
    /// (and changes nothing) when it is not an RTP packet (e.g. RTCP).
    pub fn on_packet(&mut self, dir: usize, payload: &[u8], ts_ns: u64) -> bool {
        match RtpHeader::parse(payload) {
            Some(h) => {
                self.on_header(dir, &h, ts_ns);
                true
            }
            None => false,
        }
    }

    /// Accounts one already parsed RTP header (e.g. from RFC 4571 framing over TCP).
    pub fn on_header(&mut self, dir: usize, h: &RtpHeader, ts_ns: u64) {
        self.dirs[usize::from(dir != 0)].update(h, ts_ns);
    }

    /// Adds this window's expected/lost packets (both directions) into `out` and sets
    /// `out.rtp_jitter_ms` to the largest jitter of the window (max with what `out`
    /// holds), then resets the window part.
    pub fn take_window(&mut self, out: &mut SliceKpi) {
        let mut jitter = None;
        for s in &mut self.dirs {
            let exp = s.cum_expected();
            out.rtp_expected = out
                .rtp_expected
                .saturating_add(exp.wrapping_sub(s.rep_expected));
            s.rep_expected = exp;
            let lost = s.cum_lost().saturating_sub(s.rep_lost);
            out.rtp_lost = out.rtp_lost.saturating_add(lost);
            s.rep_lost = s.rep_lost.saturating_add(lost);
            jitter = max_opt(jitter, s.win_jitter_ms.take());
        }
        out.rtp_jitter_ms = max_opt(out.rtp_jitter_ms, jitter);
    }

    /// Whole-life expected/lost packets and largest jitter into `out` (added / max-ed).
    pub fn totals(&self, out: &mut SliceKpi) {
        let mut jitter = None;
        for s in &self.dirs {
            out.rtp_expected = out.rtp_expected.saturating_add(s.cum_expected());
            out.rtp_lost = out.rtp_lost.saturating_add(s.cum_lost());
            jitter = max_opt(jitter, s.max_jitter_ms);
        }
        out.rtp_jitter_ms = max_opt(out.rtp_jitter_ms, jitter);
    }

    /// Current RFC 3550 jitter estimate of a direction, ms (None before two packets).
    pub fn jitter_ms(&self, dir: usize) -> Option<f32> {
        let s = &self.dirs[usize::from(dir != 0)];
        (s.active && s.have_prev && s.clock > 0)
            .then(|| (f64::from(s.jitter) * 1000.0 / f64::from(s.clock)) as f32)
    }
}
