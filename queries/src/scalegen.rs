//! A lake at operator scale for benchmarks: `user_minute` and `element_minute` rows of N
//! users over a day, written through the lakehouse API exactly as ingest writes them (window
//! commits of `commit_every` minutes, `date` partitions, the lake's Parquet settings), with
//! the ground truth of the injected faults. Used by the scale benchmark
//! (`cargo run --release -p cemflow-queries --example scale`, `scripts/scale_bench.py`,
//! docs/queries.md "Scale") and by a small-scale correctness test.
//!
//! Shape (per user, deterministic from the seed):
//! * users sit `users_per_access` to an access element (`oltNNNN/ponP`),
//!   `access_per_core` access elements to a core (`bngNN`);
//! * a user is active in a minute with a diurnal probability (night ≈ 5–10 %, evening
//!   peak ≈ 70 %) scaled by its own activity level, in sessions (an active minute is
//!   followed by another with probability 0.85); an active minute has 1–3 service
//!   categories, each on one server prefix of one service (`prefix|service`), plus the
//!   overall `all` row (CEI by [`CeiConfig::overall_cei`]);
//! * healthy CEIs around 90 with a per-user offset; 0.4 % of rows dip below 60 at random;
//! * faults (truth in [`ScaleReport::faults`]): `home` (0.5 % of users, 1–4 h: client-leg
//!   RTT and loss up), `access` (1 % of access elements, 30–120 min: every user under it
//!   degraded), `core` (one core for 105 min: the sensitive categories — video, live,
//!   gaming, voice — degraded, server-leg RTT up) and `server` (one prefix of one video
//!   service for an hour). One fault of every level is active at
//!   [`ScaleConfig::fault_at_s`], so the poor-user list there is realistic (a few
//!   thousand users at 100 k).
//!
//! `element_minute` rows are computed from the generated users by the dataflow's own
//! aggregation ([`cemflow_dataflow::element_minute`]).

use cemflow_dataflow::{
    element_minute, CeiConfig, ElementMinute, ElementObs, Level, Pseudonymizer, RowSource,
    UserMinute,
};
use cemflow_lakehouse::{Lake, LakeError, TableBatches};
use serde::Serialize;
use std::time::Instant;

/// What to generate.
#[derive(Clone, Debug)]
pub struct ScaleConfig {
    /// Users (subscriber lines).
    pub users: u32,
    /// Users per access element.
    pub users_per_access: u32,
    /// Access elements per core element.
    pub access_per_core: u32,
    /// First window start, epoch seconds (a UTC midnight for a full day).
    pub start_s: i64,
    /// Windows (minutes) to generate.
    pub minutes: u32,
    /// Multiplier of the users' activity probability.
    pub activity: f64,
    /// PRNG seed.
    pub seed: u64,
    /// Windows per lake commit (as `cemflow ingest --commit-every`).
    pub commit_every: u32,
    /// Write each window's rows ordered by (`user_key`, `category`), as the dataflow emits
    /// them (`WindowOutput`); `false` writes them in user-id order (random in `user_key`).
    pub sort_by_user: bool,
    /// Pseudonymisation key of the user ids (`home-NNNNNN`).
    pub key: String,
    /// An instant at which one fault of every level is active; `None` = 20:45 of the
    /// first day.
    pub fault_at_s: Option<i64>,
}

impl Default for ScaleConfig {
    fn default() -> Self {
        ScaleConfig {
            users: 100_000,
            users_per_access: 50,
            access_per_core: 100,
            start_s: 1_714_521_600, // 2024-05-01T00:00:00Z
            minutes: 1440,
            activity: 1.0,
            seed: 1,
            commit_every: 10,
            sort_by_user: true,
            key: "cemflow-scale-bench".into(),
            fault_at_s: None,
        }
    }
}

impl ScaleConfig {
    /// The instant at which a fault of every level is active.
    pub fn fault_at(&self) -> i64 {
        self.fault_at_s
            .unwrap_or(self.start_s + (20 * 60 + 45) * 60)
    }
}

/// One injected fault (ground truth).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    /// `home`, `access`, `core` or `server`.
    pub level: &'static str,
    /// Element id (`user_key` for home, the server prefix for server).
    pub element: String,
    /// First window start of the fault, epoch s.
    pub from_s: i64,
    /// First window start after the fault, epoch s.
    pub to_s: i64,
}

/// What was written.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScaleReport {
    /// `user_minute` rows written.
    pub user_minute_rows: u64,
    /// `element_minute` rows written.
    pub element_minute_rows: u64,
    /// Lake commits.
    pub commits: u32,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Injected faults.
    pub faults: Vec<Fault>,
}

