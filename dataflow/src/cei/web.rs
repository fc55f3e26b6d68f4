//! `web`: ITU-T G.1030 logarithmic law on the median transaction time.
//!
//! MOS = 4.5 for t ≤ t₀, else clamp(4.5 − slope·ln(t/t₀), 1, 4.5), t in seconds
//! (t₀ = 0.35 s, slope = 0.85).

use super::{clamp_mos, MOS_MAX};
use serde::{Deserialize, Serialize};

/// Constants of the web model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebModel {
    /// Transaction time at or below which the MOS is maximal. Seconds.
    pub t0_s: f64,
    /// MOS lost per e-fold of transaction time above `t0_s`.
    pub slope: f64,
    /// When no transaction time was measured but an RTT was (long-lived connections), the
    /// transaction time is estimated as `rtt_factor × (client + server RTT)` (a TCP
    /// handshake, a TLS 1.3 handshake and one request). 0 disables the fallback.
    pub rtt_factor: f64,
    /// A transaction time measured without a time to first byte (HTTPS/QUIC: the probe
    /// measures from the SYN it sees to the first server data it sees) gets this many
    /// client legs (probe ↔ client RTT) added: the client sent its SYN half a client leg
    /// before the probe saw it and receives the response half a leg after. 0 disables.
    pub unseen_client_legs: f64,
    /// Least transaction time of a flow measured without a TTFB, in RTTs of that flow
    /// (client + server leg): an HTTPS transaction takes a TCP handshake, a TLS 1.3
    /// handshake and one request/response, so a measured time below this (the probe missed
    /// a part, e.g. the first server record) is raised to it. 0 disables.
    pub txn_min_rtts: f64,
}

impl Default for WebModel {
    fn default() -> Self {
        WebModel {
            t0_s: 0.35,
            slope: 0.85,
            rtt_factor: 3.0,
            unseen_client_legs: 1.0,
            txn_min_rtts: 3.0,
        }
    }
}

impl WebModel {
    /// MOS for a median transaction time of `t_s` seconds.
    pub fn mos(&self, t_s: f64) -> f64 {
        if t_s.is_nan() || t_s <= self.t0_s {
            return MOS_MAX;
        }
        clamp_mos(MOS_MAX - self.slope * (t_s / self.t0_s).ln())
    }

    /// MOS from a measured transaction time, else from the RTT fallback; `None` without
    /// either.
    pub fn mos_from(&self, txn_ms: Option<f64>, rtt_ms: Option<f64>) -> Option<f64> {
        match (txn_ms, rtt_ms) {
            (Some(t), _) => Some(self.mos(t / 1000.0)),
            (None, Some(r)) if self.rtt_factor > 0.0 => {
                Some(self.mos(self.rtt_factor * r / 1000.0))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_points() {
        let m = WebModel::default();
        assert!((m.mos(1.0) - 3.61).abs() < 0.005, "{}", m.mos(1.0));
        assert_eq!(m.mos(0.0), 4.5);
        assert_eq!(m.mos(0.35), 4.5);
        assert!(m.mos(0.36) < 4.5);
        // 4.5 − 0.85·ln(t/0.35) = 1 at t = 0.35·e^(3.5/0.85) ≈ 21.47 s.
        assert!((m.mos(21.0) - 1.0).abs() < 0.02);
        assert_eq!(m.mos(60.0), 1.0);
        assert!((m.mos(0.35 * std::f64::consts::E) - 3.65).abs() < 1e-9);
        assert_eq!(m.mos_from(Some(1000.0), Some(5.0)), Some(m.mos(1.0)));
        assert_eq!(m.mos_from(None, Some(100.0)), Some(m.mos(0.3)));
        assert_eq!(m.mos_from(None, None), None);
    }
}
