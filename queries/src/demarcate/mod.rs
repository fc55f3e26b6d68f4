//! Complaint demarcation (SPEC §7): where is this user's fault?
//!
//! For user `u` and window `W = [at − window, at]` (default the 30 minutes before the
//! complaint), over the lake's `user_minute` and `element_minute` rows:
//!
//! 0. `P` = `u`'s latest episode of poor minutes in `W`: minutes whose overall (`all`) CEI
//!    is below [`DemarcationConfig::poor_cei`], or one of whose categories is
//!    ([`DemarcationConfig::category_poor`]; the same rule for every population). Every element statistic below is computed over `P`
//!    (the moments of `u`'s degradation), so a short fault is not diluted by the healthy
//!    rest of the window. `u`'s access/core elements are those of its latest poor minute
//!    (rows carry the element valid at their minute: a topology versioned by validity time).
//!    For an element and the minutes of `P`, `n` = mean users per minute, the poor rate =
//!    Σ poor user-minutes / Σ user-minutes, and its Wilson lower bound is computed on
//!    `(rate·n, n)`; `k` = distinct poor users over `P`.
//! 1. `P` empty → `no_fault_found`.
//! 2. `server`: `S` = the server prefix most of `u`'s poor rows name as `worst_server`;
//!    concentration (share of `u`'s poor category rows on `S`) ≥ 0.6; among `S`'s users
//!    (`element_minute`, level `server`) `n ≥ 10`, `k ≥ 3`, lower bound ≥ 0.3; poor users on
//!    `S` span ≥ 3 access elements; `u`'s other services in `P` mostly fine (≥ 50 %).
//! 3. `core`: under `u`'s core: lower bound ≥ 0.3 (and standing out against the other
//!    cores when they have data) or the relative test, `k ≥ 3`, poor users span ≥ 3
//!    access elements (or all of the core's access elements when it has fewer, at least 2)
//!    and ≥ 3 server prefixes.
//! 4. `access`: under `u`'s access element `n ≥ 5`, `k ≥ 3`, lower bound ≥ 0.25 or the
//!    relative test, poor rate ≥ 2× the other access elements' (siblings under the same
//!    core, else all others), poor rows across ≥ 2 services (categories or server
//!    prefixes); anomalies of the element in `W` and its KPIs ([`crate::element_kpi`])
//!    corroborate (confidence).
//! 5. `home`: peers (the access element's other users) have lower bound < 0.25 and `u`'s
//!    client-leg RTT or loss is elevated against the peers' medians.
//! 6. otherwise `inconclusive` (`no_fault_found` when only categories were poor).
//!
//! The evidence object carries the numbers of every step evaluated.

use crate::element_kpi::{load_kpis, KpiSample};
use crate::error::{QueryError, Result};
use crate::session::QuerySession;
use crate::udf::wilson_lower;
use crate::users::UserResolver;
use crate::util::{
    col_f64, col_str, col_text, col_ts_s, lit, parse_time, rfc3339, window_predicate,
};
use cemflow_lakehouse::{DemarcationRow, Lake, Table};
use datafusion::arrow::array::{Array, StringArray};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod stats;
use stats::{Derived, DerivedCell, Pop};

/// Every threshold of the demarcation ladder (`[demarcation]` in `cemflow.toml`).
/// Defaults are SPEC §7's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemarcationConfig {
    /// Window before the complaint. Seconds.
    pub window_s: i64,
    /// Length of one lake window (minute). Seconds.
    pub minute_s: i64,
    /// A minute is poor when its CEI is below this.
    pub poor_cei: f64,
    /// A user-minute also counts as poor when one of its service categories with at least
    /// `category_poor_min_active_s` active seconds has a CEI below `poor_cei` (a customer
    /// whose video stalls complains even when the rest of the minute's traffic was fine and
    /// the overall CEI stayed at 60 or above). `false`: the overall CEI alone decides.
    pub category_poor: bool,
    /// See `category_poor`. Seconds.
    pub category_poor_min_active_s: f64,
    /// z of the Wilson interval (1.96 = 95 %).
    pub z: f64,
    /// Server: least share of `u`'s poor category rows naming the server.
    pub server_min_concentration: f64,
    /// Server: least users — the larger of S's mean users per minute over `P` and its
    /// distinct poor users over `P` (S had at least that many users; a server reached by
    /// ~10 users a minute whose every user degrades is no thinner evidence than one with 10).
    pub server_min_users: f64,
    /// Server: least distinct poor users.
    pub server_min_poor: usize,
    /// Server: least Wilson lower bound of the poor rate.
    pub server_min_lower: f64,
    /// Server: least distinct access elements of its poor users.
    pub server_min_access_span: usize,
    /// Server: least share of `u`'s rows on other servers that are fine.
    pub server_other_fine_share: f64,
    /// Core: least distinct access elements of its poor users.
    pub core_min_access_span: usize,
    /// Core: least distinct server prefixes of its poor users.
    pub core_min_server_span: usize,
    /// Core: least Wilson lower bound.
    pub core_min_lower: f64,
    /// Core: least distinct poor users.
    pub core_min_poor: usize,
    /// Core, relative test (when other core elements have data): least Wilson lower bound
    /// of k / distinct users over P;
    /// the poor rate must also reach `core_rate_ratio × the other cores' poor rate +
    /// core_rate_margin`, and so must the poor rate of the core's users outside `u`'s access
    /// element (one access element's fault is not a core fault).
    pub core_relative_min_lower: f64,
    /// See `core_relative_min_lower`.
    pub core_rate_ratio: f64,
    /// … plus this absolute margin over the other cores' rate.
    pub core_rate_margin: f64,
    /// The complaint's episode: poor minutes further apart than this (window starts, s)
    /// start a new episode; only the latest episode of `W` is demarcated.
    pub episode_gap_s: i64,
    /// At most this many of the episode's latest poor minutes are used.
    pub episode_max_minutes: usize,
    /// Access: least users (mean per minute).
    pub access_min_users: f64,
    /// Access: least distinct poor users.
    pub access_min_poor: usize,
    /// Access: least Wilson lower bound.
    pub access_min_lower: f64,
    /// Access: least ratio of its poor rate to the other access elements'.
    pub access_rate_ratio: f64,
    /// Access, relative test (when other access elements have data): least Wilson lower
    /// bound of k / distinct users over P; the poor rate must also reach `access_rate_ratio × the others' poor rate +
    /// access_rate_margin`. A lossy or delayed access element degrades only the sensitive
    /// services, so its poor rate is often 15–30 %, below the absolute bound.
    pub access_relative_min_lower: f64,
    /// See `access_relative_min_lower`.
    pub access_rate_margin: f64,
    /// Access: least number of services (categories or server prefixes) of its poor rows.
    pub access_min_services: usize,
    /// Home: the peers' lower bound must be below this.
    pub home_peer_max_lower: f64,
    /// Home: client-leg RTT elevated when ≥ this × the peers' median …
    pub home_rtt_ratio: f64,
    /// … and at least this much above it. ms.
    pub home_rtt_min_delta_ms: f64,
    /// Home without peer RTT: client-leg RTT elevated above this. ms.
    pub home_rtt_abs_ms: f64,
    /// Home: loss elevated when ≥ this × the peers' median …
    pub home_loss_ratio: f64,
    /// … and at least this much above it. Percentage points.
    pub home_loss_min_delta_pct: f64,
    /// Element KPIs (`telemetry`): each sample is scored against the element and metric's
    /// samples of this many seconds before it (SPEC §5: trailing 60 minutes).
    pub kpi_baseline_s: i64,
    /// Element KPIs: least baseline samples for a score.
    pub kpi_min_baseline: usize,
    /// Element KPIs: a metric is anomalous at this robust z (SPEC §5: 3.5).
    pub kpi_anomaly_z: f64,
    /// Element KPIs: the element is healthy when every scored metric stays at or below this z.
    pub kpi_healthy_max_z: f64,
    /// Element KPIs: the MAD is floored at this fraction of the baseline median.
    pub kpi_mad_floor_rel: f64,
    /// Confidence added to an access/core verdict when the element's KPIs are anomalous.
    pub kpi_confidence_up: f64,
    /// Confidence removed from an access/core verdict when the element's KPIs are healthy.
    pub kpi_confidence_down: f64,
}

