//! Flow table tests: direction, timeouts, slicing, eviction, fragments, tunnels.

use super::*;
use crate::decode::LinkType;
use etherparse::PacketBuilder;

const C: [u8; 4] = [198, 18, 0, 10];
const S: [u8; 4] = [198, 19, 0, 20];
const SEC: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, a minute boundary.
const T0: u64 = 1_767_225_600 * SEC;

#[derive(Clone, Copy)]
enum Fl {
    Syn,
    SynAck,
    Ack,
    Fin,
    Rst,
}

fn tcp(from_client: bool, fl: Fl, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        (C, S, 40000, 443)
    } else {
        (S, C, 443, 40000)
    };
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, 1, 1000);
    let b = match fl {
        Fl::Syn => b.syn(),
        Fl::SynAck => b.syn().ack(1),
        Fl::Ack => b.ack(1),
        Fl::Fin => b.fin().ack(1),
        Fl::Rst => b.rst(),
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build");
    v
}

fn udp(sport: u16, payload_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(C, S, 64)
        .udp(sport, 53)
        .write(&mut v, &vec![0u8; payload_len])
        .expect("build");
    v
}

struct Run {
    table: FlowTable,
    records: Vec<FlowRecord>,
}

impl Run {
    fn new(cfg: FlowConfig) -> Self {
        Run {
            table: FlowTable::new(cfg),
            records: Vec::new(),
        }
    }
    fn feed(&mut self, ts: u64, frame: &[u8]) {
        self.feed_cut(ts, frame, frame.len() as u32);
    }
    /// Feeds the captured bytes `frame` of a frame `wire_len` bytes long on the wire.
    fn feed_cut(&mut self, ts: u64, frame: &[u8], wire_len: u32) {
        self.table
            .process(ts, LinkType::Ethernet, frame, wire_len, &mut self.records);
    }
    fn finish(mut self) -> (Vec<FlowEnd>, Vec<FlowSlice>, FlowStats) {
        self.table.finish(&mut self.records);
        let mut ends = Vec::new();
        let mut slices = Vec::new();
        for r in self.records {
            match r {
                FlowRecord::End(e) => ends.push(*e),
                FlowRecord::Slice(s) => slices.push(s),
            }
        }
        (ends, slices, self.table.stats().clone())
    }
}

#[test]
fn tcp_connection_counts_per_direction() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &tcp(true, Fl::Syn, b""));
    r.feed(T0 + 1000, &tcp(false, Fl::SynAck, b""));
    r.feed(T0 + 2000, &tcp(true, Fl::Ack, b"GET"));
    r.feed(T0 + 3000, &tcp(false, Fl::Ack, b"200 OK"));
    r.feed(T0 + 4000, &tcp(true, Fl::Fin, b""));
    // A half-closed connection stays one flow while packets keep coming.
    r.feed(T0 + 5000, &tcp(false, Fl::Fin, b""));
    let (ends, _, _) = r.finish();
    assert_eq!(ends.len(), 1);
    let e = &ends[0];
    assert_eq!(e.meta.client_ip.to_string(), "198.18.0.10");
    assert_eq!((e.meta.client_port, e.meta.server_port), (40000, 443));
    assert_eq!((e.c2s.pkts, e.s2c.pkts), (3, 3));
    assert_eq!(e.c2s.ip_bytes, 40 + 43 + 40);
    assert_eq!(e.s2c.payload_bytes, 6);
    // Frames: 14 + IP; etherparse doesn't pad to 60.
    assert_eq!(e.c2s.frame_bytes, e.c2s.ip_bytes + 3 * 14);
    assert_eq!(e.end_reason, EndReason::Fin);
    assert_eq!((e.first_ts_ns, e.last_ts_ns), (T0, T0 + 5000));
}

#[test]
fn synack_seen_first_still_makes_the_syn_sender_the_client() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &tcp(false, Fl::SynAck, b""));
    r.feed(T0 + 10, &tcp(true, Fl::Ack, b""));
    let (ends, _, _) = r.finish();
    assert_eq!(ends[0].meta.client_port, 40000);
    assert_eq!((ends[0].c2s.pkts, ends[0].s2c.pkts), (1, 1));
}

#[test]
fn first_sender_is_client_without_syn() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &tcp(false, Fl::Ack, b"data"));
    let (ends, _, _) = r.finish();
    assert_eq!(ends[0].meta.client_port, 443);
}

