//! QUIC round-trip times as seen from a probe between client and server, from what QUIC
//! leaves in clear: long-header packet types (the handshake) and the latency spin bit.
//!
//! # Handshake (split, like TCP's SYN → SYN/ACK → ACK)
//! * server leg = first server long-header packet (its Initial, Handshake, or a Retry /
//!   Version Negotiation) − the last client Initial before it (a ClientHello spanning
//!   several Initial packets is answered once its last packet arrived; a retransmitted
//!   Initial is answered by the last copy that got through — Karn's rule as for TCP);
//! * client leg = the client's first packet after that server packet − that packet (QUIC
//!   endpoints acknowledge Initial and Handshake packets without delay, RFC 9000 §13.2.1).
//!
//! Initial packets are recognised by their long-header type: 1 for QUIC v2 (RFC 9369), 0
//! for v1, the drafts and Google QUIC with IETF-style headers (Q046 and later). Older
//! gQUIC versions have no long header: no handshake RTT.
//!
//! # Spin bit (RFC 9000 §17.4, RFC 9312 §3.8.2), IETF versions only
//! The client inverts the spin value it last received, the server reflects it, so the
//! value flips once per round trip. With edges seen in both directions: a client edge to
//! `v` at t₁, the server's edge to `v` at t₂, the client's next edge (to `!v`) at t₃ give a
//! server-leg sample t₂ − t₁ and a client-leg sample t₃ − t₂ (each includes the end host's
//! reaction time). A sample is kept only when the reacting side sent at least one packet
//! still carrying the old value between the two edges: it was sending, so its edge came
//! as soon as the new value reached it (a side that was idle flips on its next packet,
//! whenever the application sends it, which would add idle time to the RTT). An edge out
//! of that order (a disabled spin bit set at random, reordering) restarts the pattern and
//! counts as invalid; a flow whose invalid edges outnumber its samples reports none (the
//! spin bit is then not meaningful).
//!
//! Samples go to the running RTT fields of [`SliceKpi`] (`rtt_client_*`, `rtt_server_*`),
//! the handshake legs to `hs_rtt_client_ms` / `hs_rtt_server_ms`, as for TCP. Fixed size,
//! no allocation; arbitrary bytes never panic.

use super::SliceKpi;

/// `hs_pending` bits: handshake legs measured in the current window.
const PENDING_CLIENT: u8 = 1;
const PENDING_SERVER: u8 = 2;

/// Spin values are unknown until the first short-header packet of a direction.
const SPIN_UNKNOWN: u8 = 2;

#[inline]
fn ns_to_ms(ns: u64) -> f32 {
    (ns as f64 / 1e6) as f32
}

/// Where the spin-bit pattern stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Spin {
    /// No client edge yet (or the pattern restarted).
    #[default]
    Idle,
    /// The client flipped to `v` at `at` (ns); waiting for the server to reflect it.
    AwaitServer { v: bool, at: u64 },
    /// The server reflected `v` at `at` (ns); waiting for the client to flip to `!v`.
    AwaitClient { v: bool, at: u64 },
}

/// RTT sample sums (ns) and counts, `[client leg, server leg]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Samples {
    sum_ns: [u64; 2],
    n: [u32; 2],
}

impl Samples {
    fn add(&mut self, o: &Samples) {
        for l in 0..2 {
            self.sum_ns[l] = self.sum_ns[l].saturating_add(o.sum_ns[l]);
            self.n[l] = self.n[l].saturating_add(o.n[l]);
        }
    }

    fn write_into(&self, out: &mut SliceKpi) {
        out.rtt_client_sum_ms += ns_to_ms(self.sum_ns[0]);
        out.rtt_client_samples = out.rtt_client_samples.saturating_add(self.n[0]);
        out.rtt_server_sum_ms += ns_to_ms(self.sum_ns[1]);
        out.rtt_server_samples = out.rtt_server_samples.saturating_add(self.n[1]);
    }
}

/// QUIC RTT tracker of one flow (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct QuicRtt {
    /// Version of the first long-header packet (0 = none seen yet).
    version: u32,
    /// Last client Initial before the first server long-header packet, ns (0 = none).
    client_initial_ns: u64,
    /// First server long-header packet, ns (0 = none).
    server_first_ns: u64,
    hs_client_ms: Option<f32>,
    hs_server_ms: Option<f32>,
    hs_pending: u8,
    /// Last spin value per direction (`SPIN_UNKNOWN` before the first short header).
    spin_last: [u8; 2],
    spin: Spin,
    /// The side awaited by `spin` sent a packet with the old value since the last edge.
    spin_active: bool,
    spin_invalid: u32,
    win: Samples,
    past: Samples,
}