impl Default for DemarcationConfig {
    fn default() -> Self {
        DemarcationConfig {
            window_s: 30 * 60,
            minute_s: 60,
            poor_cei: 60.0,
            category_poor: true,
            category_poor_min_active_s: 0.0,
            z: crate::udf::DEFAULT_Z,
            server_min_concentration: 0.6,
            server_min_users: 10.0,
            server_min_poor: 3,
            server_min_lower: 0.3,
            server_min_access_span: 3,
            server_other_fine_share: 0.5,
            core_min_access_span: 3,
            core_min_server_span: 3,
            core_min_lower: 0.3,
            core_min_poor: 3,
            core_relative_min_lower: 0.05,
            core_rate_ratio: 2.0,
            core_rate_margin: 0.05,
            episode_gap_s: 120,
            episode_max_minutes: 5,
            access_min_users: 5.0,
            access_min_poor: 3,
            access_min_lower: 0.25,
            access_rate_ratio: 2.0,
            access_relative_min_lower: 0.1,
            access_rate_margin: 0.05,
            access_min_services: 2,
            home_peer_max_lower: 0.25,
            home_rtt_ratio: 1.5,
            home_rtt_min_delta_ms: 20.0,
            home_rtt_abs_ms: 100.0,
            home_loss_ratio: 2.0,
            home_loss_min_delta_pct: 1.0,
            kpi_baseline_s: 60 * 60,
            kpi_min_baseline: 10,
            kpi_anomaly_z: 3.5,
            kpi_healthy_max_z: 2.0,
            kpi_mad_floor_rel: 0.02,
            kpi_confidence_up: 0.15,
            kpi_confidence_down: 0.2,
        }
    }
}

/// A demarcation verdict (SPEC §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The user had no poor minute in the window.
    NoFaultFound,
    /// The user's home: CPE, Wi-Fi, terminal.
    Home,
    /// The user's access element.
    Access,
    /// The user's core element.
    Core,
    /// A content server prefix / service.
    Server,
    /// Poor, but no level explains it.
    Inconclusive,
}

impl Verdict {
    /// The verdict's name as in SPEC §11.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoFaultFound => "no_fault_found",
            Verdict::Home => "home",
            Verdict::Access => "access",
            Verdict::Core => "core",
            Verdict::Server => "server",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One question: demarcate `user_key` for a complaint at `at_s`.
#[derive(Clone, Debug, PartialEq)]
pub struct DemarcationRequest {
    /// Complaint id (`None` for an ad-hoc `--user` question).
    pub complaint_id: Option<String>,
    /// The user as the caller gave it (raw id or pseudonym).
    pub user: String,
    /// The user's pseudonym.
    pub user_key: String,
    /// Complaint time, epoch seconds.
    pub at_s: i64,
    /// Window override, seconds (else [`DemarcationConfig::window_s`]).
    pub window_s: Option<i64>,
    /// Home id to report as the element of a `home` verdict (the topology's `home_id`,
    /// [`UserResolver::home_id`]); else the pseudonym is reported.
    pub home: Option<String>,
}

/// One verdict row: exactly the SPEC §11 `demarcate` fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Demarcation {
    /// Complaint id (null for `--user`).
    pub complaint_id: Option<String>,
    /// The user as given.
    pub user: String,
    /// Pseudonym.
    pub user_key: String,
    /// Window start, RFC 3339 UTC.
    pub window_start: String,
    /// Window end, RFC 3339 UTC.
    pub window_end: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Element id, server prefix or home id; null when none.
    pub element: Option<String>,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// The numbers that decided the verdict.
    pub evidence: Value,
}

/// The pure result of the ladder (no identity fields).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Verdict.
    pub verdict: Verdict,
    /// Element (access/core id, server prefix, home id).
    pub element: Option<String>,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// Evidence object.
    pub evidence: Value,
}

/// One `user_minute` row, as the ladder reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct URow {
    /// Window start, epoch s.
    pub ws: i64,
    /// Pseudonym.
    pub user_key: String,
    /// Category (`all` for the overall row).
    pub category: String,
    /// Access element.
    pub access: String,
    /// Core element.
    pub core: String,
    /// CEI.
    pub cei: f64,
    /// Active seconds.
    pub active_s: f64,
    /// Client-leg RTT, ms.
    pub rtt_client: Option<f64>,
    /// Server-leg RTT, ms.
    pub rtt_server: Option<f64>,
    /// Loss, percent.
    pub loss_pct: Option<f64>,
    /// Retransmission rate, fraction.
    pub retrans: Option<f64>,
    /// Worst server prefix.
    pub worst_server: Option<String>,
}

/// One `element_minute` row.
#[derive(Clone, Debug, PartialEq)]
pub struct ERow {
    /// Window start, epoch s.
    pub ws: i64,
    /// `access`, `core` or `server`.
    pub level: String,
    /// Element id (`prefix|service` for servers).
    pub element_id: String,
    /// Users.
    pub users: f64,
    /// Poor users.
    pub poor_users: f64,
    /// Median server-leg RTT, ms.
    pub rtt_server: Option<f64>,
}

