//! Pure per-window aggregation (no timely): a user's slices of one window → its
//! [`UserMinute`] rows (one per category present plus `all`) and its element observations;
//! the observations of one element in one window → its [`ElementMinute`].
//!
//! Group KPIs:
//! - `active_s` = Σ over flows of max(up, down active time), capped at the window length;
//! - throughput = downstream payload bits / min(Σ downstream active time, window);
//! - RTT legs = sample-weighted mean (a handshake-only flow counts as one sample);
//! - `retrans_rate` = Σ retransmissions / Σ data segments; `loss_pct` = RTP (or game
//!   datagram) lost/expected when seen — × `[cei.loss] two_way_seq_factor` for two-way
//!   streams, whose gaps the probe sees on one leg per direction — else TCP segments lost (up- and downstream of the probe) / data
//!   segments; `jitter_ms` = max; `txn_ms`, `ttfb_ms` = medians over flows measuring them.
//! - Models needing an RTT (`live`, `voice`, `gaming`) use the user's all-flows RTT when
//!   the category's own flows (often UDP) measured none.
//!
//! Cost: one pass over the slices into per-category running sums (no maps; medians of up
//! to 8 flows kept inline), one short sort by server for the server observations; element
//! ids are shared (`Arc<str>`), so a slice is never copied.

use crate::cei::{cei_to_mos, mos_to_cei, CeiConfig, ModelInput, MOS_MAX};
use crate::input::UserSlice;
use crate::pseudo::key_hex;
use crate::rows::{ElementMinute, UserMinute, CATEGORY_ALL};
use cemflow_ingest::catalog::Category;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Element level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// Access element (OLT/PON port, cell, DSLAM).
    Access,
    /// Core element (BNG, UPF, aggregation router).
    Core,
    /// Server prefix (and service).
    Server,
}

impl Level {
    /// `access`, `core` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Access => "access",
            Level::Core => "core",
            Level::Server => "server",
        }
    }
}

/// One user's contribution to one element in one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElementObs {
    /// Window start, epoch seconds.
    pub window_start_s: i64,
    /// Level of the element.
    pub level: Level,
    /// Element id.
    #[serde(with = "crate::input::arc_str")]
    pub element_id: Arc<str>,
    /// The user (pseudonym), for a canonical order.
    pub user: u64,
    /// The user's CEI on this element (overall CEI for access/core, the CEI of the user's
    /// flows to the server for `server`).
    pub cei: f32,
    /// A poor minute on this element ([`CeiConfig::is_poor_minute`] over the categories the
    /// user's flows of this element carry).
    pub poor: bool,
    /// Downstream IP bytes.
    pub bytes_down: u64,
    /// Client-leg RTT, ms.
    pub rtt_client_ms: Option<f32>,
    /// Server-leg RTT, ms.
    pub rtt_server_ms: Option<f32>,
    /// Retransmission rate.
    pub retrans_rate: Option<f32>,
}

/// A user's window: its rows and its element observations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserWindow {
    /// One row per category with activity, then the `all` row.
    pub minutes: Vec<UserMinute>,
    /// Observations for the access element, the core element and each server element
    /// (only when the user had at least one rated category).
    pub elements: Vec<ElementObs>,
}

/// Per-flow times of a group (medians): the first 8 inline, more on the heap.
#[derive(Clone, Debug, Default)]
struct Samples {
    inline: [f32; 8],
    n: u8,
    more: Vec<f32>,
}

impl Samples {
    fn push(&mut self, v: f32) {
        if let Some(slot) = self.inline.get_mut(self.n as usize) {
            *slot = v;
            self.n += 1;
        } else {
            self.more.push(v);
        }
    }

    fn median(&self) -> Option<f32> {
        if self.more.is_empty() {
            let mut a = self.inline;
            median(&mut a[..self.n as usize])
        } else {
            let mut v: Vec<f32> = self.inline.iter().chain(&self.more).copied().collect();
            median(&mut v)
        }
    }
}

