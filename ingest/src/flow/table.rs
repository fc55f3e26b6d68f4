//! The bidirectional flow table.
//!
//! Flows live in a chunked slab (no reallocation copies, no over-allocation beyond one
//! chunk) and are found through a [`FlowIndex`] of slab indices: one cache line per
//! lookup. Each flow sits on one of three LRU lists by timeout class (open TCP, closing TCP,
//! UDP/other), ordered by last activity, so expiry and eviction look only at list heads,
//! never scan the table. Flows touched in the current window are remembered in a list, so
//! closing a window visits only them.

use super::config::FlowConfig;
use super::frag::FragCache;
use super::index::FlowIndex;
use super::key::{FlowKey, KeyDir};
use super::record::{
    DirCounters, EndReason, FlowClass, FlowEnd, FlowMeta, FlowRecord, FlowSink, FlowSlice,
};
use super::stats::FlowStats;
use crate::catalog::{category_of_l7, Catalog};
use crate::decode::{addr, tcp_flags, Decoded, Decoder, Fragment, LinkType, Transport, TunnelKind};
use crate::dpi::{CrossFlow, Direction, DpiInput, DpiResult, DpiState};
use crate::kpi::{ActiveTime, QuicRtt, RtpTracker, SeqTracker, SliceKpi, TcpTracker};
use std::hash::BuildHasher;

const NIL: u32 = u32::MAX;
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
const NS: u64 = 1_000_000_000;

/// Timeout classes, each with its own LRU list.
const CLASS_TCP_OPEN: u8 = 0;
const CLASS_TCP_CLOSING: u8 = 1;
const CLASS_OTHER: u8 = 2;

// `Flow::status` bits.
const IN_USE: u8 = 0x01;
const CLIENT_IS_B: u8 = 0x02;
const FIN_A: u8 = 0x04;
const FIN_B: u8 = 0x08;
const RST: u8 = 0x10;
const CLASS_SHIFT: u8 = 5;
const CLASS_MASK: u8 = 0x60;

/// Per-direction counters indexed by [`KeyDir`].
#[derive(Clone, Copy, Default)]
struct Counters {
    pkts: [u32; 2],
    frame: [u64; 2],
    ip: [u64; 2],
    payload: [u64; 2],
}

impl Counters {
    fn dir(&self, d: usize) -> DirCounters {
        DirCounters {
            pkts: self.pkts[d] as u64,
            frame_bytes: self.frame[d],
            ip_bytes: self.ip[d],
            payload_bytes: self.payload[d],
        }
    }
}

/// Per-direction counters of the current window, compact: frame bytes are kept as their
/// difference to the IP bytes (link/tunnel overhead, minus later fragments' IP bytes,
/// which have no frame bytes); an i32 holds a minute of it for any flow.
#[derive(Clone, Copy, Default)]
struct WindowCounters {
    pkts: [u32; 2],
    overhead: [i32; 2],
    ip: [u64; 2],
    payload: [u64; 2],
}

impl WindowCounters {
    fn is_empty(&self) -> bool {
        self.pkts == [0, 0] && self.ip == [0, 0]
    }

    fn dir(&self, d: usize) -> DirCounters {
        DirCounters {
            pkts: self.pkts[d] as u64,
            frame_bytes: (self.ip[d] as i64 + self.overhead[d] as i64).max(0) as u64,
            ip_bytes: self.ip[d],
            payload_bytes: self.payload[d],
        }
    }
}

/// What only some flows need, allocated on demand (payload inspected, GTP TEIDs).
///
/// Laid out for the per-packet path: the tracker pointers, the DPI-final flag and the
/// active-time state a packet touches come first; a flow whose DPI is final never
/// touches its DPI state (at the end of the block) again until it is reported.
#[derive(Default)]
#[repr(C)]
struct Extras {
    tcp: Option<Box<TcpTracker>>,
    rtp: Option<Box<RtpTracker>>,
    active: ActiveTime,
    /// DPI no longer wants packets: protocol and metadata are final.
    dpi_final: bool,
    /// The final protocol, once `dpi_final`.
    l7_final: Option<&'static str>,
    /// QUIC handshake and spin-bit RTT of a flow DPI names QUIC.
    quic: Option<Box<QuicRtt>>,
    /// Sequence-numbered datagrams (game ticks) of a UDP flow that is not RTP.
    seq: Option<Box<SeqTracker>>,
    teids: [u32; 2],
    /// Application timings (TLS handshake, TTFB, DNS) already reported in a slice.
    app_timings_reported: [bool; 3],
    /// Classification, kept once DPI is final (saves a catalog lookup per slice).
    class: Option<FlowClass>,
    /// DPI state, in the same allocation (a flow with extras almost always carries
    /// payload, so gets one): past the fields a packet touches once DPI is final.
    dpi: Option<DpiState>,
}

