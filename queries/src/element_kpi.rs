//! Element KPI anomalies for demarcation (SPEC §5 anomaly score, §7 step 4 "element KPI
//! anomalies corroborate").
//!
//! The `telemetry` table holds element KPIs in long form (`ts, element_id, metric, value`,
//! e.g. PON utilisation of an OLT port). For the element a verdict blames and the minutes
//! of the user's degradation, every sample of each metric is scored with the robust z
//! `0.6745·|x − median| / MAD` against the same element and metric's samples of the
//! trailing [`DemarcationConfig::kpi_baseline_s`] (60 minutes) before it. The element is
//! **anomalous** when some metric reaches [`DemarcationConfig::kpi_anomaly_z`] (3.5), and
//! **healthy** when it has scored samples and all stay at or below
//! [`DemarcationConfig::kpi_healthy_max_z`]; in between, or without scored samples, the
//! KPIs say nothing.

use crate::demarcate::DemarcationConfig;
use crate::error::Result;
use crate::session::QuerySession;
use crate::util::{col_f64, col_str, col_ts_s, date_of, lit, rfc3339};
use cemflow_lakehouse::Table;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One element KPI sample.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiSample {
    /// Sample time, epoch seconds.
    pub ts_s: i64,
    /// Element id (as `access_element` / `core_element`).
    pub element: String,
    /// Metric name.
    pub metric: String,
    /// Value.
    pub value: f64,
}

/// Loads the `telemetry` samples of `elements` (all elements when `None`) with `ts` in
/// `[from_s, to_s)`. Empty when the lake has no `telemetry` table.
pub async fn load_kpis(
    s: &QuerySession,
    elements: Option<&BTreeSet<&str>>,
    from_s: i64,
    to_s: i64,
) -> Result<Vec<KpiSample>> {
    if !s.has_table(Table::Telemetry) || elements.is_some_and(|e| e.is_empty()) {
        return Ok(Vec::new());
    }
    let mut sql = format!(
        "SELECT ts, element_id, metric, value FROM telemetry WHERE date >= {} AND date <= {} \
         AND ts >= {} AND ts < {}",
        lit(&date_of(from_s)),
        lit(&date_of(to_s)),
        lit(&rfc3339(from_s)),
        lit(&rfc3339(to_s)),
    );
    if let Some(el) = elements {
        let list: Vec<String> = el.iter().map(|e| lit(e)).collect();
        sql.push_str(&format!(" AND element_id IN ({})", list.join(",")));
    }
    let mut out = Vec::new();
    for b in s.sql(&sql).await? {
        let ts = col_ts_s(&b, "ts")?;
        let el = col_str(&b, "element_id")?;
        let me = col_str(&b, "metric")?;
        let va = col_f64(&b, "value")?;
        for i in 0..b.num_rows() {
            let (Some(t), Some(e), Some(m), Some(v)) = (ts[i], el[i].clone(), me[i].clone(), va[i])
            else {
                continue;
            };
            if v.is_finite() {
                out.push(KpiSample {
                    ts_s: t,
                    element: e,
                    metric: m,
                    value: v,
                });
            }
        }
    }
    Ok(out)
}

/// The most deviating scored sample of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricScore {
    /// Metric name.
    pub metric: String,
    /// Time of the sample, epoch seconds.
    pub ts_s: i64,
    /// Its value.
    pub value: f64,
    /// Median of its baseline.
    pub median: f64,
    /// Robust z.
    pub z: f64,
    /// Samples in the baseline.
    pub baseline_samples: usize,
}

/// What an element's KPIs say about it over some minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KpiState {
    /// Some metric's robust z reached the anomaly threshold.
    Anomalous,
    /// Scored samples exist and none deviates.
    Healthy,
    /// No scored sample, or deviations between the healthy and anomalous thresholds.
    Unknown,
}

/// The element's KPI assessment: the per-metric worst scores and the state.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiAssessment {
    /// Element id.
    pub element: String,
    /// Per metric, the sample with the highest z in the minutes.
    pub metrics: Vec<MetricScore>,
    /// Overall state.
    pub state: KpiState,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Robust z of `x` against `baseline` (`None` with fewer than `min_samples`). The MAD is
/// floored at `mad_floor_rel × |median|` (and a tiny absolute value) so a flat baseline does
/// not turn every small wobble into an infinite score.
pub fn robust_z(
    x: f64,
    baseline: &[f64],
    min_samples: usize,
    mad_floor_rel: f64,
) -> Option<(f64, f64)> {
    if baseline.len() < min_samples.max(1) {
        return None;
    }
    let mut b = baseline.to_vec();
    let med = median(&mut b)?;
    let mut dev: Vec<f64> = baseline.iter().map(|v| (v - med).abs()).collect();
    let mad = median(&mut dev)?.max(mad_floor_rel * med.abs()).max(1e-9);
    Some((0.6745 * (x - med).abs() / mad, med))
}