/// Running sums of a group of slices.
#[derive(Clone, Debug, Default)]
pub struct Group {
    flows: u32,
    active_ns: u64,
    active_down_ns: u64,
    bytes_down: u64,
    bytes_up: u64,
    payload_down: u64,
    rtt_c: (f64, u64),
    rtt_s: (f64, u64),
    data_segments: u64,
    retrans: u64,
    lost: u64,
    rtp: (u64, u64),
    /// RTP/datagram packets lost on the path (per slice: lost × the two-way factor).
    rtp_path_lost: f64,
    jitter: Option<f32>,
    txn: Samples,
    ttfb: Samples,
    required: Option<f32>,
    plan: Option<f32>,
}

fn max_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Median (mean of the two middle values for even counts); sorts `v`.
pub fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Nearest-rank percentile `p` (0–100) of `v`; sorts `v`.
pub fn percentile(v: &mut [f32], p: f64) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f32::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

impl Group {
    /// Adds one slice. A transaction time without a measured TTFB gets
    /// `cfg.web.unseen_client_legs` of the flow's client leg added (the parts of the
    /// client's wait before and after the probe) and is at least `cfg.web.txn_min_rtts` of
    /// its RTT.
    pub fn add(&mut self, s: &UserSlice, cfg: &CeiConfig) {
        self.flows += 1;
        self.active_ns += s.active_ns[0].max(s.active_ns[1]);
        self.active_down_ns += s.active_ns[1];
        self.bytes_down += s.bytes_down;
        self.bytes_up += s.bytes_up;
        self.payload_down += s.payload_down;
        self.rtt_c.0 += s.rtt_client.0 as f64;
        self.rtt_c.1 += s.rtt_client.1 as u64;
        self.rtt_s.0 += s.rtt_server.0 as f64;
        self.rtt_s.1 += s.rtt_server.1 as u64;
        self.data_segments += s.data_segments as u64;
        self.retrans += s.retransmissions as u64;
        self.lost += s.lost_segments as u64;
        self.rtp.0 += s.rtp.0 as u64;
        self.rtp.1 += s.rtp.1 as u64;
        let two_way = s.bytes_up > 0 && s.bytes_down > 0;
        self.rtp_path_lost += s.rtp.1 as f64
            * if two_way {
                cfg.loss.two_way_seq_factor
            } else {
                1.0
            };
        self.jitter = max_opt(self.jitter, s.jitter_ms);
        if let Some(t) = s.txn_ms {
            let leg = |(sum, n): (f32, u32)| (n > 0).then(|| sum / n as f32);
            let (c, v) = (leg(s.rtt_client), leg(s.rtt_server));
            let rtt = c.unwrap_or(0.0) + v.unwrap_or(0.0);
            let t = if s.ttfb_ms.is_none() {
                (t + cfg.web.unseen_client_legs as f32 * c.unwrap_or(0.0))
                    .max(cfg.web.txn_min_rtts as f32 * rtt)
            } else {
                t
            };
            self.txn.push(t);
        }
        if let Some(t) = s.ttfb_ms {
            self.ttfb.push(t);
        }
        self.required = max_opt(self.required, s.required_mbps);
        self.plan = max_opt(self.plan, s.plan_mbps);
    }

    fn active_s(&self, window_s: i64) -> f64 {
        (self.active_ns as f64 / 1e9).min(window_s as f64)
    }

    fn throughput_mbps(&self, window_s: i64) -> Option<f64> {
        (self.active_down_ns > 0).then(|| {
            let t = (self.active_down_ns as f64 / 1e9).min(window_s as f64);
            self.payload_down as f64 * 8.0 / t / 1e6
        })
    }

    fn rtt_client(&self) -> Option<f64> {
        (self.rtt_c.1 > 0).then(|| self.rtt_c.0 / self.rtt_c.1 as f64)
    }

    fn rtt_server(&self) -> Option<f64> {
        (self.rtt_s.1 > 0).then(|| self.rtt_s.0 / self.rtt_s.1 as f64)
    }

    /// Client + server leg (whichever measured). ms.
    fn rtt_total(&self) -> Option<f64> {
        match (self.rtt_client(), self.rtt_server()) {
            (Some(c), Some(s)) => Some(c + s),
            (c, s) => c.or(s),
        }
    }

    fn retrans_rate(&self) -> Option<f64> {
        (self.data_segments > 0).then(|| (self.retrans as f64 / self.data_segments as f64).min(1.0))
    }