impl Extras {
    /// Fills this window's KPIs: transport trackers' window values, and application
    /// timings the first time they are known.
    fn take_window(&mut self, out: &mut SliceKpi) {
        if let Some(t) = self.tcp.as_mut() {
            t.take_window(out);
        }
        self.active.take_window(out);
        if let Some(r) = self.rtp.as_mut().filter(|_| is_rtp(&self.dpi)) {
            r.take_window(out);
        }
        if let Some(q) = self.quic.as_mut() {
            q.take_window(out);
        }
        if let Some(q) = self.seq.as_mut() {
            q.take_window(out);
        }
        if let Some(d) = self.dpi.as_ref() {
            let t = app_timings(d.result());
            for (i, v) in t.into_iter().enumerate() {
                if v.is_some() && !self.app_timings_reported[i] {
                    self.app_timings_reported[i] = true;
                    set_app_timing(out, i, v);
                }
            }
        }
    }

    /// Whole-life KPIs.
    fn totals(&self, out: &mut SliceKpi) {
        if let Some(t) = self.tcp.as_ref() {
            t.totals(out);
        }
        self.active.totals(out);
        if let Some(r) = self.rtp.as_ref().filter(|_| is_rtp(&self.dpi)) {
            r.totals(out);
        }
        if let Some(q) = self.quic.as_ref() {
            q.totals(out);
        }
        if let Some(q) = self.seq.as_ref() {
            q.totals(out);
        }
        if let Some(d) = self.dpi.as_ref() {
            for (i, v) in app_timings(d.result()).into_iter().enumerate() {
                set_app_timing(out, i, v);
            }
        }
    }
}

/// True once DPI has classified the flow as RTP (a speculative RTP tracker reports only
/// then).
fn is_rtp(dpi: &Option<DpiState>) -> bool {
    dpi.as_ref().and_then(|p| p.result().l7_proto) == Some("RTP")
}

/// (TLS handshake, HTTP TTFB, DNS response) times in ms from DPI timestamps.
fn app_timings(d: &DpiResult) -> [Option<f32>; 3] {
    let ms = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f32 / 1e6),
        _ => None,
    };
    [
        ms(d.tls_client_hello_ts, d.tls_server_data_ts),
        ms(d.http_request_ts, d.http_response_ts),
        ms(d.dns_query_ts, d.dns_response_ts),
    ]
}

fn set_app_timing(out: &mut SliceKpi, i: usize, v: Option<f32>) {
    match i {
        0 => out.tls_handshake_ms = v,
        1 => out.http_ttfb_ms = v,
        _ => out.dns_response_ms = v,
    }
}

/// One flow's state. Kept small: it is the per-flow memory cost (see `bytes_per_flow`).
struct Flow {
    key: FlowKey,
    status: u8,
    carrier: u8,
    tcp_flags: [u8; 2],
    first_ts: u64,
    last_ts: u64,
    total: Counters,
    window: WindowCounters,
    prev: u32,
    next: u32,
    extras: Option<Box<Extras>>,
}

impl Flow {
    fn class(&self) -> u8 {
        (self.status & CLASS_MASK) >> CLASS_SHIFT
    }
    fn in_use(&self) -> bool {
        self.status & IN_USE != 0
    }
    fn client_dir(&self) -> usize {
        if self.status & CLIENT_IS_B != 0 {
            1
        } else {
            0
        }
    }
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// The flow table: feed it frames, it emits [`FlowRecord`]s to a [`FlowSink`].
pub struct FlowTable {
    cfg: FlowConfig,
    catalog: Catalog,
    decoder: Decoder,
    index: FlowIndex,
    hasher: foldhash::fast::FixedState,
    chunks: Vec<Vec<Flow>>,
    free_head: u32,
    live: usize,
    lists: [List; 3],
    timeouts_ns: [u64; 3],
    active: Vec<u32>,
    window_ns: u64,
    window_start: u64,
    now: u64,
    next_expiry_check: u64,
    started: bool,
    frags: FragCache,
    stats: FlowStats,
    /// DNS answers and announced data connections, applied to later flows.
    cross: CrossFlow,
}

impl FlowTable {
    /// Creates an empty table classifying flows with the built-in app catalog.
    pub fn new(cfg: FlowConfig) -> Self {
        Self::with_catalog(cfg, Catalog::builtin())
    }

