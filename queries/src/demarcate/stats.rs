//! Element statistics of the demarcation ladder, computed once per (element, episode).
//!
//! The ladder compares a user's degradation with the populations around it: its core
//! element, its access element, the core's other access elements, the server prefix it
//! blames. Those statistics depend only on the element and the minutes of the episode `P`,
//! not on the user, so when many users are demarcated on the same loaded rows (the
//! poor-user list: thousands of users, a few dozen elements, a handful of distinct
//! episodes) each is computed once and reused. Row flags that the statistics need per row
//! (is this overall row a poor minute?) and dense ids for distinct counting are computed
//! once per configuration.

use super::{category_poor, server_prefix, DemarcationConfig, URow, WindowData};
use crate::element_kpi::{assess, KpiAssessment};
use crate::udf::wilson_lower;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Distinct counting over dense ids without clearing a set per group: an id is in the
/// current group when its stamp equals the group's generation.
#[derive(Debug, Default)]
struct Distinct {
    stamp: Vec<u32>,
    generation: u32,
    count: usize,
}

impl Distinct {
    fn with_ids(n: usize) -> Distinct {
        Distinct {
            stamp: vec![0; n],
            generation: 0,
            count: 0,
        }
    }

    /// Starts a new, empty group.
    fn begin(&mut self) {
        self.count = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
    }

    /// Adds `id` to the group.
    fn insert(&mut self, id: u32) {
        if let Some(s) = self.stamp.get_mut(id as usize) {
            if *s != self.generation {
                *s = self.generation;
                self.count += 1;
            }
        }
    }
}

/// Population statistics of a group of overall rows over the minutes of `P`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pop {
    /// Mean users per minute.
    pub n: f64,
    /// Σ poor user-minutes / Σ user-minutes.
    pub rate: f64,
    /// Distinct poor users.
    pub k: usize,
    /// Wilson lower bound on `(rate·n, n)`.
    pub lower: f64,
    /// Distinct users.
    pub users: usize,
    /// Wilson lower bound on `(k, users)`: the share of the group's users poor at some
    /// minute of P (SPEC §7's k/n), for the relative tests.
    pub lower_users: f64,
}

/// What the server step reads about a server prefix over `P`.
#[derive(Debug, Clone)]
pub(super) struct ServerStats {
    /// Minutes of `P` with `element_minute` rows of the prefix.
    pub minutes: usize,
    /// Σ users of those rows.
    pub users: f64,
    /// Σ poor users of those rows.
    pub poor_users: f64,
    /// Services (`prefix|service`) seen.
    pub services: BTreeSet<String>,
    /// Distinct users with a poor row naming the prefix.
    pub k: usize,
    /// Distinct access elements of those rows.
    pub access_span: usize,
}

/// What the core step reads about a core element over `P`.
#[derive(Debug, Clone)]
pub(super) struct CoreStats {
    /// The core's users.
    pub pop: Pop,
    /// Distinct access elements of its overall rows.
    pub access_elements: usize,
    /// Distinct access elements of its poor minutes.
    pub access_span: usize,
    /// Distinct server prefixes of its poor rows.
    pub server_span: usize,
    /// The other core elements' poor rate (`element_minute`), when they have users.
    pub other_cores_rate: Option<f64>,
    /// Element KPI assessment.
    pub kpi: KpiAssessment,
}

/// What the access step reads about an access element over `P`.
#[derive(Debug, Clone)]
pub(super) struct AccessStats {
    /// The element's users.
    pub pop: Pop,
    /// Services (the larger of distinct categories and server prefixes) of its poor rows.
    pub services: usize,
    /// The other access elements' poor rate from `element_minute` (used when the core has
    /// no other access element in the loaded rows), `None` without users.
    pub other_elements_rate: Option<f64>,
    /// Element KPI assessment.
    pub kpi: KpiAssessment,
}

/// Per-configuration row flags and the memoised element statistics of one [`WindowData`].
#[derive(Debug)]
pub(super) struct Derived {
    cfg: DemarcationConfig,
    /// Per row: an overall row that is a poor minute (its CEI, or with `category_poor` one
    /// of the same user-minute's categories, below the threshold).
    pub poor_minute: Vec<bool>,
    user_id: Vec<u32>,
    access_id: Vec<u32>,
    users_seen: Distinct,
    poor_seen: Distinct,
    access_seen: Distinct,
    servers: HashMap<(String, Vec<i64>), ServerStats>,
    cores: HashMap<(String, Vec<i64>), CoreStats>,
    rests: HashMap<(String, String, Vec<i64>), Pop>,
    accesses: HashMap<(String, Vec<i64>), AccessStats>,
}

/// Holder of a [`WindowData`]'s [`Derived`] state; cloning a `WindowData` starts empty.
#[derive(Debug, Default)]
pub(super) struct DerivedCell(pub std::sync::Mutex<Option<Derived>>);

