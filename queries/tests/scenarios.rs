//! A small lake with designed faults (server, access, home, core) in separate periods, and
//! the verdicts, poor users, UDFs, SQL errors and EXPLAIN pruning over it.

use cemflow_dataflow::{ElementMinute, Pseudonymizer, RowSource, UserMinute};
use cemflow_lakehouse::convert::subscribers_batch;
use cemflow_lakehouse::{Lake, SubscriberRow, Table, TableBatches};
use cemflow_queries::demarcate::{demarcate, DemarcationRequest};
use cemflow_queries::shell::{Next, Shell};
use cemflow_queries::{
    append_demarcations, poor_users, DemarcationConfig, OutputFormat, PoorUsersQuery, QuerySession,
    UserResolver, Verdict,
};
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z
const KEY: &[u8] = b"test-key";
const SERVERS: [(&str, &str); 4] = [
    ("198.19.1.0/24", "video"),
    ("198.19.2.0/24", "web"),
    ("198.19.3.0/24", "gaming"),
    ("198.19.4.0/24", "download"),
];
/// Fault periods (minutes from T0, inclusive start, exclusive end).
const SERVER_P: (i64, i64) = (0, 30);
const ACCESS_P: (i64, i64) = (40, 70);
const HOME_P: (i64, i64) = (80, 110);
const CORE_P: (i64, i64) = (120, 150);
const MINUTES: i64 = 160;

struct User {
    ip: String,
    key: String,
    access: String,
    core: String,
    servers: [usize; 2],
}

fn users() -> Vec<User> {
    let p = Pseudonymizer::new(KEY).unwrap();
    let mut out = Vec::new();
    for a in 0..6 {
        for j in 0..6 {
            let i = a * 6 + j;
            let ip = format!("10.0.{a}.{}", j + 10);
            out.push(User {
                key: p.user_key(&format!("home{}", i + 1)),
                ip,
                access: format!("olt{}", a + 1),
                core: format!("bng{}", a / 3 + 1),
                servers: [i % 4, (i + 1) % 4],
            });
        }
    }
    out
}

/// Index of the home-fault user (on olt3).
const HOME_USER: usize = 14;

fn in_p(m: i64, p: (i64, i64)) -> bool {
    m >= p.0 && m < p.1
}

/// (cei, rtt_client, rtt_server, loss) of user `u`'s row for server `s` at minute `m`.
fn kpis(ui: usize, u: &User, s: usize, m: i64) -> (f32, f32, f32, f32) {
    let wobble = ((ui as i64 * 7 + m * 3) % 10) as f32; // 0..9
    let mut r = (80.0 + wobble, 10.0 + wobble / 2.0, 20.0, 0.1);
    if in_p(m, SERVER_P) && s == 0 {
        r = (30.0, r.1, 320.0, 0.2);
    }
    if in_p(m, ACCESS_P) && u.access == "olt2" {
        r = (35.0, 420.0, r.2, 3.0);
    }
    if in_p(m, HOME_P) && ui == HOME_USER && s == u.servers[0] {
        r = (30.0, 160.0, r.2, 6.0);
    }
    if in_p(m, CORE_P) && u.core == "bng2" {
        r = (32.0, r.1, 450.0, 2.0);
    }
    r
}

