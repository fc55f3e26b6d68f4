//! Unit tests of the KPI trackers: synthetic segments with explicit timestamps.

use super::*;
use crate::decode::{tcp_flags, TcpInfo};
use crate::dpi::RtpHeader;

const MS: u64 = 1_000_000;
const SYN: u8 = tcp_flags::SYN;
const ACK: u8 = tcp_flags::ACK;
const FIN: u8 = tcp_flags::FIN;
const RST: u8 = tcp_flags::RST;
const PSH: u8 = 0x08;

fn seg(flags: u8, seq: u32, ack: u32) -> TcpInfo {
    TcpInfo {
        flags,
        seq,
        ack,
        window: 1000,
    }
}

/// A connection driven by (dir, segment, payload, time) calls.
struct Conn {
    t: Option<TcpTracker>,
}

impl Conn {
    fn new() -> Self {
        Conn { t: None }
    }

    fn pkt(&mut self, dir: usize, tcp: TcpInfo, len: u32, ts: u64) {
        match &mut self.t {
            Some(t) => t.on_segment(dir, &tcp, len, ts),
            None => self.t = Some(TcpTracker::new(dir, &tcp, len, ts)),
        }
    }

    fn tr(&mut self) -> &mut TcpTracker {
        self.t.as_mut().expect("tracker created")
    }

    fn window(&mut self) -> SliceKpi {
        let mut k = SliceKpi::default();
        self.tr().take_window(&mut k);
        k
    }

    fn totals(&mut self) -> SliceKpi {
        let mut k = SliceKpi::default();
        self.tr().totals(&mut k);
        k
    }
}

const CISN: u32 = 1000;
const SISN: u32 = 5000;

/// SYN t=0, SYN/ACK t=30 ms, ACK t=50 ms (server leg 30, client leg 20).
fn handshake(c: &mut Conn, cisn: u32, sisn: u32) {
    c.pkt(0, seg(SYN, cisn, 0), 0, 0);
    c.pkt(1, seg(SYN | ACK, sisn, cisn.wrapping_add(1)), 0, 30 * MS);
    c.pkt(
        0,
        seg(ACK, cisn.wrapping_add(1), sisn.wrapping_add(1)),
        0,
        50 * MS,
    );
}

fn approx(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-3
}

#[test]
fn handshake_legs_exact() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let k = c.window();
    assert_eq!(k.hs_rtt_server_ms, Some(30.0));
    assert_eq!(k.hs_rtt_client_ms, Some(20.0));
    assert_eq!(k.transaction_ms(), Some(50.0));
    // no running samples from the handshake itself, nothing else counted
    assert_eq!(k.rtt_client_samples + k.rtt_server_samples, 0);
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.data_segments, [0, 0]);
    // only in the window where measured
    let k2 = c.window();
    assert_eq!(k2.hs_rtt_server_ms, None);
    assert_eq!(k2.hs_rtt_client_ms, None);
    let t = c.totals();
    assert_eq!(t.hs_rtt_server_ms, Some(30.0));
    assert_eq!(t.hs_rtt_client_ms, Some(20.0));
}

#[test]
fn handshake_sub_ms_precision() {
    let mut c = Conn::new();
    c.pkt(0, seg(SYN, CISN, 0), 0, 1_000_000_123);
    c.pkt(1, seg(SYN | ACK, SISN, CISN + 1), 0, 1_000_250_123);
    c.pkt(0, seg(ACK, CISN + 1, SISN + 1), 0, 1_000_267_400);
    let k = c.window();
    assert!(approx(k.hs_rtt_server_ms.unwrap_or(0.0), 0.25));
    assert!(approx(k.hs_rtt_client_ms.unwrap_or(0.0), 0.017277));
}

#[test]
fn handshake_retransmitted_syn_uses_last_syn() {
    let mut c = Conn::new();
    c.pkt(0, seg(SYN, CISN, 0), 0, 0);
    c.pkt(0, seg(SYN, CISN, 0), 0, 1000 * MS);
    c.pkt(1, seg(SYN | ACK, SISN, CISN + 1), 0, 1030 * MS);
    c.pkt(0, seg(ACK, CISN + 1, SISN + 1), 0, 1050 * MS);
    let k = c.window();
    assert_eq!(k.hs_rtt_server_ms, Some(30.0));
    assert_eq!(k.hs_rtt_client_ms, Some(20.0));
    // the SYN retransmission is a retransmission (as tshark) seen by the probe
    assert_eq!(k.retransmissions, [1, 0]);
    assert_eq!(k.loss_downstream, [1, 0]);
}