/// The rows the ladder needs for one or many users, indexed.
#[derive(Clone, Debug, Default)]
pub struct WindowData {
    rows: Vec<URow>,
    elems: Vec<ERow>,
    /// `(window start, entity id)` of anomalous element rows.
    anomalies: Vec<(i64, String)>,
    /// Element KPI samples (`telemetry`) of the window and its KPI baseline.
    kpis: Vec<KpiSample>,
    /// `user_key → home id` to report for a home verdict (from the caller's topology).
    homes: HashMap<String, String>,
    by_user: HashMap<String, Vec<usize>>,
    by_access: HashMap<String, Vec<usize>>,
    by_core: HashMap<String, Vec<usize>>,
    by_server: HashMap<String, Vec<usize>>,
    /// Row flags and memoised element statistics ([`stats::Derived`]), built on first use.
    derived: DerivedCell,
}

/// The server prefix of an `element_minute` server id (`prefix|service` → `prefix`).
fn server_prefix(id: &str) -> &str {
    id.split('|').next().unwrap_or(id)
}

impl WindowData {
    /// Builds the indexes over in-memory rows (tests, generators).
    pub fn new(
        rows: Vec<URow>,
        elems: Vec<ERow>,
        anomalies: Vec<(i64, String)>,
        homes: HashMap<String, String>,
    ) -> WindowData {
        let mut d = WindowData {
            rows,
            elems,
            anomalies,
            homes,
            ..WindowData::default()
        };
        d.reindex();
        d
    }

    fn reindex(&mut self) {
        // Indexes in time order, so the ladder reads an element's rows of the episode's
        // minutes by binary search ([`WindowData::idx_in`]).
        self.rows.sort_by_key(|r| r.ws);
        self.elems.sort_by_key(|e| e.ws);
        self.derived = DerivedCell::default();
        self.by_user.clear();
        self.by_access.clear();
        self.by_core.clear();
        self.by_server.clear();
        for (i, r) in self.rows.iter().enumerate() {
            self.by_user.entry(r.user_key.clone()).or_default().push(i);
            self.by_access.entry(r.access.clone()).or_default().push(i);
            self.by_core.entry(r.core.clone()).or_default().push(i);
            if let Some(s) = &r.worst_server {
                self.by_server
                    .entry(server_prefix(s).to_string())
                    .or_default()
                    .push(i);
            }
        }
    }

    /// Indexes (into `rows`) of index `m` under key `k` with window start in `[lo, hi]`.
    fn idx_ids_in<'a>(
        &'a self,
        m: &'a HashMap<String, Vec<usize>>,
        k: &str,
        lo: i64,
        hi: i64,
    ) -> impl Iterator<Item = usize> + 'a {
        let v = m.get(k).map(Vec::as_slice).unwrap_or(&[]);
        let a = v.partition_point(|&i| self.rows[i].ws < lo);
        let b = v.partition_point(|&i| self.rows[i].ws <= hi);
        v.get(a..b).unwrap_or(&[]).iter().copied()
    }

    /// Element rows with window start in `[lo, hi]`.
    fn elems_in(&self, lo: i64, hi: i64) -> &[ERow] {
        let a = self.elems.partition_point(|e| e.ws < lo);
        let b = self.elems.partition_point(|e| e.ws <= hi);
        self.elems.get(a..b).unwrap_or(&[])
    }

    /// Runs `f` with the row flags and statistics memo derived under `cfg` (built on first
    /// use, rebuilt when the configuration differs).
    fn with_derived<T>(&self, cfg: &DemarcationConfig, f: impl FnOnce(&mut Derived) -> T) -> T {
        let mut slot = self
            .derived
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = slot.as_ref().is_none_or(|d| !d.is_for(cfg));
        if stale {
            *slot = Some(Derived::new(self, cfg));
        }
        match slot.as_mut() {
            Some(d) => f(d),
            None => f(&mut Derived::new(self, cfg)),
        }
    }

    /// Adds element KPI samples (`telemetry`) for the KPI corroboration of access/core
    /// verdicts.
    pub fn with_kpis(mut self, kpis: Vec<KpiSample>) -> WindowData {
        self.kpis = kpis;
        self.derived = DerivedCell::default();
        self
    }

    /// Number of `user_minute` rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

const U_COLS: &str =
    "window_start, user_key, category, access_element, core_element, cei, active_s, \
                      rtt_client_ms, rtt_server_ms, loss_pct, retrans_rate, worst_server";

/// `user_minute` rows matching `pred` (probe rows only); with `minutes`, only rows of
/// those window starts are kept (checked before any value is copied).
async fn load_urows(
    s: &QuerySession,
    pred: &str,
    minutes: Option<&BTreeSet<i64>>,
) -> Result<Vec<URow>> {
    let sql = format!("SELECT {U_COLS} FROM user_minute WHERE {pred} AND source = 'probe'");
    let mut out = Vec::new();
    let text = |a: &StringArray, i: usize| -> Option<String> {
        a.is_valid(i).then(|| a.value(i).to_string())
    };
    for b in s.sql(&sql).await? {
        let ws = col_ts_s(&b, "window_start")?;
        let uk = col_text(&b, "user_key")?;
        let cat = col_text(&b, "category")?;
        let acc = col_text(&b, "access_element")?;
        let core = col_text(&b, "core_element")?;
        let cei = col_f64(&b, "cei")?;
        let act = col_f64(&b, "active_s")?;
        let rc = col_f64(&b, "rtt_client_ms")?;
        let rs = col_f64(&b, "rtt_server_ms")?;
        let loss = col_f64(&b, "loss_pct")?;
        let rt = col_f64(&b, "retrans_rate")?;
        let wsv = col_text(&b, "worst_server")?;
        for i in 0..b.num_rows() {
            let (Some(w), Some(c)) = (ws[i], cei[i]) else {
                continue;
            };
            if minutes.is_some_and(|m| !m.contains(&w)) {
                continue;
            }
            let Some(u) = text(&uk, i) else { continue };
            out.push(URow {
                ws: w,
                user_key: u,
                category: text(&cat, i).unwrap_or_default(),
                access: text(&acc, i).unwrap_or_default(),
                core: text(&core, i).unwrap_or_default(),
                cei: c,
                active_s: act[i].unwrap_or(0.0),
                rtt_client: rc[i],
                rtt_server: rs[i],
                loss_pct: loss[i],
                retrans: rt[i],
                worst_server: text(&wsv, i).filter(|s| !s.is_empty()),
            });
        }
    }
    Ok(out)
}

