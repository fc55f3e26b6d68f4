//! The generator: topology, per-user session arrivals, and a discrete-event simulation of
//! every session's packets as the probe sees them, merged in timestamp order by one event
//! queue (memory ∝ open sessions × packets in flight).

use super::rng::{hash64, unit, Rng};
use super::wire::*;
use super::{FaultKind, FaultLevel, SynthConfig, SynthError, SynthServer, SynthSummary, SynthUser};
use crate::catalog::{Catalog, Category};
use crate::source::{PcapWriter, TsResolution};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::net::Ipv4Addr;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const NS: u64 = 1_000_000_000;

/// Resolver address (198.19.255.53).
const RESOLVER: u32 = u32::from_be_bytes([198, 19, 255, 53]);
/// Payload noise buffer size.
const NOISE_LEN: usize = 1 << 16;
/// QUIC datagram payload bytes per server packet (stream data) and overhead.
const QUIC_SEG: u32 = 1300;
const QUIC_OVERHEAD: u32 = 1 + 8 + 4 + 16;
/// TCP receive window assumed when limiting throughput by RTT (bytes).
const RWND: f64 = 1_048_576.0;
/// A session is impaired when its reference MOS is below this (CEI 60, SPEC §5 "poor").
const IMPAIRED_MOS: f64 = 1.0 + 3.5 * 0.6;

// ---- topology -------------------------------------------------------------------------------

struct User {
    ip: u32,
    access: u32,
    core: u32,
    plan_mbps: u32,
    home_rtt: u64,
    wifi: bool,
    next_port: u16,
    busy: u8,
    dns_mask: u64,
    dns_epoch: u64,
}

struct Server {
    ip: u32,
    index: u32,
    service: String,
    sni: String,
    category: Category,
    rtt: u64,
    think: u64,
    ttl: u8,
    rate_bps: f64,
    required_mbps: f64,
    udp_port: u16,
}

struct Fault {
    spec: super::FaultSpec,
    /// Element index (user, access, core or server index).
    idx: usize,
    /// Canonical element id (homeN, oltN, bngN, server prefix).
    element: String,
    start_ns: u64,
    end_ns: u64,
    /// Per user: minutes (relative to the fault start, ≤ 63) in which the fault impaired
    /// one of the user's packets.
    hit: Vec<u64>,
    /// Per (user, minute relative to the fault start, category): `[poor, all]` packets of
    /// the user's sessions of that category the fault touched, `poor` those whose reference
    /// experience ([`World::reference_mos`] at the packet's instant) is below
    /// [`IMPAIRED_MOS`] on the faulty path while fine on the healthy one.
    tally: HashMap<(u32, u8, u8), [u32; 2]>,
}

impl Fault {
    /// Per user: the minutes (bits, relative to the fault start) the fault impaired — a
    /// category whose reference experience was poor for most of its touched packets of
    /// that minute (its median, as SPEC §5 rates a minute by its median/mean KPIs, not by
    /// its worst instant). Only these users are expected to complain.
    fn impaired(&self, users: usize) -> Vec<u64> {
        let mut out = vec![0u64; users];
        for (&(user, minute, _), &[poor, all]) in &self.tally {
            if 2 * poor > all {
                if let Some(u) = out.get_mut(user as usize) {
                    *u |= 1 << minute;
                }
            }
        }
        out
    }
}

// ---- events ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Ev {
    UserNext,
    Syn,
    SynAck,
    Ack3,
    CSend,
    SAck,
    SSend,
    SRetx,
    CAck,
    CFin,
    SFin,
    CLast,
    QInit,
    QSInit,
    QCHs,
    DnsQ,
    DnsR,
    RtpC,
    RtpS,
    GameC,
    GameS,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    ts: u64,
    ctr: u64,
    sid: u32,
    arg: u32,
    len: u16,
    kind: Ev,
    flag: u8,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.ts == o.ts && self.ctr == o.ctr
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        // min-heap on (ts, ctr)
        o.ts.cmp(&self.ts).then(o.ctr.cmp(&self.ctr))
    }
}

// ---- sessions -------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Quic,
    Dns,
    Rtp,
    Game,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    Web,
    Video,
    Live,
    Download,
    Voice,
    Gaming,
}

impl Profile {
    fn busy_bit(self) -> u8 {
        match self {
            Profile::Web => 0,
            Profile::Video | Profile::Live => 1,
            Profile::Voice => 2,
            Profile::Gaming => 4,
            Profile::Download => 8,
        }
    }
}

const MSG_FLIGHT: u8 = 0;
const MSG_RESP: u8 = 1;
const ACK_FILL: u8 = 1;

struct Sess {
    uid: u64,
    kind: Kind,
    profile: Profile,
    user: u32,
    server: u32,
    cport: u16,
    sport: u16,
    c_isn: u32,
    s_isn: u32,
    /// Client stream bytes sent (TCP) / client packet number (QUIC) / RTP seq (client).
    c_off: u32,
    /// Server stream bytes allotted (TCP) / server packet number (QUIC) / RTP seq (server).
    s_alloc: u32,
    ip_id_c: u16,
    ip_id_s: u16,
    exch: u32,
    n_exch: u32,
    msg_kind: u8,
    msg_payload: u32,
    msg_len: u32,
    msg_sent: u32,
    msg_base: u32,
    msg_done: bool,
    rcv_high: u32,
    missing: Vec<u32>,
    since_ack: u8,
    t0: u64,
    period: u64,
    chunk: u32,
    end: u64,
    pending: u32,
    retries: u8,
    /// DNS: start the main session (QUIC when set) after the answer.
    follow_quic: bool,
}

impl Sess {
    fn new(uid: u64, kind: Kind, profile: Profile, user: u32, server: u32) -> Sess {
        Sess {
            uid,
            kind,
            profile,
            user,
            server,
            cport: 0,
            sport: 0,
            c_isn: 0,
            s_isn: 0,
            c_off: 0,
            s_alloc: 0,
            ip_id_c: 0,
            ip_id_s: 0,
            exch: 0,
            n_exch: 1,
            msg_kind: MSG_FLIGHT,
            msg_payload: 0,
            msg_len: 0,
            msg_sent: 0,
            msg_base: 0,
            msg_done: true,
            rcv_high: 0,
            missing: Vec::new(),
            since_ack: 0,
            t0: 0,
            period: 0,
            chunk: 0,
            end: u64::MAX,
            pending: 0,
            retries: 0,
            follow_quic: false,
        }
    }
}

/// Path impairments at one instant for one (user, server) pair.
#[derive(Clone, Copy, Debug)]
struct Path {
    c_extra: u64,
    s_extra: u64,
    c_jit: u64,
    s_jit: u64,
    c_loss: f64,
    s_loss: f64,
    cap_bps: f64,
    ttfb: u64,
}

impl Default for Path {
    fn default() -> Self {
        Path {
            c_extra: 0,
            s_extra: 0,
            c_jit: 0,
            s_jit: 0,
            c_loss: 0.0,
            s_loss: 0.0,
            cap_bps: f64::INFINITY,
            ttfb: 0,
        }
    }
}

// ---- world ----------------------------------------------------------------------------------

pub(crate) struct World {
    cfg: SynthConfig,
    seed: u64,
    users: Vec<User>,
    access_rtt: Vec<u64>,
    core_rtt: Vec<u64>,
    servers: Vec<Server>,
    by_cat: Vec<Vec<u32>>,
    faults: Vec<Fault>,
    start_ns: u64,
    end_ns: u64,
    rng: Rng,
    noise: Vec<u8>,
    heap: BinaryHeap<Event>,
    ctr: u64,
    sess: Vec<Option<Box<Sess>>>,
    free: Vec<u32>,
    next_uid: u64,
    out: Vec<u8>,
    outq: Vec<(u64, u32, u32)>,
    scratch: Vec<u8>,
    summary: SynthSummary,
}

const CAT_ORDER: [Category; 6] = [
    Category::Web,
    Category::Video,
    Category::Voice,
    Category::Gaming,
    Category::Live,
    Category::Download,
];

fn cat_index(c: Category) -> usize {
    CAT_ORDER.iter().position(|x| *x == c).unwrap_or(0)
}

fn host_for_suffix(s: &str) -> String {
    if s.matches('.').count() == 1 {
        format!("www.{s}")
    } else {
        s.to_string()
    }
}