#[test]
fn handshake_retransmitted_synack() {
    let mut c = Conn::new();
    c.pkt(0, seg(SYN, CISN, 0), 0, 0);
    c.pkt(1, seg(SYN | ACK, SISN, CISN + 1), 0, 30 * MS);
    // first SYN/ACK lost towards the client: the server retransmits it
    c.pkt(1, seg(SYN | ACK, SISN, CISN + 1), 0, 1030 * MS);
    c.pkt(0, seg(ACK, CISN + 1, SISN + 1), 0, 1050 * MS);
    let k = c.window();
    // server leg from the first SYN/ACK, client leg from the last one before the ACK
    assert_eq!(k.hs_rtt_server_ms, Some(30.0));
    assert_eq!(k.hs_rtt_client_ms, Some(20.0));
    assert_eq!(k.retransmissions, [0, 1]);
    assert_eq!(k.loss_downstream, [0, 1]);
}

#[test]
fn handshake_unrelated_ack_ignored() {
    let mut c = Conn::new();
    c.pkt(0, seg(SYN, CISN, 0), 0, 0);
    // SYN/ACK that does not acknowledge our SYN
    c.pkt(1, seg(SYN | ACK, SISN, 77), 0, 30 * MS);
    c.pkt(0, seg(ACK, CISN + 1, SISN + 1), 0, 50 * MS);
    let k = c.window();
    assert_eq!(k.hs_rtt_server_ms, None);
    assert_eq!(k.hs_rtt_client_ms, None);
}

#[test]
fn running_rtt_both_legs() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    c.window();
    let (mut cs, mut ss) = (CISN + 1, SISN + 1);
    // client request 200 bytes at 100 ms, server ACKs at 130 ms → server leg 30
    c.pkt(0, seg(ACK | PSH, cs, ss), 200, 100 * MS);
    cs += 200;
    c.pkt(1, seg(ACK, ss, cs), 0, 130 * MS);
    // server response 1000 bytes at 140 ms, client ACKs at 162 ms → client leg 22
    c.pkt(1, seg(ACK | PSH, ss, cs), 1000, 140 * MS);
    ss += 1000;
    c.pkt(0, seg(ACK, cs, ss), 0, 162 * MS);
    // delayed ACK: two segments at 200 and 201 ms, one ACK of both at 225 ms → one
    // sample, from the segment the ACK matches exactly (24 ms)
    c.pkt(1, seg(ACK, ss, cs), 1000, 200 * MS);
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 201 * MS);
    ss += 2000;
    c.pkt(0, seg(ACK, cs, ss), 0, 225 * MS);
    // a duplicate of that ACK gives no further sample
    c.pkt(0, seg(ACK, cs, ss), 0, 226 * MS);
    let k = c.window();
    assert_eq!(k.rtt_server_samples, 1);
    assert!(approx(k.rtt_server_sum_ms, 30.0));
    assert_eq!(k.rtt_client_samples, 2);
    assert!(approx(k.rtt_client_sum_ms, 22.0 + 24.0));
    assert!(approx(k.rtt_client_ms().unwrap_or(0.0), 23.0));
    assert_eq!(k.data_segments, [1, 3]);
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.loss_downstream, [0, 0]);
    assert_eq!(k.dns_response_ms, None);
}

#[test]
fn running_rtt_ring_is_bounded_and_keeps_sampling() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let mut ss = SISN + 1;
    let cs = CISN + 1;
    let mut t = 100 * MS;
    // 40 segments in flight (more than the ring), then ACKs every 2 segments 20 ms after
    // each was sent
    let start = ss;
    for _ in 0..40 {
        c.pkt(1, seg(ACK, ss, cs), 1000, t);
        ss += 1000;
        t += MS / 10;
    }
    for i in 1..=20u32 {
        let acked = start + i * 2000;
        let sent = 100 * MS + u64::from(i * 2 - 1) * (MS / 10);
        c.pkt(0, seg(ACK, cs, acked), 0, sent + 20 * MS);
    }
    let k = c.window();
    // the ring holds the 8 oldest: 4 exact-match samples from them
    assert_eq!(k.rtt_client_samples, 4);
    assert!(approx(k.rtt_client_sum_ms, 80.0));
    // after the ring drained, new data is sampled again
    c.pkt(1, seg(ACK, ss, cs), 500, 500 * MS);
    c.pkt(0, seg(ACK, cs, ss + 500), 0, 515 * MS);
    let k = c.window();
    assert_eq!(k.rtt_client_samples, 1);
    assert!(approx(k.rtt_client_sum_ms, 15.0));
}

#[test]
fn karn_no_sample_from_retransmission_and_loss_downstream() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    // server data at 100 ms, lost towards the client; RTO retransmission at 400 ms,
    // client ACK at 420 ms: ambiguous, no sample
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS);
    c.pkt(1, seg(ACK, ss, cs), 1000, 400 * MS);
    c.pkt(0, seg(ACK, cs, ss + 1000), 0, 420 * MS);
    let k = c.window();
    assert_eq!(k.rtt_client_samples, 0);
    assert_eq!(k.retransmissions, [0, 1]);
    assert_eq!(k.loss_downstream, [0, 1]);
    assert_eq!(k.loss_upstream, [0, 0]);
    assert_eq!(k.out_of_order, [0, 0]);
    assert_eq!(k.data_segments, [0, 2]);
    // recovery over (everything acknowledged): new data is sampled again
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 500 * MS);
    c.pkt(0, seg(ACK, cs, ss + 2000), 0, 521 * MS);
    let k = c.window();
    assert_eq!(k.rtt_client_samples, 1);
    assert!(approx(k.rtt_client_sum_ms, 21.0));
}