/// SplitMix64: small, fast, deterministic.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// Approximately standard normal (Irwin–Hall of 4).
    fn normal(&mut self) -> f64 {
        (self.f() + self.f() + self.f() + self.f() - 2.0) * 1.732
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Service categories with their share of a user's category-minutes.
const CATEGORIES: [(&str, f64); 7] = [
    ("web", 0.33),
    ("video", 0.24),
    ("live", 0.08),
    ("gaming", 0.07),
    ("voice", 0.08),
    ("download", 0.08),
    ("other", 0.12),
];

/// Services: name, category index, server prefixes, base server-leg RTT (ms).
const SERVICES: [(&str, usize, u32, f64); 16] = [
    ("google", 0, 4, 8.0),
    ("facebook", 0, 3, 14.0),
    ("instagram", 0, 3, 15.0),
    ("news", 0, 3, 22.0),
    ("youtube", 1, 4, 10.0),
    ("netflix", 1, 3, 9.0),
    ("primevideo", 1, 2, 16.0),
    ("twitch", 2, 2, 24.0),
    ("zoom", 2, 2, 20.0),
    ("fortnite", 3, 2, 28.0),
    ("whatsapp", 4, 2, 30.0),
    ("teams", 4, 2, 24.0),
    ("appstore", 5, 2, 18.0),
    ("windowsupdate", 5, 2, 20.0),
    ("cdn-misc", 6, 3, 30.0),
    ("cloud-misc", 6, 2, 35.0),
];

/// Users active per hour of the day (before the user's own activity level).
const DIURNAL: [f64; 24] = [
    0.10, 0.07, 0.05, 0.05, 0.05, 0.07, 0.12, 0.25, 0.35, 0.38, 0.40, 0.42, 0.45, 0.45, 0.45, 0.46,
    0.50, 0.55, 0.62, 0.70, 0.74, 0.72, 0.55, 0.30,
];

struct User {
    key: String,
    key64: u64,
    access: usize,
    activity: f64,
    quality: f64,
    rtt_client: f64,
    plan: f64,
    /// Preferred service per category.
    pref: [usize; 7],
    home_fault: Option<(i64, i64)>,
}

struct Server {
    id: String,
}

/// Writes the lake (`user_minute`, `element_minute`) described by `cfg` into `lake`.
/// `progress` is called after every commit with the windows done.
pub fn generate(
    lake: &Lake,
    cfg: &ScaleConfig,
    mut progress: impl FnMut(u32, &ScaleReport),
) -> Result<ScaleReport, LakeError> {
    let t0 = Instant::now();
    let pseudo = Pseudonymizer::new(cfg.key.as_bytes())
        .map_err(|e| LakeError::Runtime(format!("pseudonymisation key: {e}")))?;
    let cei_cfg = CeiConfig::default();
    let upa = cfg.users_per_access.max(1) as usize;
    let apc = cfg.access_per_core.max(1) as usize;
    let n_access = (cfg.users as usize).div_ceil(upa).max(1);
    let n_core = n_access.div_ceil(apc).max(1);
    let access_names: Vec<String> = (0..n_access)
        .map(|j| format!("olt{:04}/pon{}", j / 8, j % 8))
        .collect();
    let core_names: Vec<String> = (0..n_core).map(|c| format!("bng{c:02}")).collect();
    let mut servers: Vec<Server> = Vec::new();
    let mut service_servers: Vec<Vec<usize>> = vec![Vec::new(); SERVICES.len()];
    for (s, &(name, _, prefixes, _)) in SERVICES.iter().enumerate() {
        for p in 0..prefixes {
            service_servers[s].push(servers.len());
            servers.push(Server {
                id: format!(
                    "198.{}.{}.0/24|{name}",
                    18 + s / 8,
                    (s % 8) * 32 + p as usize
                ),
            });
        }
    }
    let cat_services: Vec<Vec<usize>> = (0..CATEGORIES.len())
        .map(|c| {
            SERVICES
                .iter()
                .enumerate()
                .filter(|(_, s)| s.1 == c)
                .map(|(i, _)| i)
                .collect()
        })
        .collect();

    let end_s = cfg.start_s + i64::from(cfg.minutes) * 60;
    let at = cfg.fault_at().div_euclid(60) * 60;
    let mut rng = Rng(mix(cfg.seed ^ 0x5CA1_E000));
    let mut users: Vec<User> = (0..cfg.users as usize)
        .map(|i| {
            let id = format!("home-{i:06}");
            let key = pseudo.user_key(&id);
            let mut r = Rng(mix(cfg.seed.wrapping_mul(31) ^ i as u64));
            let mut pref = [0usize; 7];
            for (c, p) in pref.iter_mut().enumerate() {
                let list = &cat_services[c];
                *p = list[r.below(list.len() as u64) as usize];
            }
            User {
                key64: u64::from_str_radix(&key, 16).unwrap_or(i as u64),
                key,
                access: i / upa,
                activity: (0.3 + 1.4 * r.f()).powf(1.2),
                quality: -3.0 * r.f().powi(3) * 6.0 + 2.0 * r.normal(),
                rtt_client: r.range(2.0, 14.0),
                plan: [100.0, 300.0, 500.0, 1000.0][r.below(4) as usize],
                pref,
                home_fault: None,
            }
        })
        .collect();

    // Faults: one of each level active at `at`, plus random ones over the day.
    let mut faults: Vec<Fault> = Vec::new();
    let mut access_faults: Vec<(usize, i64, i64)> = Vec::new();
    let a0 = (mix(cfg.seed ^ 0xACCE55) % n_access as u64) as usize;
    access_faults.push((a0, at - 40 * 60, at + 35 * 60));
    for _ in 0..(n_access / 100).max(1) {
        let a = rng.below(n_access as u64) as usize;
        let from = cfg.start_s + rng.below(u64::from(cfg.minutes)) as i64 * 60;
        access_faults.push((a, from, from + (30 + rng.below(91) as i64) * 60));
    }
    // One access fault running at the end of the range (the default `--at`).
    let a_end = (mix(cfg.seed ^ 0xE0D) % n_access as u64) as usize;
    access_faults.push((a_end, end_s - 50 * 60, end_s + 3600));
    for &(a, f, t) in &access_faults {
        faults.push(Fault {
            level: "access",
            element: access_names[a].clone(),
            from_s: f,
            to_s: t,
        });
    }
    let core_fault = (
        (mix(cfg.seed ^ 0xC0BE) % n_core as u64) as usize,
        at - 60 * 60,
        at + 45 * 60,
    );
    faults.push(Fault {
        level: "core",
        element: core_names[core_fault.0].clone(),
        from_s: core_fault.1,
        to_s: core_fault.2,
    });
    let youtube = service_servers[4][1];
    let server_fault = (youtube, at - 30 * 60, at + 30 * 60);
    faults.push(Fault {
        level: "server",
        element: servers[youtube]
            .id
            .split('|')
            .next()
            .unwrap_or_default()
            .to_string(),
        from_s: server_fault.1,
        to_s: server_fault.2,
    });
    let n_home = (users.len() / 200).max(1);
    for k in 0..n_home {
        let i = rng.below(users.len() as u64) as usize;
        let (from, to) = if k < n_home / 5 + 1 {
            (
                at - rng.range(20.0, 90.0) as i64 * 60,
                at + rng.range(10.0, 90.0) as i64 * 60,
            )
        } else {
            let f = cfg.start_s + rng.below(u64::from(cfg.minutes)) as i64 * 60;
            (f, f + (60 + rng.below(181) as i64) * 60)
        };
        if users[i].home_fault.is_none() {
            users[i].home_fault = Some((from, to));
            faults.push(Fault {
                level: "home",
                element: users[i].key.clone(),
                from_s: from,
                to_s: to,
            });
        }
    }

    let mut order: Vec<usize> = (0..users.len()).collect();
    if cfg.sort_by_user {
        order.sort_by(|&a, &b| users[a].key.cmp(&users[b].key));
    }
    let mut active = vec![false; users.len()];
    let mut report = ScaleReport {
        faults,
        ..ScaleReport::default()
    };
    let mut um: Vec<UserMinute> = Vec::new();
    let mut em: Vec<ElementMinute> = Vec::new();
    let mut acc_obs: Vec<Vec<ElementObs>> = vec![Vec::new(); n_access];
    let mut core_obs: Vec<Vec<ElementObs>> = vec![Vec::new(); n_core];
    let mut srv_obs: Vec<Vec<ElementObs>> = vec![Vec::new(); servers.len()];
    let mut acc_down = vec![false; n_access];
    for m in 0..cfg.minutes {
        let ws = cfg.start_s + i64::from(m) * 60;
        let hour = (ws.rem_euclid(86_400) / 3600) as usize;
        for v in acc_down.iter_mut() {
            *v = false;
        }
        for &(a, f, t) in &access_faults {
            if ws >= f && ws < t {
                acc_down[a] = true;
            }
        }
        let core_down = |c: usize| c == core_fault.0 && ws >= core_fault.1 && ws < core_fault.2;
        let srv_down =
            |s: usize| s == server_fault.0 && ws >= server_fault.1 && ws < server_fault.2;
        let mut r = Rng(mix(cfg.seed ^ (ws as u64).wrapping_mul(0x9E37)));
        for &i in &order {
            let u = &users[i];
            let p = (DIURNAL[hour % 24] * u.activity * cfg.activity).clamp(0.0, 0.95);
            let start = 0.15 * p / (1.0 - p).max(0.05);
            let on = if active[i] {
                r.f() < 0.85 || r.f() < p * 0.2
            } else {
                r.f() < start
            };
            active[i] = on;
            if !on {
                continue;
            }
            let core = u.access / apc;
            let home_down = u.home_fault.is_some_and(|(f, t)| ws >= f && ws < t);
            let ncat = 1 + usize::from(r.f() < 0.45) + usize::from(r.f() < 0.10);
            let mut cats: Vec<usize> = Vec::with_capacity(3);
            while cats.len() < ncat {
                let mut x = r.f();
                let mut c = CATEGORIES.len() - 1;
                for (k, &(_, w)) in CATEGORIES.iter().enumerate() {
                    if x < w {
                        c = k;
                        break;
                    }
                    x -= w;
                }
                if !cats.contains(&c) {
                    cats.push(c);
                }
            }
            let first = um.len();
            let mut parts: Vec<(f64, f64)> = Vec::with_capacity(3);
            let mut worst: Option<(f32, usize)> = None;
            for &c in &cats {
                let svc = if r.f() < 0.8 {
                    u.pref[c]
                } else {
                    let l = &cat_services[c];
                    l[r.below(l.len() as u64) as usize]
                };
                let list = &service_servers[svc];
                let s = list[r.below(list.len() as u64) as usize];
                let sensitive = matches!(c, 1..=4);
                let mut cei = 91.0 + u.quality + 4.0 * r.normal();
                let mut rtt_c = u.rtt_client * (1.0 + 0.25 * r.normal().abs());
                let mut rtt_s = SERVICES[svc].3 * (1.0 + 0.2 * r.normal().abs());
                let mut retrans = r.range(0.001, 0.012);
                let mut loss = retrans * 40.0;
                if r.f() < 0.004 {
                    cei = r.range(30.0, 59.0);
                }
                if home_down {
                    cei -= r.range(35.0, 55.0);
                    rtt_c += r.range(60.0, 150.0);
                    loss += r.range(2.0, 6.0);
                }
                if acc_down[u.access] && r.f() < 0.9 {
                    cei -= r.range(30.0, 45.0);
                    rtt_c += r.range(30.0, 80.0);
                    retrans += 0.04;
                }
                if core_down(core) && sensitive && r.f() < 0.7 {
                    cei -= r.range(30.0, 45.0);
                    rtt_s += r.range(40.0, 80.0);
                }
                if srv_down(s) {
                    cei -= r.range(40.0, 55.0);
                    rtt_s += r.range(40.0, 90.0);
                }
                let cei = cei.clamp(0.0, 100.0);
                let poor = cei_cfg.is_poor(cei);
                let active_s = r.range(5.0, 55.0);
                let thr = match c {
                    1 | 2 | 5 => Some((u.plan * 0.3 * r.range(0.2, 1.0) * cei / 100.0).max(0.5)),
                    _ => None,
                };
                let bytes_down =
                    (thr.unwrap_or(0.4) * 125_000.0 * active_s * r.range(0.3, 0.9)) as u64;
                let web = c == 0 || c == 6;
                let txn = web
                    .then(|| (rtt_c + rtt_s) * 3.0 + r.range(40.0, 150.0) * 100.0 / cei.max(10.0));
                let row = UserMinute {
                    window_start_s: ws,
                    user_key: u.key.clone(),
                    category: CATEGORIES[c].0.to_string(),
                    access_element: access_names[u.access].clone(),
                    core_element: core_names[core].clone(),
                    flows: 1 + r.below(8) as u32,
                    active_s: active_s as f32,
                    bytes_down,
                    bytes_up: bytes_down / 20 + 2_000,
                    throughput_down_mbps: thr.map(|v| v as f32),
                    rtt_client_ms: Some(rtt_c as f32),
                    rtt_server_ms: Some(rtt_s as f32),
                    retrans_rate: Some(retrans.min(1.0) as f32),
                    loss_pct: Some(loss.min(100.0) as f32),
                    jitter_ms: matches!(c, 2..=4).then(|| r.range(1.0, 8.0) as f32),
                    txn_ms: txn.map(|v| v as f32),
                    ttfb_ms: txn.map(|v| (v * 0.4) as f32),
                    mos: (1.0 + 3.5 * cei / 100.0) as f32,
                    cei: cei as f32,
                    poor,
                    worst_server: poor.then(|| servers[s].id.clone()),
                    source: RowSource::Probe,
                };
                srv_obs[s].push(ElementObs {
                    window_start_s: ws,
                    level: Level::Server,
                    element_id: String::new().into(),
                    user: u.key64,
                    cei: cei as f32,
                    poor,
                    bytes_down,
                    rtt_client_ms: row.rtt_client_ms,
                    rtt_server_ms: row.rtt_server_ms,
                    retrans_rate: row.retrans_rate,
                });
                if poor && worst.is_none_or(|(w, _)| (cei as f32) < w) {
                    worst = Some((cei as f32, s));
                }
                parts.push((cei, active_s));
                um.push(row);
            }
            let rows = &um[first..];
            let cei = cei_cfg.overall_cei(&parts).unwrap_or(100.0);
            let mean = |f: fn(&UserMinute) -> Option<f32>| {
                let v: Vec<f32> = rows.iter().filter_map(f).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f32>() / v.len() as f32)
            };
            let max = |f: fn(&UserMinute) -> Option<f32>| {
                rows.iter()
                    .filter_map(f)
                    .fold(None, |a: Option<f32>, b| Some(a.map_or(b, |a| a.max(b))))
            };
            let poor = cei_cfg.is_poor(cei);
            let all = UserMinute {
                window_start_s: ws,
                user_key: u.key.clone(),
                category: "all".into(),
                access_element: access_names[u.access].clone(),
                core_element: core_names[core].clone(),
                flows: rows.iter().map(|x| x.flows).sum(),
                active_s: rows.iter().map(|x| x.active_s).sum::<f32>().min(60.0),
                bytes_down: rows.iter().map(|x| x.bytes_down).sum(),
                bytes_up: rows.iter().map(|x| x.bytes_up).sum(),
                throughput_down_mbps: max(|x| x.throughput_down_mbps),
                rtt_client_ms: mean(|x| x.rtt_client_ms),
                rtt_server_ms: mean(|x| x.rtt_server_ms),
                retrans_rate: mean(|x| x.retrans_rate),
                loss_pct: max(|x| x.loss_pct),
                jitter_ms: max(|x| x.jitter_ms),
                txn_ms: mean(|x| x.txn_ms),
                ttfb_ms: mean(|x| x.ttfb_ms),
                mos: (1.0 + 3.5 * cei / 100.0) as f32,
                cei: cei as f32,
                poor,
                worst_server: worst.map(|(_, s)| servers[s].id.clone()),
                source: RowSource::Probe,
            };
            let obs = ElementObs {
                window_start_s: ws,
                level: Level::Access,
                element_id: String::new().into(),
                user: u.key64,
                cei: cei as f32,
                poor,
                bytes_down: all.bytes_down,
                rtt_client_ms: all.rtt_client_ms,
                rtt_server_ms: all.rtt_server_ms,
                retrans_rate: all.retrans_rate,
            };
            core_obs[core].push(ElementObs {
                level: Level::Core,
                ..obs.clone()
            });
            acc_obs[u.access].push(obs);
            um.insert(first, all);
            if cfg.sort_by_user {
                um[first..].sort_by(|a, b| a.category.cmp(&b.category));
            }
        }
        for (j, o) in acc_obs.iter_mut().enumerate() {
            if !o.is_empty() {
                em.push(element_minute(ws, Level::Access, &access_names[j], o));
                o.clear();
            }
        }
        for (c, o) in core_obs.iter_mut().enumerate() {
            if !o.is_empty() {
                em.push(element_minute(ws, Level::Core, &core_names[c], o));
                o.clear();
            }
        }
        for (s, o) in srv_obs.iter_mut().enumerate() {
            if !o.is_empty() {
                em.push(element_minute(ws, Level::Server, &servers[s].id, o));
                o.clear();
            }
        }
        let done = m + 1;
        if done % cfg.commit_every.max(1) == 0 || done == cfg.minutes {
            let mut tb = TableBatches::new();
            tb.add_user_minutes(&um)?;
            tb.add_element_minutes(&em)?;
            report.user_minute_rows += um.len() as u64;
            report.element_minute_rows += em.len() as u64;
            lake.commit_window("scale-bench", ws, tb)?;
            report.commits += 1;
            um.clear();
            em.clear();
            report.elapsed_s = t0.elapsed().as_secs_f64();
            progress(done, &report);
        }
    }
    report.elapsed_s = t0.elapsed().as_secs_f64();
    Ok(report)
}
