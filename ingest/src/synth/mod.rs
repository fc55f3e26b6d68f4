//! Traffic synthesizer with ground truth (`cemflow synth`, `cemflow demo`, benchmarks).
//!
//! [`generate`] writes an Ethernet pcap as a probe on the **core side of the access
//! network** sees it: users sit behind a home (CPE/Wi-Fi), an access element (`olt1..`) and
//! a core element (`bng1..`); servers are content-server prefixes labelled with a catalog
//! service. For a TCP connection the probe therefore sees SYN→SYN/ACK = server leg (core +
//! internet) and SYN/ACK→ACK = client leg (access + home); data/ACK pairs likewise.
//!
//! Sessions per user are drawn per category from the built-in catalog: TLS 1.3 over TCP
//! (web pages of several objects, chunked video and live streams, large downloads) with
//! real ClientHello/ServerHello bytes, QUIC v1 (Initial packets protected with the v1
//! initial secret, so SNI extraction works) for part of web and video, DNS lookups of each
//! new server name, RTP (G.711, 20 ms) voice calls and gaming UDP (~30 packets/s each way).
//!
//! **Addresses** (documented contract): users get one or more /24s per access element in
//! 198.18.0.0/16 (hosts .2–.251), so the default "access element = client /24" rule works
//! for up to 250 users per element; if that range is too small (more than 256 /24s needed)
//! users are numbered from 100.64.0.0/10 (RFC 6598 shared space) instead. Servers get one
//! /24 each in 198.19.0.0/16 (`198.19.<i>.0/24`, hosts .10–.13); the DNS resolver is
//! 198.19.255.53.
//!
//! **Faults** only change what packets show (delays, retransmissions, RTP/gaming sequence
//! gaps, throughput); nothing in a packet labels them. **Memory** is bounded by the number
//! of users and concurrently open sessions (one event queue, no per-minute buffering), not
//! by the duration.

mod engine;
mod fault;
mod rng;
#[cfg(test)]
mod tests;
mod wire;

pub use fault::{FaultKind, FaultLevel, FaultParseError, FaultSpec};

use crate::catalog::{Catalog, Category};
use serde::Serialize;
use std::io::Write;

/// 2025-01-06T08:00:00Z, a Monday morning, aligned to the minute.
pub const DEFAULT_START_TS: u64 = 1_736_150_400;

/// What to synthesise.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Number of subscribers.
    pub users: u32,
    /// Number of access elements (`olt1..oltA`); users are spread evenly in blocks.
    pub access_elements: u32,
    /// Number of core elements (`bng1..bngC`); access element i sits under core i mod C.
    pub core_elements: u32,
    /// Number of content servers (one /24 each), services drawn round-robin from the
    /// categories web, video, voice, gaming, live, download of the built-in catalog.
    pub servers: u32,
    /// Capture length in minutes.
    pub minutes: u32,
    /// Capture start, epoch seconds.
    pub start_ts: u64,
    /// PRNG seed: same seed and config, same bytes.
    pub seed: u64,
    /// Injected faults.
    pub faults: Vec<FaultSpec>,
    /// Session arrival multiplier (1.0 = about 3 sessions per user-minute).
    pub activity: f64,
    /// Fraction of real byte volumes for video, live and downloads (rates and RTTs stay
    /// real, so throughput KPIs are unchanged; 1.0 = real volumes, heavy).
    pub volume: f64,
    /// Share of web and video sessions carried over QUIC instead of TLS/TCP.
    pub quic_share: f64,
    /// Scenario name written to truth.json.
    pub scenario: String,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            users: 200,
            access_elements: 4,
            core_elements: 2,
            servers: 12,
            minutes: 20,
            start_ts: DEFAULT_START_TS,
            seed: 1,
            faults: Vec::new(),
            activity: 1.0,
            volume: 0.03,
            quic_share: 0.25,
            scenario: "synth".into(),
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SynthSummary {
    /// Packets written.
    pub packets: u64,
    /// Frame bytes written (without pcap record headers).
    pub bytes: u64,
    /// Flows (sessions) started: each one is one bidirectional 5-tuple flow.
    pub flows: u64,
    /// TCP connections (TLS web, video, live, downloads).
    pub tcp_flows: u64,
    /// QUIC connections.
    pub quic_flows: u64,
    /// DNS lookups (one flow each).
    pub dns_flows: u64,
    /// RTP voice calls.
    pub rtp_flows: u64,
    /// Gaming UDP flows.
    pub gaming_flows: u64,
    /// First packet timestamp (ns since the epoch).
    pub first_ts_ns: u64,
    /// Last packet timestamp (ns since the epoch).
    pub last_ts_ns: u64,
}