#[test]
fn karn_recovery_blocks_samples_sent_during_recovery() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS); // A, lost downstream
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 101 * MS); // B
    c.pkt(0, seg(ACK, cs, ss), 0, 121 * MS); // dup ACK (B arrived, A missing)
    c.pkt(1, seg(ACK, ss, cs), 1000, 400 * MS); // A again
    c.pkt(1, seg(ACK, ss + 2000, cs), 1000, 401 * MS); // C, sent during recovery
    c.pkt(0, seg(ACK, cs, ss + 2000), 0, 420 * MS); // ACK of A+B: recovery over
    c.pkt(0, seg(ACK, cs, ss + 3000), 0, 421 * MS); // ACK of C: not sampled (Karn)
    let k = c.window();
    assert_eq!(k.rtt_client_samples, 0);
    assert_eq!(k.retransmissions, [0, 1]);
    assert_eq!(k.loss_downstream, [0, 1]);
}

#[test]
fn hole_then_late_fill_is_upstream_loss() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN); // handshake RTT 50 ms = reordering threshold
    let cs = CISN + 1;
    let ss = SISN + 1;
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS);
    // ss+1000..ss+2000 lost before the probe: the probe sees a hole open
    c.pkt(1, seg(ACK, ss + 2000, cs), 1000, 101 * MS);
    c.pkt(0, seg(ACK, cs, ss + 1000), 0, 120 * MS);
    c.pkt(0, seg(ACK, cs, ss + 1000), 0, 121 * MS);
    // the sender's retransmission fills it 100 ms later
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 201 * MS);
    c.pkt(0, seg(ACK, cs, ss + 3000), 0, 221 * MS);
    let k = c.window();
    assert_eq!(k.out_of_order, [0, 1]);
    assert_eq!(k.loss_upstream, [0, 1]);
    assert_eq!(k.loss_downstream, [0, 0]);
    assert_eq!(k.retransmissions, [0, 1]);
    // one sample (the first segment); nothing sampled across the hole
    assert_eq!(k.rtt_client_samples, 1);
    assert!(approx(k.rtt_client_sum_ms, 20.0));
    // a second copy of the same bytes now is a downstream-side retransmission
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 600 * MS);
    let k = c.window();
    assert_eq!(k.out_of_order, [0, 0]);
    assert_eq!(k.retransmissions, [0, 1]);
    // already acknowledged (ack ss+3000): spurious, not a loss
    assert_eq!(k.loss_downstream, [0, 0]);
}

#[test]
fn hole_then_fast_fill_is_reordering() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS);
    c.pkt(1, seg(ACK, ss + 2000, cs), 1000, 100 * MS + 100_000);
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 100 * MS + 300_000);
    let k = c.window();
    assert_eq!(k.out_of_order, [0, 1]);
    assert_eq!(k.loss_upstream, [0, 0]);
    // tshark: out-of-order, not a retransmission
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.loss_downstream, [0, 0]);
}

#[test]
fn hole_missed_by_capture_is_dropped_on_ack() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS);
    c.pkt(1, seg(ACK, ss + 2000, cs), 1000, 101 * MS); // the capture missed ss+1000
    c.pkt(0, seg(ACK, cs, ss + 3000), 0, 121 * MS); // but the client got everything
    c.pkt(1, seg(ACK, ss + 3000, cs), 1000, 200 * MS);
    c.pkt(0, seg(ACK, cs, ss + 4000), 0, 219 * MS);
    let k = c.window();
    assert_eq!(k.out_of_order, [0, 0]);
    assert_eq!(k.loss_upstream, [0, 0]);
    assert_eq!(k.retransmissions, [0, 0]);
    // sampling resumed once the hole was gone
    assert_eq!(k.rtt_client_samples, 1);
    assert!(approx(k.rtt_client_sum_ms, 19.0));
}

#[test]
fn many_holes_stay_bounded() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    // 10 holes: every other segment missing
    for i in 0..10u32 {
        c.pkt(
            1,
            seg(ACK, ss + i * 2000, cs),
            1000,
            100 * MS + u64::from(i) * MS,
        );
    }
    // late fills of all of them
    for i in 0..9u32 {
        c.pkt(
            1,
            seg(ACK, ss + i * 2000 + 1000, cs),
            1000,
            400 * MS + u64::from(i) * MS,
        );
    }
    let k = c.window();
    assert_eq!(k.out_of_order[1], 9);
    assert_eq!(k.loss_upstream[1], 9);
    assert_eq!(k.data_segments[1], 19);
}

