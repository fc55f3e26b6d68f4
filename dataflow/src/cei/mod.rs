//! Experience models (SPEC §5): per service category a MOS in [1, 4.5] from the window's
//! KPIs, the CEI `100·(MOS − 1)/3.5`, the user's overall CEI and the poor-user rule.
//!
//! Every function here is pure; every constant lives in [`CeiConfig`] (serde, defaults =
//! SPEC). One file per model: [`web`], [`video`], [`live`], [`voice`], [`gaming`],
//! [`download`].

pub mod download;
pub mod gaming;
pub mod live;
pub mod video;
pub mod voice;
pub mod web;

use cemflow_ingest::catalog::Category;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

pub use download::DownloadModel;
pub use gaming::GamingModel;
pub use live::LiveModel;
pub use video::VideoModel;
pub use voice::{r_to_mos, EModel, VoiceModel};
pub use web::WebModel;

/// Lowest MOS.
pub const MOS_MIN: f64 = 1.0;
/// Highest MOS.
pub const MOS_MAX: f64 = 4.5;
/// `MOS_MAX − MOS_MIN`.
pub const MOS_RANGE: f64 = MOS_MAX - MOS_MIN;

/// Clamps a MOS to [1, 4.5] (NaN → 1).
pub fn clamp_mos(m: f64) -> f64 {
    if m.is_nan() {
        MOS_MIN
    } else {
        m.clamp(MOS_MIN, MOS_MAX)
    }
}

/// CEI from a MOS: `100·(MOS − 1)/3.5`, clamped to [0, 100].
pub fn mos_to_cei(mos: f64) -> f64 {
    (100.0 * (clamp_mos(mos) - MOS_MIN) / MOS_RANGE).clamp(0.0, 100.0)
}

/// MOS from a CEI (inverse of [`mos_to_cei`]).
pub fn cei_to_mos(cei: f64) -> f64 {
    clamp_mos(MOS_MIN + MOS_RANGE * cei.clamp(0.0, 100.0) / 100.0)
}

/// The overall (`all`) rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverallConfig {
    /// A category with at least this many active seconds is *critical* … Seconds.
    pub critical_active_s: f64,
    /// … when its CEI is below this; the overall CEI is then at most that category's CEI.
    pub critical_cei: f64,
}

impl Default for OverallConfig {
    fn default() -> Self {
        OverallConfig {
            critical_active_s: 10.0,
            critical_cei: 40.0,
        }
    }
}

/// Poor minutes and poor users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoorConfig {
    /// A (user, minute, category) is poor when its CEI is below this.
    pub cei_below: f64,
    /// A user is poor with at least this many poor overall minutes …
    pub min_minutes: usize,
    /// … among the last this many windows (the current one included).
    pub lookback_minutes: usize,
    /// A user-minute (its `all` row) is also poor when one of its rated categories active
    /// for at least `category_min_active_s` is (CEI below `cei_below`), not only when the
    /// overall CEI is. The overall CEI (SPEC §5) is weighted by active seconds, and the
    /// active seconds of chunked streaming (video/live), RTP and game traffic count only
    /// the time bytes flow, not the time the user is engaged: a stalling video or a
    /// choppy call next to some web browsing averages out above 60 while the customer
    /// perceives a poor minute. The `all` row's `cei` stays SPEC §5's overall CEI.
    pub category_poor: bool,
    /// See `category_poor`. Seconds.
    pub category_min_active_s: f64,
}

impl Default for PoorConfig {
    fn default() -> Self {
        PoorConfig {
            cei_below: 60.0,
            min_minutes: 3,
            lookback_minutes: 15,
            category_poor: true,
            category_min_active_s: 0.0,
        }
    }
}

/// How the probe's loss counts become the path loss the models read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// Sequence-numbered traffic (RTP, game datagrams) seen in both directions: the
    /// probe counts each direction's gaps on one leg only (upstream packets before the
    /// probe on the client leg, downstream ones on the server leg), while every packet
    /// crosses both legs. The path loss is the sum of the two directions' rates, which
    /// for balanced two-way streams is this factor × the pooled lost/expected ratio
    /// (1 = report the pooled ratio as is). One-way streams keep the pooled ratio.
    pub two_way_seq_factor: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            two_way_seq_factor: 2.0,
        }
    }
}