fn rows() -> (Vec<UserMinute>, Vec<ElementMinute>) {
    let us = users();
    let mut um = Vec::new();
    let mut em = Vec::new();
    for m in 0..MINUTES {
        let ws = T0 + m * 60;
        // element aggregates: (level, id) -> (users, poor, cei sum)
        let mut agg: BTreeMap<(String, String), (u32, u32, f32)> = BTreeMap::new();
        for (ui, u) in us.iter().enumerate() {
            let mut cats = Vec::new();
            for &s in &u.servers {
                let (cei, rc, rs, loss) = kpis(ui, u, s, m);
                let poor = cei < 60.0;
                cats.push((cei, poor));
                let (prefix, cat) = SERVERS[s];
                let e = agg
                    .entry(("server".into(), format!("{prefix}|{cat}")))
                    .or_default();
                e.0 += 1;
                e.1 += poor as u32;
                e.2 += cei;
                um.push(UserMinute {
                    window_start_s: ws,
                    user_key: u.key.clone(),
                    category: cat.into(),
                    access_element: u.access.clone(),
                    core_element: u.core.clone(),
                    flows: 3,
                    active_s: 20.0,
                    bytes_down: 1_000_000,
                    bytes_up: 50_000,
                    throughput_down_mbps: Some(8.0),
                    rtt_client_ms: Some(rc),
                    rtt_server_ms: Some(rs),
                    retrans_rate: Some(loss / 100.0),
                    loss_pct: Some(loss),
                    jitter_ms: None,
                    txn_ms: None,
                    ttfb_ms: None,
                    mos: 1.0 + 3.5 * cei / 100.0,
                    cei,
                    poor,
                    worst_server: poor.then(|| prefix.to_string()),
                    source: RowSource::Probe,
                });
            }
            // overall: mean, capped by a critical category (< 40)
            let mean = cats.iter().map(|c| c.0).sum::<f32>() / cats.len() as f32;
            let crit = cats
                .iter()
                .map(|c| c.0)
                .filter(|c| *c < 40.0)
                .fold(f32::MAX, f32::min);
            let cei = mean.min(crit);
            let worst = u
                .servers
                .iter()
                .zip(&cats)
                .filter(|(_, c)| c.1)
                .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
                .map(|(s, _)| SERVERS[*s].0.to_string());
            let (_, rc, rs, loss) = kpis(ui, u, u.servers[0], m);
            for (lvl, id) in [("access", &u.access), ("core", &u.core)] {
                let e = agg.entry((lvl.into(), id.clone())).or_default();
                e.0 += 1;
                e.1 += (cei < 60.0) as u32;
                e.2 += cei;
            }
            um.push(UserMinute {
                window_start_s: ws,
                user_key: u.key.clone(),
                category: "all".into(),
                access_element: u.access.clone(),
                core_element: u.core.clone(),
                flows: 6,
                active_s: 40.0,
                bytes_down: 2_000_000,
                bytes_up: 100_000,
                throughput_down_mbps: Some(8.0),
                rtt_client_ms: Some(rc),
                rtt_server_ms: Some(rs),
                retrans_rate: Some(loss / 100.0),
                loss_pct: Some(loss),
                jitter_ms: None,
                txn_ms: None,
                ttfb_ms: None,
                mos: 1.0 + 3.5 * cei / 100.0,
                cei,
                poor: cei < 60.0,
                worst_server: worst,
                source: RowSource::Probe,
            });
        }
        for ((level, id), (n, k, sum)) in agg {
            em.push(ElementMinute {
                window_start_s: ws,
                level,
                element_id: id,
                users: n,
                poor_users: k,
                poor_share: k as f32 / n as f32,
                cei_mean: sum / n as f32,
                cei_p10: 0.0,
                bytes_down: 0,
                rtt_client_ms_median: None,
                rtt_server_ms_median: None,
                retrans_rate: None,
            });
        }
    }
    (um, em)
}

struct Fixture {
    _dir: tempfile::TempDir,
    lake: Arc<Lake>,
}

/// A fresh lake with the scenario rows (each test its own: temp dirs are removed on drop).
fn fixture() -> Fixture {
    {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let (um, em) = rows();
        let mut b = TableBatches::new();
        b.add_user_minutes(&um).unwrap();
        b.add_element_minutes(&em).unwrap();
        lake.commit_window("test", T0 + (MINUTES - 1) * 60, b)
            .unwrap();
        let subs: Vec<SubscriberRow> = users()
            .iter()
            .map(|u| SubscriberRow {
                user_key: u.key.clone(),
                user_kind: "ip".into(),
                access_element: u.access.clone(),
                core_element: u.core.clone(),
                region: None,
                plan_mbps: Some(100.0),
                valid_from_s: None,
                valid_to_s: None,
            })
            .collect();
        lake.overwrite(
            Table::Subscribers,
            vec![subscribers_batch(&subs, T0).unwrap()],
        )
        .unwrap();
        Fixture {
            _dir: dir,
            lake: Arc::new(lake),
        }
    }
}

fn session() -> (Fixture, QuerySession) {
    let f = fixture();
    let s = QuerySession::open_blocking(f.lake.clone()).unwrap();
    (f, s)
}

fn topology_csv() -> String {
    let mut s = String::from("user,home_id,access_element,core_element\n");
    for (i, u) in users().iter().enumerate() {
        s.push_str(&format!("{},home{},{},{}\n", u.ip, i + 1, u.access, u.core));
    }
    s
}

fn resolver() -> UserResolver {
    let t = cemflow_dataflow::Topology::parse(
        "topo.csv",
        &topology_csv(),
        cemflow_dataflow::PlacementConfig::default(),
    )
    .unwrap();
    UserResolver::new(Some(Pseudonymizer::new(KEY).unwrap()), Some(t))
}