#[test]
fn keepalive_not_counted() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    c.pkt(0, seg(ACK, cs, ss), 100, 100 * MS);
    c.pkt(1, seg(ACK, ss, cs + 100), 0, 120 * MS);
    // keep-alives: seq = next − 1 with 0 or 1 byte, from both sides
    c.pkt(0, seg(ACK, cs + 99, ss), 1, 60_000 * MS);
    c.pkt(0, seg(ACK, cs + 99, ss), 0, 120_000 * MS);
    c.pkt(1, seg(ACK, ss - 1, cs + 100), 0, 120_001 * MS);
    let k = c.window();
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.loss_downstream, [0, 0]);
    assert_eq!(k.out_of_order, [0, 0]);
    assert_eq!(k.data_segments, [1, 0]);
}

#[test]
fn seq_wrap_around() {
    let mut c = Conn::new();
    let cisn = u32::MAX - 300;
    let sisn = u32::MAX - 2500;
    handshake(&mut c, cisn, sisn);
    let cs = cisn.wrapping_add(1);
    let mut ss = sisn.wrapping_add(1);
    let mut t = 100 * MS;
    // server data crossing 2^32, in order, each ACKed
    for _ in 0..5 {
        c.pkt(1, seg(ACK, ss, cs), 1000, t);
        ss = ss.wrapping_add(1000);
        c.pkt(0, seg(ACK, cs, ss), 0, t + 10 * MS);
        t += 20 * MS;
    }
    let k = c.window();
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.out_of_order, [0, 0]);
    assert_eq!(k.rtt_client_samples, 5);
    assert!(approx(k.rtt_client_sum_ms, 50.0));
    // a retransmission of the segment straddling the wrap
    let straddle = sisn.wrapping_add(1).wrapping_add(2000);
    c.pkt(1, seg(ACK, straddle, cs), 1000, t);
    // a hole across the wrap on the client side, later filled
    let cs2 = cs.wrapping_add(0);
    c.pkt(0, seg(ACK, cs2, ss), 200, t + MS);
    c.pkt(0, seg(ACK, cs2.wrapping_add(400), ss), 200, t + 2 * MS);
    c.pkt(0, seg(ACK, cs2.wrapping_add(200), ss), 200, t + 300 * MS);
    let k = c.window();
    assert_eq!(k.retransmissions, [1, 1]);
    assert_eq!(k.out_of_order, [1, 0]);
    assert_eq!(k.loss_upstream, [1, 0]);
    // the straddling segment had been acknowledged: spurious, not a loss
    assert_eq!(k.loss_downstream, [0, 0]);
    assert!(seq_crosses(cs2, 600));
}

fn seq_crosses(start: u32, len: u32) -> bool {
    start.checked_add(len).is_none()
}

#[test]
fn window_slicing_resets_sums_totals_keep() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS);
    c.pkt(0, seg(ACK, cs, ss + 1000), 0, 120 * MS);
    c.pkt(1, seg(ACK, ss, cs), 1000, 400 * MS); // spurious retransmission
    let k1 = c.window();
    assert_eq!(k1.data_segments, [0, 2]);
    assert_eq!(k1.retransmissions, [0, 1]);
    assert_eq!(k1.rtt_client_samples, 1);
    assert_eq!(k1.hs_rtt_client_ms, Some(20.0));
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 61_000 * MS);
    c.pkt(0, seg(ACK, cs, ss + 2000), 0, 61_030 * MS);
    c.pkt(0, seg(RST, cs, 0), 0, 61_040 * MS);
    let k2 = c.window();
    assert_eq!(k2.data_segments, [0, 1]);
    assert_eq!(k2.retransmissions, [0, 0]);
    assert_eq!(k2.rtt_client_samples, 1);
    assert!(approx(k2.rtt_client_sum_ms, 30.0));
    assert_eq!(k2.resets, [1, 0]);
    assert_eq!(k2.hs_rtt_client_ms, None);
    let k3 = c.window();
    assert_eq!(k3, SliceKpi::default());
    let t = c.totals();
    assert_eq!(t.data_segments, [0, 3]);
    assert_eq!(t.retransmissions, [0, 1]);
    assert_eq!(t.rtt_client_samples, 2);
    assert!(approx(t.rtt_client_sum_ms, 50.0));
    assert_eq!(t.resets, [1, 0]);
    assert_eq!(t.hs_rtt_client_ms, Some(20.0));
    assert_eq!(t.hs_rtt_server_ms, Some(30.0));
    // windows add up to the totals
    let mut sum = SliceKpi::default();
    for k in [&k1, &k2, &k3] {
        for d in 0..2 {
            sum.data_segments[d] += k.data_segments[d];
            sum.retransmissions[d] += k.retransmissions[d];
            sum.resets[d] += k.resets[d];
        }
        sum.rtt_client_samples += k.rtt_client_samples;
    }
    assert_eq!(sum.data_segments, t.data_segments);
    assert_eq!(sum.retransmissions, t.retransmissions);
    assert_eq!(sum.resets, t.resets);
    assert_eq!(sum.rtt_client_samples, t.rtt_client_samples);
}