impl Clone for DerivedCell {
    fn clone(&self) -> Self {
        DerivedCell::default()
    }
}

impl Derived {
    /// Flags and ids of `data`'s rows under `cfg`.
    pub fn new(data: &WindowData, cfg: &DemarcationConfig) -> Derived {
        let rows = &data.rows;
        let mut poor_minute = vec![false; rows.len()];
        let mut user_id = vec![0u32; rows.len()];
        for (uid, idxs) in data.by_user.values().enumerate() {
            // Indexes are in time order: one pass per user-minute.
            let mut a = 0;
            while a < idxs.len() {
                let ws = rows[idxs[a]].ws;
                let mut b = a;
                while b < idxs.len() && rows[idxs[b]].ws == ws {
                    b += 1;
                }
                let minute = &idxs[a..b];
                let category_dip = minute.iter().any(|&i| category_poor(&rows[i], cfg));
                for &i in minute {
                    user_id[i] = uid as u32;
                    let r = &rows[i];
                    poor_minute[i] = r.category == "all" && (r.cei < cfg.poor_cei || category_dip);
                }
                a = b;
            }
        }
        let mut access_id = vec![0u32; rows.len()];
        for (aid, idxs) in data.by_access.values().enumerate() {
            for &i in idxs {
                access_id[i] = aid as u32;
            }
        }
        Derived {
            cfg: cfg.clone(),
            poor_minute,
            user_id,
            access_id,
            users_seen: Distinct::with_ids(data.by_user.len()),
            poor_seen: Distinct::with_ids(data.by_user.len()),
            access_seen: Distinct::with_ids(data.by_access.len()),
            servers: HashMap::new(),
            cores: HashMap::new(),
            rests: HashMap::new(),
            accesses: HashMap::new(),
        }
    }

    /// True when this state was derived under `cfg`.
    pub fn is_for(&self, cfg: &DemarcationConfig) -> bool {
        self.cfg == *cfg
    }

    /// A row that makes its minute poor for an element's statistics: a category row below
    /// the threshold, or an overall row that is a poor minute.
    fn poor_row(&self, rows: &[URow], i: usize) -> bool {
        rows[i].cei < self.cfg.poor_cei || self.poor_minute[i]
    }

    /// [`Pop`] of the overall rows among `idxs` whose minute is in `p`.
    pub fn pop(
        &mut self,
        rows: &[URow],
        idxs: impl Iterator<Item = usize>,
        p: &BTreeSet<i64>,
    ) -> Pop {
        let mut minutes: BTreeSet<i64> = BTreeSet::new();
        let (mut total, mut poor) = (0usize, 0usize);
        self.users_seen.begin();
        self.poor_seen.begin();
        for i in idxs {
            let r = &rows[i];
            if r.category != "all" || !p.contains(&r.ws) {
                continue;
            }
            minutes.insert(r.ws);
            self.users_seen.insert(self.user_id[i]);
            total += 1;
            if self.poor_minute[i] {
                poor += 1;
                self.poor_seen.insert(self.user_id[i]);
            }
        }
        if total == 0 {
            return Pop::default();
        }
        let z = self.cfg.z;
        let n = total as f64 / minutes.len().max(1) as f64;
        let rate = poor as f64 / total as f64;
        let (k, users) = (self.poor_seen.count, self.users_seen.count);
        Pop {
            n,
            rate,
            k,
            lower: wilson_lower(rate * n, n, z).unwrap_or(0.0),
            users,
            lower_users: wilson_lower(k as f64, users as f64, z).unwrap_or(0.0),
        }
    }

    /// The server step's statistics of prefix `sv` over `p`.
    pub fn server(&mut self, data: &WindowData, sv: &str, p: &BTreeSet<i64>) -> ServerStats {
        let key = (sv.to_string(), p.iter().copied().collect::<Vec<_>>());
        if let Some(s) = self.servers.get(&key) {
            return s.clone();
        }
        let (lo, hi) = span(p);
        let mut minutes = BTreeSet::new();
        let (mut users, mut poor_users) = (0.0, 0.0);
        let mut services = BTreeSet::new();
        for e in data.elems_in(lo, hi) {
            if e.level == "server" && server_prefix(&e.element_id) == sv && p.contains(&e.ws) {
                minutes.insert(e.ws);
                users += e.users;
                poor_users += e.poor_users;
                if let Some((_, svc)) = e.element_id.split_once('|') {
                    services.insert(svc.to_string());
                }
            }
        }
        self.poor_seen.begin();
        self.access_seen.begin();
        for i in data.idx_ids_in(&data.by_server, sv, lo, hi) {
            let r = &data.rows[i];
            if p.contains(&r.ws) && r.cei < self.cfg.poor_cei {
                self.poor_seen.insert(self.user_id[i]);
                self.access_seen.insert(self.access_id[i]);
            }
        }
        let s = ServerStats {
            minutes: minutes.len(),
            users,
            poor_users,
            services,
            k: self.poor_seen.count,
            access_span: self.access_seen.count,
        };
        self.servers.insert(key, s.clone());
        s
    }

