//! Deep packet inspection: protocol identification and metadata (TLS, QUIC, HTTP, DNS, RTP, …).
//!
//! The flow table feeds every payload-carrying packet of a flow to its [`DpiState`] until
//! [`DpiState::wants_more`] turns false, then reads [`DpiState::result`].
//!
//! Design (after Retina's `protocols/stream`): every protocol lives in its own submodule
//! and exposes a *probe* (`Certain` / `Unsure` / `NotForUs`, collecting metadata on the
//! way) and, for protocols whose metadata spans several packets, a *track* function run
//! on the following packets once the protocol is decided. The [`registry`] lists them in
//! priority order; a flow keeps a bitmask of the candidates still alive. When every
//! candidate has given up, or after a bounded number of payload packets, the flow keeps
//! the port-based guess ([`DpiResult::guessed_by_port`]).
//!
//! Some findings outlive their flow: DNS answers and announced FTP data connections are
//! left in the state ([`DpiState::has_learnt`]) for the flow table's [`CrossFlow`], which
//! applies them to later flows (server names from DNS, `FTP_DATA`).
//!
//! All parsing is bounds-checked: arbitrary bytes never panic, and per-flow buffers are
//! bounded (16 KiB for a TLS/QUIC ClientHello, 4 KiB for HTTP headers).

mod ajp;
mod bittorrent;
mod cross_flow;
mod dhcp;
mod dns;
pub mod dns_cache;
mod ftp;
mod hello;
mod http;
mod imap;
mod misc_tcp;
mod misc_udp;
mod netbios;
mod ntp;
mod pop3;
mod ports;
mod quic;
mod registry;
mod rtp;
mod sip;
mod smtp;
mod ssdp;
mod ssh;
mod stun;
mod telnet;
mod tls;
mod tunnels;
mod util;
mod whatsapp;

#[cfg(test)]
mod tests;

pub use cross_flow::{CrossFlow, EXPECTED_CAPACITY};
pub use dns_cache::{DnsAnswer, DnsCache};
pub use rtp::{RtpHeader, RtpQuality};

use serde::Serialize;

/// Direction of a packet relative to the flow's client (the sender of its first packet,
/// or of the SYN when seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the flow's client to its server.
    ClientToServer,
    /// From the flow's server to its client.
    ServerToClient,
}

impl Direction {
    /// 0 for client→server, 1 for server→client.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

/// One packet of a flow as the DPI sees it (L4 payload, zero-copy).
#[derive(Clone, Copy, Debug)]
pub struct DpiInput<'a> {
    /// IP protocol number: 6 TCP, 17 UDP, others.
    pub l4: u8,
    /// Direction of this packet within the flow.
    pub dir: Direction,
    /// The flow's client port.
    pub client_port: u16,
    /// The flow's server port.
    pub server_port: u16,
    /// L4 payload (TCP segment data, UDP datagram data).
    pub payload: &'a [u8],
    /// Capture timestamp, nanoseconds.
    pub ts_ns: u64,
    /// TCP sequence number of the first payload byte (None for non-TCP).
    pub tcp_seq: Option<u32>,
    /// TCP SYN flag set on this packet.
    pub tcp_syn: bool,
}

impl DpiInput<'_> {
    /// True for TCP packets.
    #[inline]
    pub fn is_tcp(&self) -> bool {
        self.l4 == 6
    }
    /// True for UDP packets.
    #[inline]
    pub fn is_udp(&self) -> bool {
        self.l4 == 17
    }
    /// True for client→server packets.
    #[inline]
    pub fn c2s(&self) -> bool {
        self.dir == Direction::ClientToServer
    }
    /// True when either port of the flow equals `port`.
    #[inline]
    pub fn has_port(&self, port: u16) -> bool {
        self.client_port == port || self.server_port == port
    }
    /// The port of the sender of this packet.
    #[inline]
    pub fn src_port(&self) -> u16 {
        if self.c2s() {
            self.client_port
        } else {
            self.server_port
        }
    }
}