    /// Creates an empty table classifying flows with `catalog`.
    pub fn with_catalog(cfg: FlowConfig, catalog: Catalog) -> Self {
        let window_ns = cfg.window_s.max(1) * NS;
        let timeouts_ns = [
            cfg.tcp_idle_s * NS,
            cfg.tcp_closed_s * NS,
            cfg.udp_idle_s * NS,
        ];
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        FlowTable {
            frags: FragCache::new(cfg.fragment_slots),
            // Sized for a busy link up front (0.5 MB): growing a small index repeatedly
            // re-reads every flow key.
            index: FlowIndex::new(cfg.max_flows.max(1), cfg.max_flows.min(1 << 16)),
            hasher: foldhash::fast::FixedState::with_seed(seed),
            chunks: Vec::new(),
            free_head: NIL,
            live: 0,
            lists: [List {
                head: NIL,
                tail: NIL,
            }; 3],
            timeouts_ns,
            active: Vec::new(),
            window_ns,
            window_start: 0,
            now: 0,
            next_expiry_check: 0,
            started: false,
            decoder: Decoder::default(),
            stats: FlowStats::default(),
            cross: CrossFlow::new(cfg.dns_cache_entries),
            catalog,
            cfg,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Heap bytes held by the table structures (slab chunks + index), excluding per-flow
    /// DPI extras: the basis of the bytes-per-flow figure.
    pub fn table_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<Flow>())
            .sum::<usize>()
            + self.index.allocation_size()
            + self.active.capacity() * 4
    }

    /// Size of one flow's fixed state in the slab.
    pub const fn flow_state_size() -> usize {
        std::mem::size_of::<Flow>()
    }

    /// Processes one captured frame: `frame` holds the captured bytes of a frame that was
    /// `wire_len` bytes long on the wire (the capture record's original length; more than
    /// `frame.len()` when the snaplen cut it).
    pub fn process<S: FlowSink>(
        &mut self,
        ts_ns: u64,
        linktype: LinkType,
        frame: &[u8],
        wire_len: u32,
        sink: &mut S,
    ) {
        self.stats.packets += 1;
        self.stats.frame_bytes += frame.len() as u64;
        self.advance(ts_ns, sink);
        let ts = self.now;
        let mut dec = Decoded::default();
        if let Err(skip) = self
            .decoder
            .decode_wire(linktype, frame, wire_len, &mut dec)
        {
            self.stats.skipped[skip.index()] += 1;
            return;
        }
        let vlan = dec.vlan;
        for layer in dec.layers_mut() {
            if layer.l4_truncated {
                self.stats.l4_truncated += 1;
            }
            match layer.frag {
                Fragment::First { id } => self.frags.remember(layer, id),
                Fragment::Later { id, .. } => match self.frags.ports(layer, id) {
                    Some((sp, dp)) => {
                        layer.src_port = sp;
                        layer.dst_port = dp;
                    }
                    None => {
                        self.stats.skipped[crate::decode::Skip::OrphanFragment.index()] += 1;
                        continue;
                    }
                },
                Fragment::No => {}
            }
            self.update(layer, vlan, frame.len() as u64, ts, sink);
        }
    }

    /// Moves event time to `ts_ns` without a packet (a live capture's clock tick while the
    /// link is idle): closes the windows that ended and expires idle flows. Does nothing
    /// before the first packet or when `ts_ns` is not later than the current time.
    pub fn advance_to<S: FlowSink>(&mut self, ts_ns: u64, sink: &mut S) {
        if self.started {
            self.advance(ts_ns, sink);
        }
    }

    /// Moves event time forward: closes windows and expires idle flows.
    fn advance<S: FlowSink>(&mut self, ts: u64, sink: &mut S) {
        if !self.started {
            self.started = true;
            self.now = ts;
            self.window_start = ts - ts % self.window_ns;
            self.next_expiry_check = ts + NS;
            return;
        }
        if ts <= self.now {
            // Time never goes back: a late packet counts at the current time.
            return;
        }
        while ts >= self.window_start + self.window_ns {
            let end = self.window_start + self.window_ns;
            self.now = end - 1;
            self.expire(end - 1, sink);
            self.close_window(sink);
            self.window_start = end.max(ts - ts % self.window_ns);
        }
        self.now = ts;
        if ts >= self.next_expiry_check {
            self.expire(ts, sink);
            self.next_expiry_check = ts + NS;
        }
    }