    fn loss_pct(&self) -> Option<f64> {
        if self.rtp.0 > 0 {
            Some((100.0 * self.rtp_path_lost / self.rtp.0 as f64).min(100.0))
        } else if self.data_segments > 0 {
            Some((100.0 * self.lost as f64 / self.data_segments as f64).min(100.0))
        } else {
            None
        }
    }

    /// The model input of this group; `rtt_fallback` is used when the group measured no RTT.
    fn model_input(&self, window_s: i64, rtt_fallback: Option<f64>) -> ModelInput {
        ModelInput {
            txn_ms: self.txn.median().map(f64::from),
            rtt_ms: self.rtt_total().or(rtt_fallback),
            jitter_ms: self.jitter.map(f64::from),
            loss_pct: self.loss_pct(),
            throughput_mbps: self.throughput_mbps(window_s),
            payload_down: self.payload_down,
            active_down_s: (self.active_down_ns as f64 / 1e9).min(window_s as f64),
            required_mbps: self.required.map(f64::from),
            plan_mbps: self.plan.map(f64::from),
            rtp: self.rtp.0 > 0,
        }
    }

    /// MOS of the group as category `cat` (`None` = unrated).
    fn mos(&self, cfg: &CeiConfig, cat: Category, window_s: i64, rtt: Option<f64>) -> Option<f64> {
        cfg.category_mos(cat, &self.model_input(window_s, rtt))
    }
}

/// The CEI of one slice on its own (for `worst_server`); `None` when unrated.
fn slice_cei(
    cfg: &CeiConfig,
    window_s: i64,
    s: &UserSlice,
    rtt_fallback: Option<f64>,
) -> Option<f64> {
    let mut g = Group::default();
    g.add(s, cfg);
    g.mos(cfg, s.category, window_s, rtt_fallback)
        .map(mos_to_cei)
}

/// Server with most poor flows among `poor` (ties: most downstream bytes, then the
/// smallest name).
fn worst_server<'a>(poor: impl Iterator<Item = &'a UserSlice>) -> Option<String> {
    let mut by: Vec<(&str, u32, u64)> = Vec::new();
    for s in poor {
        match by.iter_mut().find(|e| e.0 == &*s.server) {
            Some(e) => {
                e.1 += 1;
                e.2 += s.bytes_down;
            }
            None => by.push((&s.server, 1, s.bytes_down)),
        }
    }
    by.into_iter()
        .max_by(|a, b| (a.1, a.2).cmp(&(b.1, b.2)).then_with(|| b.0.cmp(a.0)))
        .map(|e| e.0.to_string())
}

fn f32o(v: Option<f64>) -> Option<f32> {
    v.map(|x| x as f32)
}

/// Per-category groups of some slices, indexed by `Category as usize` (the order of
/// `Category::ALL`, which is the category order of the rows).
type ByCategory = [Option<Group>; Category::ALL.len()];

fn by_category<'a>(cfg: &CeiConfig, slices: impl Iterator<Item = &'a UserSlice>) -> ByCategory {
    let mut g: ByCategory = Default::default();
    for s in slices {
        if let Some(slot) = g.get_mut(s.category as usize) {
            slot.get_or_insert_with(Group::default).add(s, cfg);
        }
    }
    g
}

/// Overall CEI of per-category groups (`None` when no category is rated) and whether the
/// minute is poor ([`CeiConfig::is_poor_minute`]: the overall CEI or a rated category).
fn overall(
    cfg: &CeiConfig,
    window_s: i64,
    groups: &ByCategory,
    rtt: Option<f64>,
) -> Option<(f64, bool)> {
    let mut parts = [(0.0, 0.0); Category::ALL.len()];
    let mut n = 0;
    for (cat, g) in Category::ALL.iter().zip(groups) {
        if let Some(m) = g.as_ref().and_then(|g| g.mos(cfg, *cat, window_s, rtt)) {
            parts[n] = (
                mos_to_cei(m),
                g.as_ref().map_or(0.0, |g| g.active_s(window_s)),
            );
            n += 1;
        }
    }
    let parts = &parts[..n];
    cfg.overall_cei(parts)
        .map(|c| (c, cfg.is_poor_minute(c, parts)))
}

