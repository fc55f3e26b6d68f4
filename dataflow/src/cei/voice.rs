//! `voice`: ITU-T G.107 E-model (simplified as in SPEC §5).
//!
//! d = rtt/2 + 2·jitter + 20 ms; Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3);
//! Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl + Bpl) with Ie = 0, Bpl = 4.3, Ppl = loss %;
//! R = 93.2 − Id − Ie,eff, clamped to [0, 100];
//! MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R), clamped to [1, 4.5].

use super::clamp_mos;
use serde::{Deserialize, Serialize};

/// Constants of the E-model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceModel {
    /// Basic signal-to-noise ratio R₀ (minus Is), the R of a perfect call.
    pub r0: f64,
    /// Fixed delay added to the one-way delay (codec, packetisation, jitter buffer). ms.
    pub fixed_delay_ms: f64,
    /// Jitter multiplier (jitter-buffer delay). dimensionless.
    pub jitter_factor: f64,
    /// Id slope below the knee. per ms.
    pub id_slope: f64,
    /// Additional Id slope above the knee. per ms.
    pub id_knee_slope: f64,
    /// Id knee. ms.
    pub id_knee_ms: f64,
    /// Equipment impairment Ie of the codec (0 for G.711).
    pub ie: f64,
    /// Packet-loss robustness Bpl of the codec (4.3 for G.711 without PLC).
    pub bpl: f64,
}

impl Default for VoiceModel {
    fn default() -> Self {
        VoiceModel {
            r0: 93.2,
            fixed_delay_ms: 20.0,
            jitter_factor: 2.0,
            id_slope: 0.024,
            id_knee_slope: 0.11,
            id_knee_ms: 177.3,
            ie: 0.0,
            bpl: 4.3,
        }
    }
}

/// The E-model's intermediate values (for tests and evidence).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EModel {
    /// One-way mouth-to-ear delay d. ms.
    pub d_ms: f64,
    /// Delay impairment Id.
    pub id: f64,
    /// Effective equipment impairment Ie,eff.
    pub ie_eff: f64,
    /// Transmission rating R (clamped to [0, 100]).
    pub r: f64,
    /// MOS in [1, 4.5].
    pub mos: f64,
}

impl VoiceModel {
    /// One-way delay from the round-trip time and the jitter. ms.
    pub fn delay_ms(&self, rtt_ms: f64, jitter_ms: f64) -> f64 {
        rtt_ms.max(0.0) / 2.0 + self.jitter_factor * jitter_ms.max(0.0) + self.fixed_delay_ms
    }

    /// Delay impairment Id for a one-way delay of `d_ms`.
    pub fn id(&self, d_ms: f64) -> f64 {
        self.id_slope * d_ms + self.id_knee_slope * (d_ms - self.id_knee_ms).max(0.0)
    }

    /// Effective equipment impairment for `loss_pct` percent random packet loss.
    pub fn ie_eff(&self, loss_pct: f64) -> f64 {
        let p = loss_pct.clamp(0.0, 100.0);
        if p + self.bpl <= 0.0 {
            return self.ie;
        }
        self.ie + (95.0 - self.ie) * p / (p + self.bpl)
    }

    /// The E-model from one-way delay `d_ms` and `loss_pct`.
    pub fn from_delay(&self, d_ms: f64, loss_pct: f64) -> EModel {
        let id = self.id(d_ms);
        let ie_eff = self.ie_eff(loss_pct);
        let r = (self.r0 - id - ie_eff).clamp(0.0, 100.0);
        EModel {
            d_ms,
            id,
            ie_eff,
            r,
            mos: r_to_mos(r),
        }
    }

    /// MOS from RTT, jitter and loss (each `None` → 0).
    pub fn mos(&self, rtt_ms: Option<f64>, jitter_ms: Option<f64>, loss_pct: Option<f64>) -> f64 {
        let d = self.delay_ms(rtt_ms.unwrap_or(0.0), jitter_ms.unwrap_or(0.0));
        self.from_delay(d, loss_pct.unwrap_or(0.0)).mos
    }
}

/// G.107 R → MOS: 1 + 0.035R + 7·10⁻⁶·R(R − 60)(100 − R) (R clamped to [0, 100]), clamped
/// to [1, 4.5].
pub fn r_to_mos(r: f64) -> f64 {
    let r = r.clamp(0.0, 100.0);
    clamp_mos(1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) {
        assert!((a - b).abs() < eps, "{a} vs {b}");
    }

    #[test]
    fn issue_6_reference_values() {
        let m = VoiceModel::default();
        close(r_to_mos(93.2), 4.41, 0.005);
        let e = m.from_delay(300.0, 0.0);
        close(e.id, 20.70, 0.005);
        close(e.r, 72.50, 0.005);
        close(e.mos, 3.71, 0.005);
        let e = m.from_delay(20.0, 2.0);
        close(e.ie_eff, 30.16, 0.005);
        close(e.r, 62.56, 0.005);
        close(e.mos, 3.23, 0.005);
    }

    #[test]
    fn boundary_points() {
        let m = VoiceModel::default();
        // Perfect network: d = 20 ms → Id = 0.48, R = 92.72.
        let e = m.from_delay(m.delay_ms(0.0, 0.0), 0.0);
        close(e.r, 92.72, 1e-9);
        // Knee: no extra slope at exactly 177.3 ms.
        close(m.id(177.3), 0.024 * 177.3, 1e-12);
        // d = 40 + 2·10 + 20 = 80 ms from rtt 80, jitter 10.
        close(m.delay_ms(80.0, 10.0), 80.0, 1e-12);
        // Total loss → R clamped at 0 → MOS 1.
        assert_eq!(m.mos(Some(2000.0), Some(100.0), Some(100.0)), 1.0);
        assert_eq!(r_to_mos(0.0), 1.0);
        assert_eq!(r_to_mos(100.0), 4.5);
        close(m.mos(None, None, None), r_to_mos(92.72), 1e-12);
    }
}