impl World {
    pub(crate) fn build(cfg: &SynthConfig, catalog: &Catalog) -> Result<World, SynthError> {
        let bad = |m: &str| Err(SynthError::Config(m.to_string()));
        if cfg.users == 0 {
            return bad("--users must be at least 1");
        }
        if cfg.access_elements == 0 || cfg.core_elements == 0 {
            return bad("--access-elements and --core-elements must be at least 1");
        }
        if cfg.servers == 0 || cfg.servers > 250 {
            return bad("--servers must be between 1 and 250");
        }
        if cfg.minutes == 0 {
            return bad("--minutes must be at least 1");
        }
        if !(cfg.activity > 0.0 && cfg.activity.is_finite()) {
            return bad("activity must be positive");
        }
        if !(cfg.volume > 0.0 && cfg.volume <= 10.0) {
            return bad("volume must be in (0, 10]");
        }
        if cfg.start_ts.saturating_add(u64::from(cfg.minutes) * 60) >= u64::from(u32::MAX) {
            return bad("start + minutes must fit the pcap format (before 2106)");
        }
        let seed = cfg.seed;
        // users: blocks per access element, /24s per element
        let (a, n) = (cfg.access_elements as usize, cfg.users as usize);
        let per_access = n.div_ceil(a);
        let nets_per_access = per_access.div_ceil(250).max(1);
        let total_nets = nets_per_access * a;
        let base: u32 = if total_nets <= 256 {
            u32::from_be_bytes([198, 18, 0, 0])
        } else if total_nets <= 16384 {
            u32::from_be_bytes([100, 64, 0, 0])
        } else {
            return bad("too many users/access elements for the address plan (at most 16384 /24s)");
        };
        let plans = [50u32, 100, 100, 200, 300, 500, 1000];
        let mut users = Vec::with_capacity(n);
        for u in 0..n {
            let acc = u / per_access;
            let k = u % per_access;
            let net = acc * nets_per_access + k / 250;
            let ip = base + ((net as u32) << 8) + 2 + (k % 250) as u32;
            let h = hash64(seed, 1, u as u64);
            let wifi = unit(h) < 0.35;
            let home_rtt = if wifi {
                2 * MS + (unit(h.rotate_left(17)) * 8.0 * MS as f64) as u64
            } else {
                300 * US + (unit(h.rotate_left(17)) * 1.2 * MS as f64) as u64
            };
            users.push(User {
                ip,
                access: acc as u32,
                core: (acc % cfg.core_elements as usize) as u32,
                plan_mbps: plans[(h >> 40) as usize % plans.len()],
                home_rtt,
                wifi,
                next_port: 32768 + (h >> 20) as u16 % 20000,
                busy: 0,
                dns_mask: 0,
                dns_epoch: 0,
            });
        }
        let access_rtt = (0..cfg.access_elements)
            .map(|i| 2 * MS + (unit(hash64(seed, 2, u64::from(i))) * 6.0 * MS as f64) as u64)
            .collect();
        let core_rtt = (0..cfg.core_elements)
            .map(|i| MS + (unit(hash64(seed, 3, u64::from(i))) * 3.0 * MS as f64) as u64)
            .collect();
        // servers: round-robin over categories, the k-th suitable app of each
        let mut pools: Vec<Vec<&crate::catalog::AppSpec>> = vec![Vec::new(); 6];
        for e in catalog.entries() {
            let ci = cat_index(e.category);
            if e.category == CAT_ORDER[ci] && !e.sni_suffixes.is_empty() {
                pools[ci].push(e);
            }
        }
        // gaming: prefer apps with UDP ports (their game traffic is recognisable by port)
        pools[3].sort_by_key(|e| !e.ports.iter().any(|p| p.0 == 17));
        let mut servers = Vec::new();
        let mut by_cat = vec![Vec::new(); 6];
        let mut taken = [0usize; 6];
        for i in 0..cfg.servers {
            let ci = i as usize % 6;
            let pool = &pools[ci];
            if pool.is_empty() {
                return bad("the built-in catalog lacks apps of a category");
            }
            let app = pool[taken[ci] % pool.len()];
            taken[ci] += 1;
            let h = hash64(seed, 4, u64::from(i));
            let udp_port = app
                .ports
                .iter()
                .find(|p| p.0 == 17)
                .map(|p| p.1)
                .unwrap_or(27015);
            let required = app.required_mbps.unwrap_or(match app.category {
                Category::Live => 4.0,
                _ => crate::catalog::DEFAULT_REQUIRED_MBPS,
            });
            servers.push(Server {
                ip: u32::from_be_bytes([198, 19, i as u8, 10]),
                index: i,
                service: app.app.clone(),
                sni: host_for_suffix(&app.sni_suffixes[0]),
                category: app.category,
                rtt: 4 * MS + (unit(h) * 40.0 * MS as f64) as u64,
                think: 3 * MS + (unit(h.rotate_left(13)) * 40.0 * MS as f64) as u64,
                ttl: 64 - 6 - (h >> 50) as u8 % 12,
                rate_bps: 150e6 + unit(h.rotate_left(29)) * 600e6,
                required_mbps: required,
                udp_port,
            });
            by_cat[ci].push(i);
        }
        let start_ns = cfg.start_ts * NS;
        let end_ns = start_ns + u64::from(cfg.minutes) * 60 * NS;
        let mut w = World {
            cfg: cfg.clone(),
            seed,
            users,
            access_rtt,
            core_rtt,
            servers,
            by_cat,
            faults: Vec::new(),
            start_ns,
            end_ns,
            rng: Rng::new(seed ^ 0x5eed_cafe),
            noise: Vec::new(),
            heap: BinaryHeap::new(),
            ctr: 0,
            sess: Vec::new(),
            free: Vec::new(),
            next_uid: 0,
            out: Vec::with_capacity(1 << 20),
            outq: Vec::with_capacity(64),
            scratch: Vec::with_capacity(2048),
            summary: SynthSummary::default(),
        };
        for spec in &cfg.faults {
            let f = w.resolve_fault(spec)?;
            w.faults.push(f);
        }
        Ok(w)
    }