/// All constants of the experience models (`[cei]` in `cemflow.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CeiConfig {
    /// Web model (G.1030 log law).
    pub web: WebModel,
    /// Video model (throughput ratio).
    pub video: VideoModel,
    /// Live model (video × latency factor).
    pub live: LiveModel,
    /// Voice model (E-model).
    pub voice: VoiceModel,
    /// Gaming model.
    pub gaming: GamingModel,
    /// Download model (Weber–Fechner).
    pub download: DownloadModel,
    /// Overall rule.
    pub overall: OverallConfig,
    /// Poor minute / poor user rule.
    pub poor: PoorConfig,
    /// Path loss from the probe's counts.
    pub loss: LossConfig,
}

/// The KPIs a category model reads, aggregated over one group (a user's flows of one
/// category in one window, or one flow).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ModelInput {
    /// Median transaction time (TCP + TLS handshake + TTFB). ms.
    pub txn_ms: Option<f64>,
    /// Round-trip time through the probe: client leg + server leg (whichever measured). ms.
    pub rtt_ms: Option<f64>,
    /// RTP interarrival jitter. ms.
    pub jitter_ms: Option<f64>,
    /// Packet loss. Percent.
    pub loss_pct: Option<f64>,
    /// Downstream throughput while transferring. Mbit/s.
    pub throughput_mbps: Option<f64>,
    /// Downstream payload in the window. Bytes.
    pub payload_down: u64,
    /// Time with downstream data in flight (the throughput's denominator). Seconds.
    pub active_down_s: f64,
    /// Bitrate the application needs (video/live). Mbit/s.
    pub required_mbps: Option<f64>,
    /// Subscriber's plan. Mbit/s.
    pub plan_mbps: Option<f64>,
    /// True when the group carried RTP (voice KPIs measured).
    pub rtp: bool,
}

impl CeiConfig {
    /// MOS of category `cat` from `k`; `None` when none of the model's inputs (nor its
    /// fallback's) were measured — the category is then *unrated*: its row shows MOS 4.5 /
    /// CEI 100 and it carries no weight in the overall CEI.
    ///
    /// Fallbacks (documented in docs/cei.md): `video`/`download` with less than `min_bytes`
    /// downstream payload (unless the transfer lasted ≥ `min_rtts` RTTs), or no
    /// throughput, use the web model; `live` without throughput is
    /// rated on latency alone; `other` uses the web model.
    pub fn category_mos(&self, cat: Category, k: &ModelInput) -> Option<f64> {
        let web = || self.web.mos_from(k.txn_ms, k.rtt_ms);
        // Throughput says something when the transfer was large or lasted many RTTs.
        let thr = |min_bytes: u64, min_rtts: f64| {
            k.throughput_mbps.filter(|_| {
                k.payload_down >= min_bytes
                    || (min_rtts > 0.0
                        && k.rtt_ms
                            .is_some_and(|r| k.active_down_s * 1000.0 >= min_rtts * r))
            })
        };
        match cat {
            Category::Web | Category::Other => web(),
            Category::Video => match thr(self.video.min_bytes, self.video.min_rtts) {
                Some(t) => Some(self.video.mos(t, k.required_mbps)),
                None => web(),
            },
            Category::Live => match thr(self.video.min_bytes, self.video.min_rtts) {
                Some(t) => Some(
                    self.live
                        .mos_from(&self.video, t, k.required_mbps, k.rtt_ms),
                ),
                None => k.rtt_ms.map(|r| self.live.mos(MOS_MAX, Some(r))),
            },
            Category::Voice => (k.rtp || k.rtt_ms.is_some() || k.loss_pct.is_some())
                .then(|| self.voice.mos(k.rtt_ms, k.jitter_ms, k.loss_pct)),
            Category::Gaming => k
                .rtt_ms
                .map(|r| self.gaming.mos(r, k.loss_pct.unwrap_or(0.0) / 100.0)),
            Category::Download => match thr(self.download.min_bytes, self.download.min_rtts) {
                Some(t) => Some(self.download.mos(t, k.plan_mbps)),
                None => web(),
            },
        }
    }