/// What the DPI learnt about a flow.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DpiResult {
    /// nDPI-style protocol name ("TLS", "QUIC", "HTTP", "DNS", …); None when unknown.
    pub l7_proto: Option<&'static str>,
    /// True when `l7_proto` comes from the port only.
    pub guessed_by_port: bool,
    /// TLS/QUIC server name (with ECH: the outer, public name).
    pub sni: Option<Box<str>>,
    /// HTTP Host header, SSDP Host, DHCP host name, NetBIOS name.
    pub host: Option<Box<str>>,
    /// ALPN protocols offered in the ClientHello, comma-separated in offer order.
    pub alpn: Option<Box<str>>,
    /// TLS version: negotiated (ServerHello supported_versions or legacy version), else
    /// the ClientHello's highest offered version.
    pub tls_version: Option<u16>,
    /// True when the ClientHello carries an Encrypted Client Hello extension.
    pub tls_ech: bool,
    /// QUIC version of the long-header packets (gQUIC versions as their ASCII tag, e.g. "Q046").
    pub quic_version: Option<u32>,
    /// HTTP request method.
    pub http_method: Option<Box<str>>,
    /// HTTP response status code.
    pub http_status: Option<u16>,
    /// HTTP User-Agent (also the gQUIC UAID tag).
    pub user_agent: Option<Box<str>>,
    /// DNS (MDNS, LLMNR, NetBIOS-NS) query name of the first question.
    pub dns_qname: Option<Box<str>>,
    /// DNS query type of the first question.
    pub dns_qtype: Option<u16>,
    /// DNS response code (from the first response).
    pub dns_rcode: Option<u8>,
    /// RTP synchronisation source of the first RTP stream seen.
    pub rtp_ssrc: Option<u32>,
    /// RTP payload type of the first RTP stream seen.
    pub rtp_payload_type: Option<u8>,
    /// Timestamp (ns) of the first packet of the TLS (or QUIC) ClientHello.
    pub tls_client_hello_ts: Option<u64>,
    /// Timestamp (ns) of the first server application-data record (TLS 1.3: the first one
    /// after the client sent its own, i.e. after the client Finished).
    pub tls_server_data_ts: Option<u64>,
    /// Timestamp (ns) of the HTTP request's first packet.
    pub http_request_ts: Option<u64>,
    /// Timestamp (ns) of the HTTP response's first byte.
    pub http_response_ts: Option<u64>,
    /// Timestamp (ns) of the DNS query.
    pub dns_query_ts: Option<u64>,
    /// Timestamp (ns) of the DNS response matching the query.
    pub dns_response_ts: Option<u64>,
    /// Name of the server address from an earlier DNS answer seen by this flow table
    /// (see [`DnsCache`]); classifies flows without SNI or Host.
    pub server_name: Option<Box<str>>,
    /// Application the protocol itself identifies (a catalog app name, e.g.
    /// `WhatsAppCall` from WhatsApp's STUN attributes); wins over name-based matches.
    pub app_hint: Option<&'static str>,
}

/// Packets per direction probed before giving up without a verdict.
const PROBE_BUDGET: u16 = 24;
/// Packets per direction followed after a verdict to complete metadata.
const TRACK_BUDGET: u16 = 64;

/// Per-flow DPI state. The flow table keeps it in the flow's extras (only for flows with
/// payload), and stops calling [`DpiState::on_packet`] once [`DpiState::wants_more`] is
/// false.
#[derive(Debug, Default)]
pub struct DpiState {
    result: DpiResult,
    /// Registry entries still possible (bit i = `registry::REGISTRY[i]`).
    alive: u64,
    /// Registry entry that gave a `Certain` verdict and still tracks metadata.
    active: Option<u8>,
    started: bool,
    done: bool,
    /// Payload packets seen per direction.
    pkts: [u16; 2],
    /// Payload packets since the verdict, per direction.
    track_pkts: [u16; 2],
    pub(crate) tls: Option<Box<tls::TlsState>>,
    pub(crate) quic: Option<Box<quic::QuicState>>,
    pub(crate) http: Option<Box<http::HttpState>>,
    pub(crate) dns: dns::DnsState,
    pub(crate) rtp: rtp::RtpState,
    pub(crate) text: u8,
    /// Findings for later flows (DNS answers, FTP data connections), taken by
    /// [`CrossFlow::learn`].
    pub(crate) learnt: Option<Box<cross_flow::Learnt>>,
}