async fn load_erows(s: &QuerySession, pred: &str) -> Result<Vec<ERow>> {
    if !s.has_table(Table::ElementMinute) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT window_start, level, element_id, users, poor_users, rtt_server_ms_median \
         FROM element_minute WHERE {pred}"
    );
    let mut out = Vec::new();
    for b in s.sql(&sql).await? {
        let ws = col_ts_s(&b, "window_start")?;
        let lv = col_str(&b, "level")?;
        let id = col_str(&b, "element_id")?;
        let us = col_f64(&b, "users")?;
        let pu = col_f64(&b, "poor_users")?;
        let rs = col_f64(&b, "rtt_server_ms_median")?;
        for i in 0..b.num_rows() {
            let (Some(w), Some(l), Some(e)) = (ws[i], lv[i].clone(), id[i].clone()) else {
                continue;
            };
            out.push(ERow {
                ws: w,
                level: l,
                element_id: e,
                users: us[i].unwrap_or(0.0),
                poor_users: pu[i].unwrap_or(0.0),
                rtt_server: rs[i],
            });
        }
    }
    Ok(out)
}

async fn load_anomalies(s: &QuerySession, pred: &str) -> Result<Vec<(i64, String)>> {
    if !s.has_table(Table::Anomalies) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT window_start, entity_id FROM anomalies WHERE {pred} AND anomalous \
         AND entity_kind = 'element'"
    );
    let mut out = Vec::new();
    for b in s.sql(&sql).await? {
        let ws = col_ts_s(&b, "window_start")?;
        let id = col_str(&b, "entity_id")?;
        for i in 0..b.num_rows() {
            if let (Some(w), Some(e)) = (ws[i], id[i].clone()) {
                out.push((w, e));
            }
        }
    }
    Ok(out)
}

/// Window `[at − window, at]` of a request.
fn window_of(req: &DemarcationRequest, cfg: &DemarcationConfig) -> (i64, i64) {
    let w = req.window_s.unwrap_or(cfg.window_s).max(1);
    (req.at_s - w, req.at_s)
}

/// Loads what the ladder needs for one user: the user's rows in the window, then (over the
/// span of its poor minutes) the rows of its access and core elements and of its poor
/// rows' servers, the element rows, anomalies and its home id.
pub async fn load_for_user(
    s: &QuerySession,
    user_key: &str,
    from_s: i64,
    to_s: i64,
    cfg: &DemarcationConfig,
) -> Result<WindowData> {
    load_for_users(s, &[user_key.to_string()], from_s, to_s, cfg).await
}

/// Loads what the ladder needs for the users `user_keys` over one window (one user's
/// complaint, or every user of the poor-user list): their own rows in the window; then,
/// over the span of their poor minutes, the other users' rows of their access and core
/// elements and of their poor rows' servers — only the rows the ladder reads from peers
/// (overall rows and poor rows); the element rows and the window's anomalies.
pub async fn load_for_users(
    s: &QuerySession,
    user_keys: &[String],
    from_s: i64,
    to_s: i64,
    cfg: &DemarcationConfig,
) -> Result<WindowData> {
    s.require(Table::UserMinute)?;
    if user_keys.is_empty() {
        return Ok(WindowData::default());
    }
    let keys: Vec<String> = user_keys.iter().map(|k| lit(k)).collect();
    let pred = window_predicate(from_s, to_s);
    let mine = load_urows(
        s,
        &format!("{pred} AND {}", in_list("user_key", &keys, false)),
        None,
    )
    .await?;
    // Each user's episode, as the ladder finds it: its latest run of poor minutes (an
    // overall row below the threshold, or a poor category in that minute). Peers are read
    // only at the minutes of some user's episode.
    let mut overall: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    let mut poor_at: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    for r in &mine {
        if r.category == "all" {
            overall.entry(&r.user_key).or_default().insert(r.ws);
        }
        if (r.category == "all" && r.cei < cfg.poor_cei) || category_poor(r, cfg) {
            poor_at.entry(&r.user_key).or_default().insert(r.ws);
        }
    }
    let mut episodes: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    for (u, ws) in &poor_at {
        let Some(seen) = overall.get(u) else { continue };
        let poor: BTreeSet<i64> = ws.intersection(seen).copied().collect();
        let p = latest_episode(&poor, cfg);
        if !p.is_empty() {
            episodes.insert(u, p);
        }
    }
    let minutes: BTreeSet<i64> = episodes.values().flatten().copied().collect();
    let (Some(&p0), Some(&p1)) = (minutes.first(), minutes.last()) else {
        return Ok(WindowData::new(
            mine,
            Vec::new(),
            Vec::new(),
            HashMap::new(),
        ));
    };
    let in_episode = |r: &&URow| {
        episodes
            .get(r.user_key.as_str())
            .is_some_and(|p| p.contains(&r.ws))
    };
    let accs: BTreeSet<&str> = mine
        .iter()
        .filter(in_episode)
        .map(|r| r.access.as_str())
        .collect();
    let cores: BTreeSet<&str> = mine
        .iter()
        .filter(in_episode)
        .map(|r| r.core.as_str())
        .collect();
    let kpi_elems: BTreeSet<String> = accs.union(&cores).map(|e| e.to_string()).collect();
    let servers: BTreeSet<&str> = mine
        .iter()
        .filter(in_episode)
        .filter_map(|r| r.worst_server.as_deref())
        .collect();
    let list = |set: &BTreeSet<&str>| set.iter().map(|v| lit(v)).collect::<Vec<_>>().join(",");
    let mut ors = vec![
        format!("access_element IN ({})", list(&accs)),
        format!("core_element IN ({})", list(&cores)),
    ];
    if !servers.is_empty() {
        ors.push(format!("worst_server IN ({})", list(&servers)));
    }
    let ppred = window_predicate(p0, p1);
    let mut rows = load_urows(
        s,
        &format!(
            "{ppred} AND {} AND (category = 'all' OR cei < {}) AND ({})",
            in_list("user_key", &keys, true),
            cfg.poor_cei,
            ors.join(" OR ")
        ),
        Some(&minutes),
    )
    .await?;
    rows.extend(mine);
    let elems = load_erows(
        s,
        &format!("{ppred} AND level IN ('access', 'core', 'server')"),
    )
    .await?;
    let anomalies = load_anomalies(s, &pred).await?;
    let kpi_elems: BTreeSet<&str> = kpi_elems.iter().map(String::as_str).collect();
    let kpis = load_kpis(
        s,
        Some(&kpi_elems),
        p0 - cfg.kpi_baseline_s,
        p1 + cfg.minute_s,
    )
    .await?;
    Ok(WindowData::new(rows, elems, anomalies, HashMap::new()).with_kpis(kpis))
}

