//! The scale generator at small scale: the lake it writes answers `poor_users` exactly as a
//! brute-force pass over the rows does, and the injected faults are found by the verdicts.
//! (The full-scale timing run is `scripts/scale_bench.py`, docs/queries.md "Scale".)

use cemflow_lakehouse::{Lake, Table};
use cemflow_queries::scalegen::{generate, ScaleConfig};
use cemflow_queries::util::{col_f64, col_str, col_ts_s};
use cemflow_queries::{poor_users, DemarcationConfig, PoorUsersQuery, QuerySession, UserResolver};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// 2024-05-01T19:00:00Z: evening traffic.
const START: i64 = 1_714_521_600 + 19 * 3600;

#[test]
fn generated_lake_answers_poor_users_like_brute_force() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::open(dir.path().to_str().expect("utf-8 path")).expect("lake");
    let at = START + 35 * 60;
    let cfg = ScaleConfig {
        users: 800,
        users_per_access: 25,
        access_per_core: 6,
        start_s: START,
        minutes: 40,
        fault_at_s: Some(at),
        ..ScaleConfig::default()
    };
    let report = generate(&lake, &cfg, |_, _| {}).expect("generate");
    assert_eq!(report.commits, 4);
    assert_eq!(
        lake.row_count(Table::UserMinute).expect("rows"),
        report.user_minute_rows
    );
    assert!(
        report.user_minute_rows > 40 * 800 / 2,
        "{}",
        report.user_minute_rows
    );
    let session = QuerySession::open_blocking(Arc::new(lake)).expect("session");

    // Brute force over every user-minute: ≥ 3 minutes below 60 among the 15 ending at `at`,
    // a minute being poor when its overall row or one of its category rows is
    // (`[cei.poor] category_poor`, on by default).
    let all = session
        .block_on(session.sql(
            "SELECT user_key, window_start, min(cei) AS cei FROM user_minute \
             GROUP BY user_key, window_start",
        ))
        .expect("scan");
    let mut poor: HashMap<String, usize> = HashMap::new();
    for b in &all {
        let (k, w, c) = (
            col_str(b, "user_key").expect("user_key"),
            col_ts_s(b, "window_start").expect("window_start"),
            col_f64(b, "cei").expect("cei"),
        );
        for i in 0..b.num_rows() {
            if let (Some(k), Some(w), Some(c)) = (&k[i], w[i], c[i]) {
                if w > at - 15 * 60 && w <= at && c < 60.0 {
                    *poor.entry(k.clone()).or_default() += 1;
                }
            }
        }
    }
    let expected: BTreeSet<String> = poor
        .into_iter()
        .filter(|(_, n)| *n >= 3)
        .map(|(k, _)| k)
        .collect();
    let q = PoorUsersQuery {
        at_s: Some(at),
        ..PoorUsersQuery::default()
    };
    let list = session
        .block_on(poor_users(
            &session,
            &q,
            &UserResolver::default(),
            &DemarcationConfig::default(),
        ))
        .expect("poor users");
    let got: BTreeSet<String> = list.iter().map(|u| u.user_key.clone()).collect();
    assert_eq!(got, expected);
    assert!(list.len() >= 20, "{} poor users", list.len());

    // The access fault active at `at`: its poor users are demarcated to it.
    let fault = report
        .faults
        .iter()
        .find(|f| f.level == "access" && f.from_s <= at && at < f.to_s)
        .expect("an access fault at `at`");
    let rows = session
        .block_on(session.sql(&format!(
            "SELECT DISTINCT user_key FROM user_minute WHERE access_element = '{}'",
            fault.element
        )))
        .expect("users of the element");
    let under: BTreeSet<String> = rows
        .iter()
        .flat_map(|b| col_str(b, "user_key").expect("user_key"))
        .flatten()
        .collect();
    let victims: Vec<_> = list
        .iter()
        .filter(|u| under.contains(&u.user_key))
        .collect();
    let blamed = victims
        .iter()
        .filter(|u| u.element.as_deref() == Some(fault.element.as_str()))
        .count();
    assert!(victims.len() >= 5, "{} victims", victims.len());
    assert!(
        blamed * 10 >= victims.len() * 8,
        "{blamed}/{} access-fault users blamed on {}",
        victims.len(),
        fault.element
    );
}