/// Aggregates one user's slices of one window (all with the same `user` and
/// `window_start_s`; the access/core elements are taken from the first slice).
///
/// Results do not depend on the order of `slices` (they are sorted to flow-id order).
pub fn user_window(cfg: &CeiConfig, window_s: i64, slices: &mut [UserSlice]) -> UserWindow {
    slices.sort_unstable_by(|a, b| (a.flow_id, &a.server).cmp(&(b.flow_id, &b.server)));
    let slices = &*slices;
    let Some(first) = slices.first() else {
        return UserWindow::default();
    };
    let ws = first.window_start_s;
    let user_key = key_hex(first.user);
    let mut all = Group::default();
    for s in slices {
        all.add(s, cfg);
    }
    let groups = by_category(cfg, slices.iter());
    let user_rtt = all.rtt_total();
    // Per-flow poorness, for worst_server.
    let flow_poor: Vec<bool> = slices
        .iter()
        .map(|s| slice_cei(cfg, window_s, s, user_rtt).is_some_and(|c| cfg.is_poor(c)))
        .collect();
    let poor_flows = |cat: Option<Category>| {
        worst_server(
            slices
                .iter()
                .zip(&flow_poor)
                .filter(move |(s, p)| **p && cat.is_none_or(|c| s.category == c))
                .map(|(s, _)| s),
        )
    };
    let row = |category: &str, g: &Group, mos: f64, cei: f64, worst: Option<String>| UserMinute {
        window_start_s: ws,
        user_key: user_key.clone(),
        category: category.to_string(),
        access_element: first.access_element.to_string(),
        core_element: first.core_element.to_string(),
        flows: g.flows,
        active_s: g.active_s(window_s) as f32,
        bytes_down: g.bytes_down,
        bytes_up: g.bytes_up,
        throughput_down_mbps: f32o(g.throughput_mbps(window_s)),
        rtt_client_ms: f32o(g.rtt_client()),
        rtt_server_ms: f32o(g.rtt_server()),
        retrans_rate: f32o(g.retrans_rate()),
        loss_pct: f32o(g.loss_pct()),
        jitter_ms: g.jitter,
        txn_ms: g.txn.median(),
        ttfb_ms: g.ttfb.median(),
        mos: mos as f32,
        cei: cei as f32,
        poor: cfg.is_poor(cei),
        worst_server: worst,
        source: first.source,
    };
    let mut out = UserWindow {
        minutes: Vec::with_capacity(4),
        elements: Vec::new(),
    };
    for (cat, g) in Category::ALL.iter().zip(&groups) {
        let Some(g) = g else { continue };
        let mos = g.mos(cfg, *cat, window_s, user_rtt);
        let cei = mos.map_or(100.0, mos_to_cei);
        let r = row(
            cat.as_str(),
            g,
            mos.unwrap_or(MOS_MAX),
            cei,
            poor_flows(Some(*cat)),
        );
        out.minutes.push(r);
    }
    let overall_cei = overall(cfg, window_s, &groups, user_rtt);
    let (cei, poor) = overall_cei.unwrap_or((100.0, false));
    let mut all_row = row(CATEGORY_ALL, &all, cei_to_mos(cei), cei, poor_flows(None));
    all_row.poor = poor;
    if overall_cei.is_some() {
        for (level, id) in [
            (Level::Access, &first.access_element),
            (Level::Core, &first.core_element),
        ] {
            out.elements.push(ElementObs {
                window_start_s: ws,
                level,
                element_id: Arc::clone(id),
                user: first.user,
                cei: all_row.cei,
                poor: all_row.poor,
                bytes_down: all_row.bytes_down,
                rtt_client_ms: all_row.rtt_client_ms,
                rtt_server_ms: all_row.rtt_server_ms,
                retrans_rate: all_row.retrans_rate,
            });
        }
        // Per server element: the user's CEI over its flows to that server.
        let mut order: Vec<&UserSlice> = slices.iter().collect();
        order.sort_by(|a, b| a.server.cmp(&b.server));
        for run in order.chunk_by(|a, b| a.server == b.server) {
            let groups = by_category(cfg, run.iter().copied());
            let (Some(head), Some((cei, poor))) =
                (run.first(), overall(cfg, window_s, &groups, user_rtt))
            else {
                continue;
            };
            let mut g = Group::default();
            for s in run {
                g.add(s, cfg);
            }
            out.elements.push(ElementObs {
                window_start_s: ws,
                level: Level::Server,
                element_id: Arc::clone(&head.server),
                user: first.user,
                cei: cei as f32,
                poor,
                bytes_down: g.bytes_down,
                rtt_client_ms: f32o(g.rtt_client()),
                rtt_server_ms: f32o(g.rtt_server()),
                retrans_rate: f32o(g.retrans_rate()),
            });
        }
    }
    out.minutes.push(all_row);
    out
}