/// Synthesis errors.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The configuration is not usable.
    #[error("invalid synth configuration: {0}")]
    Config(String),
    /// A fault names an element that does not exist.
    #[error("fault {fault}: {reason}")]
    Fault {
        /// The fault as written.
        fault: String,
        /// Why it does not apply.
        reason: String,
    },
    /// Writing an output failed.
    #[error("writing {what}: {source}")]
    Io {
        /// Which output.
        what: &'static str,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// One user of the generated topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthUser {
    /// Subscriber IPv4 address.
    pub ip: std::net::Ipv4Addr,
    /// Home id (`homeN`, 1-based).
    pub home: String,
    /// Access element (`oltN`).
    pub access: String,
    /// Core element (`bngN`).
    pub core: String,
    /// Region (`regionN`, one per core element).
    pub region: String,
    /// Subscribed downstream rate, Mbit/s.
    pub plan_mbps: u32,
}

/// One content server of the generated topology.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthServer {
    /// Main server address.
    pub ip: std::net::Ipv4Addr,
    /// Its /24 prefix, e.g. `198.19.3.0/24`.
    pub prefix: String,
    /// Service (catalog app name).
    pub service: String,
    /// Server name used in SNI / DNS.
    pub sni: String,
    /// Catalog category of the service.
    pub category: Category,
}

/// The topology [`generate`] uses for a configuration (deterministic), e.g. to print it.
pub fn topology(cfg: &SynthConfig) -> Result<(Vec<SynthUser>, Vec<SynthServer>), SynthError> {
    let w = engine::World::build(cfg, &Catalog::builtin())?;
    Ok((w.public_users(), w.public_servers()))
}

/// Writes the capture (Ethernet pcap, ns timestamps, in timestamp order) to `pcap`, then
/// the ground truth (SPEC §11 JSON) to `truth` and the topology CSV (SPEC §1) to `topology`
/// when given.
pub fn generate<P: Write, T: Write, C: Write>(
    cfg: &SynthConfig,
    pcap: P,
    truth: Option<T>,
    topology: Option<C>,
) -> Result<SynthSummary, SynthError> {
    let catalog = Catalog::builtin();
    let mut world = engine::World::build(cfg, &catalog)?;
    if let Some(mut t) = topology {
        world
            .write_topology(&mut t)
            .and_then(|()| t.flush())
            .map_err(|source| SynthError::Io {
                what: "topology",
                source,
            })?;
    }
    let summary = world.run(pcap)?;
    if let Some(mut t) = truth {
        let v = world.truth();
        serde_json::to_writer_pretty(&mut t, &v)
            .map_err(std::io::Error::from)
            .and_then(|()| t.write_all(b"\n"))
            .and_then(|()| t.flush())
            .map_err(|source| SynthError::Io {
                what: "truth",
                source,
            })?;
    }
    Ok(summary)
}

/// A TLS record holding a TLS 1.3 ClientHello for `sni` (ALPN h2, http/1.1), as the
/// synthesizer writes it; `seed` varies the random fields. For benchmarks and tests that
/// build their own traffic.
pub fn tls_client_hello_record(sni: &str, seed: u64) -> Vec<u8> {
    let mut rnd = [0u8; 64];
    let mut x = seed | 1;
    for b in rnd.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut ch = Vec::with_capacity(600);
    wire::client_hello(&mut ch, sni, &["h2", "http/1.1"], &rnd, false);
    let mut rec = Vec::with_capacity(ch.len() + 5);
    wire::record_header(&mut rec, 0x16, ch.len());
    rec.extend_from_slice(&ch);
    rec
}

/// A TLS record holding a TLS 1.3 ServerHello followed by a ChangeCipherSpec record, as
/// the synthesizer writes them; `seed` varies the random fields.
pub fn tls_server_hello_records(seed: u64) -> Vec<u8> {
    let mut rnd = [0u8; 64];
    let mut x = seed | 1;
    for b in rnd.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut sh = Vec::with_capacity(128);
    wire::server_hello(&mut sh, &rnd, true);
    let mut rec = Vec::with_capacity(sh.len() + 11);
    wire::record_header(&mut rec, 0x16, sh.len());
    rec.extend_from_slice(&sh);
    rec.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    rec
}

/// A DNS A query for `name` with transaction id `id`, as the synthesizer writes it.
pub fn dns_query_message(id: u16, name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    wire::dns_query(&mut v, id, name);
    v
}