    /// Overall CEI from the rated categories' `(cei, active_s)`: the active-seconds-weighted
    /// mean (plain mean when no category was active), then the worst-critical rule: any
    /// category with ≥ `critical_active_s` active seconds and CEI < `critical_cei` caps
    /// the overall CEI at its CEI. `None` without rated categories.
    pub fn overall_cei(&self, parts: &[(f64, f64)]) -> Option<f64> {
        if parts.is_empty() {
            return None;
        }
        let w: f64 = parts.iter().map(|p| p.1.max(0.0)).sum();
        let mut cei = if w > 0.0 {
            parts.iter().map(|p| p.0 * p.1.max(0.0)).sum::<f64>() / w
        } else {
            parts.iter().map(|p| p.0).sum::<f64>() / parts.len() as f64
        };
        for &(c, a) in parts {
            if a >= self.overall.critical_active_s && c < self.overall.critical_cei {
                cei = cei.min(c);
            }
        }
        Some(cei.clamp(0.0, 100.0))
    }

    /// True when a CEI makes the minute poor.
    pub fn is_poor(&self, cei: f64) -> bool {
        cei < self.poor.cei_below
    }

    /// True when a user-minute is poor: its overall CEI is, or (with
    /// [`PoorConfig::category_poor`]) one of its rated categories' `(cei, active_s)` with at
    /// least `category_min_active_s` active seconds is.
    pub fn is_poor_minute(&self, overall_cei: f64, categories: &[(f64, f64)]) -> bool {
        self.is_poor(overall_cei)
            || (self.poor.category_poor
                && categories
                    .iter()
                    .any(|&(c, a)| a >= self.poor.category_min_active_s && self.is_poor(c)))
    }

    /// Poor-user rule over a user's overall CEIs `(window_start_s, cei)`: at least
    /// `min_minutes` poor windows among the `lookback_minutes` windows ending with the one
    /// starting at `at_window_s` (windows of `window_s` seconds).
    pub fn is_poor_user(
        &self,
        minutes: impl IntoIterator<Item = (i64, f64)>,
        at_window_s: i64,
        window_s: i64,
    ) -> bool {
        let from = at_window_s - (self.poor.lookback_minutes as i64 - 1) * window_s;
        minutes
            .into_iter()
            .filter(|&(t, c)| t >= from && t <= at_window_s && self.is_poor(c))
            .count()
            >= self.poor.min_minutes
    }
}

/// Streaming form of the poor-user rule for one user: push each overall window in
/// time order, read [`PoorUserTracker::is_poor_user`].
#[derive(Clone, Debug, Default)]
pub struct PoorUserTracker {
    poor_windows: VecDeque<i64>,
    last: Option<i64>,
}

impl PoorUserTracker {
    /// Records the overall CEI of the window starting at `window_start_s`.
    pub fn push(&mut self, cfg: &CeiConfig, window_start_s: i64, cei: f64) {
        if cfg.is_poor(cei) {
            self.poor_windows.push_back(window_start_s);
        }
        self.last = Some(self.last.map_or(window_start_s, |l| l.max(window_start_s)));
    }