fn run_demarcation(s: &QuerySession, user_idx: usize, at_min: i64) -> cemflow_queries::Demarcation {
    let u = &users()[user_idx];
    let r = resolver();
    let req = DemarcationRequest {
        complaint_id: Some(format!("c{user_idx}")),
        user: u.ip.clone(),
        user_key: r.user_key(&u.ip).unwrap(),
        at_s: T0 + at_min * 60,
        window_s: None,
        home: r.home_id(&u.ip),
    };
    assert_eq!(
        req.user_key, u.key,
        "raw IP resolved through topology + key"
    );
    s.block_on(demarcate(s, &req, &DemarcationConfig::default()))
        .unwrap()
}

#[test]
fn server_fault() {
    let (_f, s) = session();
    // user 0 uses servers 0 (video, faulty) and 1.
    let d = run_demarcation(&s, 0, SERVER_P.1);
    assert_eq!(d.verdict, Verdict::Server, "{}", d.evidence);
    assert_eq!(d.element.as_deref(), Some("198.19.1.0/24"));
    assert!(d.confidence > 0.6 && d.confidence <= 1.0);
    assert_eq!(d.evidence["server"]["access_span"], 6);
    assert_eq!(d.window_start, "2024-05-01T10:00:00Z");
    assert_eq!(d.window_end, "2024-05-01T10:30:00Z");
}

#[test]
fn access_fault() {
    let (_f, s) = session();
    let d = run_demarcation(&s, 7, ACCESS_P.1); // olt2
    assert_eq!(d.verdict, Verdict::Access, "{}", d.evidence);
    assert_eq!(d.element.as_deref(), Some("olt2"));
}

#[test]
fn home_fault() {
    let (_f, s) = session();
    let d = run_demarcation(&s, HOME_USER, HOME_P.1);
    assert_eq!(d.verdict, Verdict::Home, "{}", d.evidence);
    assert_eq!(d.element.as_deref(), Some("home15"));
    assert_eq!(d.evidence["home"]["rtt_elevated"], true);
}

#[test]
fn core_fault() {
    let (_f, s) = session();
    let d = run_demarcation(&s, 25, CORE_P.1); // olt5 under bng2
    assert_eq!(d.verdict, Verdict::Core, "{}", d.evidence);
    assert_eq!(d.element.as_deref(), Some("bng2"));
}

#[test]
fn healthy_user() {
    let (_f, s) = session();
    let d = run_demarcation(&s, 2, CORE_P.1); // olt1 under bng1
    assert_eq!(d.verdict, Verdict::NoFaultFound, "{}", d.evidence);
    assert_eq!(d.element, None);
    // an unknown user: no data, still no fault found, low confidence
    let req = DemarcationRequest {
        complaint_id: None,
        user: "10.9.9.9".into(),
        user_key: resolver().user_key("10.9.9.9").unwrap(),
        at_s: T0 + 600,
        window_s: Some(600),
        home: None,
    };
    let d = s
        .block_on(demarcate(&s, &req, &DemarcationConfig::default()))
        .unwrap();
    assert_eq!(d.verdict, Verdict::NoFaultFound);
    assert!(d.confidence < 0.5);
}

#[test]
fn verdict_rows_are_spec_fields_and_append() {
    let (_f, s) = session();
    let d = run_demarcation(&s, 0, SERVER_P.1);
    let v = serde_json::to_value(&d).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut want = vec![
        "complaint_id",
        "user",
        "user_key",
        "window_start",
        "window_end",
        "verdict",
        "element",
        "confidence",
        "evidence",
    ];
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(v["verdict"], "server");
    // Appends accumulate (a dedicated lake, so other tests don't interfere).
    let dir = tempfile::tempdir().unwrap();
    let lake = Arc::new(Lake::open(dir.path().to_str().unwrap()).unwrap());
    append_demarcations(&lake, &[d.clone(), d.clone()]).unwrap();
    append_demarcations(&lake, std::slice::from_ref(&d)).unwrap();
    let s2 = QuerySession::open_blocking(lake.clone()).unwrap();
    let b = s2
        .block_on(s2.sql("SELECT count(*) AS n, min(verdict) AS v FROM demarcations"))
        .unwrap();
    let n = cemflow_queries::util::col_f64(&b[0], "n").unwrap()[0];
    assert_eq!(n, Some(3.0));
}