#[test]
fn take_window_adds_into_out() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    c.pkt(1, seg(ACK, SISN + 1, CISN + 1), 10, 100 * MS);
    let mut k = SliceKpi {
        data_segments: [5, 5],
        ..Default::default()
    };
    c.tr().take_window(&mut k);
    assert_eq!(k.data_segments, [5, 6]);
}

#[test]
fn zero_window_and_rst_counts() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    let zw = |flags, seq, ack| TcpInfo {
        flags,
        seq,
        ack,
        window: 0,
    };
    c.pkt(1, seg(ACK, ss, cs), 1000, 100 * MS);
    c.pkt(0, zw(ACK, cs, ss + 1000), 0, 110 * MS);
    c.pkt(0, zw(ACK, cs, ss + 1000), 0, 210 * MS);
    // RST with window 0 is a reset, not a zero window
    c.pkt(1, zw(RST | ACK, ss + 1000, cs), 0, 300 * MS);
    c.pkt(0, zw(RST, cs, 0), 0, 301 * MS);
    c.pkt(0, seg(RST, cs, 0), 0, 302 * MS);
    let k = c.window();
    assert_eq!(k.zero_windows, [2, 0]);
    assert_eq!(k.resets, [2, 1]);
    assert_eq!(k.retransmissions, [0, 0]);
}

#[test]
fn fast_retransmission_counted_even_when_sender_keeps_sending() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    let cs = CISN + 1;
    let ss = SISN + 1;
    let mut t = 100 * MS;
    for i in 0..6u32 {
        c.pkt(1, seg(ACK, ss + i * 1000, cs), 1000, t);
        t += 100_000;
    }
    // segment 1 lost downstream: the client sends an ACK then 3 duplicates
    c.pkt(0, seg(ACK, cs, ss + 1000), 0, 120 * MS);
    for k in 0..3u64 {
        c.pkt(0, seg(ACK, cs, ss + 1000), 0, 121 * MS + k * 100_000);
    }
    // new data, then the fast retransmission 100 µs after (inside the reorder time)
    c.pkt(1, seg(ACK, ss + 6000, cs), 1000, 122 * MS);
    c.pkt(1, seg(ACK, ss + 1000, cs), 1000, 122 * MS + 100_000);
    let k = c.window();
    assert_eq!(k.retransmissions, [0, 1]);
    assert_eq!(k.loss_downstream, [0, 1]);
    assert_eq!(k.out_of_order, [0, 0]);
}

#[test]
fn mid_stream_start_without_handshake() {
    let mut c = Conn::new();
    let (cs, ss) = (123_456u32, 987_654u32);
    c.pkt(1, seg(ACK, ss, cs), 1400, 0);
    c.pkt(1, seg(ACK, ss + 1400, cs), 1400, MS);
    c.pkt(0, seg(ACK, cs, ss + 2800), 0, 20 * MS);
    c.pkt(0, seg(ACK | PSH, cs, ss + 2800), 50, 30 * MS);
    c.pkt(1, seg(ACK, ss + 2800, cs + 50), 0, 40 * MS);
    c.pkt(1, seg(FIN | ACK, ss + 2800, cs + 50), 0, 50 * MS);
    c.pkt(0, seg(FIN | ACK, cs + 50, ss + 2801), 0, 60 * MS);
    c.pkt(1, seg(ACK, ss + 2801, cs + 51), 0, 70 * MS);
    let k = c.window();
    assert_eq!(k.hs_rtt_client_ms, None);
    assert_eq!(k.hs_rtt_server_ms, None);
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.out_of_order, [0, 0]);
    assert_eq!(k.data_segments, [1, 2]);
    assert_eq!(k.rtt_client_samples, 1);
    assert!(approx(k.rtt_client_sum_ms, 19.0));
    assert_eq!(k.rtt_server_samples, 1);
    assert!(approx(k.rtt_server_sum_ms, 10.0));
}

#[test]
fn port_reuse_restarts_sequence_analysis() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    c.pkt(1, seg(ACK, SISN + 1, CISN + 1), 1000, 100 * MS);
    // a new connection on the same 4-tuple with lower ISNs: not retransmissions
    c.pkt(0, seg(SYN, 10, 0), 0, 5000 * MS);
    c.pkt(1, seg(SYN | ACK, 20, 11), 0, 5010 * MS);
    c.pkt(0, seg(ACK, 11, 21), 0, 5020 * MS);
    c.pkt(1, seg(ACK, 21, 11), 1000, 5100 * MS);
    let k = c.window();
    assert_eq!(k.retransmissions, [0, 0]);
    assert_eq!(k.data_segments, [0, 2]);
    // the first handshake stays the flow's handshake
    assert_eq!(k.hs_rtt_server_ms, Some(30.0));
}