    /// True when the user is poor at the latest pushed window.
    pub fn is_poor_user(&mut self, cfg: &CeiConfig, window_s: i64) -> bool {
        let Some(last) = self.last else { return false };
        let from = last - (cfg.poor.lookback_minutes as i64 - 1) * window_s;
        while self.poor_windows.front().is_some_and(|&t| t < from) {
            self.poor_windows.pop_front();
        }
        self.poor_windows.len() >= cfg.poor.min_minutes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cei_mapping() {
        assert_eq!(mos_to_cei(1.0), 0.0);
        assert_eq!(mos_to_cei(4.5), 100.0);
        assert_eq!(mos_to_cei(2.75), 50.0);
        assert_eq!(mos_to_cei(0.0), 0.0);
        assert_eq!(mos_to_cei(9.0), 100.0);
        assert_eq!(cei_to_mos(50.0), 2.75);
        // Poor threshold CEI 60 ↔ MOS 3.1.
        assert!((cei_to_mos(60.0) - 3.1).abs() < 1e-12);
    }

    #[test]
    fn overall_weighted_with_worst_critical() {
        let c = CeiConfig::default();
        assert_eq!(c.overall_cei(&[]), None);
        assert_eq!(c.overall_cei(&[(80.0, 30.0), (20.0, 10.0)]), Some(20.0));
        // Below critical_active_s: weighted mean only: (80·30 + 20·5)/35.
        let v = c.overall_cei(&[(80.0, 30.0), (20.0, 5.0)]).unwrap();
        assert!((v - 2500.0 / 35.0).abs() < 1e-9);
        // CEI 40 exactly is not critical.
        let v = c.overall_cei(&[(80.0, 30.0), (40.0, 10.0)]).unwrap();
        assert!((v - 70.0).abs() < 1e-9);
        assert_eq!(c.overall_cei(&[(80.0, 0.0), (60.0, 0.0)]), Some(70.0));
    }

    #[test]
    fn category_dispatch_and_fallbacks() {
        let c = CeiConfig::default();
        let none = ModelInput::default();
        for cat in Category::ALL {
            assert_eq!(c.category_mos(cat, &none), None, "{cat}");
        }
        let k = ModelInput {
            txn_ms: Some(1000.0),
            throughput_mbps: Some(2.5),
            payload_down: 1_000_000,
            rtt_ms: Some(400.0),
            ..ModelInput::default()
        };
        let web = c.web.mos(1.0);
        assert_eq!(c.category_mos(Category::Web, &k), Some(web));
        assert_eq!(c.category_mos(Category::Other, &k), Some(web));
        assert_eq!(
            c.category_mos(Category::Video, &k),
            Some(c.video.mos_ratio(0.5))
        );
        let small = ModelInput {
            payload_down: 1000,
            ..k
        };
        assert_eq!(c.category_mos(Category::Video, &small), Some(web));
        assert_eq!(c.category_mos(Category::Download, &small), Some(web));
        assert_eq!(
            c.category_mos(Category::Live, &k),
            Some(c.video.mos_ratio(0.5) * (-1.0f64).exp())
        );
        assert_eq!(
            c.category_mos(Category::Live, &small),
            Some(4.5 * (-1.0f64).exp())
        );
        assert_eq!(
            c.category_mos(Category::Gaming, &k),
            Some(c.gaming.mos(400.0, 0.0))
        );
        assert_eq!(
            c.category_mos(Category::Download, &k),
            Some(c.download.mos(2.5, None))
        );
        let v = ModelInput {
            rtp: true,
            loss_pct: Some(2.0),
            ..ModelInput::default()
        };
        assert!((c.category_mos(Category::Voice, &v).unwrap() - 3.2316).abs() < 1e-3);
    }

    #[test]
    fn poor_minute_counts_a_poor_category() {
        let mut c = CeiConfig::default();
        // Video at CEI 40 for 3 s next to 20 s of web at 100: overall 88.7, a poor minute.
        let parts = [(40.0, 3.0), (100.0, 20.0)];
        let overall = c.overall_cei(&parts).unwrap();
        assert!(!c.is_poor(overall));
        assert!(c.is_poor_minute(overall, &parts));
        c.poor.category_min_active_s = 5.0;
        assert!(!c.is_poor_minute(overall, &parts));
        c.poor.category_poor = false;
        assert!(!c.is_poor_minute(overall, &[(40.0, 30.0)]));
        assert!(c.is_poor_minute(59.0, &[]));
    }

    #[test]
    fn poor_user_rule() {
        let c = CeiConfig::default();
        let m = |v: &[(i64, f64)], at| c.is_poor_user(v.iter().copied(), at, 60);
        let at = 60 * 100;
        assert!(!m(&[(at, 10.0), (at - 60, 10.0)], at));
        assert!(m(&[(at, 10.0), (at - 60, 10.0), (at - 14 * 60, 59.9)], at));
        // 15 windows back is outside the lookback.
        assert!(!m(&[(at, 10.0), (at - 60, 10.0), (at - 15 * 60, 10.0)], at));
        assert!(!m(&[(at, 10.0), (at - 60, 10.0), (at - 120, 60.0)], at));
        let mut t = PoorUserTracker::default();
        for (i, cei) in [10.0, 90.0, 10.0, 90.0, 10.0].into_iter().enumerate() {
            t.push(&c, i as i64 * 60, cei);
        }
        assert!(t.is_poor_user(&c, 60));
        t.push(&c, 60 * 16, 90.0);
        assert!(!t.is_poor_user(&c, 60));
    }

    #[test]
    fn config_toml_roundtrip_defaults() {
        let c: CeiConfig = serde_json::from_str("{\"web\": {\"t0_s\": 0.5}}").unwrap();
        assert_eq!(c.web.t0_s, 0.5);
        assert_eq!(c.web.slope, 0.85);
        assert_eq!(c.voice, VoiceModel::default());
        assert!(serde_json::from_str::<CeiConfig>("{\"webb\": {}}").is_err());
    }
}