/// Aggregates the observations of one element in one window (one per user). Results do not
/// depend on the order of `obs`.
pub fn element_minute(
    window_start_s: i64,
    level: Level,
    element_id: &str,
    obs: &[ElementObs],
) -> ElementMinute {
    let mut sorted: Vec<&ElementObs> = obs.iter().collect();
    sorted.sort_by_key(|o| o.user);
    let obs = &sorted[..];
    let users = obs.len() as u32;
    let poor_users = obs.iter().filter(|o| o.poor).count() as u32;
    let mut ceis: Vec<f32> = obs.iter().map(|o| o.cei).collect();
    let mut rc: Vec<f32> = obs.iter().filter_map(|o| o.rtt_client_ms).collect();
    let mut rs: Vec<f32> = obs.iter().filter_map(|o| o.rtt_server_ms).collect();
    let rr: Vec<f32> = obs.iter().filter_map(|o| o.retrans_rate).collect();
    ElementMinute {
        window_start_s,
        level: level.as_str().to_string(),
        element_id: element_id.to_string(),
        users,
        poor_users,
        poor_share: if users > 0 {
            poor_users as f32 / users as f32
        } else {
            0.0
        },
        cei_mean: if users > 0 {
            (ceis.iter().map(|&c| c as f64).sum::<f64>() / users as f64) as f32
        } else {
            0.0
        },
        cei_p10: percentile(&mut ceis, 10.0).unwrap_or(0.0),
        bytes_down: obs.iter().map(|o| o.bytes_down).sum(),
        rtt_client_ms_median: median(&mut rc),
        rtt_server_ms_median: median(&mut rs),
        retrans_rate: (!rr.is_empty())
            .then(|| (rr.iter().map(|&r| r as f64).sum::<f64>() / rr.len() as f64) as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cei::{mos_to_cei, CeiConfig};

    const W: i64 = 1_700_000_040;

    fn base(flow_id: u64, category: Category, server: &str) -> UserSlice {
        UserSlice {
            window_start_s: W,
            user: 0xabcdef,
            flow_id,
            access_element: "olt1/pon1".into(),
            core_element: "bng1".into(),
            server: server.into(),
            category,
            l4: 6,
            ..UserSlice::default()
        }
    }

    fn web(flow_id: u64, txn_ms: f32) -> UserSlice {
        UserSlice {
            txn_ms: Some(txn_ms),
            ttfb_ms: Some(txn_ms / 2.0),
            active_ns: [1_000_000_000, 2_000_000_000],
            bytes_down: 50_000,
            bytes_up: 5_000,
            payload_down: 45_000,
            rtt_client: (20.0, 2),
            rtt_server: (60.0, 2),
            data_segments: 100,
            retransmissions: 2,
            lost_segments: 1,
            ..base(flow_id, Category::Web, "198.51.100.0/24|example")
        }
    }

    fn video(flow_id: u64, mbps: f64, active_s: f64) -> UserSlice {
        let payload = (mbps * 1e6 / 8.0 * active_s) as u64;
        UserSlice {
            active_ns: [0, (active_s * 1e9) as u64],
            bytes_down: payload + payload / 20,
            payload_down: payload,
            rtt_client: (100.0, 10),
            rtt_server: (200.0, 10),
            data_segments: 1000,
            required_mbps: Some(5.0),
            ..base(flow_id, Category::Video, "203.0.113.0/24|youtube")
        }
    }

    #[test]
    fn user_window_categories_and_overall() {
        let cfg = CeiConfig::default();
        let mut s = vec![
            web(1, 1000.0),
            web(2, 3000.0),
            web(3, 500.0),
            video(4, 2.5, 40.0),
        ];
        let w = user_window(&cfg, 60, &mut s);
        let cats: Vec<&str> = w.minutes.iter().map(|m| m.category.as_str()).collect();
        assert_eq!(cats, ["video", "web", "all"]);
        let v = &w.minutes[0];
        assert_eq!(v.user_key, "0000000000abcdef");
        assert_eq!(v.flows, 1);
        assert!((v.throughput_down_mbps.unwrap() - 2.5).abs() < 1e-3);
        assert!((v.mos as f64 - cfg.video.mos_ratio(0.5)).abs() < 1e-4);
        assert_eq!(v.active_s, 40.0);
        assert_eq!(v.rtt_client_ms, Some(10.0));
        assert_eq!(v.rtt_server_ms, Some(20.0));
        let wb = &w.minutes[1];
        assert_eq!(wb.flows, 3);
        assert_eq!(wb.txn_ms, Some(1000.0)); // median of 500, 1000, 3000
        assert_eq!(wb.ttfb_ms, Some(500.0));
        assert!((wb.mos - 3.6077).abs() < 1e-3);
        assert_eq!(wb.active_s, 6.0);
        assert_eq!(wb.bytes_down, 150_000);
        assert!((wb.retrans_rate.unwrap() - 0.02).abs() < 1e-6);
        assert!((wb.loss_pct.unwrap() - 1.0).abs() < 1e-5);
        assert!(!wb.poor);
        let all = &w.minutes[2];
        let expect = (v.cei as f64 * 40.0 + wb.cei as f64 * 6.0) / 46.0;
        assert!(
            (all.cei as f64 - expect).abs() < 1e-3,
            "{} vs {expect}",
            all.cei
        );
        assert_eq!(all.flows, 4);
        assert_eq!(all.active_s, 46.0);
        assert_eq!(all.worst_server.as_deref(), Some("198.51.100.0/24|example")); // the 3 s txn
                                                                                  // Elements: access, core, 2 servers.
        let lv: Vec<Level> = w.elements.iter().map(|e| e.level).collect();
        assert_eq!(
            lv,
            [Level::Access, Level::Core, Level::Server, Level::Server]
        );
        assert_eq!(&*w.elements[0].element_id, "olt1/pon1");
        assert_eq!(w.elements[1].cei, all.cei);
    }

    #[test]
    fn worst_critical_rule_and_poor() {
        let cfg = CeiConfig::default();
        let game = UserSlice {
            active_ns: [30_000_000_000, 30_000_000_000],
            rtt_client: (100.0, 10),
            rtt_server: (3900.0, 10), // 400 ms total
            data_segments: 10,
            ..base(9, Category::Gaming, "192.0.2.0/24|game")
        };
        let mut s = vec![video(1, 20.0, 50.0), game];
        let w = user_window(&cfg, 60, &mut s);
        let g = w.minutes.iter().find(|m| m.category == "gaming").unwrap();
        let expect = mos_to_cei(1.0 + 3.5 * (-360.0f64 / 150.0).exp());
        assert!((g.cei as f64 - expect).abs() < 1e-3);
        let all = w.minutes.last().unwrap();
        assert_eq!(all.cei, g.cei);
        assert!(all.poor);
        assert_eq!(all.worst_server.as_deref(), Some("192.0.2.0/24|game"));
        assert_eq!(g.worst_server.as_deref(), Some("192.0.2.0/24|game"));
        let vrow = w.minutes.iter().find(|m| m.category == "video").unwrap();
        assert_eq!(vrow.cei, 100.0);
        assert_eq!(vrow.worst_server, None);
        // Server observations: the game server is poor, the video server is not.
        let srv: Vec<(&str, bool)> = w
            .elements
            .iter()
            .filter(|e| e.level == Level::Server)
            .map(|e| (&*e.element_id, e.poor))
            .collect();
        assert_eq!(
            srv,
            [
                ("192.0.2.0/24|game", true),
                ("203.0.113.0/24|youtube", false)
            ]
        );
    }

    #[test]
    fn unrated_user_and_voice_rtp() {
        let cfg = CeiConfig::default();
        // DNS-only minute: nothing measured → unrated, CEI 100, no element observations.
        let mut s = vec![UserSlice {
            l4: 17,
            bytes_down: 100,
            ..base(1, Category::Other, "8.8.8.0/24")
        }];
        let w = user_window(&cfg, 60, &mut s);
        assert_eq!(w.minutes.len(), 2);
        assert_eq!(w.minutes[1].cei, 100.0);
        assert!(w.elements.is_empty());
        // RTP voice with 2 % path loss (1 % of the packets of both directions missing at
        // the probe: each direction's loss on the other leg is unseen) and 20 ms
        // handshake-less path: MOS 3.23 (issue 6).
        let mut s = vec![UserSlice {
            l4: 17,
            rtp: (1000, 10),
            bytes_up: 172_000,
            bytes_down: 172_000,
            jitter_ms: Some(0.0),
            active_ns: [60_000_000_000, 60_000_000_000],
            ..base(1, Category::Voice, "192.0.2.0/24|voip")
        }];
        let w = user_window(&cfg, 60, &mut s);
        assert!(
            (w.minutes[0].mos - 3.2316).abs() < 1e-3,
            "{}",
            w.minutes[0].mos
        );
        assert_eq!(w.minutes[0].loss_pct, Some(2.0));
        assert_eq!(w.minutes[0].active_s, 60.0);
        // A one-way stream: the pooled ratio as is.
        let mut s = vec![UserSlice {
            l4: 17,
            rtp: (1000, 10),
            bytes_down: 172_000,
            ..base(1, Category::Voice, "192.0.2.0/24|voip")
        }];
        let w = user_window(&cfg, 60, &mut s);
        assert_eq!(w.minutes[0].loss_pct, Some(1.0));
    }

    #[test]
    fn https_transaction_is_at_least_min_rtts() {
        let cfg = CeiConfig::default();
        // Handshake seen (100 ms), TLS and TTFB not: 100 + 1 client leg = 200 < 3 RTT = 600.
        let mut s = vec![UserSlice {
            ttfb_ms: None,
            rtt_client: (200.0, 2),
            rtt_server: (200.0, 2),
            ..web(1, 100.0)
        }];
        let w = user_window(&cfg, 60, &mut s);
        let row = w.minutes.iter().find(|r| r.category == "web").unwrap();
        assert_eq!(row.txn_ms, Some(600.0));
        // With a TTFB the measured time stands.
        let mut s = vec![UserSlice {
            rtt_client: (200.0, 2),
            rtt_server: (200.0, 2),
            ..web(1, 100.0)
        }];
        let w = user_window(&cfg, 60, &mut s);
        let row = w.minutes.iter().find(|r| r.category == "web").unwrap();
        assert_eq!(row.txn_ms, Some(100.0));
    }

    #[test]
    fn order_independent() {
        let cfg = CeiConfig::default();
        let mut a = vec![
            web(1, 1000.0),
            web(2, 3000.0),
            video(3, 1.0, 30.0),
            video(4, 7.0, 10.0),
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(user_window(&cfg, 60, &mut a), user_window(&cfg, 60, &mut b));
    }

    #[test]
    fn element_rollup() {
        let obs: Vec<ElementObs> = (0..10u64)
            .map(|i| ElementObs {
                window_start_s: W,
                level: Level::Access,
                element_id: "olt1".into(),
                user: i,
                cei: 10.0 * i as f32,
                poor: (10.0 * i as f64) < 60.0,
                bytes_down: 1000,
                rtt_client_ms: Some(i as f32),
                rtt_server_ms: (i % 2 == 0).then_some(20.0),
                retrans_rate: Some(0.01),
            })
            .collect();
        let mut rev = obs.clone();
        rev.reverse();
        let e = element_minute(W, Level::Access, "olt1", &obs);
        assert_eq!(e, element_minute(W, Level::Access, "olt1", &rev));
        assert_eq!(e.level, "access");
        assert_eq!((e.users, e.poor_users), (10, 6));
        assert!((e.poor_share - 0.6).abs() < 1e-6);
        assert_eq!(e.cei_mean, 45.0);
        assert_eq!(e.cei_p10, 0.0);
        assert_eq!(e.bytes_down, 10_000);
        assert_eq!(e.rtt_client_ms_median, Some(4.5));
        assert_eq!(e.rtt_server_ms_median, Some(20.0));
        assert!((e.retrans_rate.unwrap() - 0.01).abs() < 1e-6);
        let mut v = vec![5.0f32, 1.0, 3.0];
        assert_eq!(percentile(&mut v, 10.0), Some(1.0));
        assert_eq!(percentile(&mut v, 50.0), Some(3.0));
        assert_eq!(median(&mut []), None);
    }
}