    /// Ends every flow whose idle time exceeds its class's timeout at `now`.
    fn expire<S: FlowSink>(&mut self, now: u64, sink: &mut S) {
        for class in 0..3u8 {
            loop {
                let head = self.lists[class as usize].head;
                if head == NIL {
                    break;
                }
                let f = self.flow(head);
                if f.last_ts + self.timeouts_ns[class as usize] > now {
                    break;
                }
                let reason = closing_reason(f.status).unwrap_or(EndReason::Idle);
                self.end_flow(head, reason, sink);
            }
        }
    }

    /// Emits the slices of the window that ends now and resets window counters.
    fn close_window<S: FlowSink>(&mut self, sink: &mut S) {
        let active = std::mem::take(&mut self.active);
        for &i in &active {
            self.emit_slice(i, sink);
        }
        self.active = active;
        self.active.clear();
    }

    fn emit_slice<S: FlowSink>(&mut self, i: u32, sink: &mut S) {
        let window_start = self.window_start;
        let f = self.flow(i);
        if !f.in_use() || f.window.is_empty() {
            return;
        }
        let c = f.client_dir();
        let meta = meta_of(f);
        let l7_proto = l7_of(f);
        let cached = f.extras.as_ref().and_then(|x| x.class.clone());
        let class = match cached {
            Some(c) => c,
            None => {
                let dpi = f.extras.as_ref().and_then(|x| x.dpi.as_ref());
                let class = classify(&self.catalog, &meta, dpi.map(|d| d.result()), l7_proto);
                // Once DPI is final the class can't change: keep it for later slices.
                if dpi.is_some_and(|d| !d.wants_more()) {
                    if let Some(x) = self.flow_mut(i).extras.as_mut() {
                        x.class = Some(class.clone());
                    }
                }
                class
            }
        };
        let f = self.flow(i);
        let (c2s, s2c) = (f.window.dir(c), f.window.dir(1 - c));
        let mut kpi = SliceKpi::default();
        let f = self.flow_mut(i);
        if let Some(x) = f.extras.as_mut() {
            x.take_window(&mut kpi);
        }
        f.window = WindowCounters::default();
        let slice = FlowSlice {
            meta,
            window_start_ns: window_start,
            c2s,
            s2c,
            l7_proto,
            class,
            kpi,
        };
        self.stats.slices += 1;
        sink.record(FlowRecord::Slice(slice));
    }

    /// Ends every open flow (input ended), oldest first, after closing the last window.
    pub fn finish<S: FlowSink>(&mut self, sink: &mut S) {
        self.close_window(sink);
        let mut open: Vec<(u64, u32)> = Vec::with_capacity(self.live);
        for class in 0..3 {
            let mut i = self.lists[class].head;
            while i != NIL {
                let f = self.flow(i);
                open.push((f.first_ts, i));
                i = f.next;
            }
        }
        open.sort_unstable();
        for (_, i) in open {
            let reason = closing_reason(self.flow(i).status).unwrap_or(EndReason::EndOfInput);
            self.end_flow(i, reason, sink);
        }
    }

    #[inline]
    fn flow(&self, i: u32) -> &Flow {
        &self.chunks[(i >> CHUNK_BITS) as usize][(i as usize) & (CHUNK - 1)]
    }

    #[inline]
    fn flow_mut(&mut self, i: u32) -> &mut Flow {
        &mut self.chunks[(i >> CHUNK_BITS) as usize][(i as usize) & (CHUNK - 1)]
    }