#[test]
fn udp_idle_timeout_splits_flows() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &udp(5000, 10));
    r.feed(T0 + 30 * SEC, &udp(5000, 10));
    r.feed(T0 + 91 * SEC, &udp(5000, 10));
    let (ends, _, _) = r.finish();
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0].end_reason, EndReason::Idle);
    assert_eq!(ends[0].c2s.pkts, 2);
    assert_eq!(ends[1].end_reason, EndReason::EndOfInput);
    assert_eq!(ends[1].c2s.pkts, 1);
}

#[test]
fn rst_closes_after_the_closing_timeout() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &tcp(true, Fl::Syn, b""));
    r.feed(T0 + SEC, &tcp(false, Fl::Rst, b""));
    // Any later packet (another flow) past 10 s expires it.
    r.feed(T0 + 12 * SEC, &udp(1, 1));
    let (ends, _, _) = r.finish();
    assert_eq!(ends[0].end_reason, EndReason::Rst);
    assert_eq!(ends[0].last_ts_ns, T0 + SEC);
}

#[test]
fn a_half_closed_connection_keeps_the_idle_timeout() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &tcp(true, Fl::Fin, b""));
    r.feed(T0 + 1000, &tcp(false, Fl::Ack, b""));
    r.feed(T0 + 200 * SEC, &tcp(false, Fl::Ack, b"late data"));
    let (ends, _, _) = r.finish();
    assert_eq!(ends.len(), 1);
    assert_eq!((ends[0].c2s.pkts, ends[0].s2c.pkts), (1, 2));
}

#[test]
fn new_syn_after_close_starts_a_new_connection() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &tcp(true, Fl::Syn, b""));
    r.feed(T0 + 1, &tcp(false, Fl::Rst, b""));
    r.feed(T0 + 2, &tcp(true, Fl::Syn, b""));
    r.feed(T0 + 3, &tcp(false, Fl::SynAck, b""));
    let (ends, _, _) = r.finish();
    assert_eq!(ends.len(), 2);
    assert_eq!((ends[0].c2s.pkts, ends[0].s2c.pkts), (1, 1));
    assert_eq!((ends[1].c2s.pkts, ends[1].s2c.pkts), (1, 1));
    assert_ne!(ends[0].meta.flow_id, ends[1].meta.flow_id);
}

#[test]
fn minute_slices_add_up_to_the_totals() {
    let mut r = Run::new(FlowConfig::default());
    // 5 packets per minute over 3 minutes, starting 30 s into a minute.
    for m in 0..3u64 {
        for k in 0..5u64 {
            r.feed(T0 + 30 * SEC + m * 60 * SEC + k * SEC, &udp(7000, 100));
        }
    }
    let (ends, slices, stats) = r.finish();
    assert_eq!(ends.len(), 1);
    let mine: Vec<_> = slices
        .iter()
        .filter(|s| s.meta.flow_id == ends[0].meta.flow_id)
        .collect();
    assert_eq!(mine.len(), 3);
    for (m, s) in mine.iter().enumerate() {
        assert_eq!(s.window_start_ns, T0 + m as u64 * 60 * SEC);
        assert_eq!(s.c2s.pkts, 5);
    }
    let sum: u64 = mine.iter().map(|s| s.c2s.ip_bytes).sum();
    assert_eq!(sum, ends[0].c2s.ip_bytes);
    let frames: u64 = mine.iter().map(|s| s.c2s.frame_bytes).sum();
    assert_eq!(frames, ends[0].c2s.frame_bytes);
    assert_eq!(stats.slices, 3);
}

#[test]
fn slices_of_a_flow_that_skips_minutes_only_cover_active_minutes() {
    let mut r = Run::new(FlowConfig {
        udp_idle_s: 600,
        ..FlowConfig::default()
    });
    r.feed(T0 + SEC, &udp(7001, 1));
    r.feed(T0 + 250 * SEC, &udp(7001, 1));
    let (_, slices, _) = r.finish();
    let starts: Vec<u64> = slices
        .iter()
        .map(|s| (s.window_start_ns - T0) / SEC)
        .collect();
    assert_eq!(starts, vec![0, 240]);
}

#[test]
fn eviction_bounds_the_table() {
    let mut r = Run::new(FlowConfig {
        max_flows: 10,
        ..FlowConfig::default()
    });
    for p in 0..100u16 {
        r.feed(T0 + p as u64, &udp(10_000 + p, 1));
        assert!(r.table.len() <= 10);
    }
    let (ends, _, stats) = r.finish();
    assert_eq!(ends.len(), 100);
    assert_eq!(stats.flows_evicted, 90);
    assert_eq!(
        ends.iter()
            .filter(|e| e.end_reason == EndReason::Evicted)
            .count(),
        90
    );
    // The oldest flows were the ones evicted.
    assert_eq!(ends[0].meta.client_port, 10_000);
}