/// A category row (not `all`) that makes its minute poor ([`DemarcationConfig::category_poor`]).
fn category_poor(r: &URow, cfg: &DemarcationConfig) -> bool {
    cfg.category_poor
        && r.category != "all"
        && r.cei < cfg.poor_cei
        && r.active_s >= cfg.category_poor_min_active_s
}

/// `col = v` / `col <> v` for one literal, `col [NOT] IN (…)` for several.
fn in_list(col: &str, lits: &[String], negate: bool) -> String {
    match (lits, negate) {
        ([one], false) => format!("{col} = {one}"),
        ([one], true) => format!("{col} <> {one}"),
        (many, false) => format!("{col} IN ({})", many.join(",")),
        (many, true) => format!("{col} NOT IN ({})", many.join(",")),
    }
}

/// Loads every row of `[from_s, to_s]` (for demarcating many users at one time: the
/// poor-user list), with the element KPIs of the window and the default KPI baseline.
pub async fn load_window(s: &QuerySession, from_s: i64, to_s: i64) -> Result<WindowData> {
    s.require(Table::UserMinute)?;
    let pred = window_predicate(from_s, to_s);
    let rows = load_urows(s, &pred, None).await?;
    let elems = load_erows(
        s,
        &format!("{pred} AND level IN ('access', 'core', 'server')"),
    )
    .await?;
    let anomalies = load_anomalies(s, &pred).await?;
    let kpis = load_kpis(
        s,
        None,
        from_s - DemarcationConfig::default().kpi_baseline_s,
        to_s + 60,
    )
    .await?;
    Ok(WindowData::new(rows, elems, anomalies, HashMap::new()).with_kpis(kpis))
}

/// Sets the home id shown for `user_key`'s home verdicts (from the topology; the lake
/// never stores home ids).
pub fn set_home(data: &mut WindowData, user_key: &str, home: &str) {
    data.homes.insert(user_key.to_string(), home.to_string());
}

fn mode<'a>(it: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for v in it {
        *m.entry(v).or_default() += 1;
    }
    m.into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| k.to_string())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
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

fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn opt3(v: Option<f64>) -> Value {
    v.map(|x| json!(r3(x))).unwrap_or(Value::Null)
}

/// The latest episode of `poor` (window starts): walking back from the latest poor minute,
/// minutes at most `episode_gap_s` apart, at most `episode_max_minutes` of them. A complaint
/// is about the degradation the customer has now, not an earlier, separate one.
fn latest_episode(poor: &BTreeSet<i64>, cfg: &DemarcationConfig) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut next: Option<i64> = None;
    for &w in poor.iter().rev() {
        if out.len() >= cfg.episode_max_minutes.max(1)
            || next.is_some_and(|n| n - w > cfg.episode_gap_s)
        {
            break;
        }
        out.insert(w);
        next = Some(w);
    }
    out
}

fn pop_json(p: &Pop) -> Value {
    json!({"n": r3(p.n), "k": p.k, "poor_rate": r3(p.rate), "lower": r3(p.lower),
        "users": p.users, "lower_users": r3(p.lower_users)})
}

fn margin(v: f64, t: f64) -> f64 {
    if t >= 1.0 {
        return 0.0;
    }
    ((v - t) / (1.0 - t)).clamp(0.0, 1.0)
}

/// Runs the ladder for `user_key` over `[from_s, to_s]` on loaded rows. Element statistics
/// are memoised in `data` per (element, episode), so demarcating many users on the same
/// rows ([`demarcate_loaded`]) computes each once.
pub fn evaluate(
    data: &WindowData,
    user_key: &str,
    from_s: i64,
    to_s: i64,
    cfg: &DemarcationConfig,
) -> Outcome {
    data.with_derived(cfg, |d| ladder(data, d, user_key, from_s, to_s, cfg))
}