/// Scores `element`'s samples whose minute (`ts` floored to `cfg.minute_s`) is in
/// `minutes` against each sample's trailing baseline.
pub fn assess(
    samples: &[KpiSample],
    element: &str,
    minutes: &BTreeSet<i64>,
    cfg: &DemarcationConfig,
) -> KpiAssessment {
    let minute = cfg.minute_s.max(1);
    let mut by_metric: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.element == element) {
        by_metric
            .entry(s.metric.as_str())
            .or_default()
            .push((s.ts_s, s.value));
    }
    let mut metrics = Vec::new();
    for (metric, mut v) in by_metric {
        v.sort_by_key(|x| x.0);
        let mut best: Option<MetricScore> = None;
        for &(t, x) in &v {
            if !minutes.contains(&(t.div_euclid(minute) * minute)) {
                continue;
            }
            let base: Vec<f64> = v
                .iter()
                .filter(|(bt, _)| *bt < t && *bt >= t - cfg.kpi_baseline_s)
                .map(|b| b.1)
                .collect();
            let Some((z, med)) = robust_z(x, &base, cfg.kpi_min_baseline, cfg.kpi_mad_floor_rel)
            else {
                continue;
            };
            if best.as_ref().is_none_or(|b| z > b.z) {
                best = Some(MetricScore {
                    metric: metric.to_string(),
                    ts_s: t,
                    value: x,
                    median: med,
                    z,
                    baseline_samples: base.len(),
                });
            }
        }
        metrics.extend(best);
    }
    let state = if metrics.iter().any(|m| m.z >= cfg.kpi_anomaly_z) {
        KpiState::Anomalous
    } else if !metrics.is_empty() && metrics.iter().all(|m| m.z <= cfg.kpi_healthy_max_z) {
        KpiState::Healthy
    } else {
        KpiState::Unknown
    };
    KpiAssessment {
        element: element.to_string(),
        metrics,
        state,
    }
}

impl KpiAssessment {
    /// The confidence change it implies: up when anomalous, down when healthy.
    pub fn confidence_delta(&self, cfg: &DemarcationConfig) -> f64 {
        match self.state {
            KpiState::Anomalous => cfg.kpi_confidence_up,
            KpiState::Healthy => -cfg.kpi_confidence_down,
            KpiState::Unknown => 0.0,
        }
    }

    /// Evidence object: element, state, per-metric `{metric, z, value, baseline_median,
    /// baseline_samples, at}` (worst first) and the confidence change.
    pub fn evidence(&self, cfg: &DemarcationConfig) -> Value {
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let mut m: Vec<&MetricScore> = self.metrics.iter().collect();
        m.sort_by(|a, b| b.z.total_cmp(&a.z).then(a.metric.cmp(&b.metric)));
        json!({
            "element": self.element,
            "state": match self.state {
                KpiState::Anomalous => "anomalous",
                KpiState::Healthy => "healthy",
                KpiState::Unknown => "unknown",
            },
            "metrics": m.iter().map(|s| json!({
                "metric": s.metric,
                "z": r3(s.z.min(1e6)),
                "value": r3(s.value),
                "baseline_median": r3(s.median),
                "baseline_samples": s.baseline_samples,
                "at": rfc3339(s.ts_s),
            })).collect::<Vec<_>>(),
            "confidence_delta": r3(self.confidence_delta(cfg)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(element: &str, metric: &str, vals: &[(i64, f64)]) -> Vec<KpiSample> {
        vals.iter()
            .map(|&(t, v)| KpiSample {
                ts_s: t,
                element: element.into(),
                metric: metric.into(),
                value: v,
            })
            .collect()
    }

    #[test]
    fn robust_z_matches_the_formula() {
        // median 10, MAD 1 → z = 0.6745·|15 − 10| / 1
        let (z, med) = robust_z(15.0, &[9.0, 10.0, 11.0, 10.0, 9.0, 11.0], 3, 0.0).unwrap();
        assert_eq!(med, 10.0);
        assert!((z - 0.6745 * 5.0).abs() < 1e-9);
        assert!(robust_z(15.0, &[10.0], 3, 0.0).is_none());
        // flat baseline: MAD floored at 1 % of the median
        let (z, _) = robust_z(50.0, &[40.0; 10], 3, 0.01).unwrap();
        assert!((z - 0.6745 * 10.0 / 0.4).abs() < 1e-9);
    }

    #[test]
    fn anomalous_healthy_and_unknown() {
        let cfg = DemarcationConfig::default();
        let base: Vec<(i64, f64)> = (0..60).map(|i| (i * 60, 30.0 + (i % 5) as f64)).collect();
        let mut hot = base.clone();
        hot.extend((60..65).map(|i| (i * 60, 97.0)));
        let mut calm = base.clone();
        calm.extend((60..65).map(|i| (i * 60, 32.0)));
        let minutes: BTreeSet<i64> = (62..65).map(|i| i * 60).collect();
        let mut s = series("olt2", "pon_util_pct", &hot);
        s.extend(series("olt3", "pon_util_pct", &calm));
        let a = assess(&s, "olt2", &minutes, &cfg);
        assert_eq!(a.state, KpiState::Anomalous);
        assert_eq!(a.metrics[0].metric, "pon_util_pct");
        assert!(a.metrics[0].z > 10.0, "{a:?}");
        assert!(a.confidence_delta(&cfg) > 0.0);
        let h = assess(&s, "olt3", &minutes, &cfg);
        assert_eq!(h.state, KpiState::Healthy, "{h:?}");
        assert!(h.confidence_delta(&cfg) < 0.0);
        let u = assess(&s, "olt9", &minutes, &cfg);
        assert_eq!(u.state, KpiState::Unknown);
        assert_eq!(u.confidence_delta(&cfg), 0.0);
        let e = a.evidence(&cfg);
        assert_eq!(e["state"], "anomalous");
        assert_eq!(e["metrics"][0]["metric"], "pon_util_pct");
    }
}