#[test]
fn fragments_count_as_one_packet_with_all_ip_bytes() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(C, S, 64)
        .udp(6000, 53)
        .write(&mut v, &[0u8; 32])
        .expect("build");
    let mut first = v.clone();
    first[14 + 6] = 0x20; // MF
    let mut later = v.clone();
    later[14 + 6] = 0x00;
    later[14 + 7] = 0x05;
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &first);
    r.feed(T0 + 1, &later);
    let (ends, _, _) = r.finish();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].c2s.pkts, 1);
    assert_eq!(ends[0].c2s.ip_bytes, 60 + 40);
    assert_eq!(ends[0].meta.server_port, 53);
}

#[test]
fn orphan_fragments_are_counted_not_flowed() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(C, S, 64)
        .udp(6000, 53)
        .write(&mut v, &[0u8; 8])
        .expect("build");
    v[14 + 7] = 0x09;
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0, &v);
    let (ends, _, stats) = r.finish();
    assert!(ends.is_empty());
    assert_eq!(
        stats.skipped[crate::decode::Skip::OrphanFragment.index()],
        1
    );
}

/// An IPv4 total length past what the frame had on the wire is a malformed header
/// (skipped, as nDPI and tshark do); past only what was captured, it is a snaplen cut and
/// the packet counts with its header's length.
#[test]
fn ip_length_past_the_wire_is_malformed_but_a_snaplen_cut_counts() {
    let whole = tcp(true, Fl::Ack, &[7u8; 1000]);
    let wire_len = whole.len() as u32;
    let mut r = Run::new(FlowConfig::default());
    // Snaplen cut to 64 bytes of a 1054-byte frame: counted in full.
    r.feed_cut(T0, &whole[..64], wire_len);
    // Captured whole (66 bytes on the wire and in the file) but claiming 137 IP bytes.
    let mut lying = tcp(true, Fl::Ack, &[7u8; 12]);
    lying[16..18].copy_from_slice(&137u16.to_be_bytes());
    r.feed(T0 + 1, &lying);
    // Cut, and claiming more than even the wire length.
    let mut past = whole.clone();
    past[16..18].copy_from_slice(&(wire_len as u16 - 14 + 1).to_be_bytes());
    r.feed_cut(T0 + 2, &past[..64], wire_len);
    let (ends, _, stats) = r.finish();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].c2s.pkts, 1);
    assert_eq!(ends[0].c2s.ip_bytes, 20 + 20 + 1000);
    assert_eq!(ends[0].c2s.payload_bytes, 1000);
    let past_wire = crate::decode::Skip::IpLengthPastWire;
    assert_eq!(stats.skipped[past_wire.index()], 2);
    assert_eq!(stats.skipped.iter().sum::<u64>(), 2);
}

#[test]
fn flow_state_is_small() {
    assert!(
        FlowTable::flow_state_size() <= 192,
        "flow state grew to {} bytes",
        FlowTable::flow_state_size()
    );
}

#[test]
fn time_going_backwards_does_not_panic_or_reopen_windows() {
    let mut r = Run::new(FlowConfig::default());
    r.feed(T0 + 120 * SEC, &udp(1, 1));
    r.feed(T0, &udp(1, 1));
    let (ends, slices, _) = r.finish();
    assert_eq!(ends[0].c2s.pkts, 2);
    assert_eq!(slices.len(), 1);
}

#[test]
fn memory_per_flow_stays_under_200_bytes_with_200k_flows() {
    // A SYN flood: every packet a new flow. Memory is what the table really allocated
    // (slab chunks + hash index + active list), divided by the flows it holds.
    let mut r = Run::new(FlowConfig::default());
    let mut frame = Vec::new();
    for i in 0..200_000u32 {
        frame.clear();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], S, 64)
            .tcp(1024 + (i % 60_000) as u16, 80, i, 1024)
            .syn()
            .write(&mut frame, &[])
            .expect("build");
        r.feed(T0 + i as u64 * 1000, &frame);
    }
    let flows = r.table.len();
    assert_eq!(flows, 200_000);
    let per_flow = r.table.table_bytes() as f64 / flows as f64;
    eprintln!("flow table: {per_flow:.1} bytes per flow at {flows} flows");
    assert!(per_flow <= 200.0, "{per_flow} bytes per flow");
}