#[test]
fn timestamps_going_backwards_do_not_panic_or_sample() {
    let mut c = Conn::new();
    handshake(&mut c, CISN, SISN);
    c.pkt(1, seg(ACK, SISN + 1, CISN + 1), 1000, 100 * MS);
    c.pkt(0, seg(ACK, CISN + 1, SISN + 1001), 0, 90 * MS);
    let k = c.window();
    assert_eq!(k.rtt_client_samples, 0);
    let mut c = Conn::new();
    c.pkt(0, seg(SYN, CISN, 0), 0, 100 * MS);
    c.pkt(1, seg(SYN | ACK, SISN, CISN + 1), 0, 50 * MS);
    c.pkt(0, seg(ACK, CISN + 1, SISN + 1), 0, 10 * MS);
    let k = c.window();
    assert_eq!(k.hs_rtt_server_ms, None);
    assert_eq!(k.hs_rtt_client_ms, None);
}

/// xorshift64*: deterministic pseudo-random numbers for the fuzz tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn fuzz_tcp_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut c = Conn::new();
        let mut seqs = [rng.next() as u32, rng.next() as u32];
        let mut ts = rng.below(1 << 40);
        for _ in 0..400 {
            let dir = rng.below(3) as usize; // 2 = out-of-range direction
            let d = dir.min(1);
            let mode = rng.below(10);
            let seq = match mode {
                0 => rng.next() as u32,
                1..=2 => seqs[d].wrapping_sub(rng.below(5000) as u32),
                _ => seqs[d],
            };
            let ack = if rng.below(4) == 0 {
                rng.next() as u32
            } else {
                seqs[1 - d].wrapping_sub(rng.below(3000) as u32)
            };
            let len = match rng.below(4) {
                0 => 0,
                1 => 1,
                2 => rng.below(1500) as u32,
                _ => rng.next() as u32,
            };
            let tcp = TcpInfo {
                flags: rng.next() as u8,
                seq,
                ack,
                window: if rng.below(5) == 0 {
                    0
                } else {
                    rng.next() as u16
                },
            };
            if mode >= 3 {
                seqs[d] = seqs[d].wrapping_add(len);
            }
            ts = match rng.below(20) {
                0 => rng.next(),
                1 => ts.saturating_sub(rng.below(1 << 30)),
                _ => ts.saturating_add(rng.below(50 * MS)),
            };
            c.pkt(dir, tcp, len, ts);
            if rng.below(50) == 0 {
                c.window();
            }
        }
        let t = c.totals();
        let w = c.window();
        if round % 50 == 0 {
            // every counter of the last window is also in the totals
            for d in 0..2 {
                assert!(w.data_segments[d] <= t.data_segments[d]);
                assert!(w.retransmissions[d] <= t.retransmissions[d]);
            }
        }
    }
}

#[test]
fn tracker_sizes() {
    let tcp = std::mem::size_of::<TcpTracker>();
    let active = std::mem::size_of::<ActiveTime>();
    let rtp = std::mem::size_of::<RtpTracker>();
    // documented budget (x86-64): TcpTracker 512, ActiveTime 56, RtpTracker 176 bytes;
    // they live in the per-flow heap box, so growth here is memory per flow
    println!("size_of TcpTracker = {tcp}, ActiveTime = {active}, RtpTracker = {rtp}");
    assert!(tcp <= 512, "TcpTracker is {tcp} bytes");
    assert!(active <= 56, "ActiveTime is {active} bytes");
    assert!(rtp <= 176, "RtpTracker is {rtp} bytes");
}

// ---------------------------------------------------------------- active time

#[test]
fn active_time_sums_short_gaps() {
    let mut a = ActiveTime::new();
    a.on_packet(1, 1000, 0);
    a.on_packet(1, 1000, 10 * MS);
    a.on_packet(1, 0, 15 * MS); // no payload: ignored
    a.on_packet(1, 1000, 30 * MS);
    a.on_packet(1, 1000, 2_000 * MS); // idle gap: not active
    a.on_packet(1, 1000, 2_100 * MS);
    a.on_packet(0, 100, 5 * MS);
    a.on_packet(0, 100, 5 * MS + ACTIVE_IDLE_NS); // exactly the threshold: idle
    let mut k = SliceKpi::default();
    a.take_window(&mut k);
    assert_eq!(k.active_ns, [0, 130 * MS]);
    a.on_packet(1, 10, 2_150 * MS);
    a.on_packet(0, 10, 2_000 * MS + 499 * MS);
    a.on_packet(0, 10, 1_000 * MS); // backwards: zero gap
    let mut k2 = SliceKpi::default();
    a.take_window(&mut k2);
    assert_eq!(k2.active_ns, [0, 50 * MS]);
    let mut t = SliceKpi::default();
    a.totals(&mut t);
    assert_eq!(t.active_ns, [0, 180 * MS]);
    let mut k3 = SliceKpi::default();
    a.take_window(&mut k3);
    assert_eq!(k3.active_ns, [0, 0]);
}

