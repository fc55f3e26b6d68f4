//! Anomaly scores (SPEC §5): robust z = 0.6745·|x − median|/MAD of a metric against its
//! baseline; anomalous when > 3.5.
//!
//! Baselines: the trailing 60 windows of the same (entity, metric), kept in operator state
//! by a [`Scorer`]; or, when the lake holds ≥ 4 weeks, the same hour-of-week computed from
//! the lake and handed in as [`HourOfWeekBaselines`] (it wins when it has an entry for the
//! (entity, metric, hour-of-week)).
//!
//! **State and cost.** Per entity the scorer keeps, for each metric, a ring of the last
//! `trailing_windows` values (slot = window index mod n) and the same values kept sorted,
//! both as 16-bit *bfloat16* codes (the upper half of the `f32`; 8 significant bits, ≤ 0.4 %
//! relative rounding — the scored value itself is exact). All metrics are ≥ 0, so the codes
//! sort like the values. Per window and metric an update is two binary searches and two
//! short `memmove`s; the median is read off the sorted values. When only anomalous rows
//! are wanted (user metrics), the MAD is not computed unless the value could be anomalous:
//! MAD ≥ the k-th smallest deviation, and counting the deviations below the anomaly limit is
//! two more binary searches. State: 4 bytes per (entity, metric, window) — 1.2 kB per user
//! with 5 metrics and 60 windows — evicted once an entity was idle for the whole window.

use crate::rows::AnomalyRow;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Consistency constant of the MAD for normal data (Iglewicz–Hoaglin).
pub const MAD_CONSTANT: f64 = 0.6745;

/// Most metrics one [`Scorer`] tracks per entity.
pub const MAX_METRICS: usize = 8;