    fn update<S: FlowSink>(
        &mut self,
        t: &Transport<'_>,
        vlan: u16,
        frame_len: u64,
        ts: u64,
        sink: &mut S,
    ) {
        let (key, kdir) = FlowKey::of(t, vlan);
        let hash = self.hasher.hash_one(key);
        let chunks = &self.chunks;
        let found = self.index.find(hash, |i| {
            chunks[(i >> CHUNK_BITS) as usize][(i as usize) & (CHUNK - 1)].key == key
        });
        let flags = t.tcp.map(|x| x.flags).unwrap_or(0);
        let i = match found {
            Some(i) => {
                // A new SYN on a closed connection starts a new connection (as Zeek does).
                let f = self.flow(i);
                if flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN {
                    if let Some(reason) = closing_reason(f.status) {
                        self.end_flow(i, reason, sink);
                        self.create(key, kdir, hash, t, ts, sink)
                    } else {
                        i
                    }
                } else {
                    i
                }
            }
            None => self.create(key, kdir, hash, t, ts, sink),
        };
        let d = kdir as usize;
        let window_was_empty;
        {
            let f = self.flow_mut(i);
            window_was_empty = f.window.is_empty();
            // A datagram's later fragments add IP and payload bytes (the reassembled size,
            // as Zeek counts) but neither a packet nor frame bytes (as nDPI counts).
            let first = !matches!(t.frag, Fragment::Later { .. });
            let (pk, fb) = if first { (1, frame_len) } else { (0, 0) };
            let (ip, payload) = (t.ip_len as u64, t.payload_len as u64);
            let c = &mut f.total;
            c.pkts[d] = c.pkts[d].saturating_add(pk);
            c.frame[d] += fb;
            c.ip[d] += ip;
            c.payload[d] += payload;
            let w = &mut f.window;
            w.pkts[d] = w.pkts[d].saturating_add(pk);
            let delta = (fb as i64 - ip as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            w.overhead[d] = w.overhead[d].saturating_add(delta);
            w.ip[d] += ip;
            w.payload[d] += payload;
            if ts > f.last_ts {
                f.last_ts = ts;
            }
            f.tcp_flags[d] |= flags;
            if flags & tcp_flags::FIN != 0 {
                f.status |= if d == 0 { FIN_A } else { FIN_B };
            }
            if flags & tcp_flags::RST != 0 {
                f.status |= RST;
            }
            if t.carrier_of != TunnelKind::None {
                f.carrier = t.carrier_of as u8;
            }
            if t.teid != 0 {
                f.extras.get_or_insert_with(Default::default).teids[d] = t.teid;
            }
        }
        if window_was_empty {
            self.active.push(i);
        }
        // Class change (FIN both ways / RST → closing) and LRU refresh.
        let new_class = {
            let f = self.flow(i);
            if f.key.l4 != 6 {
                CLASS_OTHER
            } else if closing_reason(f.status).is_some() {
                CLASS_TCP_CLOSING
            } else {
                CLASS_TCP_OPEN
            }
        };
        // LRU refresh; a flow already at the tail of its list (bursts) stays put.
        if self.flow(i).class() != new_class || self.lists[new_class as usize].tail != i {
            self.unlink(i);
            self.link_tail(i, new_class);
        }
        if self.cfg.inspect && matches!(t.proto, 6 | 17) && t.carrier_of == TunnelKind::None {
            self.measure(i, t, d, ts);
        }
    }

    /// Per-packet KPI tracking and DPI of a TCP/UDP flow. Extras are allocated lazily: a
    /// lone SYN (as in a SYN flood) allocates nothing; its handshake is reconstructed from
    /// the flow's first timestamp when the second packet arrives.
    fn measure(&mut self, i: u32, t: &Transport<'_>, d: usize, ts: u64) {
        let f = self.flow_mut(i);
        let client = f.client_dir();
        let dir = usize::from(d != client);
        let first_packet = f.total.pkts[0] as u64 + f.total.pkts[1] as u64 <= 1;
        if let Some(tcp) = t.tcp {
            let lone_syn = tcp.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
                && t.payload_len == 0;
            if first_packet && lone_syn && f.extras.is_none() {
                return;
            }
            let first_ts = f.first_ts;
            let x = f.extras.get_or_insert_with(Default::default);
            match x.tcp.as_mut() {
                Some(tr) => tr.on_segment(dir, &tcp, t.payload_len, ts),
                None if first_packet => {
                    x.tcp = Some(TcpTracker::new_boxed(dir, &tcp, t.payload_len, ts));
                }
                None => {
                    // The deferred first packet was the client's SYN: its sequence number
                    // is this SYN/ACK's ack − 1 (or this retransmitted SYN's own).
                    let syn_seq = if dir == 1 {
                        tcp.ack.wrapping_sub(1)
                    } else {
                        tcp.seq
                    };
                    let syn = crate::decode::TcpInfo {
                        flags: tcp_flags::SYN,
                        seq: syn_seq,
                        ack: 0,
                        window: 0,
                    };
                    let mut tr = TcpTracker::new_boxed(0, &syn, 0, first_ts);
                    tr.on_segment(dir, &tcp, t.payload_len, ts);
                    x.tcp = Some(tr);
                }
            }
        }
        if t.payload_len == 0 {
            return;
        }
        let x = self.flow_mut(i).extras.get_or_insert_with(Default::default);
        x.active.on_packet(dir, t.payload_len, ts);
        if x.dpi_final {
            // Protocol decided: only the transport trackers still have per-packet work.
            if let Some(rtp) = x.rtp.as_mut() {
                rtp.on_packet(dir, t.payload, ts);
            }
            let l7 = x.l7_final;
            feed_udp_trackers(x, l7, t, dir, ts);
            return;
        }
        match x.rtp.as_mut() {
            Some(rtp) => {
                rtp.on_packet(dir, t.payload, ts);
            }
            // While DPI is undecided, a UDP flow whose payload looks like RTP is tracked
            // speculatively from its first packet: DPI needs a few packets of one SSRC
            // before its verdict, and starting the tracker then would miss their jitter
            // and loss (tshark's stream analysis starts at the first packet). Reported
            // only once DPI says RTP; dropped when it says otherwise.
            None if t.proto == 17
                && x.dpi
                    .as_ref()
                    .is_none_or(|p| p.wants_more() && p.result().l7_proto.is_none())
                && crate::dpi::RtpHeader::parse(t.payload).is_some() =>
            {
                let mut rtp = Box::<RtpTracker>::default();
                rtp.on_packet(dir, t.payload, ts);
                x.rtp = Some(rtp);
            }
            None => {}
        }
        if !t.payload.is_empty() {
            self.inspect(i, t, d, ts);
        }
        let x = self.flow_mut(i).extras.get_or_insert_with(Default::default);
        let l7 = x.dpi.as_ref().and_then(|p| p.result().l7_proto);
        if x.rtp.is_none() && l7 == Some("RTP") {
            let mut rtp = Box::<RtpTracker>::default();
            rtp.on_packet(dir, t.payload, ts);
            x.rtp = Some(rtp);
        } else if x.rtp.is_some()
            && l7 != Some("RTP")
            && (l7.is_some() || x.dpi.as_ref().is_some_and(|p| !p.wants_more()))
        {
            x.rtp = None; // the speculative tracker of a flow that is not RTP
        }
        feed_udp_trackers(x, l7, t, dir, ts);
        if x.dpi.as_ref().is_some_and(|p| !p.wants_more()) {
            // From now on the protocol, and the RTP decision above, are final.
            x.dpi_final = true;
            x.l7_final = l7;
        }
    }

    /// Feeds the payload to the flow's DPI while it wants more.
    fn inspect(&mut self, i: u32, t: &Transport<'_>, d: usize, ts: u64) {
        let cross = &mut self.cross;
        let f = &mut self.chunks[(i >> CHUNK_BITS) as usize][(i as usize) & (CHUNK - 1)];
        let client = f.client_dir();
        let (client_port, server_port) = ports_client_server(&f.key, client);
        let key = &f.key;
        let extras = f.extras.get_or_insert_with(Default::default);
        let fresh = extras.dpi.is_none();
        let dpi = extras.dpi.get_or_insert_with(DpiState::new);
        if fresh {
            cross.apply(dpi, server_addr(key, client), server_port, ts);
        }
        if !dpi.wants_more() {
            return;
        }
        let input = DpiInput {
            l4: t.proto,
            dir: if d == client {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            client_port,
            server_port,
            payload: t.payload,
            ts_ns: ts,
            tcp_seq: t.tcp.map(|x| x.seq),
            tcp_syn: t
                .tcp
                .map(|x| x.flags & tcp_flags::SYN != 0)
                .unwrap_or(false),
        };
        dpi.on_packet(&input);
        if dpi.has_learnt() {
            cross.learn(dpi, server_addr(key, client), ts);
        }
    }

    fn create<S: FlowSink>(
        &mut self,
        key: FlowKey,
        kdir: KeyDir,
        hash: u64,
        t: &Transport<'_>,
        ts: u64,
        sink: &mut S,
    ) -> u32 {
        if self.live >= self.cfg.max_flows.max(1) {
            self.evict_one(sink);
        }
        // Client: sender of the first packet, except a SYN/ACK seen first (its receiver
        // sent the SYN).
        let flags = t.tcp.map(|x| x.flags).unwrap_or(0);
        let synack = flags & (tcp_flags::SYN | tcp_flags::ACK) == (tcp_flags::SYN | tcp_flags::ACK);
        let sender_is_b = kdir == KeyDir::BtoA;
        let client_is_b = sender_is_b != synack;
        let class = if key.l4 == 6 {
            CLASS_TCP_OPEN
        } else {
            CLASS_OTHER
        };
        let flow = Flow {
            key,
            status: IN_USE | if client_is_b { CLIENT_IS_B } else { 0 } | (class << CLASS_SHIFT),
            carrier: 0,
            tcp_flags: [0, 0],
            first_ts: ts,
            last_ts: ts,
            total: Counters::default(),
            window: WindowCounters::default(),
            prev: NIL,
            next: NIL,
            extras: None,
        };
        let i = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.flow(i).next;
            *self.flow_mut(i) = flow;
            i
        } else {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            let ci = self.chunks.len() - 1;
            let c = &mut self.chunks[ci];
            c.push(flow);
            ((ci << CHUNK_BITS) | (c.len() - 1)) as u32
        };
        let chunks = &self.chunks;
        let hasher = &self.hasher;
        self.index.insert(hash, i, |j| {
            hasher.hash_one(chunks[(j >> CHUNK_BITS) as usize][(j as usize) & (CHUNK - 1)].key)
        });
        self.live += 1;
        self.stats.flows_created += 1;
        self.link_tail(i, class);
        i
    }

    /// Evicts the least recently active flow (the oldest list head).
    fn evict_one<S: FlowSink>(&mut self, sink: &mut S) {
        let victim = self
            .lists
            .iter()
            .map(|l| l.head)
            .filter(|&h| h != NIL)
            .min_by_key(|&h| self.flow(h).last_ts);
        if let Some(v) = victim {
            self.stats.flows_evicted += 1;
            self.end_flow(v, EndReason::Evicted, sink);
        }
    }

    /// Emits the flow's last slice and its end record, and frees it.
    fn end_flow<S: FlowSink>(&mut self, i: u32, reason: EndReason, sink: &mut S) {
        self.emit_slice(i, sink);
        let hash = self.hasher.hash_one(self.flow(i).key);
        self.index.remove(hash, i);
        self.unlink(i);
        let extras = self.flow_mut(i).extras.take();
        let f = self.flow(i);
        let c = f.client_dir();
        let mut kpi = SliceKpi::default();
        let (teids, dpi, cached_class) = match extras {
            Some(x) => {
                x.totals(&mut kpi);
                (
                    [x.teids[c], x.teids[1 - c]],
                    x.dpi
                        .map(|mut d| std::mem::take(d.res()))
                        .unwrap_or_default(),
                    x.class,
                )
            }
            None => ([0, 0], DpiResult::default(), None),
        };
        let meta = meta_of(f);
        let mut dpi = dpi;
        let l7_inspected = dpi.l7_proto;
        if let Some(p) = meta.carrier_of.carrier_proto() {
            dpi.l7_proto = Some(p);
        } else if dpi.l7_proto.is_none() {
            // no payload inspected (or no verdict): nDPI's port guess, else the IP protocol
            match crate::dpi::guess_by_port(meta.l4, meta.server_port, meta.client_port) {
                Some(p) => {
                    dpi.l7_proto = Some(p);
                    dpi.guessed_by_port = true;
                }
                None => dpi.l7_proto = l7_of_ip_proto(meta.l4),
            }
        }
        // A class cached when DPI became final was computed from this same result (unless
        // the protocol was only filled in just above).
        let class = match cached_class.filter(|_| dpi.l7_proto == l7_inspected) {
            Some(class) => class,
            None => classify(&self.catalog, &meta, Some(&dpi), dpi.l7_proto),
        };
        let end = FlowEnd {
            class,
            kpi,
            meta,
            first_ts_ns: f.first_ts,
            last_ts_ns: f.last_ts,
            c2s: f.total.dir(c),
            s2c: f.total.dir(1 - c),
            c2s_tcp_flags: f.tcp_flags[c],
            s2c_tcp_flags: f.tcp_flags[1 - c],
            teids,
            end_reason: reason,
            dpi,
        };
        let free_head = self.free_head;
        let f = self.flow_mut(i);
        f.status = 0;
        f.next = free_head;
        self.free_head = i;
        self.live -= 1;
        self.stats.flows_ended += 1;
        sink.record(FlowRecord::End(Box::new(end)));
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, class) = {
            let f = self.flow(i);
            (f.prev, f.next, f.class() as usize)
        };
        if prev != NIL {
            self.flow_mut(prev).next = next;
        } else if self.lists[class].head == i {
            self.lists[class].head = next;
        }
        if next != NIL {
            self.flow_mut(next).prev = prev;
        } else if self.lists[class].tail == i {
            self.lists[class].tail = prev;
        }
        let f = self.flow_mut(i);
        f.prev = NIL;
        f.next = NIL;
    }

