//! `video` (on-demand streaming): throughput ratio r = achieved downstream throughput
//! while transferring / required bitrate (catalog, default 5 Mbit/s).
//!
//! MOS = 1 + 3.5·min(1, (1 − e^(−k·r)) / (1 − e^(−k))), k = 2.

use super::{clamp_mos, MOS_MIN, MOS_RANGE};
use serde::{Deserialize, Serialize};

/// Constants of the video model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoModel {
    /// Required bitrate when the catalog gives none. Mbit/s.
    pub default_required_mbps: f64,
    /// Curvature k of the saturation curve.
    pub k: f64,
    /// Minimum downstream payload in the window for throughput to be meaningful (short
    /// transfers are RTT-bound); below it the category falls back to the web model. Bytes.
    pub min_bytes: u64,
    /// Throughput is also meaningful below `min_bytes` when the downstream transfer lasted
    /// at least this many round trips (an unconstrained transfer under `min_bytes` ends
    /// within ~5 RTTs of slow start; one lasting longer is rate-limited). 0 disables.
    pub min_rtts: f64,
}

impl Default for VideoModel {
    fn default() -> Self {
        VideoModel {
            default_required_mbps: 5.0,
            k: 2.0,
            min_bytes: 250_000,
            min_rtts: 8.0,
        }
    }
}

impl VideoModel {
    /// MOS for a throughput ratio `r` (achieved / required).
    pub fn mos_ratio(&self, r: f64) -> f64 {
        let r = r.max(0.0);
        let q = ((1.0 - (-self.k * r).exp()) / (1.0 - (-self.k).exp())).min(1.0);
        clamp_mos(MOS_MIN + MOS_RANGE * q)
    }

    /// MOS for `throughput_mbps` against `required_mbps` (default when `None`).
    pub fn mos(&self, throughput_mbps: f64, required_mbps: Option<f64>) -> f64 {
        let req = required_mbps
            .filter(|r| *r > 0.0)
            .unwrap_or(self.default_required_mbps);
        self.mos_ratio(throughput_mbps / req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_points() {
        let m = VideoModel::default();
        assert_eq!(m.mos_ratio(0.0), 1.0);
        assert!((m.mos_ratio(1.0) - 4.5).abs() < 1e-12);
        assert_eq!(m.mos_ratio(3.0), 4.5);
        // r = 0.5: 1 + 3.5·(1 − e⁻¹)/(1 − e⁻²) = 3.5587
        assert!((m.mos_ratio(0.5) - 3.5587).abs() < 1e-4);
        assert!((m.mos(2.5, None) - m.mos_ratio(0.5)).abs() < 1e-12);
        assert!((m.mos(10.0, Some(20.0)) - m.mos_ratio(0.5)).abs() < 1e-12);
    }
}