    fn resolve_fault(&self, spec: &super::FaultSpec) -> Result<Fault, SynthError> {
        let err = |reason: String| SynthError::Fault {
            fault: spec.to_string(),
            reason,
        };
        let e = spec.element.trim().to_ascii_lowercase();
        let numbered = |prefix: &str, count: usize| -> Result<usize, SynthError> {
            e.strip_prefix(prefix)
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|&k| k >= 1 && k <= count)
                .map(|k| k - 1)
                .ok_or_else(|| {
                    err(format!(
                        "unknown {} element {:?} (expected {prefix}1..{prefix}{count})",
                        spec.level.as_str(),
                        spec.element
                    ))
                })
        };
        let (idx, element) = match spec.level {
            FaultLevel::Access => {
                let i = numbered("olt", self.cfg.access_elements as usize)?;
                (i, format!("olt{}", i + 1))
            }
            FaultLevel::Core => {
                let i = numbered("bng", self.cfg.core_elements as usize)?;
                (i, format!("bng{}", i + 1))
            }
            FaultLevel::Home => {
                let i = if let Ok(ip) = e.parse::<Ipv4Addr>() {
                    let ip = u32::from(ip);
                    self.users.iter().position(|u| u.ip == ip).ok_or_else(|| {
                        err(format!(
                            "no user has address {ip:?}",
                            ip = Ipv4Addr::from(ip)
                        ))
                    })?
                } else {
                    numbered("home", self.users.len())?
                };
                (i, format!("home{}", i + 1))
            }
            FaultLevel::Server => {
                let found = self.servers.iter().position(|s| {
                    let prefix = format!("198.19.{}.0/24", s.index);
                    e == s.sni
                        || e == s.service.to_ascii_lowercase()
                        || e == prefix
                        || e == Ipv4Addr::from(s.ip).to_string()
                        || e == format!("srv{}", s.index + 1)
                });
                let found = found.or_else(|| {
                    let cat = e.strip_suffix(".example")?.parse::<Category>().ok()?;
                    self.by_cat[cat_index(cat)].first().map(|&i| i as usize)
                });
                let i = found.ok_or_else(|| {
                    let names: Vec<String> = self
                        .servers
                        .iter()
                        .map(|s| format!("{} ({})", s.sni, s.service))
                        .collect();
                    err(format!(
                        "unknown server {:?}; servers: {}, or srvN, a /24 prefix, CATEGORY.example",
                        spec.element,
                        names.join(", ")
                    ))
                })?;
                (i, format!("198.19.{}.0/24", self.servers[i].index))
            }
        };
        let dur = u64::from(self.cfg.minutes) * 60;
        if spec.start_s >= dur {
            return Err(err(format!(
                "starts at {} s, after the capture's end ({dur} s)",
                spec.start_s
            )));
        }
        let end_s = spec.end_s.unwrap_or(dur).min(dur);
        Ok(Fault {
            spec: spec.clone(),
            idx,
            element,
            start_ns: self.start_ns + spec.start_s * NS,
            end_ns: self.start_ns + end_s * NS,
            hit: vec![0; self.users.len()],
            tally: HashMap::new(),
        })
    }

    pub(crate) fn public_users(&self) -> Vec<SynthUser> {
        self.users
            .iter()
            .enumerate()
            .map(|(i, u)| SynthUser {
                ip: Ipv4Addr::from(u.ip),
                home: format!("home{}", i + 1),
                access: format!("olt{}", u.access + 1),
                core: format!("bng{}", u.core + 1),
                region: format!("region{}", u.core + 1),
                plan_mbps: u.plan_mbps,
            })
            .collect()
    }

    pub(crate) fn public_servers(&self) -> Vec<SynthServer> {
        self.servers
            .iter()
            .map(|s| SynthServer {
                ip: Ipv4Addr::from(s.ip),
                prefix: format!("198.19.{}.0/24", s.index),
                service: s.service.clone(),
                sni: s.sni.clone(),
                category: s.category,
            })
            .collect()
    }

    pub(crate) fn write_topology(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(w);
        writeln!(
            w,
            "user,home_id,access_element,core_element,region,plan_mbps"
        )?;
        for u in self.public_users() {
            writeln!(
                w,
                "{},{},{},{},{},{}",
                u.ip, u.home, u.access, u.core, u.region, u.plan_mbps
            )?;
        }
        w.flush()
    }

    // ---- impairments ----------------------------------------------------------------------

    fn path(&mut self, user: u32, server: u32, ts: u64) -> Path {
        let mut p = Path::default();
        if self.faults.is_empty() {
            return p;
        }
        let u = &self.users[user as usize];
        let (access, core) = (u.access as usize, u.core as usize);
        // bit 0 of `minute_of`: the fault hit this packet; then its minute
        let mut hits: u64 = 0;
        let mut minute_of = [0u64; 64];
        for (fi, f) in self.faults.iter_mut().enumerate() {
            if ts < f.start_ns || ts >= f.end_ns {
                continue;
            }
            let hit = match f.spec.level {
                FaultLevel::Home => f.idx == user as usize,
                FaultLevel::Access => f.idx == access,
                FaultLevel::Core => f.idx == core,
                FaultLevel::Server => f.idx == server as usize,
            };
            if !hit {
                continue;
            }
            let minute = ((ts - f.start_ns) / (60 * NS)).min(63);
            f.hit[user as usize] |= 1 << minute;
            if fi < 64 {
                hits |= 1 << fi;
                minute_of[fi] = minute;
            }
            // slowly varying intensity in [0, 1]
            let wave = 0.5 * (1.0 + ((ts / MS) as f64 / 7000.0 + fi as f64 * 1.7).sin());
            let lerp = |lo: u64, hi: u64| lo + ((hi - lo) as f64 * wave) as u64;
            match (f.spec.level, f.spec.kind) {
                (FaultLevel::Access, FaultKind::Congestion | FaultKind::Slow) => {
                    p.c_extra += lerp(250 * MS, 600 * MS);
                    p.c_jit += 20 * MS;
                    p.cap_bps = p.cap_bps.min(0.8e6);
                    p.c_loss += 0.01;
                }
                (FaultLevel::Access, FaultKind::Loss) => {
                    p.c_loss += 0.06;
                    p.c_extra += 5 * MS;
                    p.c_jit += 5 * MS;
                }
                (FaultLevel::Access, FaultKind::Delay) => {
                    p.c_extra += lerp(200 * MS, 400 * MS);
                    p.c_jit += 15 * MS;
                }
                (FaultLevel::Home, kind) => {
                    p.c_loss += if kind == FaultKind::Delay { 0.01 } else { 0.06 };
                    p.c_jit += 40 * MS;
                    p.c_extra += lerp(60 * MS, 250 * MS);
                    if kind == FaultKind::Congestion || kind == FaultKind::Slow {
                        p.cap_bps = p.cap_bps.min(1.0e6);
                    }
                }
                (FaultLevel::Core, FaultKind::Congestion | FaultKind::Slow) => {
                    p.s_extra += lerp(250 * MS, 500 * MS);
                    p.s_jit += 20 * MS;
                    p.cap_bps = p.cap_bps.min(1.0e6);
                    p.s_loss += 0.01;
                }
                (FaultLevel::Core, FaultKind::Loss) => {
                    p.s_loss += 0.06;
                    p.s_extra += 5 * MS;
                    p.s_jit += 5 * MS;
                }
                (FaultLevel::Core, FaultKind::Delay) => {
                    p.s_extra += lerp(250 * MS, 450 * MS);
                    p.s_jit += 15 * MS;
                }
                (FaultLevel::Server, FaultKind::Slow | FaultKind::Congestion) => {
                    p.s_extra += lerp(100 * MS, 250 * MS);
                    p.ttfb += lerp(1500 * MS, 3000 * MS);
                    p.cap_bps = p.cap_bps.min(1.0e6);
                }
                (FaultLevel::Server, FaultKind::Loss) => {
                    p.s_loss += 0.06;
                    p.s_extra += 5 * MS;
                }
                (FaultLevel::Server, FaultKind::Delay) => {
                    p.s_extra += lerp(300 * MS, 500 * MS);
                    p.s_jit += 10 * MS;
                }
            }
        }
        p.c_loss = p.c_loss.min(0.5);
        p.s_loss = p.s_loss.min(0.5);
        if hits != 0 && server != u32::MAX {
            let poor = self.reference_mos(user, server, &p) < IMPAIRED_MOS
                && self.reference_mos(user, server, &Path::default()) >= IMPAIRED_MOS;
            let cat = self.servers[server as usize].category as u8;
            for (fi, f) in self.faults.iter_mut().enumerate().take(64) {
                if hits & (1 << fi) != 0 {
                    let t = f.tally.entry((user, minute_of[fi] as u8, cat)).or_default();
                    t[0] += u32::from(poor);
                    t[1] += 1;
                }
            }
        }
        p
    }

    /// The SPEC §5 experience model of a session of `user` to `server` on path `p`, computed
    /// from the true path values the synthesizer injects (not from packets): RTT = base legs +
    /// fault delay, loss = both legs, throughput as [`World::rate_bps`], web transaction ≈
    /// 3 RTT + extra TTFB. Decides which users a fault really impaired (ground truth).
    fn reference_mos(&self, user: u32, server: u32, p: &Path) -> f64 {
        let u = &self.users[user as usize];
        let srv = &self.servers[server as usize];
        let rtt_ns = u.home_rtt
            + self.access_rtt[u.access as usize]
            + self.core_rtt[u.core as usize]
            + srv.rtt
            + p.c_extra
            + p.s_extra;
        let rtt_ms = rtt_ns as f64 / MS as f64;
        let loss = p.c_loss + p.s_loss;
        let rtt_s = (rtt_ns as f64 / NS as f64).max(1e-4);
        let mut thr = (f64::from(u.plan_mbps) * 0.95e6)
            .min(srv.rate_bps)
            .min(p.cap_bps)
            .min(RWND * 8.0 / rtt_s);
        if loss > 0.0 {
            thr = thr.min(f64::from(MSS) * 8.0 / (rtt_s * (2.0 * loss / 3.0).sqrt()));
        }
        let thr_mbps = thr / 1e6;
        let clamp = |m: f64| m.clamp(1.0, 4.5);
        let web = || {
            let t = (3.0 * rtt_ms + p.ttfb as f64 / MS as f64) / 1000.0;
            if t <= 0.35 {
                4.5
            } else {
                clamp(4.5 - 0.85 * (t / 0.35).ln())
            }
        };
        let video = || {
            let r = thr_mbps / srv.required_mbps.max(0.1);
            1.0 + 3.5 * ((1.0 - (-2.0 * r).exp()) / (1.0 - (-2.0f64).exp())).min(1.0)
        };
        match srv.category {
            Category::Web | Category::Other => web(),
            Category::Video => video(),
            Category::Live => clamp(video() * (-(rtt_ms - 100.0).max(0.0) / 300.0).exp()),
            Category::Gaming => {
                1.0 + 3.5 * (-(rtt_ms - 40.0).max(0.0) / 150.0).exp() * (-25.0 * loss).exp()
            }
            Category::Voice => {
                let jitter = (p.c_jit + p.s_jit) as f64 / MS as f64;
                let d = rtt_ms / 2.0 + 2.0 * jitter + 20.0;
                let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
                let ppl = loss * 100.0;
                let r = (93.2 - id - 95.0 * ppl / (ppl + 4.3)).clamp(0.0, 100.0);
                clamp(1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r))
            }
            Category::Download => {
                let cap = f64::from(u.plan_mbps).min(50.0);
                clamp(1.0 + 3.5 * (thr_mbps / 0.5).ln() / (cap / 0.5).ln())
            }
        }
    }

    /// Client leg RTT sample (probe → client → probe).
    fn crtt(&mut self, user: u32, p: &Path) -> u64 {
        let u = &self.users[user as usize];
        let base = u.home_rtt + self.access_rtt[u.access as usize] + p.c_extra;
        let jit = if u.wifi { 2 * MS } else { 200 * US } + base / 50 + p.c_jit;
        base + (self.rng.f64() * jit as f64) as u64
    }

    /// Server leg RTT sample (probe → server → probe); `server == u32::MAX`: the resolver.
    fn srtt(&mut self, user: u32, server: u32, p: &Path) -> u64 {
        let core = self.core_rtt[self.users[user as usize].core as usize];
        let base = core
            + p.s_extra
            + if server == u32::MAX {
                300 * US
            } else {
                self.servers[server as usize].rtt
            };
        let jit = 100 * US + base / 50 + p.s_jit;
        base + (self.rng.f64() * jit as f64) as u64
    }

    // ---- event plumbing -------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, ts: u64, sid: u32, kind: Ev, arg: u32, len: u16, flag: u8) {
        if ts >= self.end_ns {
            return;
        }
        if kind != Ev::UserNext {
            if let Some(s) = self.sess[sid as usize].as_mut() {
                s.pending += 1;
            }
        }
        self.ctr += 1;
        self.heap.push(Event {
            ts,
            ctr: self.ctr,
            sid,
            arg,
            len,
            kind,
            flag,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn push_s(&mut self, s: &mut Sess, sid: u32, ts: u64, kind: Ev, arg: u32, len: u16, flag: u8) {
        if ts >= self.end_ns {
            return;
        }
        s.pending += 1;
        self.ctr += 1;
        self.heap.push(Event {
            ts,
            ctr: self.ctr,
            sid,
            arg,
            len,
            kind,
            flag,
        });
    }

    fn alloc(&mut self, s: Sess) -> u32 {
        if let Some(i) = self.free.pop() {
            self.sess[i as usize] = Some(Box::new(s));
            i
        } else {
            self.sess.push(Some(Box::new(s)));
            (self.sess.len() - 1) as u32
        }
    }

    fn record(&mut self, ts: u64, start: usize) {
        let len = self.out.len() - start;
        self.outq.push((ts, start as u32, len as u32));
    }

    fn next_port(&mut self, user: u32) -> u16 {
        let u = &mut self.users[user as usize];
        let p = u.next_port;
        u.next_port = if p >= 60999 { 32768 } else { p + 1 };
        p
    }

    fn addr_c2s(&self, s: &Sess) -> Addr {
        let u = &self.users[s.user as usize];
        Addr {
            src_mac: [
                0x02,
                0x00,
                0x0a,
                (u.access >> 8) as u8,
                u.access as u8,
                0x01,
            ],
            dst_mac: [0x02, 0x00, 0x0c, 0x00, u.core as u8, 0x01],
            src_ip: u.ip,
            dst_ip: self.server_ip(s),
            src_port: s.cport,
            dst_port: s.sport,
            ttl: 63,
            ip_id: s.ip_id_c,
        }
    }

    fn addr_s2c(&self, s: &Sess) -> Addr {
        let u = &self.users[s.user as usize];
        let ttl = if s.server == u32::MAX {
            63
        } else {
            self.servers[s.server as usize].ttl
        };
        Addr {
            src_mac: [0x02, 0x00, 0x0c, 0x00, u.core as u8, 0x01],
            dst_mac: [
                0x02,
                0x00,
                0x0a,
                (u.access >> 8) as u8,
                u.access as u8,
                0x01,
            ],
            src_ip: self.server_ip(s),
            dst_ip: u.ip,
            src_port: s.sport,
            dst_port: s.cport,
            ttl,
            ip_id: s.ip_id_s,
        }
    }

    fn server_ip(&self, s: &Sess) -> u32 {
        if s.kind == Kind::Dns {
            RESOLVER
        } else {
            self.servers[s.server as usize].ip + (s.uid % 4) as u32
        }
    }

    // ---- main loop ------------------------------------------------------------------------

    pub(crate) fn run<P: Write>(&mut self, pcap: P) -> Result<SynthSummary, SynthError> {
        let io = |source| SynthError::Io {
            what: "capture",
            source,
        };
        let mut w = PcapWriter::new(pcap, 1, TsResolution::Nano).map_err(io)?;
        let mut noise = vec![0u8; NOISE_LEN];
        self.rng.fill(&mut noise);
        self.noise = noise;
        let rate = self.cfg.activity * 3.0 / 60.0; // sessions per second per user
        for u in 0..self.users.len() {
            let t = self.start_ns + (self.rng.exp(1.0 / rate) * NS as f64) as u64;
            self.push(t, u as u32, Ev::UserNext, 0, 0, 0);
        }
        let mut last_ts = 0u64;
        while let Some(ev) = self.heap.pop() {
            self.handle(ev);
            for i in 0..self.outq.len() {
                let (ts, start, len) = self.outq[i];
                debug_assert!(ts >= last_ts, "timestamps must not decrease");
                last_ts = ts;
                let frame = &self.out[start as usize..(start + len) as usize];
                w.write_packet(ts, frame).map_err(io)?;
                if self.summary.packets == 0 {
                    self.summary.first_ts_ns = ts;
                }
                self.summary.packets += 1;
                self.summary.bytes += u64::from(len);
            }
            self.summary.last_ts_ns = last_ts.max(self.summary.last_ts_ns);
            self.outq.clear();
            self.out.clear();
        }
        w.finish().map_err(io)?.flush().map_err(io)?;
        Ok(self.summary.clone())
    }

    fn handle(&mut self, ev: Event) {
        if ev.kind == Ev::UserNext {
            self.user_next(ev.sid, ev.ts);
            return;
        }
        let sid = ev.sid;
        let Some(mut s) = self.sess[sid as usize].take() else {
            return;
        };
        s.pending -= 1;
        match s.kind {
            Kind::Tcp | Kind::Quic => self.on_transport(&mut s, sid, ev),
            Kind::Dns => self.on_dns(&mut s, sid, ev),
            Kind::Rtp => self.on_rtp(&mut s, sid, ev),
            Kind::Game => self.on_game(&mut s, sid, ev),
        }
        if s.pending == 0 {
            let bit = s.profile.busy_bit();
            if s.kind != Kind::Dns {
                self.users[s.user as usize].busy &= !bit;
            }
            self.free.push(sid);
        } else {
            self.sess[sid as usize] = Some(s);
        }
    }

    // ---- arrivals -------------------------------------------------------------------------

    fn user_next(&mut self, user: u32, ts: u64) {
        let rate = self.cfg.activity * 3.0 / 60.0;
        let next = ts + (self.rng.exp(1.0 / rate) * NS as f64) as u64 + 1;
        self.push(next, user, Ev::UserNext, 0, 0, 0);
        let r = self.rng.f64();
        let mut profile = match r {
            // shares of session arrivals; long sessions (calls, games, streams) are rarer
            // so that at any time ~5 % of users are in a call, ~5 % gaming, ~20 % watching
            x if x < 0.905 => Profile::Web,
            x if x < 0.93 => Profile::Video,
            x if x < 0.94 => Profile::Live,
            x if x < 0.95 => Profile::Voice,
            x if x < 0.953 => Profile::Gaming,
            _ => Profile::Download,
        };
        let bit = profile.busy_bit();
        if self.users[user as usize].busy & bit != 0 {
            profile = Profile::Web;
        }
        let cat = match profile {
            Profile::Web => Category::Web,
            Profile::Video => Category::Video,
            Profile::Live => Category::Live,
            Profile::Voice => Category::Voice,
            Profile::Gaming => Category::Gaming,
            Profile::Download => Category::Download,
        };
        let (profile, pool) = match self.by_cat[cat_index(cat)].is_empty() {
            false => (profile, cat_index(cat)),
            true => (Profile::Web, 0),
        };
        let list = &self.by_cat[pool];
        let server = list[self.rng.range(0, list.len() as u64 - 1) as usize];
        self.users[user as usize].busy |= profile.busy_bit();
        let quic = matches!(profile, Profile::Web | Profile::Video)
            && self.rng.chance(self.cfg.quic_share);
        // DNS lookup for a name not resolved in the last 5 minutes
        let needs_dns = matches!(
            profile,
            Profile::Web | Profile::Video | Profile::Live | Profile::Download
        ) && {
            let epoch = (ts - self.start_ns) / (300 * NS);
            let u = &mut self.users[user as usize];
            if u.dns_epoch != epoch {
                u.dns_epoch = epoch;
                u.dns_mask = 0;
            }
            let bit = 1u64 << (server % 64);
            let miss = u.dns_mask & bit == 0;
            u.dns_mask |= bit;
            miss
        };
        if needs_dns {
            let uid = self.uid();
            let mut d = Sess::new(uid, Kind::Dns, profile, user, server);
            d.cport = self.next_port(user);
            d.sport = 53;
            d.c_isn = self.rng.next_u32() & 0xffff;
            d.follow_quic = quic;
            d.ip_id_c = self.rng.next_u32() as u16;
            d.ip_id_s = self.rng.next_u32() as u16;
            self.summary.flows += 1;
            self.summary.dns_flows += 1;
            let sid = self.alloc(d);
            self.push(ts, sid, Ev::DnsQ, 0, 0, 0);
        } else {
            self.start_main(user, server, profile, quic, ts);
        }
    }

    fn uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    fn start_main(&mut self, user: u32, server: u32, profile: Profile, quic: bool, ts: u64) {
        let uid = self.uid();
        let kind = match profile {
            Profile::Voice => Kind::Rtp,
            Profile::Gaming => Kind::Game,
            _ if quic => Kind::Quic,
            _ => Kind::Tcp,
        };
        let mut s = Sess::new(uid, kind, profile, user, server);
        s.t0 = ts;
        s.ip_id_c = self.rng.next_u32() as u16;
        s.ip_id_s = self.rng.next_u32() as u16;
        s.c_isn = self.rng.next_u32();
        s.s_isn = self.rng.next_u32();
        let vol = self.cfg.volume;
        let srv_required = self.servers[server as usize].required_mbps;
        match profile {
            Profile::Web => {
                s.n_exch = 1 + self.rng.range(1, 6) as u32;
            }
            Profile::Video => {
                let dur = self.rng.uniform(60.0, 300.0);
                s.period = 4 * NS;
                s.chunk = ((srv_required * 1.2e6 / 8.0 * 4.0 * vol) as u32).max(20_000);
                s.n_exch = 2 + (dur / 4.0) as u32;
            }
            Profile::Live => {
                let dur = self.rng.uniform(60.0, 480.0);
                s.period = 2 * NS;
                s.chunk = ((srv_required * 1e6 / 8.0 * 2.0 * vol) as u32).max(10_000);
                s.n_exch = 2 + (dur / 2.0) as u32;
            }
            Profile::Download => {
                let size = self.rng.lognormal(40e6, 0.8, 2e6, 1e9) * vol;
                s.chunk = (size as u32).max(200_000);
                s.n_exch = 2;
            }
            Profile::Voice => {
                s.end = ts + (self.rng.uniform(30.0, 240.0) * NS as f64) as u64;
            }
            Profile::Gaming => {
                s.end = ts + (self.rng.uniform(180.0, 900.0) * NS as f64) as u64;
            }
        }
        self.summary.flows += 1;
        let first = match kind {
            Kind::Tcp => {
                s.cport = self.next_port(user);
                s.sport = 443;
                self.summary.tcp_flows += 1;
                Ev::Syn
            }
            Kind::Quic => {
                s.cport = self.next_port(user);
                s.sport = 443;
                s.c_isn = 0;
                s.s_isn = 0;
                self.summary.quic_flows += 1;
                Ev::QInit
            }
            Kind::Rtp => {
                s.cport = 10000 + 2 * (self.next_port(user) % 5000);
                s.sport = 20000 + 2 * (uid % 5000) as u16;
                s.c_off = self.rng.next_u32() & 0xffff;
                s.s_alloc = self.rng.next_u32() & 0xffff;
                self.summary.rtp_flows += 1;
                Ev::RtpC
            }
            Kind::Game => {
                s.cport = self.next_port(user);
                s.sport = self.servers[server as usize].udp_port;
                self.summary.gaming_flows += 1;
                Ev::GameC
            }
            Kind::Dns => unreachable!("DNS sessions start in user_next"),
        };
        if kind == Kind::Rtp {
            // the far end starts talking a little later
            s.period = self.rng.range(5 * MS, 60 * MS);
        }
        let s2c_at = ts + s.period;
        let sid = self.alloc(s);
        self.push(ts, sid, first, 0, 0, 0);
        if kind == Kind::Rtp {
            self.push(s2c_at, sid, Ev::RtpS, 0, 0, 0);
        }
    }

    // ---- TCP and QUIC ---------------------------------------------------------------------

    fn tcp_emit(&mut self, s: &mut Sess, ts: u64, c2s: bool, h: TcpHdr<'_>, payload: Payload) {
        let start = self.out.len();
        let a = if c2s {
            s.ip_id_c = s.ip_id_c.wrapping_add(1);
            self.addr_c2s(s)
        } else {
            s.ip_id_s = s.ip_id_s.wrapping_add(1);
            self.addr_s2c(s)
        };
        let (noise, scratch) = (&self.noise, &self.scratch);
        let salt = (s.uid as usize).wrapping_mul(7919);
        match payload {
            Payload::None => tcp_frame(&mut self.out, &a, &h, 0, |_| {}),
            Payload::Scratch => tcp_frame(&mut self.out, &a, &h, scratch.len(), |b| {
                b.copy_from_slice(scratch)
            }),
            Payload::Server { off, len } => {
                let (kind, payload_total) = (s.msg_kind, s.msg_payload);
                let prefix = if kind == MSG_FLIGHT {
                    scratch.as_slice()
                } else {
                    &[]
                };
                tcp_frame(&mut self.out, &a, &h, len as usize, |b| {
                    write_message(b, off, prefix, payload_total, noise, salt)
                })
            }
        }
        self.record(ts, start);
    }

    fn on_transport(&mut self, s: &mut Sess, sid: u32, ev: Event) {
        let ts = ev.ts;
        let quic = s.kind == Kind::Quic;
        match ev.kind {
            Ev::Syn => {
                let h = TcpHdr {
                    seq: s.c_isn,
                    ack: 0,
                    flags: TCP_SYN,
                    window: 64240,
                    options: &SYN_OPTIONS,
                };
                self.tcp_emit(s, ts, true, h, Payload::None);
                let p = self.path(s.user, s.server, ts);
                if s.retries < 3 && self.rng.chance(p.s_loss) {
                    // lost beyond the probe: the client retries after its initial RTO
                    s.retries += 1;
                    let rto = NS << (s.retries - 1);
                    self.push_s(s, sid, ts + rto, Ev::Syn, 0, 0, 0);
                } else {
                    let d = self.srtt(s.user, s.server, &p);
                    self.push_s(s, sid, ts + d, Ev::SynAck, 0, 0, 0);
                }
            }
            Ev::SynAck => {
                let h = TcpHdr {
                    seq: s.s_isn,
                    ack: s.c_isn.wrapping_add(1),
                    flags: TCP_SYN | TCP_ACK,
                    window: 65160,
                    options: &SYN_OPTIONS,
                };
                self.tcp_emit(s, ts, false, h, Payload::None);
                let p = self.path(s.user, s.server, ts);
                if s.retries < 3 && self.rng.chance(p.c_loss) {
                    // lost towards the client: SYN retransmitted after the RTO
                    s.retries += 1;
                    let srtt = self.srtt(s.user, s.server, &p);
                    let rto = (NS << (s.retries - 1)).saturating_sub(srtt);
                    self.push_s(s, sid, ts + rto, Ev::Syn, 0, 0, 0);
                } else {
                    let d = self.crtt(s.user, &p);
                    self.push_s(s, sid, ts + d, Ev::Ack3, 0, 0, 0);
                }
            }
            Ev::Ack3 => {
                let h = TcpHdr {
                    seq: s.c_isn.wrapping_add(1),
                    ack: s.s_isn.wrapping_add(1),
                    flags: TCP_ACK,
                    window: 502,
                    options: &[],
                };
                self.tcp_emit(s, ts, true, h, Payload::None);
                let d = self.rng.range(15 * US, 120 * US);
                self.push_s(s, sid, ts + d, Ev::CSend, 0, 0, 0);
            }
            Ev::QInit => self.quic_initial(s, sid, ts),
            Ev::QSInit => self.quic_server_initial(s, sid, ts),
            Ev::QCHs => self.quic_client_finished(s, sid, ts),
            Ev::CSend => self.client_send(s, sid, ts),
            // server's pure ACK of a request it is still working on
            Ev::SAck if !quic => {
                let h = TcpHdr {
                    seq: s.s_isn.wrapping_add(1).wrapping_add(s.msg_base),
                    ack: s.c_isn.wrapping_add(1).wrapping_add(ev.arg),
                    flags: TCP_ACK,
                    window: 501,
                    options: &[],
                };
                self.tcp_emit(s, ts, false, h, Payload::None);
            }
            Ev::SSend => self.server_send(s, sid, ts),
            Ev::SRetx => {
                self.emit_server_segment(s, ts, ev.arg, u32::from(ev.len));
                let p = self.path(s.user, s.server, ts);
                let d = self.crtt(s.user, &p);
                self.push_s(s, sid, ts + d, Ev::CAck, ev.arg, ev.len, ACK_FILL);
            }
            Ev::CAck => self.client_ack(s, sid, ts, ev.arg, u32::from(ev.len), ev.flag),
            Ev::CFin => {
                if quic {
                    // CONNECTION_CLOSE in a short-header packet
                    self.quic_short(s, ts, true, 40);
                    return;
                }
                let h = TcpHdr {
                    seq: s.c_isn.wrapping_add(1).wrapping_add(s.c_off),
                    ack: s.s_isn.wrapping_add(1).wrapping_add(s.s_alloc),
                    flags: TCP_FIN | TCP_ACK,
                    window: 502,
                    options: &[],
                };
                self.tcp_emit(s, ts, true, h, Payload::None);
                let p = self.path(s.user, s.server, ts);
                let d = self.srtt(s.user, s.server, &p);
                self.push_s(s, sid, ts + d, Ev::SFin, 0, 0, 0);
            }
            Ev::SFin => {
                let h = TcpHdr {
                    seq: s.s_isn.wrapping_add(1).wrapping_add(s.s_alloc),
                    ack: s.c_isn.wrapping_add(2).wrapping_add(s.c_off),
                    flags: TCP_FIN | TCP_ACK,
                    window: 501,
                    options: &[],
                };
                self.tcp_emit(s, ts, false, h, Payload::None);
                let p = self.path(s.user, s.server, ts);
                let d = self.crtt(s.user, &p);
                self.push_s(s, sid, ts + d, Ev::CLast, 0, 0, 0);
            }
            Ev::CLast => {
                let h = TcpHdr {
                    seq: s.c_isn.wrapping_add(2).wrapping_add(s.c_off),
                    ack: s.s_isn.wrapping_add(2).wrapping_add(s.s_alloc),
                    flags: TCP_ACK,
                    window: 502,
                    options: &[],
                };
                self.tcp_emit(s, ts, true, h, Payload::None);
            }
            _ => {}
        }
    }

    /// Client message of the current exchange (one segment / datagram), then the server's
    /// reaction.
    fn client_send(&mut self, s: &mut Sess, sid: u32, ts: u64) {
        let quic = s.kind == Kind::Quic;
        let req = self.rng.range(250, 650) as usize;
        if quic {
            self.quic_short(s, ts, true, req + 40);
        } else {
            self.scratch.clear();
            if s.exch == 0 {
                let rnd = self.session_random(s, 11);
                let mut ch = Vec::with_capacity(600);
                let alpn: &[&str] = &["h2", "http/1.1"];
                let sni = self.servers[s.server as usize].sni.clone();
                client_hello(&mut ch, &sni, alpn, &rnd, false);
                record_header(&mut self.scratch, 0x16, ch.len());
                self.scratch.extend_from_slice(&ch);
            } else {
                if s.exch == 1 {
                    self.scratch.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
                    record_header(&mut self.scratch, 0x17, 53);
                    let n = self.scratch.len();
                    self.scratch.resize(n + 53, 0);
                    fill_noise(&mut self.scratch[n..], &self.noise, s.uid as usize * 31);
                }
                record_header(&mut self.scratch, 0x17, req);
                let n = self.scratch.len();
                self.scratch.resize(n + req, 0);
                fill_noise(&mut self.scratch[n..], &self.noise, s.uid as usize * 17 + 5);
            }
            let h = TcpHdr {
                seq: s.c_isn.wrapping_add(1).wrapping_add(s.c_off),
                ack: s.s_isn.wrapping_add(1).wrapping_add(s.s_alloc),
                flags: TCP_PSH | TCP_ACK,
                window: 502,
                options: &[],
            };
            s.c_off = s.c_off.wrapping_add(self.scratch.len() as u32);
            self.tcp_emit(s, ts, true, h, Payload::Scratch);
        }
        // the server's answer
        let p = self.path(s.user, s.server, ts);
        let srtt = self.srtt(s.user, s.server, &p);
        let srv = &self.servers[s.server as usize];
        let (kind, payload, think) = if s.exch == 0 {
            let cert = self.rng.range(2500, 4500) as u32;
            (MSG_FLIGHT, cert, self.rng.range(200 * US, 2 * MS))
        } else {
            let think = srv.think + (self.rng.f64() * srv.think as f64) as u64 + p.ttfb;
            let size = match s.profile {
                Profile::Web if s.exch == 1 => self.rng.lognormal(40e3, 0.9, 2e3, 500e3) as u32,
                Profile::Web => self.rng.lognormal(15e3, 1.0, 400.0, 400e3) as u32,
                Profile::Video | Profile::Live if s.exch == 1 => {
                    self.rng.range(3_000, 12_000) as u32
                }
                _ => s.chunk,
            };
            (MSG_RESP, size, think)
        };
        s.msg_kind = kind;
        s.msg_payload = payload;
        s.msg_len = if quic {
            payload
        } else if kind == MSG_FLIGHT {
            self.server_flight_prefix(s);
            self.scratch.len() as u32 + records_wire_len(payload)
        } else {
            records_wire_len(payload)
        };
        s.msg_base = s.s_alloc;
        s.s_alloc = s.s_alloc.wrapping_add(s.msg_len);
        s.msg_sent = 0;
        s.msg_done = false;
        s.since_ack = 0;
        if think > 30 * MS {
            self.push_s(s, sid, ts + srtt, Ev::SAck, s.c_off, 0, 0);
        }
        self.push_s(s, sid, ts + srtt + think, Ev::SSend, 0, 0, 0);
    }

    /// Per-session deterministic random bytes (TLS randoms, key shares, connection ids).
    fn session_random(&self, s: &Sess, label: u64) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, c) in out.chunks_mut(8).enumerate() {
            c.copy_from_slice(&hash64(self.seed, s.uid, label * 16 + i as u64).to_le_bytes());
        }
        out
    }

    /// ServerHello + ChangeCipherSpec records into `scratch`.
    fn server_flight_prefix(&mut self, s: &Sess) {
        let rnd = self.session_random(s, 12);
        let ch = self.session_random(s, 11);
        let mut sh = Vec::with_capacity(128);
        let mut r = rnd;
        r[32..64].copy_from_slice(&ch[32..64]); // echo the session id
        server_hello(&mut sh, &r, true);
        self.scratch.clear();
        record_header(&mut self.scratch, 0x16, sh.len());
        self.scratch.extend_from_slice(&sh);
        self.scratch.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    }

    fn rate_bps(&mut self, s: &Sess, p: &Path, rtt: u64) -> f64 {
        let u = &self.users[s.user as usize];
        let srv = &self.servers[s.server as usize];
        let mut r = (f64::from(u.plan_mbps) * 0.95e6)
            .min(srv.rate_bps)
            .min(p.cap_bps);
        let rtt_s = (rtt as f64 / NS as f64).max(1e-4);
        r = r.min(RWND * 8.0 / rtt_s);
        let loss = p.c_loss + p.s_loss;
        if loss > 0.0 {
            // Mathis et al.: MSS / (RTT · sqrt(2p/3))
            r = r.min(f64::from(MSS) * 8.0 / (rtt_s * (2.0 * loss / 3.0).sqrt()));
        }
        r.max(64e3)
    }

    fn server_send(&mut self, s: &mut Sess, sid: u32, ts: u64) {
        let seg_max = if s.kind == Kind::Quic { QUIC_SEG } else { MSS };
        let seg = seg_max.min(s.msg_len - s.msg_sent);
        let off = s.msg_base.wrapping_add(s.msg_sent);
        s.msg_sent += seg;
        let last = s.msg_sent == s.msg_len;
        let p = self.path(s.user, s.server, ts);
        let lost_up = self.rng.chance(p.s_loss);
        let lost_down = !lost_up && self.rng.chance(p.c_loss);
        if !lost_up {
            self.emit_server_segment(s, ts, off, seg);
        }
        let crtt = self.crtt(s.user, &p);
        if lost_up || lost_down {
            s.missing.push(off);
            let srtt = self.srtt(s.user, s.server, &p);
            let d = crtt + srtt + self.rng.range(200 * US, 3 * MS);
            self.push_s(s, sid, ts + d, Ev::SRetx, off, seg as u16, 0);
        } else {
            s.since_ack += 1;
            if s.since_ack >= 2 || last || !s.missing.is_empty() {
                s.since_ack = 0;
                self.push_s(s, sid, ts + crtt, Ev::CAck, off, seg as u16, 0);
            }
        }
        if !last {
            let srtt = self.srtt(s.user, s.server, &p);
            let rate = self.rate_bps(s, &p, srtt + crtt);
            let wire = f64::from(seg + 54);
            let gap = wire * 8.0 / rate * NS as f64 * self.rng.uniform(0.9, 1.1);
            self.push_s(s, sid, ts + gap as u64 + 1, Ev::SSend, 0, 0, 0);
        }
    }

    fn emit_server_segment(&mut self, s: &mut Sess, ts: u64, off: u32, len: u32) {
        if s.kind == Kind::Quic {
            self.quic_short(s, ts, false, (len + QUIC_OVERHEAD) as usize);
            return;
        }
        if s.msg_kind == MSG_FLIGHT {
            self.server_flight_prefix(s);
        }
        let last = off.wrapping_add(len) == s.msg_base.wrapping_add(s.msg_len);
        let h = TcpHdr {
            seq: s.s_isn.wrapping_add(1).wrapping_add(off),
            ack: s.c_isn.wrapping_add(1).wrapping_add(s.c_off),
            flags: if last { TCP_PSH | TCP_ACK } else { TCP_ACK },
            window: 501,
            options: &[],
        };
        let rel = off.wrapping_sub(s.msg_base);
        self.tcp_emit(s, ts, false, h, Payload::Server { off: rel, len });
    }

    fn client_ack(&mut self, s: &mut Sess, sid: u32, ts: u64, off: u32, len: u32, flag: u8) {
        if flag == ACK_FILL {
            if let Some(i) = s.missing.iter().position(|&m| m == off) {
                s.missing.remove(i);
            }
        }
        let end = off.wrapping_add(len);
        if end.wrapping_sub(s.rcv_high) as i32 > 0 {
            s.rcv_high = end;
        }
        let ack = match s.missing.first() {
            Some(&m) if (s.rcv_high.wrapping_sub(m) as i32) > 0 => m,
            _ => s.rcv_high,
        };
        if s.kind == Kind::Quic {
            self.quic_short(s, ts, true, 35);
        } else {
            let h = TcpHdr {
                seq: s.c_isn.wrapping_add(1).wrapping_add(s.c_off),
                ack: s.s_isn.wrapping_add(1).wrapping_add(ack),
                flags: TCP_ACK,
                window: 502,
                options: &[],
            };
            self.tcp_emit(s, ts, true, h, Payload::None);
        }
        let msg_end = s.msg_base.wrapping_add(s.msg_len);
        if !s.msg_done && s.msg_sent == s.msg_len && s.missing.is_empty() && s.rcv_high == msg_end {
            s.msg_done = true;
            self.exchange_done(s, sid, ts);
        }
    }

    fn exchange_done(&mut self, s: &mut Sess, sid: u32, ts: u64) {
        s.exch += 1;
        if s.exch < s.n_exch {
            let next = match s.profile {
                Profile::Web => {
                    if s.exch == 1 {
                        ts + self.rng.range(20 * US, 150 * US)
                    } else {
                        ts + self.rng.range(5 * MS, 250 * MS)
                    }
                }
                _ if s.exch <= 3 => ts + self.rng.range(50 * US, 2 * MS),
                _ => (s.t0 + u64::from(s.exch - 1) * s.period).max(ts + 50 * US),
            };
            self.push_s(s, sid, next, Ev::CSend, 0, 0, 0);
        } else {
            let linger = match s.profile {
                Profile::Web => self.rng.range(500 * MS, 15 * NS),
                _ => self.rng.range(50 * MS, 2 * NS),
            };
            self.push_s(s, sid, ts + linger, Ev::CFin, 0, 0, 0);
        }
    }

    // ---- QUIC -----------------------------------------------------------------------------

    fn cids(&self, s: &Sess) -> ([u8; 8], [u8; 8], [u8; 8]) {
        let r = self.session_random(s, 21);
        let mut dcid = [0u8; 8];
        let mut scid = [0u8; 8];
        let mut srv = [0u8; 8];
        dcid.copy_from_slice(&r[0..8]);
        scid.copy_from_slice(&r[8..16]);
        srv.copy_from_slice(&r[16..24]);
        (dcid, scid, srv)
    }

    fn udp_emit(&mut self, s: &mut Sess, ts: u64, c2s: bool, payload: &[u8]) {
        let start = self.out.len();
        let a = if c2s {
            s.ip_id_c = s.ip_id_c.wrapping_add(1);
            self.addr_c2s(s)
        } else {
            s.ip_id_s = s.ip_id_s.wrapping_add(1);
            self.addr_s2c(s)
        };
        udp_frame(&mut self.out, &a, payload.len(), |b| {
            b.copy_from_slice(payload)
        });
        self.record(ts, start);
    }

    fn quic_initial(&mut self, s: &mut Sess, sid: u32, ts: u64) {
        let (dcid, scid, _) = self.cids(s);
        let rnd = self.session_random(s, 11);
        let sni = self.servers[s.server as usize].sni.clone();
        let mut ch = Vec::with_capacity(512);
        client_hello(&mut ch, &sni, &["h3"], &rnd, true);
        let mut frames = Vec::with_capacity(1200);
        crypto_frame_header(&mut frames, ch.len());
        frames.extend_from_slice(&ch);
        let keys = QuicKeys::initial(&dcid, true);
        let mut dgram = Vec::with_capacity(1300);
        // pad the datagram to 1250 bytes (header 1+4+1+8+1+8+1+2+4 = 30, tag 16)
        quic_long(
            &mut dgram,
            &keys,
            0,
            &dcid,
            &scid,
            0,
            &frames,
            1250 - 30 - 16,
        );
        s.c_isn = 1;
        self.udp_emit(s, ts, true, &dgram);
        let p = self.path(s.user, s.server, ts);
        let d = self.srtt(s.user, s.server, &p);
        self.push_s(s, sid, ts + d, Ev::QSInit, 0, 0, 0);
    }

    fn quic_server_initial(&mut self, s: &mut Sess, sid: u32, ts: u64) {
        let (dcid, scid, srv) = self.cids(s);
        let rnd = self.session_random(s, 12);
        let mut sh = Vec::with_capacity(128);
        server_hello(&mut sh, &rnd, false);
        let mut frames = Vec::with_capacity(256);
        frames.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00]); // ACK pn 0
        crypto_frame_header(&mut frames, sh.len());
        frames.extend_from_slice(&sh);
        let keys = QuicKeys::initial(&dcid, false);
        let mut dgram = Vec::with_capacity(1300);
        quic_long(&mut dgram, &keys, 0, &scid, &srv, 0, &frames, 0);
        // coalesced Handshake packet (EncryptedExtensions, Certificate…): opaque
        let mut hs = vec![0u8; 1200 - dgram.len().min(600)];
        fill_noise(&mut hs, &self.noise, s.uid as usize * 13);
        hs[0] = 0x06; // starts like a CRYPTO frame
        hs[1] = 0x00;
        quic_long(&mut dgram, &keys, 2, &scid, &srv, 0, &hs, 0);
        s.s_isn = 1;
        self.udp_emit(s, ts, false, &dgram);
        let p = self.path(s.user, s.server, ts);
        let d = self.crtt(s.user, &p);
        self.push_s(s, sid, ts + d, Ev::QCHs, 0, 0, 0);
    }

    fn quic_client_finished(&mut self, s: &mut Sess, sid: u32, ts: u64) {
        let (dcid, scid, srv) = self.cids(s);
        let keys = QuicKeys::initial(&dcid, true);
        let mut dgram = Vec::with_capacity(1300);
        quic_long(
            &mut dgram,
            &keys,
            0,
            &srv,
            &scid,
            1,
            &[0x02, 0, 0, 0, 0],
            20,
        );
        let mut fin = [0u8; 60];
        fill_noise(&mut fin, &self.noise, s.uid as usize * 29);
        fin[0] = 0x06;
        fin[1] = 0x00;
        quic_long(&mut dgram, &keys, 2, &srv, &scid, 0, &fin, 0);
        self.udp_emit(s, ts, true, &dgram);
        // the exchange 0 of a QUIC session is the handshake: go straight to the request
        s.exch = 1;
        let d = self.rng.range(20 * US, 200 * US);
        self.push_s(s, sid, ts + d, Ev::CSend, 0, 0, 0);
    }

    /// A 1-RTT (short header) datagram of `len` bytes.
    fn quic_short(&mut self, s: &mut Sess, ts: u64, c2s: bool, len: usize) {
        let (_, scid, srv) = self.cids(s);
        let pn = if c2s {
            s.c_isn = s.c_isn.wrapping_add(1);
            s.c_isn
        } else {
            s.s_isn = s.s_isn.wrapping_add(1);
            s.s_isn
        };
        let mut d = std::mem::take(&mut self.scratch);
        d.clear();
        d.push(0x40 | (hash64(self.seed, s.uid, u64::from(pn)) as u8 & 0x1f));
        d.extend_from_slice(if c2s { &srv } else { &scid });
        let n = d.len();
        d.resize(len.max(n + 20), 0);
        fill_noise(
            &mut d[n..],
            &self.noise,
            (s.uid as usize).wrapping_mul(131) + pn as usize * 977,
        );
        self.udp_emit(s, ts, c2s, &d);
        self.scratch = d;
    }

    // ---- DNS ------------------------------------------------------------------------------

    fn on_dns(&mut self, s: &mut Sess, sid: u32, ev: Event) {
        let ts = ev.ts;
        let name = self.servers[s.server as usize].sni.clone();
        let mut buf = std::mem::take(&mut self.scratch);
        match ev.kind {
            Ev::DnsQ => {
                dns_query(&mut buf, s.c_isn as u16, &name);
                let p = self.path(s.user, u32::MAX, ts);
                self.udp_emit(s, ts, true, &buf);
                if s.retries < 2 && self.rng.chance(p.s_loss) {
                    s.retries += 1;
                    self.push_s(s, sid, ts + NS, Ev::DnsQ, 0, 0, 0);
                } else {
                    let resolve = if self.rng.chance(0.2) {
                        self.rng.range(10 * MS, 60 * MS)
                    } else {
                        self.rng.range(100 * US, 2 * MS)
                    };
                    let d = self.srtt(s.user, u32::MAX, &p) + resolve;
                    self.push_s(s, sid, ts + d, Ev::DnsR, 0, 0, 0);
                }
            }
            Ev::DnsR => {
                let ip = self.servers[s.server as usize].ip;
                dns_answer(&mut buf, s.c_isn as u16, &name, ip, 300);
                self.udp_emit(s, ts, false, &buf);
                let p = self.path(s.user, s.server, ts);
                let d = self.crtt(s.user, &p) + self.rng.range(100 * US, MS);
                self.start_main(s.user, s.server, s.profile, s.follow_quic, ts + d);
            }
            _ => {}
        }
        self.scratch = buf;
    }

    // ---- RTP voice ------------------------------------------------------------------------

    fn on_rtp(&mut self, s: &mut Sess, sid: u32, ev: Event) {
        let ts = ev.ts;
        let c2s = ev.kind == Ev::RtpC;
        let k = ev.arg; // packet index in this direction
        let p = self.path(s.user, s.server, ts);
        let lost = self.rng.chance(if c2s { p.c_loss } else { p.s_loss });
        let (seq, ssrc) = if c2s {
            (
                s.c_off.wrapping_add(k) as u16,
                hash64(self.seed, s.uid, 1) as u32,
            )
        } else {
            (
                s.s_alloc.wrapping_add(k) as u16,
                hash64(self.seed, s.uid, 2) as u32,
            )
        };
        if !lost {
            let mut b = std::mem::take(&mut self.scratch);
            b.clear();
            b.push(0x80);
            b.push(if k == 0 { 0x80 } else { 0x00 }); // PT 0 (PCMU), marker on the first
            b.extend_from_slice(&seq.to_be_bytes());
            let base = if c2s { s.c_isn } else { s.s_isn };
            b.extend_from_slice(&base.wrapping_add(k.wrapping_mul(160)).to_be_bytes());
            b.extend_from_slice(&ssrc.to_be_bytes());
            let n = b.len();
            b.resize(n + 160, 0);
            fill_noise(
                &mut b[n..],
                &self.noise,
                s.uid as usize * 7 + k as usize * 160,
            );
            self.udp_emit(s, ts, c2s, &b);
            self.scratch = b;
        }
        // the next packet: nominal 20 ms grid from the stream's start, plus path jitter
        let origin = if c2s { s.t0 } else { s.t0 + s.period };
        let nominal = origin + u64::from(k + 1) * 20 * MS;
        if nominal >= s.end {
            return;
        }
        let jit = if c2s {
            let u = &self.users[s.user as usize];
            (if u.wifi { 3 * MS } else { 300 * US }) + p.c_jit
        } else {
            500 * US + p.s_jit
        };
        let t = (nominal + (self.rng.f64() * jit as f64) as u64).max(ts + 1);
        let kind = ev.kind;
        self.push_s(s, sid, t, kind, k + 1, 0, 0);
    }

    // ---- gaming ---------------------------------------------------------------------------

    fn on_game(&mut self, s: &mut Sess, sid: u32, ev: Event) {
        let ts = ev.ts;
        let k = ev.arg;
        let p = self.path(s.user, s.server, ts);
        match ev.kind {
            Ev::GameC => {
                if !self.rng.chance(p.c_loss) {
                    let len = self.rng.range(40, 120) as usize;
                    self.game_packet(s, ts, true, k, len);
                }
                let d = self.srtt(s.user, s.server, &p);
                self.push_s(s, sid, ts + d, Ev::GameS, k, 0, 0);
                let nominal = s.t0 + u64::from(k + 1) * 33_333 * US;
                if nominal < s.end {
                    let jit = (if self.users[s.user as usize].wifi {
                        3 * MS
                    } else {
                        300 * US
                    }) + p.c_jit;
                    let t = (nominal + (self.rng.f64() * jit as f64) as u64).max(ts + 1);
                    self.push_s(s, sid, t, Ev::GameC, k + 1, 0, 0);
                }
            }
            Ev::GameS if !self.rng.chance(p.s_loss) => {
                let len = self.rng.range(80, 400) as usize;
                self.game_packet(s, ts, false, k, len);
            }
            _ => {}
        }
    }

    fn game_packet(&mut self, s: &mut Sess, ts: u64, c2s: bool, k: u32, len: usize) {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        b.resize(len, 0);
        fill_noise(&mut b, &self.noise, s.uid as usize * 3 + k as usize * 211);
        // a fixed magic that no Wireshark heuristic dissector claims, then the tick number
        b[0] = if c2s { 0x9e } else { 0x9f };
        b[1] = 0x27;
        b[2..6].copy_from_slice(&k.to_le_bytes());
        self.udp_emit(s, ts, c2s, &b);
        self.scratch = b;
    }

    // ---- truth ----------------------------------------------------------------------------

    pub(crate) fn truth(&self) -> Truth {
        let users = self.public_users();
        let servers = self.public_servers();
        let start = self.cfg.start_ts;
        let mut faults = Vec::new();
        let mut expected = Vec::new();
        let mut affected = vec![false; self.users.len()];
        for f in &self.faults {
            let impaired = f.impaired(self.users.len());
            let win_min = ((f.end_ns - f.start_ns) / (60 * NS)).max(1);
            let need = win_min.min(3) as u32;
            let hit: Vec<usize> = (0..self.users.len()).filter(|&u| f.hit[u] != 0).collect();
            let at = (f.start_ns + (f.end_ns - f.start_ns) * 2 / 3) / NS;
            for &u in &hit {
                affected[u] = true;
                if impaired[u].count_ones() >= need {
                    expected.push(Expected {
                        user: users[u].ip.to_string(),
                        at,
                        verdict: f.spec.level.as_str(),
                        element: Some(f.element.clone()),
                    });
                }
            }
            faults.push(TruthFault {
                level: f.spec.level.as_str(),
                element: f.element.clone(),
                kind: f.spec.kind.as_str(),
                start: f.start_ns / NS,
                end: f.end_ns / NS,
                users: hit.iter().map(|&u| users[u].ip.to_string()).collect(),
                impaired: hit
                    .iter()
                    .filter(|&&u| impaired[u] != 0)
                    .map(|&u| TruthImpaired {
                        user: users[u].ip.to_string(),
                        minutes: (0..64u64)
                            .filter(|m| impaired[u] & (1 << m) != 0)
                            .map(|m| f.start_ns / NS + m * 60)
                            .collect(),
                    })
                    .collect(),
            });
        }
        // a sample of unaffected users, complaining during a fault window (or anywhere)
        let unaffected: Vec<usize> = (0..self.users.len()).filter(|&u| !affected[u]).collect();
        // fault-free: a larger sample (every complaint should end in no_fault_found)
        let floor = if self.faults.is_empty() { 50 } else { 10 };
        let want = (expected.len().max(floor)).min(unaffected.len());
        if let Some(step) = unaffected.len().checked_div(want) {
            for (j, &u) in unaffected
                .iter()
                .step_by(step.max(1))
                .take(want)
                .enumerate()
            {
                let at = if self.faults.is_empty() {
                    start + u64::from(self.cfg.minutes) * 60 * 2 / 3
                } else {
                    let f = &self.faults[j % self.faults.len()];
                    (f.start_ns + (f.end_ns - f.start_ns) / 2) / NS
                };
                expected.push(Expected {
                    user: users[u].ip.to_string(),
                    at,
                    verdict: "no_fault_found",
                    element: None,
                });
            }
        }
        let scenario = if self.cfg.faults.is_empty() {
            self.cfg.scenario.clone()
        } else {
            let specs: Vec<String> = self.cfg.faults.iter().map(|f| f.to_string()).collect();
            format!("{}: {}", self.cfg.scenario, specs.join(","))
        };
        Truth {
            scenario,
            start,
            end: start + u64::from(self.cfg.minutes) * 60,
            users: users
                .iter()
                .map(|u| TruthUser {
                    user: u.ip.to_string(),
                    home: u.home.clone(),
                    access: u.access.clone(),
                    core: u.core.clone(),
                })
                .collect(),
            servers: servers
                .iter()
                .map(|s| TruthServer {
                    ip: s.ip.to_string(),
                    prefix: s.prefix.clone(),
                    service: s.service.clone(),
                    sni: s.sni.clone(),
                })
                .collect(),
            faults,
            expected,
        }
    }
}