    fn link_tail(&mut self, i: u32, class: u8) {
        let tail = self.lists[class as usize].tail;
        {
            let f = self.flow_mut(i);
            f.status = (f.status & !CLASS_MASK) | (class << CLASS_SHIFT);
            f.prev = tail;
            f.next = NIL;
        }
        if tail != NIL {
            self.flow_mut(tail).next = i;
        } else {
            self.lists[class as usize].head = i;
        }
        self.lists[class as usize].tail = i;
    }
}

/// Per-packet trackers of UDP flows beyond RTP: sequence-numbered datagrams (game ticks)
/// of flows with no tracker of their own, and QUIC handshake/spin-bit RTT.
fn feed_udp_trackers(
    x: &mut Extras,
    l7: Option<&'static str>,
    t: &Transport<'_>,
    dir: usize,
    ts: u64,
) {
    if t.proto != 17 {
        return;
    }
    if x.rtp.is_none() && !matches!(l7, Some("DNS" | "QUIC" | "RTP")) {
        x.seq
            .get_or_insert_with(Box::default)
            .on_packet(dir, t.payload);
    }
    QuicRtt::feed(&mut x.quic, l7, dir, t.payload, ts);
}

/// `Some(reason)` when a TCP flow is closed (a RST, or FINs in both directions): it then
/// expires after the short closing timeout. A half-closed connection (one FIN) keeps the
/// idle timeout: the other side may go on sending for minutes.
fn closing_reason(status: u8) -> Option<EndReason> {
    if status & RST != 0 {
        Some(EndReason::Rst)
    } else if status & (FIN_A | FIN_B) == FIN_A | FIN_B {
        Some(EndReason::Fin)
    } else {
        None
    }
}

/// The server's address of a flow whose client is side `client` of its key.
fn server_addr(k: &FlowKey, client: usize) -> std::net::IpAddr {
    let v = k.ip_version();
    if client == 0 {
        addr(v, &k.b)
    } else {
        addr(v, &k.a)
    }
}

fn ports_client_server(k: &FlowKey, client: usize) -> (u16, u16) {
    if client == 0 {
        (k.a_port, k.b_port)
    } else {
        (k.b_port, k.a_port)
    }
}

fn l7_of(f: &Flow) -> Option<&'static str> {
    if f.carrier != 0 {
        return TunnelKind::from_u8(f.carrier).carrier_proto();
    }
    f.extras
        .as_ref()
        .and_then(|x| x.dpi.as_ref())
        .and_then(|d| d.result().l7_proto)
        .or_else(|| l7_of_ip_proto(f.key.l4))
}