impl DpiState {
    /// A fresh state: every protocol is still possible.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet of the flow. Packets without payload only trigger the port guess
    /// (on the first call).
    pub fn on_packet(&mut self, p: &DpiInput<'_>) {
        if self.done {
            return;
        }
        // The port guess is made on the first packet, even without payload.
        if !self.started {
            self.started = true;
            self.alive = registry::initial_mask(p.l4);
            if let Some(name) = ports::guess(p.l4, p.server_port, p.client_port) {
                self.result.l7_proto = Some(name);
                self.result.guessed_by_port = true;
            }
        }
        if p.payload.is_empty() {
            return;
        }
        let d = p.dir.index();
        self.pkts[d] = self.pkts[d].saturating_add(1);

        if let Some(i) = self.active {
            self.track_pkts[d] = self.track_pkts[d].saturating_add(1);
            let more = registry::track(i as usize, p, self);
            if !more || self.track_pkts[d] >= TRACK_BUDGET {
                self.finish();
            }
            return;
        }

        let mut mask = self.alive;
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            match registry::probe(i, p, self) {
                Verdict::NotForUs => self.alive &= !(1u64 << i),
                Verdict::Unsure => {}
                Verdict::Certain(name, more) => {
                    self.result.l7_proto = Some(name);
                    self.result.guessed_by_port = false;
                    if more {
                        self.active = Some(i as u8);
                    } else {
                        self.finish();
                    }
                    return;
                }
            }
        }
        if self.alive == 0 || self.pkts[d] >= PROBE_BUDGET {
            self.finish();
        }
    }

    /// False once protocol and metadata are final, or after a bounded number of payload
    /// packets without a verdict.
    pub fn wants_more(&self) -> bool {
        !self.done
    }

    /// What is known so far (final once `wants_more()` is false).
    pub fn result(&self) -> &DpiResult {
        &self.result
    }

    /// Payload packets seen so far in direction `d` (0 = client→server).
    pub(crate) fn pkts(&self, d: usize) -> u16 {
        self.pkts[d]
    }

    /// Total payload packets seen so far.
    pub(crate) fn total_pkts(&self) -> u16 {
        self.pkts[0].saturating_add(self.pkts[1])
    }

    pub(crate) fn res(&mut self) -> &mut DpiResult {
        &mut self.result
    }

    /// Findings for later flows, created on first use.
    pub(crate) fn learnt_mut(&mut self) -> &mut cross_flow::Learnt {
        self.learnt.get_or_insert_with(Default::default)
    }

    /// True when the last packets left findings for [`CrossFlow::learn`].
    #[inline]
    pub fn has_learnt(&self) -> bool {
        self.learnt.is_some()
    }

    /// Decides the protocol without inspection (an expected data connection).
    pub(crate) fn set_decided(&mut self, name: &'static str) {
        self.started = true;
        self.result.l7_proto = Some(name);
        self.result.guessed_by_port = false;
        self.finish();
    }

    fn finish(&mut self) {
        self.done = true;
        self.active = None;
        // Free per-protocol buffers: the state may live on until the flow expires.
        self.tls = None;
        self.quic = None;
        self.http = None;
    }
}

/// Port-based protocol guess (nDPI's "Match by port"), for flows the DPI never saw
/// payload of.
pub fn guess_by_port(l4: u8, server_port: u16, client_port: u16) -> Option<&'static str> {
    ports::guess(l4, server_port, client_port)
}

/// Outcome of a protocol probe on one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The flow is this protocol (name), and whether later packets may add metadata.
    Certain(&'static str, bool),
    /// Not decided yet: call again with the next packet.
    Unsure,
    /// The flow is not this protocol.
    NotForUs,
}
