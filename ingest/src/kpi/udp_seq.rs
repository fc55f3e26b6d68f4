//! Loss of sequence-numbered datagrams: game ticks and similar UDP protocols that carry a
//! per-direction packet counter near the start of the payload (most real-time game
//! protocols do; RTP has its own tracker, [`super::RtpTracker`]).
//!
//! The counter's place is not known in advance, so each direction first watches a few
//! candidate fields (unsigned 16/32-bit, little and big endian, at payload offsets 0–4)
//! and **locks** onto the first one that advances by 1–[`MAX_STEP`] in [`LOCK_RUN`]
//! consecutive datagrams (random bytes, constant ids, timestamps and lengths do not).
//! A direction that has not locked after [`GIVE_UP`] datagrams stops looking.
//!
//! Once locked, a forward jump of `d` counts `d` expected and `d − 1` lost datagrams; a
//! late datagram (behind the highest counter) gives one back; a jump beyond [`MAX_JUMP`]
//! resynchronises without counting. The probe sees a datagram only if it survived the
//! path from its sender to the probe, so the losses of a direction are **upstream of the
//! probe** (client → probe = access/home for client-sent datagrams, server → probe =
//! core/internet for server-sent ones). They are reported as `data_segments` (expected)
//! and `loss_upstream` (lost) of the sending direction, the fields the TCP tracker uses
//! for the same meaning.

use super::SliceKpi;

/// Consecutive small forward steps needed to lock onto a candidate field.
pub const LOCK_RUN: u8 = 8;
/// Largest step (1 + lost datagrams) accepted while locking.
pub const MAX_STEP: u32 = 4;
/// Datagrams per direction after which an unlocked direction stops looking.
pub const GIVE_UP: u16 = 64;
/// Largest forward jump counted as loss once locked (larger: resynchronise).
pub const MAX_JUMP: u32 = 1000;

/// Candidate fields: (offset, width in bytes, big endian). Narrow fields first: a 16-bit
/// view of a wider counter's low bytes wraps as the counter does, while a 32-bit view of a
/// 16-bit counter with constant neighbours would not.
const CANDIDATES: [(u8, u8, bool); 20] = [
    (0, 2, false),
    (1, 2, false),
    (2, 2, false),
    (3, 2, false),
    (4, 2, false),
    (0, 2, true),
    (1, 2, true),
    (2, 2, true),
    (3, 2, true),
    (4, 2, true),
    (0, 4, false),
    (1, 4, false),
    (2, 4, false),
    (3, 4, false),
    (4, 4, false),
    (0, 4, true),
    (1, 4, true),
    (2, 4, true),
    (3, 4, true),
    (4, 4, true),
];

