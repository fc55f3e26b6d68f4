//! Anomaly scores (SPEC §5): robust z = 0.6745·|x − median|/MAD of a metric against its
//! baseline; anomalous when > 3.5.
//!
//! Baselines: the trailing 60 windows of the same (entity, metric), kept in operator state
//! ([`TrailingBaseline`]); or, when the lake holds ≥ 4 weeks, the same hour-of-week
//! computed from the lake and handed in as [`HourOfWeekBaselines`] (it wins when it has an
//! entry for the (entity, metric, hour-of-week)).

use crate::rows::AnomalyRow;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Consistency constant of the MAD for normal data (Iglewicz–Hoaglin).
pub const MAD_CONSTANT: f64 = 0.6745;

/// Anomaly scoring constants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Robust z above which a value is anomalous.
    pub threshold: f64,
    /// Trailing baseline length, windows.
    pub trailing_windows: usize,
    /// Minimum baseline points before scoring.
    pub min_points: usize,
    /// Emit rows for user metrics that are not anomalous too (volume: 5 rows per
    /// user-minute); element rows are always all emitted.
    pub emit_all_user_rows: bool,
    /// MAD floors per metric (a constant baseline has MAD 0): CEI points.
    pub mad_floor_cei: f64,
    /// MAD floor for RTTs, ms.
    pub mad_floor_rtt_ms: f64,
    /// MAD floor for retransmission rates.
    pub mad_floor_retrans: f64,
    /// MAD floor for throughput, Mbit/s.
    pub mad_floor_throughput_mbps: f64,
    /// MAD floor for poor shares.
    pub mad_floor_poor_share: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            threshold: 3.5,
            trailing_windows: 60,
            min_points: 10,
            emit_all_user_rows: false,
            mad_floor_cei: 2.0,
            mad_floor_rtt_ms: 2.0,
            mad_floor_retrans: 0.005,
            mad_floor_throughput_mbps: 0.5,
            mad_floor_poor_share: 0.02,
        }
    }
}

impl AnomalyConfig {
    /// The MAD floor of `metric`.
    pub fn mad_floor(&self, metric: &str) -> f64 {
        match metric {
            "cei" => self.mad_floor_cei,
            "rtt_client_ms" | "rtt_server_ms" => self.mad_floor_rtt_ms,
            "retrans_rate" => self.mad_floor_retrans,
            "throughput_down_mbps" => self.mad_floor_throughput_mbps,
            "poor_share" => self.mad_floor_poor_share,
            _ => 1e-9,
        }
    }
}