impl QuicRtt {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        QuicRtt {
            spin_last: [SPIN_UNKNOWN; 2],
            ..Default::default()
        }
    }

    /// Creates the tracker of a flow once DPI names it QUIC (`l7`), and feeds it one
    /// datagram (`dir`: 0 = client→server). Hook for the flow table.
    pub fn feed(
        slot: &mut Option<Box<QuicRtt>>,
        l7: Option<&str>,
        dir: usize,
        payload: &[u8],
        ts_ns: u64,
    ) {
        if slot.is_none() && l7 == Some("QUIC") {
            *slot = Some(Box::new(QuicRtt::new()));
        }
        if let Some(q) = slot.as_mut() {
            q.on_datagram(dir, payload, ts_ns);
        }
    }

    /// Accounts one UDP datagram of the flow (`dir`: 0 = client→server, else server→client).
    pub fn on_datagram(&mut self, dir: usize, payload: &[u8], ts_ns: u64) {
        let Some(&b0) = payload.first() else {
            return;
        };
        let c2s = dir == 0;
        if b0 & 0x80 != 0 {
            self.long_header(c2s, b0, payload, ts_ns);
        } else {
            self.short_header(c2s, b0, ts_ns);
        }
    }

    fn long_header(&mut self, c2s: bool, b0: u8, p: &[u8], ts: u64) {
        let Some(v) = p.get(1..5) else {
            return;
        };
        let version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        if c2s {
            if self.version == 0 && version != 0 {
                self.version = version;
            }
            if self.server_first_ns == 0 {
                if is_initial(version, b0) {
                    self.client_initial_ns = ts;
                }
            } else {
                self.client_after_server(ts);
            }
            return;
        }
        self.server_packet(ts);
    }

    fn short_header(&mut self, c2s: bool, b0: u8, ts: u64) {
        if c2s && self.server_first_ns != 0 {
            self.client_after_server(ts);
        }
        if !c2s {
            self.server_packet(ts);
        }
        if !is_ietf(self.version) {
            return;
        }
        let d = usize::from(!c2s);
        let s = (b0 >> 5) & 1;
        let last = self.spin_last[d];
        self.spin_last[d] = s;
        if last == SPIN_UNKNOWN || last == s {
            // no edge: is the awaited side sending (with the value it is about to flip)?
            let v = s == 1;
            match (c2s, self.spin) {
                (true, Spin::AwaitClient { v: sv, .. }) if v == sv => self.spin_active = true,
                (false, Spin::AwaitServer { v: cv, .. }) if v != cv => self.spin_active = true,
                _ => {}
            }
            return;
        }
        let v = s == 1;
        let active = std::mem::replace(&mut self.spin_active, false);
        self.spin = match (c2s, self.spin) {
            (true, Spin::AwaitClient { v: sv, at }) if v != sv => {
                if active {
                    self.sample(0, ts.saturating_sub(at));
                }
                Spin::AwaitServer { v, at: ts }
            }
            (true, Spin::Idle) => Spin::AwaitServer { v, at: ts },
            (true, _) => {
                self.spin_invalid = self.spin_invalid.saturating_add(1);
                Spin::AwaitServer { v, at: ts }
            }
            (false, Spin::AwaitServer { v: cv, at }) if v == cv => {
                if active {
                    self.sample(1, ts.saturating_sub(at));
                }
                Spin::AwaitClient { v, at: ts }
            }
            (false, _) => {
                self.spin_invalid = self.spin_invalid.saturating_add(1);
                Spin::Idle
            }
        };
    }

    /// A server packet: the first one ends the server leg of the handshake.
    fn server_packet(&mut self, ts: u64) {
        if self.server_first_ns != 0 {
            return;
        }
        self.server_first_ns = ts;
        if self.client_initial_ns != 0 {
            self.hs_server_ms = Some(ns_to_ms(ts.saturating_sub(self.client_initial_ns)));
            self.hs_pending |= PENDING_SERVER;
        }
    }

    /// A client packet after the server's first: the first one ends the client leg.
    fn client_after_server(&mut self, ts: u64) {
        if self.hs_client_ms.is_none() && self.client_initial_ns != 0 {
            self.hs_client_ms = Some(ns_to_ms(ts.saturating_sub(self.server_first_ns)));
            self.hs_pending |= PENDING_CLIENT;
        }
    }

    fn sample(&mut self, leg: usize, ns: u64) {
        self.win.sum_ns[leg] = self.win.sum_ns[leg].saturating_add(ns);
        self.win.n[leg] = self.win.n[leg].saturating_add(1);
    }

    /// True while spin-bit samples are worth reporting (see the module documentation).
    fn spin_valid(&self) -> bool {
        let mut all = self.past;
        all.add(&self.win);
        self.spin_invalid <= all.n[0].saturating_add(all.n[1])
    }

    /// Adds this window's KPIs into `out` and resets the window part.
    pub fn take_window(&mut self, out: &mut SliceKpi) {
        if self.hs_pending & PENDING_CLIENT != 0 {
            out.hs_rtt_client_ms = self.hs_client_ms;
        }
        if self.hs_pending & PENDING_SERVER != 0 {
            out.hs_rtt_server_ms = self.hs_server_ms;
        }
        self.hs_pending = 0;
        if self.spin_valid() {
            self.win.write_into(out);
        }
        self.past.add(&self.win);
        self.win = Samples::default();
    }

    /// Whole-life KPIs into `out`.
    pub fn totals(&self, out: &mut SliceKpi) {
        if self.hs_client_ms.is_some() {
            out.hs_rtt_client_ms = self.hs_client_ms;
        }
        if self.hs_server_ms.is_some() {
            out.hs_rtt_server_ms = self.hs_server_ms;
        }
        if self.spin_valid() {
            let mut all = self.past;
            all.add(&self.win);
            all.write_into(out);
        }
    }
}