fn read(payload: &[u8], c: (u8, u8, bool)) -> Option<u32> {
    let (off, width, be) = (usize::from(c.0), usize::from(c.1), c.2);
    let b = payload.get(off..off + width)?;
    Some(match (width, be) {
        (4, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (4, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        (_, false) => u32::from(u16::from_le_bytes([b[0], b[1]])),
        (_, true) => u32::from(u16::from_be_bytes([b[0], b[1]])),
    })
}

/// Forward distance from `a` to `b` in a counter of `width` bytes.
fn step(a: u32, b: u32, width: u8) -> u32 {
    let d = b.wrapping_sub(a);
    if width == 2 {
        d & 0xffff
    } else {
        d
    }
}

/// Half the counter range: larger forward distances are backward ones.
fn half(width: u8) -> u32 {
    if width == 2 {
        0x8000
    } else {
        0x8000_0000
    }
}

#[derive(Clone, Debug, Default)]
struct Dir {
    last: [u32; CANDIDATES.len()],
    run: [u8; CANDIDATES.len()],
    seen: u16,
    locked: Option<u8>,
    /// Highest counter value seen (locked).
    high: u32,
    expected: [u32; 2],
    lost: [u32; 2],
}

/// Per-flow tracker of sequence-numbered datagrams (both directions).
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    dirs: [Dir; 2],
}

const WIN: usize = 0;
const TOTAL: usize = 1;

/// A forward step of `s`: `s` expected, `s − 1` lost.
fn count(d: &mut Dir, s: u32) {
    for k in [WIN, TOTAL] {
        d.expected[k] = d.expected[k].saturating_add(s);
        d.lost[k] = d.lost[k].saturating_add(s.saturating_sub(1));
    }
}

impl SeqTracker {
    /// Feeds one datagram's payload sent in direction `dir` (0 = client→server).
    ///
    /// Every candidate's run of small forward steps is kept up to date (also once locked):
    /// when the locked field misbehaves (a jump back or far ahead) while another field has
    /// a full run, the tracker moves to that one (e.g. a 16-bit view whose neighbour byte
    /// is not part of the counter, found out at the low byte's wrap).
    pub fn on_packet(&mut self, dir: usize, payload: &[u8]) {
        let Some(d) = self.dirs.get_mut(dir) else {
            return;
        };
        if d.locked.is_none() && d.seen >= GIVE_UP {
            return;
        }
        let mut steps = [0u32; CANDIDATES.len()];
        for (i, &c) in CANDIDATES.iter().enumerate() {
            let Some(v) = read(payload, c) else {
                d.run[i] = 0;
                continue;
            };
            steps[i] = step(d.last[i], v, c.1);
            d.run[i] = if d.seen > 0 && (1..=MAX_STEP).contains(&steps[i]) {
                d.run[i].saturating_add(1)
            } else {
                0
            };
            d.last[i] = v;
        }
        d.seen = d.seen.saturating_add(1);
        let Some(ci) = d.locked.map(usize::from) else {
            if let Some(i) = d.run.iter().position(|&r| r >= LOCK_RUN) {
                d.locked = Some(i as u8);
                d.high = d.last[i];
            }
            return;
        };
        let c = CANDIDATES[ci];
        if read(payload, c).is_none() {
            return;
        }
        let mut s = step(d.high, d.last[ci], c.1);
        if s >= half(c.1) || s > MAX_JUMP {
            if let Some(j) = d.run.iter().position(|&r| r >= LOCK_RUN) {
                d.locked = Some(j as u8);
                d.high = d.last[j];
                s = steps[j];
                count(d, s);
                return;
            }
        }
        if s == 0 {
            // duplicate
        } else if s >= half(c.1) {
            // late: it filled a hole counted as lost
            for k in [WIN, TOTAL] {
                d.lost[k] = d.lost[k].saturating_sub(1);
            }
        } else if s > MAX_JUMP {
            d.high = d.last[ci];
        } else {
            count(d, s);
            d.high = d.last[ci];
        }
    }

    /// True once some direction has locked onto a counter.
    pub fn is_locked(&self) -> bool {
        self.dirs.iter().any(|d| d.locked.is_some())
    }

    fn fill(&self, k: usize, out: &mut SliceKpi) {
        for (i, d) in self.dirs.iter().enumerate() {
            if d.locked.is_some() {
                out.data_segments[i] = out.data_segments[i].saturating_add(d.expected[k]);
                out.loss_upstream[i] = out.loss_upstream[i].saturating_add(d.lost[k]);
            }
        }
    }

    /// Adds this window's expected/lost datagrams to `out` and starts a new window.
    pub fn take_window(&mut self, out: &mut SliceKpi) {
        self.fill(WIN, out);
        for d in &mut self.dirs {
            d.expected[WIN] = 0;
            d.lost[WIN] = 0;
        }
    }

    /// Adds the whole-life expected/lost datagrams to `out`.
    pub fn totals(&self, out: &mut SliceKpi) {
        self.fill(TOTAL, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(tick: u32, magic: u8) -> Vec<u8> {
        let mut b = vec![magic, 0x27];
        b.extend_from_slice(&tick.to_le_bytes());
        b.extend_from_slice(&[0x5a; 40]);
        b
    }

    #[test]
    fn counts_gaps_per_direction_after_locking() {
        let mut t = SeqTracker::default();
        // client: ticks 0..100 without 20, 21, 50; server: all
        for k in 0..100u32 {
            if ![20, 21, 50].contains(&k) {
                t.on_packet(0, &game(k, 0x9e));
            }
            t.on_packet(1, &game(k, 0x9f));
        }
        assert!(t.is_locked());
        let mut w = SliceKpi::default();
        t.take_window(&mut w);
        assert_eq!(w.loss_upstream, [3, 0]);
        // expected counts from the lock (after LOCK_RUN + 1 datagrams) to tick 99
        assert_eq!(w.data_segments[1], 99 - u32::from(LOCK_RUN));
        assert_eq!(w.data_segments[0], 99 - u32::from(LOCK_RUN));
        let mut w2 = SliceKpi::default();
        t.take_window(&mut w2);
        assert_eq!(w2.loss_upstream, [0, 0], "a new window starts empty");
        let mut tot = SliceKpi::default();
        t.totals(&mut tot);
        assert_eq!(tot.loss_upstream, [3, 0]);
    }

    #[test]
    fn late_datagram_gives_a_loss_back_and_big_jump_resyncs() {
        let mut t = SeqTracker::default();
        for k in 0..20u32 {
            t.on_packet(0, &game(k, 1));
        }
        t.on_packet(0, &game(22, 1)); // 20, 21 missing
        t.on_packet(0, &game(20, 1)); // late
        t.on_packet(0, &game(5_000, 1)); // resync, not loss
        t.on_packet(0, &game(5_001, 1));
        let mut w = SliceKpi::default();
        t.take_window(&mut w);
        assert_eq!(w.loss_upstream[0], 1);
    }

    #[test]
    fn random_and_constant_payloads_never_lock() {
        let mut t = SeqTracker::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let mut b = [0u8; 32];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x as u8;
            }
            t.on_packet(0, &b);
            t.on_packet(1, &[7u8; 32]);
        }
        assert!(!t.is_locked());
        let mut w = SliceKpi::default();
        t.take_window(&mut w);
        assert_eq!(w, SliceKpi::default());
    }

    #[test]
    fn big_endian_u16_counter_wraps_and_beats_its_low_byte_view() {
        let mut t = SeqTracker::default();
        for k in 65_500u32..65_600 {
            if k != 65_540 {
                t.on_packet(1, &[0xff, (k >> 8) as u8, k as u8, 0, 0, 9]);
            }
        }
        let mut w = SliceKpi::default();
        t.take_window(&mut w);
        assert_eq!(w.loss_upstream[1], 1);
    }
}