fn ladder(
    data: &WindowData,
    d: &mut Derived,
    user_key: &str,
    from_s: i64,
    to_s: i64,
    cfg: &DemarcationConfig,
) -> Outcome {
    let rows = &data.rows;
    let mine_ids: Vec<usize> = data
        .idx_ids_in(&data.by_user, user_key, from_s, to_s)
        .collect();
    let mine: Vec<&URow> = mine_ids.iter().map(|&i| &rows[i]).collect();
    let overall_ids: Vec<usize> = mine_ids
        .iter()
        .copied()
        .filter(|&i| rows[i].category == "all")
        .collect();
    let overall: Vec<&URow> = overall_ids.iter().map(|&i| &rows[i]).collect();
    let all_poor: BTreeSet<i64> = overall_ids
        .iter()
        .filter(|&&i| d.poor_minute[i])
        .map(|&i| rows[i].ws)
        .collect();
    // Poor minutes where the overall CEI itself was poor (not only a category).
    let overall_poor = overall.iter().filter(|r| r.cei < cfg.poor_cei).count();
    let p = latest_episode(&all_poor, cfg);
    let seen: BTreeSet<i64> = mine.iter().map(|r| r.ws).collect();
    let mut ev = Map::new();
    ev.insert(
        "window_minutes".into(),
        json!((to_s - from_s) / cfg.minute_s.max(1)),
    );
    ev.insert("user_minutes".into(), json!(seen.len()));
    ev.insert("poor_minutes".into(), json!(all_poor.len()));
    ev.insert("overall_poor_minutes".into(), json!(overall_poor));
    ev.insert("episode_minutes".into(), json!(p.len()));
    if let Some(m) = median(overall.iter().map(|r| r.cei).collect()) {
        ev.insert("cei_median".into(), json!(r3(m)));
    }
    // 1. no poor minute
    if p.is_empty() {
        let conf = if seen.is_empty() {
            ev.insert("note".into(), json!("no data for the user in the window"));
            0.2
        } else {
            0.5 + 0.5 * (seen.len() as f64 / 10.0).min(1.0)
        };
        ev.insert("decided_by".into(), json!("no_poor_minute"));
        return Outcome {
            verdict: Verdict::NoFaultFound,
            element: None,
            confidence: r3(conf),
            evidence: Value::Object(ev),
        };
    }
    let in_p = |r: &&URow| p.contains(&r.ws);
    let (p_lo, p_hi) = (
        p.first().copied().unwrap_or(i64::MAX),
        p.last().copied().unwrap_or(i64::MIN),
    );
    let poor_overall: Vec<&URow> = overall.iter().copied().filter(in_p).collect();
    // u's elements: those of its latest poor minute. Rows carry the element valid at their
    // minute (a topology versioned by validity time), so an episode spanning a move to
    // another port is attributed to where u is at the complaint, not where it was before.
    let latest_poor = poor_overall.iter().max_by_key(|r| r.ws);
    let access = latest_poor.map(|r| r.access.clone()).unwrap_or_default();
    let core = latest_poor.map(|r| r.core.clone()).unwrap_or_default();
    ev.insert("access_element".into(), json!(access));
    ev.insert("core_element".into(), json!(core));

    // 2. server
    let mut my_poor: Vec<&URow> = mine
        .iter()
        .copied()
        .filter(in_p)
        .filter(|r| r.category != "all" && r.cei < cfg.poor_cei)
        .collect();
    if my_poor.is_empty() {
        my_poor = poor_overall.clone();
    }
    let server = mode(
        my_poor
            .iter()
            .filter_map(|r| r.worst_server.as_deref().map(server_prefix)),
    );
    let mut server_ok = false;
    let mut server_conf = 0.0;
    if let Some(sv) = &server {
        let on_s = my_poor
            .iter()
            .filter(|r| r.worst_server.as_deref().map(server_prefix) == Some(sv.as_str()))
            .count();
        let concentration = on_s as f64 / my_poor.len() as f64;
        // S's users per minute of P from element_minute (server level), its poor users
        // and their access elements from user_minute.
        let st = d.server(data, sv, &p);
        let k = st.k;
        let span = st.access_span;
        let mut n = if st.minutes == 0 {
            0.0
        } else {
            st.users / st.minutes as f64
        };
        // Element rows missing or stale: at least the poor users seen on S.
        let rate = if st.users > 0.0 {
            (st.poor_users / st.users).min(1.0)
        } else {
            1.0
        };
        if n < 1.0 && k > 0 {
            n = 0.0;
        }
        let lower = wilson_lower(rate * n, n, cfg.z).unwrap_or(0.0);
        // u's other services at the time of the degradation (P): its category rows not
        // on S (a row names a worst server only when something was measured wrong on it).
        let others: Vec<&URow> = mine
            .iter()
            .copied()
            .filter(|r| {
                r.category != "all"
                    && p.contains(&r.ws)
                    && r.worst_server.as_deref().map(server_prefix) != Some(sv.as_str())
            })
            .collect();
        let other_fine = if others.is_empty() {
            1.0
        } else {
            others.iter().filter(|r| r.cei >= cfg.poor_cei).count() as f64 / others.len() as f64
        };
        let my_srv_rtt = median(my_poor.iter().filter_map(|r| r.rtt_server).collect());
        let base_srv_rtt = median(
            mine.iter()
                .filter(|r| !p.contains(&r.ws))
                .filter_map(|r| r.rtt_server)
                .collect(),
        );
        let srv_elevated = match (my_srv_rtt, base_srv_rtt) {
            (Some(a), Some(b)) => a >= 1.5 * b && a - b >= 20.0,
            _ => false,
        };
        server_ok = concentration >= cfg.server_min_concentration
            && n.max(k as f64) >= cfg.server_min_users
            && k >= cfg.server_min_poor
            && lower >= cfg.server_min_lower
            && span >= cfg.server_min_access_span
            && other_fine >= cfg.server_other_fine_share;
        server_conf = 0.6
            + 0.25 * margin(lower, cfg.server_min_lower)
            + 0.1 * margin(concentration, cfg.server_min_concentration)
            + if srv_elevated { 0.05 } else { 0.0 };
        ev.insert(
            "server".into(),
            json!({
                "prefix": sv,
                "services": st.services,
                "concentration": r3(concentration),
                "n": r3(n), "k": k, "poor_rate": r3(rate), "lower": r3(lower),
                "access_span": span,
                "other_services_fine": r3(other_fine),
                "rtt_server_ms": opt3(my_srv_rtt),
                "rtt_server_ms_baseline": opt3(base_srv_rtt),
                "server_leg_elevated": srv_elevated,
                "pass": server_ok,
            }),
        );
    }
    if server_ok {
        ev.insert("decided_by".into(), json!("server"));
        return Outcome {
            verdict: Verdict::Server,
            element: server,
            confidence: r3(server_conf.min(1.0)),
            evidence: Value::Object(ev),
        };
    }

    // 3. core
    let cs = d.core(data, &core, &p);
    let core_pop = cs.pop;
    let need_access = cfg
        .core_min_access_span
        .min(cs.access_elements)
        .max(2.min(cfg.core_min_access_span));
    // The core's users outside u's access element: a core fault shows there too.
    let rest_pop = d.core_rest(data, &core, &access, &p);
    let other_core_rate = cs.other_cores_rate;
    let relative_ok = other_core_rate.is_some_and(|o| {
        let need = cfg.core_rate_ratio * o + cfg.core_rate_margin;
        core_pop.lower_users >= cfg.core_relative_min_lower
            && core_pop.rate >= need
            && rest_pop.rate >= need
            && rest_pop.k >= 2
    });
    // A fault elsewhere (a server all cores' users reach) degrades the other cores alike:
    // when they have data, the core must stand out against them on either path.
    let contrast_ok = other_core_rate
        .is_none_or(|o| core_pop.rate >= cfg.core_rate_ratio * o + cfg.core_rate_margin);
    let core_ok = ((core_pop.lower >= cfg.core_min_lower && contrast_ok) || relative_ok)
        && core_pop.k >= cfg.core_min_poor
        && cs.access_span >= need_access
        && cs.server_span >= cfg.core_min_server_span;
    let mut cj = pop_json(&core_pop);
    if let Value::Object(m) = &mut cj {
        m.insert("element".into(), json!(core));
        m.insert("access_elements".into(), json!(cs.access_elements));
        m.insert("access_span".into(), json!(cs.access_span));
        m.insert("access_span_needed".into(), json!(need_access));
        m.insert("server_span".into(), json!(cs.server_span));
        m.insert("other_cores_poor_rate".into(), opt3(other_core_rate));
        m.insert("rest_poor_rate".into(), json!(r3(rest_pop.rate)));
        m.insert("relative_pass".into(), json!(relative_ok));
        m.insert("contrast_pass".into(), json!(contrast_ok));
        m.insert("pass".into(), json!(core_ok));
    }
    let core_kpi = &cs.kpi;
    if !core_kpi.metrics.is_empty() {
        if let Value::Object(m) = &mut cj {
            m.insert("kpi".into(), core_kpi.evidence(cfg));
        }
    }
    ev.insert("core".into(), cj);
    if core_ok {
        ev.insert("decided_by".into(), json!("core"));
        // At most 0.85 from the user-minute statistics; element KPIs move it ±.
        let conf = 0.55
            + 0.25 * margin(core_pop.lower, cfg.core_min_lower)
            + if cs.access_span >= 2 * need_access {
                0.05
            } else {
                0.0
            }
            + core_kpi.confidence_delta(cfg);
        return Outcome {
            verdict: Verdict::Core,
            element: Some(core),
            confidence: r3(conf.clamp(0.05, 1.0)),
            evidence: Value::Object(ev),
        };
    }

    // 4. access
    let ac = d.access(data, &access, &p);
    let acc_pop = ac.pop;
    // Other access elements: siblings under the same core, else element_minute rows.
    let (other_rate, other_src) = if rest_pop.users > 0 {
        (rest_pop.rate, "siblings_under_core")
    } else {
        match ac.other_elements_rate {
            Some(r) => (r, "other_access_elements"),
            None => (0.0, "none"),
        }
    };
    let services = ac.services;
    let ratio_ok = acc_pop.rate >= cfg.access_rate_ratio * other_rate;
    let entity = format!("access:{access}");
    let anomalies = data
        .anomalies
        .iter()
        .filter(|(w, e)| *w >= from_s && *w <= to_s && *e == entity)
        .count();
    let relative_ok = other_src != "none"
        && acc_pop.lower_users >= cfg.access_relative_min_lower
        && acc_pop.rate >= cfg.access_rate_ratio * other_rate + cfg.access_rate_margin;
    let access_ok = acc_pop.n >= cfg.access_min_users
        && acc_pop.k >= cfg.access_min_poor
        && (acc_pop.lower >= cfg.access_min_lower || relative_ok)
        && ratio_ok
        && services >= cfg.access_min_services;
    let mut aj = pop_json(&acc_pop);
    if let Value::Object(m) = &mut aj {
        m.insert("element".into(), json!(access));
        m.insert("other_poor_rate".into(), json!(r3(other_rate)));
        m.insert("other_source".into(), json!(other_src));
        m.insert("services".into(), json!(services));
        m.insert("anomalies".into(), json!(anomalies));
        m.insert("relative_pass".into(), json!(relative_ok));
        m.insert("pass".into(), json!(access_ok));
    }
    let access_kpi = &ac.kpi;
    if !access_kpi.metrics.is_empty() {
        if let Value::Object(m) = &mut aj {
            m.insert("kpi".into(), access_kpi.evidence(cfg));
        }
    }
    ev.insert("access".into(), aj);
    if access_ok {
        ev.insert("decided_by".into(), json!("access"));
        // At most 0.85 from the user-minute statistics and anomaly rows; element KPIs
        // (SPEC §7 step 4) move it up when anomalous, down when present and healthy.
        let conf = 0.5
            + 0.25 * margin(acc_pop.lower, cfg.access_min_lower)
            + if anomalies > 0 { 0.1 } else { 0.0 }
            + access_kpi.confidence_delta(cfg);
        return Outcome {
            verdict: Verdict::Access,
            element: Some(access),
            confidence: r3(conf.clamp(0.05, 1.0)),
            evidence: Value::Object(ev),
        };
    }

    // 5. home
    let peer_ids: Vec<usize> = data
        .idx_ids_in(&data.by_access, &access, p_lo, p_hi)
        .filter(|&i| p.contains(&rows[i].ws) && rows[i].user_key != user_key)
        .collect();
    let peer_pop = d.pop(rows, peer_ids.iter().copied(), &p);
    let peers: Vec<&URow> = peer_ids.iter().map(|&i| &rows[i]).collect();
    let leg = |rows: &[&URow], f: fn(&URow) -> Option<f64>| -> Option<f64> {
        median(
            rows.iter()
                .filter(|r| r.category == "all")
                .filter_map(|r| f(r))
                .collect(),
        )
        .or_else(|| median(rows.iter().filter_map(|r| f(r)).collect()))
    };
    let my_p: Vec<&URow> = mine.iter().copied().filter(in_p).collect();
    let loss_of = |r: &URow| r.loss_pct.or(r.retrans.map(|x| x * 100.0));
    let my_rtt = leg(&my_p, |r| r.rtt_client);
    let my_loss = leg(&my_p, loss_of);
    let peer_rows: Vec<&URow> = peers
        .iter()
        .copied()
        .filter(|r| r.category == "all")
        .collect();
    let peer_rtt = leg(&peer_rows, |r| r.rtt_client);
    let peer_loss = leg(&peer_rows, loss_of);
    let rtt_elevated = match (my_rtt, peer_rtt) {
        (Some(a), Some(b)) => a >= cfg.home_rtt_ratio * b && a - b >= cfg.home_rtt_min_delta_ms,
        (Some(a), None) => a >= cfg.home_rtt_abs_ms,
        _ => false,
    };
    let loss_elevated = match (my_loss, peer_loss) {
        (Some(a), Some(b)) => a >= cfg.home_loss_ratio * b && a - b >= cfg.home_loss_min_delta_pct,
        (Some(a), None) => a >= cfg.home_loss_min_delta_pct * 2.0,
        _ => false,
    };
    let peers_fine = peer_pop.lower < cfg.home_peer_max_lower;
    let home_ok = peers_fine && (rtt_elevated || loss_elevated);
    let home_id = data.homes.get(user_key).cloned();
    let mut hj = pop_json(&peer_pop);
    if let Value::Object(m) = &mut hj {
        m.insert("rtt_client_ms".into(), opt3(my_rtt));
        m.insert("peer_rtt_client_ms".into(), opt3(peer_rtt));
        m.insert("loss_pct".into(), opt3(my_loss));
        m.insert("peer_loss_pct".into(), opt3(peer_loss));
        m.insert("rtt_elevated".into(), json!(rtt_elevated));
        m.insert("loss_elevated".into(), json!(loss_elevated));
        m.insert("pass".into(), json!(home_ok));
    }
    ev.insert("home".into(), hj);
    if home_ok {
        ev.insert("decided_by".into(), json!("home"));
        let conf = 0.6
            + 0.25 * (1.0 - peer_pop.lower / cfg.home_peer_max_lower.max(1e-9)).clamp(0.0, 1.0)
            + if rtt_elevated && loss_elevated {
                0.15
            } else {
                0.0
            };
        return Outcome {
            verdict: Verdict::Home,
            element: Some(home_id.unwrap_or_else(|| user_key.to_string())),
            confidence: r3(conf.min(1.0)),
            evidence: Value::Object(ev),
        };
    }
    if overall_poor == 0 {
        // Only a service category dipped, the user's overall experience stayed fine, and
        // no level explains the dip: nothing in the network to blame.
        ev.insert("decided_by".into(), json!("category_only_unexplained"));
        return Outcome {
            verdict: Verdict::NoFaultFound,
            element: None,
            confidence: 0.5,
            evidence: Value::Object(ev),
        };
    }
    ev.insert("decided_by".into(), json!("none"));
    Outcome {
        verdict: Verdict::Inconclusive,
        element: None,
        confidence: 0.3,
        evidence: Value::Object(ev),
    }
}

