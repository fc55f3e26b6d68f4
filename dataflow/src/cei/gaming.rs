//! `gaming`: MOS = 1 + 3.5·e^(−max(0, rtt_ms − 40)/150)·e^(−25·loss_fraction).

use super::{clamp_mos, MOS_MIN, MOS_RANGE};
use serde::{Deserialize, Serialize};

/// Constants of the gaming model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GamingModel {
    /// RTT without penalty. ms.
    pub rtt_free_ms: f64,
    /// RTT e-folding scale. ms.
    pub rtt_scale_ms: f64,
    /// Loss coefficient (per unit loss fraction).
    pub loss_coeff: f64,
}

impl Default for GamingModel {
    fn default() -> Self {
        GamingModel {
            rtt_free_ms: 40.0,
            rtt_scale_ms: 150.0,
            loss_coeff: 25.0,
        }
    }
}

impl GamingModel {
    /// MOS from round-trip time (ms) and loss fraction (0–1).
    pub fn mos(&self, rtt_ms: f64, loss_fraction: f64) -> f64 {
        let lat = (-(rtt_ms - self.rtt_free_ms).max(0.0) / self.rtt_scale_ms).exp();
        let loss = (-self.loss_coeff * loss_fraction.clamp(0.0, 1.0)).exp();
        clamp_mos(MOS_MIN + MOS_RANGE * lat * loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_points() {
        let m = GamingModel::default();
        assert_eq!(m.mos(10.0, 0.0), 4.5);
        assert_eq!(m.mos(40.0, 0.0), 4.5);
        let e1 = (-1.0f64).exp();
        assert!((m.mos(190.0, 0.0) - (1.0 + 3.5 * e1)).abs() < 1e-12);
        assert!((m.mos(40.0, 0.04) - (1.0 + 3.5 * e1)).abs() < 1e-12);
        assert!((m.mos(190.0, 0.04) - (1.0 + 3.5 * e1 * e1)).abs() < 1e-12);
        assert!(m.mos(5000.0, 1.0) - 1.0 < 1e-6);
    }
}