enum Payload {
    None,
    /// The bytes in `World::scratch`.
    Scratch,
    /// Bytes `[off, off + len)` of the current server message (`scratch` holds the
    /// handshake prefix for the first flight).
    Server {
        off: u32,
        len: u32,
    },
}

/// Writes bytes `[off, off + out.len())` of a server message: `prefix` (real handshake
/// records) then application-data records carrying `payload` bytes.
fn write_message(out: &mut [u8], off: u32, prefix: &[u8], payload: u32, noise: &[u8], salt: usize) {
    let plen = prefix.len() as u32;
    let mut i = 0usize;
    let mut off = off;
    if off < plen {
        let n = ((plen - off) as usize).min(out.len());
        out[..n].copy_from_slice(&prefix[off as usize..off as usize + n]);
        i = n;
        off += n as u32;
    }
    if i < out.len() {
        write_records(&mut out[i..], off - plen, payload, noise, salt);
    }
}

// ---- truth.json -----------------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct Truth {
    scenario: String,
    start: u64,
    end: u64,
    users: Vec<TruthUser>,
    servers: Vec<TruthServer>,
    faults: Vec<TruthFault>,
    expected: Vec<Expected>,
}

#[derive(Serialize)]
struct TruthUser {
    user: String,
    home: String,
    access: String,
    core: String,
}