fn finish(req: &DemarcationRequest, from: i64, to: i64, o: Outcome) -> Demarcation {
    Demarcation {
        complaint_id: req.complaint_id.clone(),
        user: req.user.clone(),
        user_key: req.user_key.clone(),
        window_start: rfc3339(from),
        window_end: rfc3339(to),
        verdict: o.verdict,
        element: o.element,
        confidence: o.confidence,
        evidence: o.evidence,
    }
}

/// Demarcates one request (loading only the rows it needs).
pub async fn demarcate(
    s: &QuerySession,
    req: &DemarcationRequest,
    cfg: &DemarcationConfig,
) -> Result<Demarcation> {
    let (from, to) = window_of(req, cfg);
    let mut data = load_for_user(s, &req.user_key, from, to, cfg).await?;
    if let Some(h) = &req.home {
        set_home(&mut data, &req.user_key, h);
    }
    Ok(finish(
        req,
        from,
        to,
        evaluate(&data, &req.user_key, from, to, cfg),
    ))
}

/// Demarcates each request in turn (a complaints batch).
pub async fn demarcate_many(
    s: &QuerySession,
    reqs: &[DemarcationRequest],
    cfg: &DemarcationConfig,
) -> Result<Vec<Demarcation>> {
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        out.push(demarcate(s, r, cfg).await?);
    }
    Ok(out)
}