/// Classifies a flow by its DPI name (SNI, Host, DNS query), server address and port,
/// falling back to the L7 protocol's default category.
fn classify(
    catalog: &Catalog,
    meta: &FlowMeta,
    dpi: Option<&DpiResult>,
    l7_proto: Option<&'static str>,
) -> FlowClass {
    if let Some(a) = dpi.and_then(|d| d.app_hint).and_then(|h| catalog.app(h)) {
        return FlowClass {
            app: Some(a.app.into()),
            category: a.category,
            required_mbps: a.required_mbps,
        };
    }
    let name = dpi.and_then(|d| {
        d.sni
            .as_deref()
            .or(d.host.as_deref())
            .or(d.dns_qname.as_deref())
            .or(d.server_name.as_deref())
    });
    let m = catalog.classify(name, meta.server_ip, meta.l4, meta.server_port);
    match m {
        Some(a) => FlowClass {
            app: Some(a.app.into()),
            category: a.category,
            required_mbps: a.required_mbps,
        },
        None => FlowClass {
            app: None,
            category: l7_proto.and_then(category_of_l7).unwrap_or_default(),
            required_mbps: None,
        },
    }
}

/// Protocol name of flows identified by their IP protocol alone (nDPI's names).
fn l7_of_ip_proto(l4: u8) -> Option<&'static str> {
    Some(match l4 {
        1 => "ICMP",
        2 => "IGMP",
        47 => "GRE",
        50 | 51 => "IPSec",
        58 => "ICMPV6",
        89 => "OSPF",
        112 => "VRRP",
        132 => "SCTP",
        _ => return None,
    })
}

/// Seed of flow ids: fixed, so re-reading the same capture gives the same ids.
const FLOW_ID_SEED: u64 = 0xcef1_0e1d;

fn meta_of(f: &Flow) -> FlowMeta {
    let hasher = foldhash::fast::FixedState::with_seed(FLOW_ID_SEED);
    let k = &f.key;
    let v = k.ip_version();
    let (cip, cport, sip, sport) = if f.client_dir() == 0 {
        (&k.a, k.a_port, &k.b, k.b_port)
    } else {
        (&k.b, k.b_port, &k.a, k.a_port)
    };
    FlowMeta {
        flow_id: hasher.hash_one((k, f.first_ts)),
        l4: k.l4,
        client_ip: addr(v, cip),
        client_port: cport,
        server_ip: addr(v, sip),
        server_port: sport,
        vlan: (k.vlan != 0).then_some(k.vlan),
        tunnel: k.tunnel(),
        tunnel_id: k.tunnel_id,
        carrier_of: TunnelKind::from_u8(f.carrier),
    }
}