#[test]
fn poor_user_list() {
    let (_f, s) = session();
    let q = PoorUsersQuery {
        at_s: Some(T0 + (SERVER_P.1 - 1) * 60),
        ..PoorUsersQuery::default()
    };
    let list = s
        .block_on(poor_users(
            &s,
            &q,
            &resolver(),
            &DemarcationConfig::default(),
        ))
        .unwrap();
    // users with server 0 among their two: i % 4 == 0 or (i + 1) % 4 == 0 → 18 of 36
    assert_eq!(list.len(), 18, "{list:?}");
    for u in &list {
        assert_eq!(u.verdict, Some(Verdict::Server), "{u:?}");
        assert_eq!(u.element.as_deref(), Some("198.19.1.0/24"));
        assert_eq!(u.worst_category.as_deref(), Some("video"));
        assert_eq!(u.poor_minutes, 15);
        assert!(u.user.starts_with("10.0."), "raw user shown: {}", u.user);
        assert!(u.cei < 60.0);
    }
    // category filter
    let q2 = PoorUsersQuery {
        category: Some("web".into()),
        ..q.clone()
    };
    let l2 = s
        .block_on(poor_users(
            &s,
            &q2,
            &resolver(),
            &DemarcationConfig::default(),
        ))
        .unwrap();
    assert!(l2.is_empty(), "{l2:?}");
    // default `at` = latest window: nobody poor at the end
    let l3 = s
        .block_on(poor_users(
            &s,
            &PoorUsersQuery::default(),
            &resolver(),
            &DemarcationConfig::default(),
        ))
        .unwrap();
    // (the last minutes of the core fault are in the lookback: bng2's 18 users)
    assert_eq!(l3.len(), 18, "{l3:?}");
    assert!(l3
        .iter()
        .all(|u| u.verdict == Some(Verdict::Core) && u.element.as_deref() == Some("bng2")));
    // access fault period: olt2's 6 users, verdict access
    let q4 = PoorUsersQuery {
        at_s: Some(T0 + (ACCESS_P.1 - 1) * 60),
        ..PoorUsersQuery::default()
    };
    let l4 = s
        .block_on(poor_users(
            &s,
            &q4,
            &resolver(),
            &DemarcationConfig::default(),
        ))
        .unwrap();
    assert_eq!(l4.len(), 6);
    assert!(l4
        .iter()
        .all(|u| u.verdict == Some(Verdict::Access) && u.element.as_deref() == Some("olt2")));
}

#[test]
fn udfs_views_and_errors() {
    let (_f, s) = session();
    let b = s
        .block_on(s.sql(
            "SELECT wilson_lower(3, 10) AS w, wilson_lower(3, 10, 1.96) AS w3, \
             mos_to_cei(4.5) AS hi, mos_to_cei(1) AS lo, mos_to_cei(2.75) AS mid",
        ))
        .unwrap();
    let get = |c: &str| cemflow_queries::util::col_f64(&b[0], c).unwrap()[0].unwrap();
    assert!((get("w") - 0.1078).abs() < 1e-4);
    assert!((get("w3") - 0.1078).abs() < 1e-4);
    assert_eq!(get("hi"), 100.0);
    assert_eq!(get("lo"), 0.0);
    assert_eq!(get("mid"), 50.0);
    // array path over a table column
    let b = s
        .block_on(s.sql(
            "SELECT max(abs(mos_to_cei(mos) - cei)) AS d, \
             min(wilson_lower(poor_users, users)) AS w FROM user_overall \
             JOIN access_minute USING (window_start)",
        ))
        .unwrap();
    let d = cemflow_queries::util::col_f64(&b[0], "d").unwrap()[0].unwrap();
    assert!(d < 0.01, "{d}");
    // views
    let b = s
        .block_on(s.sql("SELECT count(*) AS n FROM user_overall"))
        .unwrap();
    assert_eq!(
        cemflow_queries::util::col_f64(&b[0], "n").unwrap()[0],
        Some((36 * MINUTES) as f64)
    );
    // bad SQL: an error, not a panic
    let e = s.block_on(s.sql("SELEC nonsense")).unwrap_err();
    assert!(e.is_input(), "{e}");
    let e = s
        .block_on(s.sql("SELECT nope FROM user_minute"))
        .unwrap_err();
    assert!(e.is_input(), "{e}");
    assert!(s.block_on(s.sql("SELECT wilson_lower('a')")).is_err());
    // the shell keeps going after an error
    let mut sh = Shell::new(&s, OutputFormat::Csv);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(s
        .block_on(sh.execute("SELECT * FROM missing_table;", &mut out, &mut err))
        .is_err());
    assert_eq!(
        s.block_on(sh.execute("SELECT 1 AS one;", &mut out, &mut err))
            .unwrap(),
        Next::Continue
    );
    assert_eq!(String::from_utf8(out.clone()).unwrap(), "one\n1\n");
    out.clear();
    s.block_on(sh.execute("\\d", &mut out, &mut err)).unwrap();
    let listing = String::from_utf8(out.clone()).unwrap();
    for t in [
        "user_minute",
        "element_minute",
        "subscribers",
        "user_overall",
    ] {
        assert!(listing.contains(t), "{listing}");
    }
    out.clear();
    s.block_on(sh.execute("\\d user_minute", &mut out, &mut err))
        .unwrap();
    assert!(String::from_utf8(out.clone())
        .unwrap()
        .contains("worst_server"));
    assert!(s
        .block_on(sh.execute("\\d nope", &mut out, &mut err))
        .is_err());
    out.clear();
    sh.format = OutputFormat::Json;
    s.block_on(sh.execute("SELECT 1 AS one", &mut out, &mut err))
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "{\"one\":1}\n");
}