    /// The core step's statistics of `core` over `p`.
    pub fn core(&mut self, data: &WindowData, core: &str, p: &BTreeSet<i64>) -> CoreStats {
        let key = (core.to_string(), p.iter().copied().collect::<Vec<_>>());
        if let Some(s) = self.cores.get(&key) {
            return s.clone();
        }
        let (lo, hi) = span(p);
        let rows = &data.rows;
        let pop = self.pop(rows, data.idx_ids_in(&data.by_core, core, lo, hi), p);
        self.access_seen.begin();
        for i in data.idx_ids_in(&data.by_core, core, lo, hi) {
            if rows[i].category == "all" && p.contains(&rows[i].ws) {
                self.access_seen.insert(self.access_id[i]);
            }
        }
        let access_elements = self.access_seen.count;
        self.access_seen.begin();
        let mut servers: HashSet<&str> = HashSet::new();
        for i in data.idx_ids_in(&data.by_core, core, lo, hi) {
            let r = &rows[i];
            if !p.contains(&r.ws) || !self.poor_row(rows, i) {
                continue;
            }
            if r.category == "all" {
                self.access_seen.insert(self.access_id[i]);
            }
            if let Some(s) = r.worst_server.as_deref() {
                servers.insert(server_prefix(s));
            }
        }
        let s = CoreStats {
            pop,
            access_elements,
            access_span: self.access_seen.count,
            server_span: servers.len(),
            other_cores_rate: others_rate(data, "core", core, p),
            kpi: assess(&data.kpis, core, p, &self.cfg),
        };
        self.cores.insert(key, s.clone());
        s
    }

    /// [`Pop`] of `core`'s users outside access element `access` over `p` (the core's
    /// other access elements).
    pub fn core_rest(
        &mut self,
        data: &WindowData,
        core: &str,
        access: &str,
        p: &BTreeSet<i64>,
    ) -> Pop {
        let key = (
            core.to_string(),
            access.to_string(),
            p.iter().copied().collect::<Vec<_>>(),
        );
        if let Some(s) = self.rests.get(&key) {
            return *s;
        }
        let (lo, hi) = span(p);
        let rows = &data.rows;
        let idxs = data
            .idx_ids_in(&data.by_core, core, lo, hi)
            .filter(|&i| rows[i].access != access);
        let s = self.pop(rows, idxs, p);
        self.rests.insert(key, s);
        s
    }

    /// The access step's statistics of `access` over `p`.
    pub fn access(&mut self, data: &WindowData, access: &str, p: &BTreeSet<i64>) -> AccessStats {
        let key = (access.to_string(), p.iter().copied().collect::<Vec<_>>());
        if let Some(s) = self.accesses.get(&key) {
            return s.clone();
        }
        let (lo, hi) = span(p);
        let rows = &data.rows;
        let pop = self.pop(rows, data.idx_ids_in(&data.by_access, access, lo, hi), p);
        let mut cats: HashSet<&str> = HashSet::new();
        let mut srvs: HashSet<&str> = HashSet::new();
        for i in data.idx_ids_in(&data.by_access, access, lo, hi) {
            let r = &rows[i];
            if !p.contains(&r.ws) || !self.poor_row(rows, i) {
                continue;
            }
            if r.category != "all" {
                cats.insert(&r.category);
            }
            if let Some(s) = r.worst_server.as_deref() {
                srvs.insert(server_prefix(s));
            }
        }
        let s = AccessStats {
            pop,
            services: cats.len().max(srvs.len()),
            other_elements_rate: others_rate(data, "access", access, p),
            kpi: assess(&data.kpis, access, p, &self.cfg),
        };
        self.accesses.insert(key, s.clone());
        s
    }
}

/// Poor rate (Σ poor users / Σ users, `element_minute`) of the `level` elements other
/// than `id` over `p`; `None` without users.
fn others_rate(data: &WindowData, level: &str, id: &str, p: &BTreeSet<i64>) -> Option<f64> {
    let (lo, hi) = span(p);
    let (mut users, mut poor) = (0.0, 0.0);
    for e in data.elems_in(lo, hi) {
        if e.level == level && e.element_id != id && p.contains(&e.ws) {
            users += e.users;
            poor += e.poor_users;
        }
    }
    (users > 0.0).then(|| poor / users)
}

/// First and last minute of `p` (an empty range for an empty `p`).
fn span(p: &BTreeSet<i64>) -> (i64, i64) {
    (
        p.first().copied().unwrap_or(i64::MAX),
        p.last().copied().unwrap_or(i64::MIN),
    )
}