/// Median and MAD of `v` (sorts `v`); `None` when empty.
pub fn median_mad(v: &mut [f64]) -> Option<(f64, f64)> {
    fn med(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    if v.is_empty() {
        return None;
    }
    let m = med(v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    Some((m, med(&mut dev)))
}

/// Robust z-score of `x` against `median` and `mad` (floored at `mad_floor`).
pub fn robust_z(x: f64, median: f64, mad: f64, mad_floor: f64) -> f64 {
    MAD_CONSTANT * (x - median).abs() / mad.max(mad_floor).max(f64::MIN_POSITIVE)
}

/// The trailing values of one (entity, metric).
#[derive(Clone, Debug, Default)]
pub struct TrailingBaseline {
    values: VecDeque<(i64, f64)>,
}

impl TrailingBaseline {
    /// Median and MAD of the values in `[at − n·window_s, at)`, after dropping older ones;
    /// `None` with fewer than `min_points`.
    pub fn stats(
        &mut self,
        at: i64,
        window_s: i64,
        n: usize,
        min_points: usize,
    ) -> Option<(f64, f64)> {
        let from = at - n as i64 * window_s;
        while self.values.front().is_some_and(|&(t, _)| t < from) {
            self.values.pop_front();
        }
        let mut v: Vec<f64> = self
            .values
            .iter()
            .filter(|&&(t, _)| t < at)
            .map(|&(_, x)| x)
            .collect();
        if v.len() < min_points.max(1) {
            return None;
        }
        median_mad(&mut v)
    }

    /// Appends the value of window `at` (windows arrive in order).
    pub fn push(&mut self, at: i64, x: f64) {
        self.values.push_back((at, x));
    }

    /// Latest window recorded.
    pub fn last(&self) -> Option<i64> {
        self.values.back().map(|v| v.0)
    }
}

/// Hour of week (0 = Monday 00:00 UTC … 167) of an epoch second.
pub fn hour_of_week(t: i64) -> u16 {
    // 1970-01-01 was a Thursday (day 3 counting from Monday = 0).
    let days = t.div_euclid(86_400);
    let dow = (days + 3).rem_euclid(7);
    (dow * 24 + t.rem_euclid(86_400) / 3600) as u16
}

/// Hour-of-week baselines computed from the lake: `(entity_id, metric, hour_of_week)` →
/// `(median, MAD)`.
#[derive(Clone, Debug, Default)]
pub struct HourOfWeekBaselines {
    /// The baselines.
    pub map: HashMap<(String, String, u16), (f64, f64)>,
}

/// Scores metrics of entities, keeping trailing baselines as state.
#[derive(Debug, Default)]
pub struct Scorer {
    /// Keyed by (FNV-1a hash of the entity id, metric): no allocation per lookup.
    state: HashMap<(u64, &'static str), TrailingBaseline>,
}

/// FNV-1a 64-bit hash of a string.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Scorer {
    /// Scores `value` of `metric` for `entity_id` at window `at`, then records it. Returns
    /// a row when a baseline existed.
    #[allow(clippy::too_many_arguments)]
    pub fn score(
        &mut self,
        cfg: &AnomalyConfig,
        how: Option<&HourOfWeekBaselines>,
        window_s: i64,
        at: i64,
        entity_kind: &str,
        entity_id: &str,
        metric: &'static str,
        value: f64,
    ) -> Option<AnomalyRow> {
        if !value.is_finite() {
            return None;
        }
        let st = self.state.entry((fnv1a(entity_id), metric)).or_default();
        let trailing = st.stats(at, window_s, cfg.trailing_windows, cfg.min_points);
        st.push(at, value);
        let (baseline, (m, mad)) = match how.and_then(|h| {
            h.map
                .get(&(entity_id.to_string(), metric.to_string(), hour_of_week(at)))
        }) {
            Some(&b) => ("hour_of_week", b),
            None => ("trailing_60m", trailing?),
        };
        let score = robust_z(value, m, mad, cfg.mad_floor(metric));
        Some(AnomalyRow {
            window_start_s: at,
            entity_kind: entity_kind.to_string(),
            entity_id: entity_id.to_string(),
            metric: metric.to_string(),
            value,
            baseline_median: m,
            baseline_mad: mad,
            score,
            anomalous: score > cfg.threshold,
            baseline: baseline.to_string(),
        })
    }

    /// Drops the state of entities without a value in the trailing window before `at`
    /// (bounds memory to the active entities).
    pub fn evict(&mut self, at: i64, window_s: i64, cfg: &AnomalyConfig) {
        let from = at - cfg.trailing_windows as i64 * window_s;
        self.state
            .retain(|_, b| b.last().is_some_and(|t| t >= from));
    }

    /// Number of (entity, metric) baselines held.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when no baseline is held.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_z_and_mad() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_mad(&mut v), Some((3.0, 1.0)));
        assert!((robust_z(10.0, 3.0, 1.0, 0.0) - 0.6745 * 7.0).abs() < 1e-12);
        assert_eq!(robust_z(3.0, 3.0, 0.0, 1.0), 0.0);
        assert_eq!(hour_of_week(0), 3 * 24); // Thursday 00:00
        assert_eq!(hour_of_week(4 * 86_400 + 3600), 1); // Monday 01:00
    }

    #[test]
    fn trailing_baseline_scores_after_min_points() {
        let cfg = AnomalyConfig::default();
        let mut s = Scorer::default();
        for i in 0..10 {
            let v = 80.0 + (i % 3) as f64;
            assert!(s
                .score(&cfg, None, 60, i * 60, "user", "u", "cei", v)
                .is_none());
        }
        let r = s
            .score(&cfg, None, 60, 600, "user", "u", "cei", 81.0)
            .unwrap();
        assert!(!r.anomalous);
        assert_eq!(r.baseline, "trailing_60m");
        let r = s
            .score(&cfg, None, 60, 660, "user", "u", "cei", 20.0)
            .unwrap();
        assert!(r.anomalous, "{r:?}");
        assert_eq!(r.baseline_median, 81.0);
        // MAD floor 2: z = 0.6745·61/2.
        assert!((r.score - 0.6745 * 61.0 / 2.0).abs() < 1e-9);
        s.evict(660 + 61 * 60, 60, &cfg);
        assert!(s.is_empty());
        let mut how = HourOfWeekBaselines::default();
        how.map
            .insert(("u".into(), "cei".into(), hour_of_week(720)), (20.0, 5.0));
        let r = s
            .score(&cfg, Some(&how), 60, 720, "user", "u", "cei", 20.0)
            .unwrap();
        assert_eq!((r.baseline.as_str(), r.anomalous), ("hour_of_week", false));
    }
}
