//! `live` (live streaming, video calls): the video formula damped by latency:
//! MOS = clamp(MOS_video × e^(−max(0, rtt_ms − 100)/300), 1, 4.5).

use super::clamp_mos;
use super::video::VideoModel;
use serde::{Deserialize, Serialize};

/// Constants of the live model (the throughput part uses [`VideoModel`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveModel {
    /// RTT without penalty. ms.
    pub rtt_free_ms: f64,
    /// RTT e-folding scale of the penalty. ms.
    pub rtt_scale_ms: f64,
}

impl Default for LiveModel {
    fn default() -> Self {
        LiveModel {
            rtt_free_ms: 100.0,
            rtt_scale_ms: 300.0,
        }
    }
}

impl LiveModel {
    /// The latency factor for a round-trip time of `rtt_ms`.
    pub fn rtt_factor(&self, rtt_ms: f64) -> f64 {
        (-(rtt_ms - self.rtt_free_ms).max(0.0) / self.rtt_scale_ms).exp()
    }

    /// MOS from the video MOS (throughput part) and the RTT (`None`: no penalty).
    pub fn mos(&self, video_mos: f64, rtt_ms: Option<f64>) -> f64 {
        clamp_mos(video_mos * rtt_ms.map_or(1.0, |r| self.rtt_factor(r)))
    }

    /// MOS from throughput, required bitrate and RTT.
    pub fn mos_from(
        &self,
        video: &VideoModel,
        throughput_mbps: f64,
        required_mbps: Option<f64>,
        rtt_ms: Option<f64>,
    ) -> f64 {
        self.mos(video.mos(throughput_mbps, required_mbps), rtt_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_points() {
        let m = LiveModel::default();
        let v = VideoModel::default();
        assert_eq!(m.mos_from(&v, 10.0, None, Some(100.0)), 4.5);
        assert_eq!(m.mos_from(&v, 10.0, None, Some(20.0)), 4.5);
        // rtt 400 ms: 4.5·e⁻¹ = 1.6555
        assert!((m.mos_from(&v, 10.0, None, Some(400.0)) - 4.5 / std::f64::consts::E).abs() < 1e-9);
        assert_eq!(m.mos_from(&v, 10.0, None, Some(5000.0)), 1.0);
        assert_eq!(m.mos_from(&v, 0.0, None, Some(10.0)), 1.0);
        assert_eq!(m.mos(3.0, None), 3.0);
    }
}