// ---------------------------------------------------------------- RTP

fn rtp(seq: u16, ts: u32, ssrc: u32, pt: u8) -> Vec<u8> {
    let mut b = vec![0x80, pt];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&[0xd5; 160]);
    b
}

/// RFC 3550 §6.4.1 / A.8 in f64 over (arrival ns, RTP timestamp) pairs, in ms.
fn rfc_jitter_ms(pkts: &[(u64, u32)], clock: f64) -> f64 {
    let mut j = 0.0f64;
    for w in pkts.windows(2) {
        let (r0, s0) = w[0];
        let (r1, s1) = w[1];
        let d = (r1 as f64 - r0 as f64) * clock / 1e9 - f64::from(s1.wrapping_sub(s0) as i32);
        j += (d.abs() - j) / 16.0;
    }
    j * 1000.0 / clock
}

#[test]
fn rtp_loss_with_gap_and_wrap() {
    let mut r = RtpTracker::new();
    let seqs: [u16; 6] = [65533, 65534, 65535, 0, 2, 3]; // 1 lost, across the wrap
    for (i, s) in seqs.iter().enumerate() {
        let t = u32::from(s.wrapping_sub(65533)) * 160;
        assert!(r.on_packet(0, &rtp(*s, t, 42, 0), i as u64 * 20 * MS));
    }
    let mut k = SliceKpi::default();
    r.take_window(&mut k);
    assert_eq!(k.rtp_expected, 7);
    assert_eq!(k.rtp_lost, 1);
    // next window: 4, 5 and a gap of 2 (6, 7)
    for (i, s) in [4u16, 5, 8].iter().enumerate() {
        r.on_packet(
            0,
            &rtp(*s, u32::from(*s) * 160, 42, 0),
            (10 + i as u64) * 20 * MS,
        );
    }
    let mut k2 = SliceKpi::default();
    r.take_window(&mut k2);
    assert_eq!(k2.rtp_expected, 5);
    assert_eq!(k2.rtp_lost, 2);
    let mut t = SliceKpi::default();
    r.totals(&mut t);
    assert_eq!(t.rtp_expected, 12);
    assert_eq!(t.rtp_lost, 3);
    // RTCP and garbage are not RTP
    assert!(!r.on_packet(0, &[0x80, 200, 0, 1, 0, 0, 0, 1], 0));
    assert!(!r.on_packet(0, &[1, 2, 3], 0));
}

#[test]
fn rtp_reordering_and_duplicates() {
    let mut r = RtpTracker::new();
    for (i, s) in [10u16, 12, 11, 13, 13].iter().enumerate() {
        r.on_packet(1, &rtp(*s, u32::from(*s) * 160, 7, 8), i as u64 * 20 * MS);
    }
    let mut k = SliceKpi::default();
    r.take_window(&mut k);
    assert_eq!(k.rtp_expected, 4);
    assert_eq!(k.rtp_lost, 0);
}

#[test]
fn rtp_restart_and_ssrc_change() {
    let mut r = RtpTracker::new();
    let mut t = 0u64;
    let mut send = |r: &mut RtpTracker, seq: u16, ssrc: u32| {
        r.on_packet(0, &rtp(seq, u32::from(seq) * 160, ssrc, 0), t);
        t += 20 * MS;
    };
    for s in 100..110u16 {
        send(&mut r, s, 1); // 10 expected, 0 lost
    }
    // a jump of 30000: one packet alone is ignored, two in a row restart the stream
    send(&mut r, 30_000, 1);
    send(&mut r, 30_001, 1);
    send(&mut r, 30_003, 1); // 30_002 lost
                             // a single stray packet of another SSRC does not disturb the stream
    send(&mut r, 5, 99);
    send(&mut r, 30_004, 1);
    // then a new SSRC takes over after SSRC_SWITCH packets
    for s in 500..500 + u16::from(SSRC_SWITCH) + 2 {
        send(&mut r, s, 2);
    }
    let mut k = SliceKpi::default();
    r.take_window(&mut k);
    // stream 1: 10; stream 1 after restart: 30001..=30004 → 4 expected, 1 lost;
    // stream 2: its packets from the switch on (the first SSRC_SWITCH − 1 only counted
    // as candidates)
    let s2 = u32::from(SSRC_SWITCH) + 2 - (u32::from(SSRC_SWITCH) - 1);
    assert_eq!(k.rtp_expected, 10 + 4 + s2);
    assert_eq!(k.rtp_lost, 1);
}

