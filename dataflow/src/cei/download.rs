//! `download`: Weber–Fechner law on throughput with the subscriber's plan as the cap:
//! MOS = clamp(1 + 3.5·ln(thr/0.5)/ln(cap/0.5), 1, 4.5), thr in Mbit/s,
//! cap = min(plan_mbps, 50).

use super::{clamp_mos, MOS_MAX, MOS_MIN, MOS_RANGE};
use serde::{Deserialize, Serialize};

/// Constants of the download model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadModel {
    /// Throughput rated MOS 1. Mbit/s.
    pub floor_mbps: f64,
    /// Throughput rated MOS 4.5 when the plan is faster (or unknown). Mbit/s.
    pub cap_mbps: f64,
    /// Minimum downstream payload in the window for throughput to be meaningful; below it
    /// the category falls back to the web model. Bytes.
    pub min_bytes: u64,
    /// Throughput is also meaningful below `min_bytes` when the downstream transfer lasted
    /// at least this many round trips (an unconstrained transfer under `min_bytes` ends
    /// within ~5 RTTs of slow start; one lasting longer is rate-limited). 0 disables.
    pub min_rtts: f64,
}

impl Default for DownloadModel {
    fn default() -> Self {
        DownloadModel {
            floor_mbps: 0.5,
            cap_mbps: 50.0,
            min_bytes: 250_000,
            min_rtts: 8.0,
        }
    }
}

impl DownloadModel {
    /// The throughput rated 4.5 for a subscriber with plan `plan_mbps`. Mbit/s.
    pub fn cap(&self, plan_mbps: Option<f64>) -> f64 {
        plan_mbps
            .filter(|p| *p > 0.0)
            .map_or(self.cap_mbps, |p| p.min(self.cap_mbps))
    }

    /// MOS for `thr_mbps` downstream throughput.
    pub fn mos(&self, thr_mbps: f64, plan_mbps: Option<f64>) -> f64 {
        let cap = self.cap(plan_mbps);
        if cap <= self.floor_mbps {
            return if thr_mbps >= cap { MOS_MAX } else { MOS_MIN };
        }
        if thr_mbps.is_nan() || thr_mbps <= 0.0 {
            return MOS_MIN;
        }
        clamp_mos(
            MOS_MIN + MOS_RANGE * (thr_mbps / self.floor_mbps).ln() / (cap / self.floor_mbps).ln(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_points() {
        let m = DownloadModel::default();
        assert_eq!(m.mos(0.0, None), 1.0);
        assert_eq!(m.mos(0.5, None), 1.0);
        assert_eq!(m.mos(0.1, None), 1.0);
        assert!((m.mos(50.0, None) - 4.5).abs() < 1e-12);
        assert_eq!(m.mos(80.0, None), 4.5);
        // thr 5, cap 50: 1 + 3.5·ln 10/ln 100 = 2.75
        assert!((m.mos(5.0, None) - 2.75).abs() < 1e-12);
        // plan 20 Mbit/s caps earlier: 20 Mbit/s is 4.5.
        assert!((m.mos(20.0, Some(20.0)) - 4.5).abs() < 1e-12);
        assert!((m.mos(5.0, Some(500.0)) - 2.75).abs() < 1e-12);
        assert_eq!(m.cap(Some(20.0)), 20.0);
        assert_eq!(m.mos(0.4, Some(0.3)), 4.5);
        assert_eq!(m.mos(0.2, Some(0.3)), 1.0);
    }
}
