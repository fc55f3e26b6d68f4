//! The poor-quality user list (SPEC §5, §7): users with a poor minute (overall CEI below
//! 60, or — `category_poor`, default on — one of the minute's categories below 60) in at
//! least 3 of the last 15 minutes before `at`, each with its CEI, worst category, poor
//! minutes and the demarcation verdict of its degradation.
//!
//! * `at` defaults to the latest window in the lake; the lookback covers the windows
//!   starting in `[at − (lookback − 1)·minute, at]`.
//! * `cei` is the user's mean overall CEI over the lookback windows it was seen in.
//! * `worst_category` is the category (not `all`) with the lowest mean CEI over the
//!   lookback (ties: the one with more poor minutes).
//! * With a `category` filter, the rule is applied to that category's rows instead of the
//!   overall ones (users with ≥ 3 poor minutes *in that category*), and `cei` is that
//!   category's.
//! * `verdict`/`element` come from [`crate::demarcate`] at the end of the `at` window, over
//!   the demarcation window before it; all users share one load of the rows the ladder
//!   needs ([`crate::demarcate::load_for_users`]).

use crate::demarcate::{
    demarcate_loaded, latest_window, load_for_users, DemarcationConfig, DemarcationRequest, Verdict,
};
use crate::error::{QueryError, Result};
use crate::session::QuerySession;
use crate::users::UserResolver;
use crate::util::{col_f64, col_str, lit, window_predicate};
use cemflow_lakehouse::Table;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The poor-user rule and scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoorUsersQuery {
    /// Evaluation instant (epoch s); `None` = the latest window in the lake.
    pub at_s: Option<i64>,
    /// Only this category (rule applied to its rows).
    pub category: Option<String>,
    /// A minute is poor when its CEI is below this.
    pub cei_below: f64,
    /// Least poor minutes …
    pub min_minutes: usize,
    /// … among this many windows ending with `at`'s.
    pub lookback_minutes: usize,
    /// Without `category`: a minute is also poor when one of its category rows active for
    /// at least `category_min_active_s` is below `cei_below` (the `[cei.poor]` rule the
    /// dataflow applies to the `all` row's `poor` flag; see `cemflow_dataflow::cei::PoorConfig`).
    pub category_poor: bool,
    /// See `category_poor`. Seconds.
    pub category_min_active_s: f64,
    /// Window length. Seconds.
    pub minute_s: i64,
    /// Run the demarcation for every poor user (fills `verdict` and `element`).
    pub demarcate: bool,
}

impl Default for PoorUsersQuery {
    fn default() -> Self {
        let p = cemflow_dataflow::cei::PoorConfig::default();
        PoorUsersQuery {
            at_s: None,
            category: None,
            cei_below: p.cei_below,
            min_minutes: p.min_minutes,
            lookback_minutes: p.lookback_minutes,
            category_poor: p.category_poor,
            category_min_active_s: p.category_min_active_s,
            minute_s: 60,
            demarcate: true,
        }
    }
}

/// One poor user (SPEC §11 `poor-users` fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoorUser {
    /// Topology/raw user when the caller passed the key, else the pseudonym.
    pub user: String,
    /// Pseudonym.
    pub user_key: String,
    /// Mean CEI over the lookback (one decimal).
    pub cei: f64,
    /// Poor minutes in the lookback.
    pub poor_minutes: u32,
    /// Category with the lowest CEI.
    pub worst_category: Option<String>,
    /// Demarcation verdict (`None` when not demarcated).
    pub verdict: Option<Verdict>,
    /// Demarcated element.
    pub element: Option<String>,
}

