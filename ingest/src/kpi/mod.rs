//! Per-flow experience KPIs: TCP handshake split RTT, running RTT samples per leg,
//! retransmissions, reordering, loss upstream vs downstream of the probe, zero windows,
//! active transfer time; application timings (TLS handshake, HTTP TTFB, DNS response);
//! RTP loss and jitter.
//!
//! The probe sits between the access network and the core: the *client leg* is
//! probe → client → probe (access + home), the *server leg* probe → server → probe (core +
//! internet).
//!
//! [`SliceKpi`] is what one flow contributes to one window; the flow table emits it with
//! every `FlowSlice`, and the flow's whole-life values with its `FlowEnd`. All fields add
//! up across slices (sums and counts), so aggregation downstream is exact.

use serde::Serialize;

mod active;
mod quic;
mod rtp;
mod tcp;
#[cfg(test)]
mod tests;
mod udp_seq;

pub use active::{ActiveTime, ACTIVE_IDLE_NS};
pub use quic::QuicRtt;
pub use rtp::{clock_rate as rtp_clock_rate, RtpTracker, SSRC_SWITCH};
pub use tcp::{TcpTracker, HOLES as TCP_HOLES, RING as TCP_RTT_RING};
pub use udp_seq::SeqTracker;

/// KPIs of one flow within one window (or over its whole life). Directions are indexed
/// `[client→server, server→client]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SliceKpi {
    /// Handshake client-leg RTT (ACK − SYN/ACK), ms; in the slice where it was measured.
    pub hs_rtt_client_ms: Option<f32>,
    /// Handshake server-leg RTT (SYN/ACK − SYN), ms; in the slice where it was measured.
    pub hs_rtt_server_ms: Option<f32>,
    /// Sum of running client-leg RTT samples (server data → client ACK), ms.
    pub rtt_client_sum_ms: f32,
    /// Number of client-leg RTT samples.
    pub rtt_client_samples: u32,
    /// Sum of running server-leg RTT samples (client data → server ACK), ms.
    pub rtt_server_sum_ms: f32,
    /// Number of server-leg RTT samples.
    pub rtt_server_samples: u32,
    /// Data segments carrying payload, per direction (the denominator of rates).
    pub data_segments: [u32; 2],
    /// Retransmitted segments per direction (sequence space already seen).
    pub retransmissions: [u32; 2],
    /// Out-of-order segments per direction (filled a hole the probe saw open).
    pub out_of_order: [u32; 2],
    /// Segments lost upstream of the probe (a hole later filled), per sending direction.
    pub loss_upstream: [u32; 2],
    /// Segments lost downstream of the probe (retransmission of a segment the probe saw).
    pub loss_downstream: [u32; 2],
    /// Zero-window advertisements per direction.
    pub zero_windows: [u32; 2],
    /// RST segments per direction.
    pub resets: [u32; 2],
    /// Time with data in flight per direction (ns): sums of gaps between consecutive
    /// payload packets shorter than an idle threshold; throughput = payload / active time.
    pub active_ns: [u64; 2],
    /// TLS/QUIC handshake time (ClientHello → first server application data), ms.
    pub tls_handshake_ms: Option<f32>,
    /// HTTP time to first response byte (request → response), ms.
    pub http_ttfb_ms: Option<f32>,
    /// DNS response time (query → response), ms.
    pub dns_response_ms: Option<f32>,
    /// RTP packets expected (from sequence numbers) and lost, both directions together.
    pub rtp_expected: u32,
    /// RTP packets lost.
    pub rtp_lost: u32,
    /// Largest RFC 3550 interarrival jitter seen in the window, ms.
    pub rtp_jitter_ms: Option<f32>,
}

impl SliceKpi {
    /// Web transaction time: TCP handshake (both legs) + TLS handshake + TTFB, whichever
    /// were measured, ms; `None` when none was.
    pub fn transaction_ms(&self) -> Option<f32> {
        let hs = match (self.hs_rtt_client_ms, self.hs_rtt_server_ms) {
            (Some(c), Some(s)) => Some(c + s),
            (c, s) => c.or(s),
        };
        let parts = [hs, self.tls_handshake_ms, self.http_ttfb_ms];
        parts
            .iter()
            .any(Option::is_some)
            .then(|| parts.iter().flatten().sum())
    }

    /// Mean running RTT of the client leg, ms.
    pub fn rtt_client_ms(&self) -> Option<f32> {
        mean(self.rtt_client_sum_ms, self.rtt_client_samples).or(self.hs_rtt_client_ms)
    }

    /// Mean running RTT of the server leg, ms.
    pub fn rtt_server_ms(&self) -> Option<f32> {
        mean(self.rtt_server_sum_ms, self.rtt_server_samples).or(self.hs_rtt_server_ms)
    }
}

fn mean(sum: f32, n: u32) -> Option<f32> {
    (n > 0).then(|| sum / n as f32)
}