/// IETF QUIC versions with the RFC 9000 short header (and spin bit): v1, v2, drafts.
fn is_ietf(version: u32) -> bool {
    matches!(version, 0x0000_0001 | 0x6b33_43cf) || version >> 8 == 0x00ff_0000
}

/// True for a client Initial: long-header type 1 for v2, type 0 otherwise (v1, drafts,
/// gQUIC Q046+).
fn is_initial(version: u32, b0: u8) -> bool {
    let ty = (b0 >> 4) & 0x03;
    match version {
        0x6b33_43cf => ty == 1,
        _ => ty == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn long(version: u32, ty: u8) -> Vec<u8> {
        let mut p = vec![0xc0 | (ty << 4)];
        p.extend_from_slice(&version.to_be_bytes());
        p.extend_from_slice(&[8, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
        p
    }

    fn short(spin: bool) -> Vec<u8> {
        vec![0x40 | if spin { 0x20 } else { 0 }, 1, 2, 3]
    }

    #[test]
    fn handshake_legs_v1_with_split_client_hello_and_0rtt() {
        let mut q = QuicRtt::new();
        q.on_datagram(0, &long(1, 0), 100 * MS); // Initial 1/2
        q.on_datagram(0, &long(1, 0), 100 * MS + 50_000); // Initial 2/2
        q.on_datagram(0, &long(1, 1), 101 * MS); // 0-RTT: not an Initial
        q.on_datagram(1, &long(1, 0), 130 * MS); // server Initial
        q.on_datagram(1, &long(1, 2), 130 * MS + 10_000); // server Handshake
        q.on_datagram(0, &long(1, 2), 142 * MS); // client Handshake
        q.on_datagram(0, &short(false), 143 * MS);
        let mut k = SliceKpi::default();
        q.take_window(&mut k);
        assert!((k.hs_rtt_server_ms.unwrap() - 29.95).abs() < 1e-3);
        assert!((k.hs_rtt_client_ms.unwrap() - 12.0).abs() < 1e-3);
        // reported once per window, kept in totals
        let mut k2 = SliceKpi::default();
        q.take_window(&mut k2);
        assert_eq!(k2.hs_rtt_server_ms, None);
        let mut t = SliceKpi::default();
        q.totals(&mut t);
        assert!(t.hs_rtt_client_ms.is_some() && t.hs_rtt_server_ms.is_some());
    }

    #[test]
    fn v2_initial_type_and_mid_flow_start() {
        let mut q = QuicRtt::new();
        q.on_datagram(0, &long(0x6b33_43cf, 0), 0); // v2 type 0 is Retry-type: not Initial
        q.on_datagram(0, &long(0x6b33_43cf, 1), 5 * MS);
        q.on_datagram(1, &long(0x6b33_43cf, 3), 25 * MS);
        q.on_datagram(0, &short(false), 30 * MS);
        let mut k = SliceKpi::default();
        q.totals(&mut k);
        assert!((k.hs_rtt_server_ms.unwrap() - 20.0).abs() < 1e-3);
        assert!((k.hs_rtt_client_ms.unwrap() - 5.0).abs() < 1e-3);
        // a flow picked up after its handshake measures nothing
        let mut m = QuicRtt::new();
        m.on_datagram(1, &short(false), 0);
        m.on_datagram(0, &short(false), MS);
        let mut k = SliceKpi::default();
        m.totals(&mut k);
        assert_eq!((k.hs_rtt_client_ms, k.hs_rtt_server_ms), (None, None));
    }

    #[test]
    fn spin_bit_gives_both_legs() {
        let mut q = QuicRtt::new();
        q.on_datagram(0, &long(1, 0), 0);
        q.on_datagram(1, &long(1, 0), 20 * MS);
        q.on_datagram(0, &long(1, 2), 30 * MS);
        // spin: client leg 10 ms, server leg 20 ms; several packets per spin period
        let mut t = 100 * MS;
        let mut v = false;
        q.on_datagram(0, &short(v), t);
        q.on_datagram(1, &short(v), t + MS);
        for _ in 0..6 {
            v = !v;
            t += 10 * MS;
            q.on_datagram(0, &short(v), t); // client edge
            q.on_datagram(0, &short(v), t + MS);
            q.on_datagram(1, &short(!v), t + 2 * MS);
            q.on_datagram(1, &short(v), t + 20 * MS); // server reflects
            q.on_datagram(1, &short(v), t + 21 * MS);
            q.on_datagram(0, &short(v), t + 25 * MS); // client still sending, old value
            t += 20 * MS;
        }
        let mut k = SliceKpi::default();
        q.take_window(&mut k);
        assert_eq!(k.rtt_server_samples, 6);
        assert_eq!(k.rtt_client_samples, 5);
        assert!((k.rtt_server_sum_ms / 6.0 - 20.0).abs() < 1e-3);
        assert!((k.rtt_client_sum_ms / 5.0 - 10.0).abs() < 1e-3);
        assert_eq!(q.spin_invalid, 0);
    }

    #[test]
    fn spin_edges_of_an_idle_side_are_not_samples() {
        let mut q = QuicRtt::new();
        q.on_datagram(0, &long(1, 0), 0);
        q.on_datagram(1, &long(1, 0), MS);
        q.on_datagram(0, &short(false), 2 * MS);
        q.on_datagram(1, &short(false), 3 * MS);
        // request/response with idle gaps: each side's first packet after a pause flips
        let mut v = false;
        for k in 0..5u64 {
            v = !v;
            let t = 1000 * MS * (k + 1);
            q.on_datagram(0, &short(v), t);
            q.on_datagram(1, &short(v), t + 2 * MS);
        }
        let mut k = SliceKpi::default();
        q.totals(&mut k);
        assert_eq!((k.rtt_client_samples, k.rtt_server_samples), (0, 0));
        assert_eq!(q.spin_invalid, 0);
    }

    #[test]
    fn random_spin_reports_nothing_and_gquic_has_no_spin() {
        let mut q = QuicRtt::new();
        q.on_datagram(0, &long(1, 0), 0);
        let mut x: u32 = 0x1234_5678;
        for i in 0..400u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            q.on_datagram((x & 1) as usize, &short(x & 2 != 0), i * MS);
        }
        let mut k = SliceKpi::default();
        q.totals(&mut k);
        assert_eq!((k.rtt_client_samples, k.rtt_server_samples), (0, 0));
        let mut g = QuicRtt::new();
        g.on_datagram(0, &long(u32::from_be_bytes(*b"Q046"), 0), 0);
        for i in 0..10u64 {
            g.on_datagram((i % 2) as usize, &short(i % 4 < 2), i * MS);
        }
        let mut k = SliceKpi::default();
        g.totals(&mut k);
        assert_eq!((k.rtt_client_samples, k.rtt_server_samples), (0, 0));
        assert_eq!(g.spin_last, [SPIN_UNKNOWN; 2]);
    }

    #[test]
    fn hostile_datagrams_never_panic() {
        let mut q = QuicRtt::new();
        for n in 0..8 {
            q.on_datagram(0, &long(1, 0)[..n], n as u64);
            q.on_datagram(1, &[0xff; 8][..n], n as u64);
        }
        q.on_datagram(0, &[], 0);
        // time going backwards
        let mut b = QuicRtt::new();
        b.on_datagram(0, &long(1, 0), 10 * MS);
        b.on_datagram(1, &long(1, 0), 5 * MS);
        b.on_datagram(0, &short(false), MS);
        let mut k = SliceKpi::default();
        b.totals(&mut k);
        assert_eq!(k.hs_rtt_server_ms, Some(0.0));
    }
}