#[test]
fn explain_shows_partition_pruning_and_pushdown() {
    // Two days: the date filter must keep only one partition's file.
    let dir = tempfile::tempdir().unwrap();
    let lake = Arc::new(Lake::open(dir.path().to_str().unwrap()).unwrap());
    let (um, _) = rows();
    let day1: Vec<UserMinute> = um.iter().take(10).cloned().collect();
    let day2: Vec<UserMinute> = um
        .iter()
        .take(10)
        .cloned()
        .map(|mut r| {
            r.window_start_s += 86_400;
            r
        })
        .collect();
    let mut b1 = TableBatches::new();
    b1.add_user_minutes(&day1).unwrap();
    let mut b2 = TableBatches::new();
    b2.add_user_minutes(&day2).unwrap();
    lake.commit_windows("t", vec![(T0, b1), (T0 + 86_400, b2)])
        .unwrap();
    let s = QuerySession::open_blocking(lake).unwrap();
    let b = s
        .block_on(s.sql(
            "EXPLAIN SELECT count(*) FROM user_minute \
             WHERE date = '2024-05-01' AND user_key = 'abc' AND cei < 60",
        ))
        .unwrap();
    let text = format!(
        "{}",
        datafusion::arrow::util::pretty::pretty_format_batches(&b).unwrap()
    );
    // partition filter handled exactly by the Delta provider (file pruning) …
    assert!(
        text.contains("full_filters=[user_minute.date = Date32"),
        "{text}"
    );
    assert!(text.contains("date=2024-05-01/"), "{text}");
    assert!(!text.contains("date=2024-05-02/"), "{text}");
    // … and the other predicates pushed into the Parquet scan (statistics, bloom filter).
    assert!(text.contains("pruning_predicate="), "{text}");
    assert!(
        text.contains("required_guarantees=[user_key in (abc)]"),
        "{text}"
    );
    let n = s
        .block_on(s.sql("SELECT count(*) AS n FROM user_minute WHERE date = '2024-05-02'"))
        .unwrap();
    assert_eq!(
        cemflow_queries::util::col_f64(&n[0], "n").unwrap()[0],
        Some(10.0)
    );
}

/// Every user demarcated on one shared load (the poor-user list's path: element statistics
/// memoised across users) gets exactly the verdict, element, confidence and evidence it
/// gets when demarcated alone, at the end of every fault period and in between.
#[test]
fn shared_load_matches_one_user_demarcation() {
    use cemflow_queries::demarcate::{demarcate_loaded, load_for_users};
    let (_f, s) = session();
    let cfg = DemarcationConfig::default();
    let r = resolver();
    for at_min in [
        SERVER_P.1,
        ACCESS_P.1 - 5,
        ACCESS_P.1,
        HOME_P.1,
        CORE_P.1,
        MINUTES,
    ] {
        let at = T0 + at_min * 60;
        let reqs: Vec<DemarcationRequest> = users()
            .iter()
            .map(|u| DemarcationRequest {
                complaint_id: None,
                user: u.ip.clone(),
                user_key: u.key.clone(),
                at_s: at,
                window_s: None,
                home: r.home_id(&u.ip),
            })
            .collect();
        let keys: Vec<String> = reqs.iter().map(|q| q.user_key.clone()).collect();
        let data = s
            .block_on(load_for_users(&s, &keys, at - cfg.window_s, at, &cfg))
            .unwrap();
        let shared = demarcate_loaded(&data, &reqs, &cfg);
        for (q, d) in reqs.iter().zip(&shared) {
            let alone = s.block_on(demarcate(&s, q, &cfg)).unwrap();
            assert_eq!(*d, alone, "user {} at minute {at_min}", q.user);
        }
    }
}