#[test]
fn rtp_jitter_constant_vs_jittery() {
    // constant 20 ms spacing with matching timestamps: zero jitter
    let mut r = RtpTracker::new();
    for i in 0..50u32 {
        r.on_packet(0, &rtp(i as u16, i * 160, 1, 0), u64::from(i) * 20 * MS);
    }
    let mut k = SliceKpi::default();
    r.take_window(&mut k);
    assert_eq!(k.rtp_jitter_ms, Some(0.0));

    // jittery arrivals: compare with the RFC 3550 formula
    let mut rng = Rng(7);
    let mut r = RtpTracker::new();
    let mut pkts = Vec::new();
    let mut max_ms = 0.0f64;
    for i in 0..200u32 {
        let arrival = u64::from(i) * 20 * MS + rng.below(8 * MS) + 1_000 * MS;
        let ts = 1_000_000u32.wrapping_add(i * 160);
        pkts.push((arrival, ts));
        r.on_packet(1, &rtp(i as u16, ts, 9, 8), arrival);
        max_ms = max_ms.max(rfc_jitter_ms(&pkts, 8000.0));
    }
    let expect = rfc_jitter_ms(&pkts, 8000.0);
    let got = f64::from(r.jitter_ms(1).unwrap_or(-1.0));
    assert!(
        (got - expect).abs() < 1e-3 * expect.max(1.0),
        "{got} vs {expect}"
    );
    assert!(expect > 0.5);
    let mut k = SliceKpi::default();
    r.take_window(&mut k);
    let wmax = f64::from(k.rtp_jitter_ms.unwrap_or(-1.0));
    assert!((wmax - max_ms).abs() < 1e-3 * max_ms, "{wmax} vs {max_ms}");
    // nothing in the next window: no jitter value
    let mut k2 = SliceKpi::default();
    r.take_window(&mut k2);
    assert_eq!(k2.rtp_jitter_ms, None);
    // video clock
    let mut r = RtpTracker::new();
    let mut pkts = Vec::new();
    for i in 0..100u32 {
        let arrival = u64::from(i) * 33 * MS + rng.below(5 * MS);
        let ts = i.wrapping_mul(2970).wrapping_add(u32::MAX - 100_000); // wraps
        pkts.push((arrival, ts));
        r.on_packet(0, &rtp(i as u16, ts, 3, 96), arrival);
    }
    // dynamic PT: 8 kHz assumed; check PT 96 handled with that clock
    let expect = rfc_jitter_ms(&pkts, f64::from(rtp_clock_rate(96)));
    let got = f64::from(r.jitter_ms(0).unwrap_or(-1.0));
    assert!(
        (got - expect).abs() < 1e-3 * expect.max(1.0),
        "{got} vs {expect}"
    );
    assert_eq!(rtp_clock_rate(0), 8000);
    assert_eq!(rtp_clock_rate(8), 8000);
    assert_eq!(rtp_clock_rate(9), 8000);
    assert_eq!(rtp_clock_rate(18), 8000);
    assert_eq!(rtp_clock_rate(34), 90_000);
    assert_eq!(rtp_clock_rate(26), 90_000);
}

#[test]
fn rtp_jitter_max_of_directions() {
    let mut r = RtpTracker::new();
    for i in 0..20u32 {
        r.on_packet(0, &rtp(i as u16, i * 160, 1, 0), u64::from(i) * 20 * MS);
        let late = if i % 2 == 1 { 4 * MS } else { 0 };
        r.on_packet(
            1,
            &rtp(i as u16, i * 160, 2, 0),
            u64::from(i) * 20 * MS + late,
        );
    }
    let mut k = SliceKpi {
        rtp_jitter_ms: Some(0.001),
        ..Default::default()
    };
    r.take_window(&mut k);
    let j1 = r.jitter_ms(1).unwrap_or(0.0);
    assert!(j1 > 1.0);
    assert!(k.rtp_jitter_ms.unwrap_or(0.0) >= j1);
    assert_eq!(r.jitter_ms(0), Some(0.0));
}

#[test]
fn fuzz_rtp_never_panics() {
    let mut rng = Rng(12345);
    let mut r = RtpTracker::new();
    let mut buf = [0u8; 24];
    for i in 0..20_000u64 {
        for b in buf.iter_mut() {
            *b = rng.next() as u8;
        }
        if rng.below(2) == 0 {
            buf[0] = 0x80; // mostly valid headers
            buf[1] &= 0x7f;
        }
        let len = rng.below(25) as usize;
        let ts = if rng.below(10) == 0 {
            rng.next()
        } else {
            i * 20 * MS
        };
        r.on_packet(rng.below(3) as usize, &buf[..len], ts);
        if let Some(h) = RtpHeader::parse(&buf) {
            r.on_header(0, &h, ts);
        }
        if rng.below(100) == 0 {
            let mut k = SliceKpi::default();
            r.take_window(&mut k);
            assert!(k.rtp_lost <= k.rtp_expected || k.rtp_expected == 0 || k.rtp_lost > 0);
        }
    }
    let mut t = SliceKpi::default();
    r.totals(&mut t);
}