/// Anomaly scoring constants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Robust z above which a value is anomalous.
    pub threshold: f64,
    /// Trailing baseline length, windows (at most 65 534).
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

    fn windows(&self) -> usize {
        self.trailing_windows.clamp(1, u16::MAX as usize - 1)
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

/// FNV-1a 64-bit hash of a string (entity keys of elements).
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Code of an empty ring slot (a NaN pattern [`encode`] never produces).
const ABSENT: u16 = u16::MAX;

/// bfloat16 code of a metric value (negative values count as 0; rounds to nearest even).
fn encode(v: f64) -> u16 {
    let f = (v.max(0.0) as f32).min(f32::MAX);
    let b = f.to_bits();
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// Value of a bfloat16 code.
fn decode(k: u16) -> f64 {
    f32::from_bits((k as u32) << 16) as f64
}

/// Baseline statistics of one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Median of the baseline.
    pub median: f64,
    /// MAD of the baseline.
    pub mad: f64,
    /// Robust z of the value.
    pub score: f64,
    /// `score > threshold`.
    pub anomalous: bool,
    /// `trailing_60m` or `hour_of_week`.
    pub baseline: &'static str,
}

impl Score {
    /// The anomaly row of this score.
    pub fn row(
        &self,
        window_start_s: i64,
        entity_kind: &str,
        entity_id: &str,
        metric: &str,
        value: f64,
    ) -> AnomalyRow {
        AnomalyRow {
            window_start_s,
            entity_kind: entity_kind.to_string(),
            entity_id: entity_id.to_string(),
            metric: metric.to_string(),
            value,
            baseline_median: self.median,
            baseline_mad: self.mad,
            score: self.score,
            anomalous: self.anomalous,
            baseline: self.baseline.to_string(),
        }
    }
}

/// The trailing values of one entity: per metric a ring (`n` slots) and the sorted values.
#[derive(Clone, Debug)]
struct Series {
    /// Window index of the latest recorded window.
    last: i64,
    /// Values per metric in the sorted part.
    lens: [u16; MAX_METRICS],
    /// Per metric `2n` codes: ring, then sorted values (first `lens[m]` used).
    data: Box<[u16]>,
}

impl Series {
    fn new(metrics: usize, n: usize, last: i64) -> Series {
        Series {
            last,
            lens: [0; MAX_METRICS],
            data: vec![ABSENT; metrics * 2 * n].into_boxed_slice(),
        }
    }

    fn metrics(&self, n: usize) -> usize {
        self.data.len() / (2 * n)
    }

    /// Removes the value of ring slot `slot` of metric `m` (if any).
    fn clear_slot(&mut self, m: usize, n: usize, slot: usize) {
        let base = m * 2 * n;
        let old = std::mem::replace(&mut self.data[base + slot], ABSENT);
        if old == ABSENT {
            return;
        }
        let len = self.lens[m] as usize;
        let sorted = &mut self.data[base + n..base + n + len];
        if let Ok(i) = sorted.binary_search(&old) {
            sorted.copy_within(i + 1.., i);
            self.lens[m] -= 1;
        }
    }

    /// Drops the windows before `wi − n` (the baseline of window `wi` is `[wi − n, wi)`).
    fn expire(&mut self, wi: i64, n: usize) {
        let drop_to = wi - n as i64 - 1; // last window index to drop
        if drop_to < self.last - n as i64 + 1 {
            return;
        }
        let metrics = self.metrics(n);
        if drop_to >= self.last {
            for m in 0..metrics {
                let base = m * 2 * n;
                self.data[base..base + n].fill(ABSENT);
                self.lens[m] = 0;
            }
            return;
        }
        for w in (self.last - n as i64 + 1)..=drop_to {
            let slot = w.rem_euclid(n as i64) as usize;
            for m in 0..metrics {
                self.clear_slot(m, n, slot);
            }
        }
    }

    /// Records `code` as metric `m`'s value of window `wi` (replacing window `wi − n`).
    fn put(&mut self, m: usize, n: usize, wi: i64, code: Option<u16>) {
        let slot = wi.rem_euclid(n as i64) as usize;
        self.clear_slot(m, n, slot);
        let Some(code) = code else { return };
        let base = m * 2 * n;
        self.data[base + slot] = code;
        let len = self.lens[m] as usize;
        let i = self.data[base + n..base + n + len].partition_point(|&c| c < code);
        self.data
            .copy_within(base + n + i..base + n + len, base + n + i + 1);
        self.data[base + n + i] = code;
        self.lens[m] += 1;
    }

    fn sorted(&self, m: usize, n: usize) -> &[u16] {
        let base = m * 2 * n + n;
        &self.data[base..base + self.lens[m] as usize]
    }
}

fn median_of(s: &[u16]) -> f64 {
    let n = s.len();
    if n % 2 == 1 {
        decode(s[n / 2])
    } else {
        (decode(s[n / 2 - 1]) + decode(s[n / 2])) / 2.0
    }
}

/// Number of values within `(median − lim, median + lim)`.
fn count_within(s: &[u16], median: f64, lim: f64) -> usize {
    let hi = s.partition_point(|&c| decode(c) < median + lim);
    let lo = s.partition_point(|&c| decode(c) <= median - lim);
    hi.saturating_sub(lo)
}

/// MAD of sorted values around `median`: merges the deviations of both sides in order.
fn mad_of(s: &[u16], median: f64) -> f64 {
    let n = s.len();
    let k = n.div_ceil(2); // 1-based rank of the (lower) middle deviation
    let mut left = s.partition_point(|&c| decode(c) < median); // values [0, left) below
    let mut right = left;
    let mut take = || {
        let dl = (left > 0).then(|| median - decode(s[left - 1]));
        let dr = (right < n).then(|| decode(s[right]) - median);
        match (dl, dr) {
            (Some(a), Some(b)) if a <= b => {
                left -= 1;
                a
            }
            (Some(a), None) => {
                left -= 1;
                a
            }
            (_, Some(b)) => {
                right += 1;
                b
            }
            (None, None) => 0.0,
        }
    };
    let mut d = 0.0;
    for _ in 0..k {
        d = take();
    }
    if n % 2 == 1 {
        d
    } else {
        (d + take()) / 2.0
    }
}

/// Scores metrics of entities against their trailing baselines (operator state).
#[derive(Debug)]
pub struct Scorer {
    metrics: &'static [&'static str],
    n: usize,
    state: HashMap<u64, Series, foldhash::fast::FixedState>,
}