/// The poor users at `q.at_s` (or the latest window), worst CEI first.
pub async fn poor_users(
    s: &QuerySession,
    q: &PoorUsersQuery,
    resolver: &UserResolver,
    dcfg: &DemarcationConfig,
) -> Result<Vec<PoorUser>> {
    s.require(Table::UserMinute)?;
    if q.lookback_minutes == 0 || q.minute_s <= 0 {
        return Err(QueryError::Input(
            "lookback and window length must be positive".into(),
        ));
    }
    let at = match q.at_s {
        Some(t) => t.div_euclid(q.minute_s) * q.minute_s,
        None => match latest_window(s).await? {
            Some(t) => t,
            None => return Ok(Vec::new()),
        },
    };
    let from = at - (q.lookback_minutes as i64 - 1) * q.minute_s;
    let pred = window_predicate(from, at);
    let cat = match &q.category {
        Some(c) => lit(c),
        None => "'all'".to_string(),
    };
    let thr = q.cei_below;
    let sql = if q.category.is_none() && q.category_poor {
        // Per user-minute: the overall CEI, poor when it or an active category is.
        let min_active = q.category_min_active_s;
        format!(
            "SELECT user_key, avg(cei_all) AS cei, sum(poor) AS poor_minutes FROM (\
             SELECT user_key, window_start, \
             max(CASE WHEN category = 'all' THEN cei END) AS cei_all, \
             max(CASE WHEN cei < {thr} AND (category = 'all' OR active_s >= {min_active}) \
             THEN 1 ELSE 0 END) AS poor \
             FROM user_minute WHERE {pred} AND source = 'probe' \
             GROUP BY user_key, window_start) \
             GROUP BY user_key HAVING sum(poor) >= {} \
             ORDER BY cei ASC, user_key",
            q.min_minutes
        )
    } else {
        format!(
            "SELECT user_key, avg(cei) AS cei, \
             sum(CASE WHEN cei < {thr} THEN 1 ELSE 0 END) AS poor_minutes \
             FROM user_minute WHERE {pred} AND source = 'probe' AND category = {cat} \
             GROUP BY user_key HAVING sum(CASE WHEN cei < {thr} THEN 1 ELSE 0 END) >= {} \
             ORDER BY cei ASC, user_key",
            q.min_minutes
        )
    };
    let mut users: Vec<PoorUser> = Vec::new();
    for b in s.sql(&sql).await? {
        let uk = col_str(&b, "user_key")?;
        let cei = col_f64(&b, "cei")?;
        let pm = col_f64(&b, "poor_minutes")?;
        for i in 0..b.num_rows() {
            let Some(k) = uk[i].clone() else { continue };
            users.push(PoorUser {
                user: resolver.display(&k),
                user_key: k,
                cei: (cei[i].unwrap_or(0.0) * 10.0).round() / 10.0,
                poor_minutes: pm[i].unwrap_or(0.0) as u32,
                worst_category: None,
                verdict: None,
                element: None,
            });
        }
    }
    if users.is_empty() {
        return Ok(users);
    }
    // Worst category per user.
    let keys: Vec<String> = users.iter().map(|u| lit(&u.user_key)).collect();
    let mut worst: HashMap<String, (f64, f64, String)> = HashMap::new();
    for chunk in keys.chunks(1000) {
        let sql = format!(
            "SELECT user_key, category, avg(cei) AS cei, \
             sum(CASE WHEN cei < {thr} THEN 1 ELSE 0 END) AS poor \
             FROM user_minute WHERE {pred} AND source = 'probe' AND category <> 'all' \
             AND user_key IN ({}) \
             GROUP BY user_key, category",
            chunk.join(",")
        );
        for b in s.sql(&sql).await? {
            let uk = col_str(&b, "user_key")?;
            let ca = col_str(&b, "category")?;
            let ce = col_f64(&b, "cei")?;
            let po = col_f64(&b, "poor")?;
            for i in 0..b.num_rows() {
                let (Some(u), Some(c), Some(v)) = (uk[i].clone(), ca[i].clone(), ce[i]) else {
                    continue;
                };
                let p = po[i].unwrap_or(0.0);
                let better = match worst.get(&u) {
                    None => true,
                    Some((wc, wp, wn)) => {
                        v < *wc || (v == *wc && (p > *wp || (p == *wp && c < *wn)))
                    }
                };
                if better {
                    worst.insert(u, (v, p, c));
                }
            }
        }
    }
    for u in &mut users {
        u.worst_category = worst.get(&u.user_key).map(|w| w.2.clone());
    }
    if q.demarcate {
        let end = at + q.minute_s;
        let keys: Vec<String> = users.iter().map(|u| u.user_key.clone()).collect();
        let data = load_for_users(s, &keys, end - dcfg.window_s, end, dcfg).await?;
        let reqs: Vec<DemarcationRequest> = users
            .iter()
            .map(|u| DemarcationRequest {
                complaint_id: None,
                user: u.user.clone(),
                user_key: u.user_key.clone(),
                at_s: end,
                window_s: None,
                home: resolver.home_id(&u.user_key),
            })
            .collect();
        for (u, d) in users.iter_mut().zip(demarcate_loaded(&data, &reqs, dcfg)) {
            u.verdict = Some(d.verdict);
            u.element = d.element;
        }
    }
    Ok(users)
}