/// Demarcates many users at one instant on already loaded rows ([`load_for_users`],
/// [`load_window`]).
pub fn demarcate_loaded(
    data: &WindowData,
    reqs: &[DemarcationRequest],
    cfg: &DemarcationConfig,
) -> Vec<Demarcation> {
    reqs.iter()
        .map(|r| {
            let (from, to) = window_of(r, cfg);
            let mut o = evaluate(data, &r.user_key, from, to, cfg);
            // As `set_home` would (without copying the window's rows).
            if let (Verdict::Home, Some(h)) = (o.verdict, &r.home) {
                o.element = Some(h.clone());
            }
            finish(r, from, to, o)
        })
        .collect()
}

/// Appends verdicts to the `demarcations` table in one Delta commit (all rows or none).
/// Returns the new table version (`None` for no rows). Blocking.
///
/// Privacy: the raw `user` is not stored, and a `home` verdict stores the pseudonym as
/// its element (home ids never reach the lake).
pub fn append_demarcations(lake: &Lake, rows: &[Demarcation]) -> Result<Option<i64>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let now = chrono::Utc::now().timestamp();
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        out.push(DemarcationRow {
            complaint_id: d.complaint_id.clone(),
            user_key: d.user_key.clone(),
            window_start_s: parse_time(&d.window_start)?,
            window_end_s: parse_time(&d.window_end)?,
            verdict: d.verdict.as_str().to_string(),
            element: if d.verdict == Verdict::Home {
                Some(d.user_key.clone())
            } else {
                d.element.clone()
            },
            confidence: d.confidence,
            evidence: d.evidence.clone(),
            evaluated_at_s: now,
        });
    }
    let batch = cemflow_lakehouse::convert::demarcations_batch(&out)?;
    Ok(lake.append(Table::Demarcations, vec![batch])?)
}

/// One row of a complaints CSV (`complaint_id,user,reported_at[,service,text]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Complaint {
    /// Complaint id.
    pub complaint_id: String,
    /// Raw subscriber IP or id (or a pseudonym).
    pub user: String,
    /// Reported time, epoch seconds.
    pub reported_at_s: i64,
    /// Service named by the customer.
    pub service: Option<String>,
    /// Free text.
    pub text: Option<String>,
}

/// Reads a complaints CSV. Errors name the file and line.
pub fn read_complaints(path: &std::path::Path) -> Result<Vec<Complaint>> {
    let text = std::fs::read_to_string(path).map_err(|source| QueryError::Io {
        context: format!("reading complaints {}", path.display()),
        source,
    })?;
    parse_complaints(&path.display().to_string(), &text)
}

/// Parses complaints CSV text (`file` names it in errors).
pub fn parse_complaints(file: &str, text: &str) -> Result<Vec<Complaint>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| QueryError::Input(format!("{file}: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(ci), Some(ui), Some(ti)) = (col("complaint_id"), col("user"), col("reported_at"))
    else {
        return Err(QueryError::Input(format!(
            "{file}: header must be `complaint_id,user,reported_at[,service,text]`"
        )));
    };
    let (si, xi) = (col("service"), col("text"));
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| QueryError::Input(format!("{file}:{line}: {e}")))?;
        let get = |j: usize| rec.get(j).map(str::trim).unwrap_or("");
        let id = get(ci);
        let user = get(ui);
        if id.is_empty() || user.is_empty() {
            return Err(QueryError::Input(format!(
                "{file}:{line}: empty complaint_id or user"
            )));
        }
        let at =
            parse_time(get(ti)).map_err(|e| QueryError::Input(format!("{file}:{line}: {e}")))?;
        let opt = |j: Option<usize>| j.map(get).filter(|s| !s.is_empty()).map(str::to_string);
        out.push(Complaint {
            complaint_id: id.to_string(),
            user: user.to_string(),
            reported_at_s: at,
            service: opt(si),
            text: opt(xi),
        });
    }
    Ok(out)
}

/// Requests for complaints, users resolved with `resolver`.
pub fn requests_for(
    complaints: &[Complaint],
    resolver: &UserResolver,
    window_s: Option<i64>,
) -> Result<Vec<DemarcationRequest>> {
    complaints
        .iter()
        .map(|c| {
            Ok(DemarcationRequest {
                complaint_id: Some(c.complaint_id.clone()),
                user: c.user.clone(),
                user_key: resolver.user_key_at(&c.user, c.reported_at_s)?,
                at_s: c.reported_at_s,
                window_s,
                home: resolver.home_id(&c.user),
            })
        })
        .collect()
}

/// The latest window start in `user_minute` (epoch s), `None` when empty.
pub async fn latest_window(s: &QuerySession) -> Result<Option<i64>> {
    s.require(Table::UserMinute)?;
    let b = s
        .sql("SELECT max(window_start) AS w FROM user_minute WHERE source = 'probe'")
        .await?;
    Ok(b.first()
        .map(|b| col_ts_s(b, "w"))
        .transpose()?
        .and_then(|v| v.first().copied().flatten()))
}