impl Scorer {
    /// A scorer of the metrics `metrics` (at most [`MAX_METRICS`]).
    pub fn new(metrics: &'static [&'static str]) -> Scorer {
        Scorer {
            metrics: &metrics[..metrics.len().min(MAX_METRICS)],
            n: 0,
            state: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)),
        }
    }

    /// The metric names, in the order of [`Scorer::observe`]'s values.
    pub fn metrics(&self) -> &'static [&'static str] {
        self.metrics
    }

    /// Scores the values of entity `key` in the window starting at `at` (one per metric,
    /// `None` when not measured), then records them. Appends `(metric index, score)` to
    /// `out` for every value with a baseline (≥ `min_points` points, or an hour-of-week
    /// entry for `entity_id`) when `all`, else only for the anomalous ones.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        cfg: &AnomalyConfig,
        how: Option<&HourOfWeekBaselines>,
        window_s: i64,
        at: i64,
        key: u64,
        entity_id: &str,
        values: &[Option<f64>],
        all: bool,
        out: &mut Vec<(usize, Score)>,
    ) {
        let n = cfg.windows();
        if self.n != n {
            self.state.clear();
            self.n = n;
        }
        let wi = at.div_euclid(window_s.max(1));
        let metrics = self.metrics.len();
        let s = self
            .state
            .entry(key)
            .or_insert_with(|| Series::new(metrics, n, wi - n as i64 - 1));
        let fresh = wi > s.last;
        if fresh {
            s.expire(wi, n);
        }
        for (m, v) in values.iter().take(metrics).enumerate() {
            let v = v.filter(|x| x.is_finite());
            if let Some(x) = v {
                let metric = self.metrics[m];
                let floor = cfg.mad_floor(metric);
                let hw = how.and_then(|h| {
                    h.map
                        .get(&(entity_id.to_string(), metric.to_string(), hour_of_week(at)))
                });
                let score = match hw {
                    Some(&(med, mad)) => Some(full(cfg, x, med, mad, floor, "hour_of_week")),
                    None => trailing(cfg, s.sorted(m, n), x, floor, all),
                };
                if let Some(sc) = score.filter(|sc| all || sc.anomalous) {
                    out.push((m, sc));
                }
            }
            if fresh {
                s.put(m, n, wi, v.map(encode));
            }
        }
        if fresh {
            s.last = wi;
        }
    }

    /// Drops the state of entities without a value in the trailing window before `at`
    /// (bounds memory to the active entities).
    pub fn evict(&mut self, at: i64, window_s: i64, cfg: &AnomalyConfig) {
        let from = at.div_euclid(window_s.max(1)) - cfg.windows() as i64;
        self.state.retain(|_, s| s.last >= from);
    }

    /// Number of entities held.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when no entity is held.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Bytes of state held (entries, hash table slots and value buffers; allocator
    /// overhead excluded).
    pub fn state_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, Series)>() + 1;
        self.state.capacity() * entry
            + self
                .state
                .values()
                .map(|s| s.data.len() * std::mem::size_of::<u16>())
                .sum::<usize>()
    }
}

fn full(cfg: &AnomalyConfig, x: f64, med: f64, mad: f64, floor: f64, b: &'static str) -> Score {
    let score = robust_z(x, med, mad, floor);
    Score {
        median: med,
        mad,
        score,
        anomalous: score > cfg.threshold,
        baseline: b,
    }
}