#[derive(Serialize)]
struct TruthServer {
    ip: String,
    prefix: String,
    service: String,
    sni: String,
}

#[derive(Serialize)]
struct TruthFault {
    level: &'static str,
    element: String,
    kind: &'static str,
    start: u64,
    end: u64,
    users: Vec<String>,
    /// Per touched user, the window starts (epoch s) of the minutes the fault impaired
    /// (reference CEI < 60 on the faulty path, ≥ 60 on the healthy one): the ground truth of
    /// the poor-user list.
    impaired: Vec<TruthImpaired>,
}

#[derive(Serialize)]
struct TruthImpaired {
    user: String,
    minutes: Vec<u64>,
}

#[derive(Serialize)]
struct Expected {
    user: String,
    at: u64,
    verdict: &'static str,
    element: Option<String>,
}

#[cfg(test)]
impl World {
    fn user_index(&self, ip: u32) -> usize {
        self.users
            .iter()
            .position(|u| u.ip == ip)
            .expect("a user address")
    }

    /// Bounds of a fault-free server-leg sample for (user, server address).
    pub(crate) fn server_leg_range(&self, user_ip: u32, server_ip: u32) -> (u64, u64) {
        let u = &self.users[self.user_index(user_ip)];
        let srv = self
            .servers
            .iter()
            .find(|s| s.ip >> 8 == server_ip >> 8)
            .expect("a server");
        let base = self.core_rtt[u.core as usize] + srv.rtt;
        (base, base + 100 * US + base / 50)
    }

    /// Bounds of a fault-free client-leg sample for a user.
    pub(crate) fn client_leg_range(&self, user_ip: u32) -> (u64, u64) {
        let u = &self.users[self.user_index(user_ip)];
        let base = u.home_rtt + self.access_rtt[u.access as usize];
        (
            base,
            base + if u.wifi { 2 * MS } else { 200 * US } + base / 50,
        )
    }

    pub(crate) fn access_of(&self, user_ip: u32) -> u32 {
        self.users[self.user_index(user_ip)].access
    }
}