/// Score against the trailing values `s` (sorted codes); with `all` false, `None` early
/// when the value cannot be anomalous.
fn trailing(cfg: &AnomalyConfig, s: &[u16], x: f64, floor: f64, all: bool) -> Option<Score> {
    if s.len() < cfg.min_points.max(1) {
        return None;
    }
    let med = median_of(s);
    if !all {
        // Anomalous ⟺ max(MAD, floor) < 0.6745·|x − med| / threshold (= lim). Reject with
        // a margin against rounding: the floor, or MAD ≥ the k-th smallest deviation when
        // fewer than k deviations lie below the limit.
        let lim = MAD_CONSTANT * (x - med).abs() / cfg.threshold * (1.0 + 1e-9) + 1e-12;
        if floor >= lim || count_within(s, med, lim) < s.len().div_ceil(2) {
            return None;
        }
    }
    Some(full(cfg, x, med, mad_of(s, med), floor, "trailing_60m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[&str] = &["cei", "rtt_client_ms"];

    fn one(s: &mut Scorer, at: i64, v: f64, all: bool) -> Option<Score> {
        let cfg = AnomalyConfig::default();
        let mut out = Vec::new();
        s.observe(&cfg, None, 60, at, 7, "u", &[Some(v), None], all, &mut out);
        out.into_iter().find(|o| o.0 == 0).map(|o| o.1)
    }

    #[test]
    fn robust_z_and_mad() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_mad(&mut v), Some((3.0, 1.0)));
        assert!((robust_z(10.0, 3.0, 1.0, 0.0) - 0.6745 * 7.0).abs() < 1e-12);
        assert_eq!(robust_z(3.0, 3.0, 0.0, 1.0), 0.0);
        assert_eq!(hour_of_week(0), 3 * 24); // Thursday 00:00
        assert_eq!(hour_of_week(4 * 86_400 + 3600), 1); // Monday 01:00
        for x in [0.0, 1.0, 3.0, 81.0, 100.0, 0.005, 1234.5] {
            let r = decode(encode(x));
            assert!((r - x).abs() <= x * 0.004, "{x} → {r}");
        }
        assert!(encode(2.0) < encode(2.5) && encode(-1.0) == encode(0.0));
    }

    #[test]
    fn incremental_median_mad_match_the_definition() {
        // Values with a pattern of gaps, 150 windows: the scorer's median/MAD equal a
        // direct computation over the (bf16-rounded) trailing 60 windows every time.
        let cfg = AnomalyConfig::default();
        let mut s = Scorer::new(M);
        let mut hist: Vec<(i64, f64)> = Vec::new();
        let mut x = 17u64;
        for w in 0..150i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) {
                continue; // no value this window
            }
            let v = (x % 1000) as f64 / 7.0;
            let at = w * 60;
            let got = one(&mut s, at, v, true);
            let mut base: Vec<f64> = hist
                .iter()
                .filter(|&&(t, _)| t >= at - 3600 && t < at)
                .map(|&(_, v)| decode(encode(v)))
                .collect();
            if base.len() >= cfg.min_points {
                let (m, mad) = median_mad(&mut base).unwrap();
                let g = got.expect("scored");
                assert_eq!((g.median, g.mad), (m, mad), "window {w}");
            } else {
                assert!(got.is_none());
            }
            hist.push((at, v));
        }
    }

    #[test]
    fn trailing_baseline_scores_after_min_points() {
        let cfg = AnomalyConfig::default();
        let mut s = Scorer::new(M);
        for i in 0..10 {
            let v = 80.0 + (i % 3) as f64;
            assert!(one(&mut s, i * 60, v, true).is_none());
        }
        let r = one(&mut s, 600, 81.0, true).unwrap();
        assert!(!r.anomalous);
        assert_eq!(r.baseline, "trailing_60m");
        // Not anomalous: nothing when only anomalous scores are wanted.
        let mut t = Scorer::new(M);
        for i in 0..11 {
            assert!(one(&mut t, i * 60, 80.0 + (i % 3) as f64, false).is_none());
        }
        let r = one(&mut s, 660, 20.0, false).unwrap();
        assert!(r.anomalous, "{r:?}");
        assert_eq!(r.median, 81.0);
        // MAD floor 2: z = 0.6745·61/2.
        assert!((r.score - 0.6745 * 61.0 / 2.0).abs() < 1e-9);
        assert_eq!(s.len(), 1);
        s.evict(660 + 61 * 60, 60, &cfg);
        assert!(s.is_empty());
        let mut how = HourOfWeekBaselines::default();
        how.map
            .insert(("u".into(), "cei".into(), hour_of_week(720)), (20.0, 5.0));
        let mut out = Vec::new();
        s.observe(
            &cfg,
            Some(&how),
            60,
            720,
            7,
            "u",
            &[Some(20.0)],
            true,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].1.baseline, out[0].1.anomalous),
            ("hour_of_week", false)
        );
    }

    #[test]
    fn state_per_user_is_bounded() {
        // 20 k users × 5 metrics × 60 windows of history: ≤ 1.4 kB per user, evicted
        // when idle for the whole trailing window.
        let cfg = AnomalyConfig::default();
        let mut s = Scorer::new(&["a", "b", "c", "d", "e"]);
        let mut out = Vec::new();
        for w in 0..61i64 {
            for u in 0..20_000u64 {
                let v = Some((u % 97) as f64 + w as f64);
                s.observe(&cfg, None, 60, w * 60, u, "", &[v; 5], false, &mut out);
            }
        }
        let per_user = s.state_bytes() / s.len();
        eprintln!("anomaly state: {per_user} bytes per user");
        assert!(per_user <= 1400, "{per_user} bytes per user");
        s.evict(122 * 60, 60, &cfg);
        assert!(s.is_empty());
    }

    #[test]
    fn fast_path_agrees_with_full_scores() {
        // For random baselines and values, `all = false` returns exactly the anomalous
        // scores `all = true` finds.
        let mut x = 99u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..300 {
            let mut a = Scorer::new(M);
            let mut b = Scorer::new(M);
            let n = 10 + (rnd() % 60) as i64;
            let spread = 1 + rnd() % 50;
            for w in 0..=n {
                let v = 50.0
                    + (rnd() % spread) as f64 / 3.0
                    + if w == n { (rnd() % 80) as f64 } else { 0.0 };
                let fa = one(&mut a, w * 60, v, true).filter(|s| s.anomalous);
                let fb = one(&mut b, w * 60, v, false);
                assert_eq!(fa, fb, "case {case} window {w}");
            }
        }
    }
}
