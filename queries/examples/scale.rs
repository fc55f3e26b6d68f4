//! Scale benchmark of the analyst queries (issue 8, SPEC §9): a day of N users written
//! into a lake, then `poor-users` and one-user `demarcate` timed in process (warm, best of
//! N). `scripts/scale_bench.py` runs this, the `cemflow` CLI and DuckDB on the same files.
//!
//! ```text
//! cargo run --release -p cemflow-queries --example scale -- gen --lake DIR [--users 100000]
//!     [--minutes 1440] [--commit-every 10] [--row-group-rows N] [--unsorted] [--seed 1]
//! cargo run --release -p cemflow-queries --example scale -- bench --lake DIR [--at T]
//!     [--runs 5]
//! ```
//! `gen` writes `DIR/scale_truth.json` (faults, fault instant, key); `bench` prints one JSON
//! object with the timings (ms) and what the queries returned.

use cemflow_dataflow::Pseudonymizer;
use cemflow_lakehouse::{Lake, LakeOptions};
use cemflow_queries::demarcate::{
    demarcate, demarcate_loaded, load_for_users, DemarcationConfig, DemarcationRequest,
};
use cemflow_queries::scalegen::{generate, ScaleConfig};
use cemflow_queries::util::{parse_time, rfc3339};
use cemflow_queries::{poor_users, PoorUsersQuery, QuerySession, UserResolver, Verdict};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match arg(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}: invalid value `{v}`")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("gen") => gen(&args),
        Some("bench") => bench(&args),
        _ => Err("usage: scale gen|bench --lake DIR … (see the file's docs)".into()),
    };
    if let Err(e) = res {
        eprintln!("scale: {e}");
        std::process::exit(2);
    }
}

fn lake_arg(args: &[String]) -> Result<String, String> {
    arg(args, "--lake").ok_or_else(|| "--lake DIR is required".to_string())
}

fn gen(args: &[String]) -> Result<(), String> {
    let root = lake_arg(args)?;
    let d = ScaleConfig::default();
    let cfg = ScaleConfig {
        users: num(args, "--users", d.users)?,
        minutes: num(args, "--minutes", d.minutes)?,
        commit_every: num(args, "--commit-every", d.commit_every)?,
        seed: num(args, "--seed", d.seed)?,
        activity: num(args, "--activity", d.activity)?,
        sort_by_user: !args.iter().any(|a| a == "--unsorted"),
        ..d
    };
    let lo = LakeOptions::default();
    let opts = LakeOptions {
        row_group_rows: num(args, "--row-group-rows", lo.row_group_rows)?,
        ..lo
    };
    let lake = Lake::open_with(&root, opts).map_err(|e| e.to_string())?;
    let report = generate(&lake, &cfg, |done, r| {
        if done % 60 == 0 {
            eprintln!(
                "{done}/{} windows, {} user_minute rows, {:.0} s",
                cfg.minutes, r.user_minute_rows, r.elapsed_s
            );
        }
    })
    .map_err(|e| e.to_string())?;
    let truth = json!({
        "users": cfg.users,
        "minutes": cfg.minutes,
        "start": rfc3339(cfg.start_s),
        "fault_at": rfc3339(cfg.fault_at()),
        "key": cfg.key,
        "sort_by_user": cfg.sort_by_user,
        "user_minute_rows": report.user_minute_rows,
        "element_minute_rows": report.element_minute_rows,
        "commits": report.commits,
        "elapsed_s": report.elapsed_s,
        "faults": report.faults,
    });
    let path = std::path::Path::new(&root).join("scale_truth.json");
    std::fs::write(&path, truth.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "{}",
        json!({
            "user_minute_rows": report.user_minute_rows,
            "element_minute_rows": report.element_minute_rows,
            "commits": report.commits,
            "elapsed_s": report.elapsed_s,
            "faults": report.faults.len(),
        })
    );
    Ok(())
}

/// Best and median of `runs` timings of `f` (ms), and its last result.
async fn time<T, F, Fut>(runs: usize, mut f: F) -> Result<(f64, f64, T), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = Some(f().await?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let best = ms[0];
    let median = ms[ms.len() / 2];
    last.map(|l| (best, median, l))
        .ok_or_else(|| "no run".to_string())
}

fn bench(args: &[String]) -> Result<(), String> {
    let root = lake_arg(args)?;
    let runs: usize = num(args, "--runs", 5)?;
    let truth: serde_json::Value =
        std::fs::read_to_string(std::path::Path::new(&root).join("scale_truth.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
    let at = match arg(args, "--at").or_else(|| truth["fault_at"].as_str().map(String::from)) {
        Some(t) => parse_time(&t).map_err(|e| e.to_string())?,
        None => return Err("--at is required without scale_truth.json".into()),
    };
    let t_open = Instant::now();
    let lake = Arc::new(Lake::open_existing(&root).map_err(|e| e.to_string())?);
    let session = QuerySession::open_blocking(lake).map_err(|e| e.to_string())?;
    let open_ms = t_open.elapsed().as_secs_f64() * 1e3;
    let key = truth["key"].as_str().unwrap_or("cemflow-scale-bench");
    let resolver = UserResolver::new(Pseudonymizer::new(key.as_bytes()).ok(), None);
    let dcfg = DemarcationConfig::default();
    let s = &session;
    let out = session.block_on(async {
        let q = PoorUsersQuery {
            at_s: Some(at),
            ..PoorUsersQuery::default()
        };
        let (qr, rr, dr) = (&q, &resolver, &dcfg);
        let (pu_best, pu_median, list) = time(runs, || async move {
            poor_users(s, qr, rr, dr).await.map_err(|e| e.to_string())
        })
        .await?;
        let q_rule = PoorUsersQuery {
            demarcate: false,
            ..q.clone()
        };
        let qr = &q_rule;
        let (rule_best, rule_median, _) = time(runs, || async move {
            poor_users(s, qr, rr, dr).await.map_err(|e| e.to_string())
        })
        .await?;
        // The verdict phase of the list alone: one load of every poor user's rows, then
        // the ladder for each.
        let end = at + dr.minute_s;
        let keys: Vec<String> = list.iter().map(|u| u.user_key.clone()).collect();
        let reqs: Vec<DemarcationRequest> = keys
            .iter()
            .map(|k| DemarcationRequest {
                complaint_id: None,
                user: k.clone(),
                user_key: k.clone(),
                at_s: end,
                window_s: None,
                home: None,
            })
            .collect();
        let (kr, reqs_r) = (&keys, &reqs);
        let (load_best, _, loaded) = time(runs, || async move {
            load_for_users(s, kr, end - dr.window_s, end, dr)
                .await
                .map_err(|e| e.to_string())
        })
        .await?;
        let loaded_r = &loaded;
        let (ladder_best, _, _) = time(runs, || async move {
            // A fresh copy each run: the statistics memo starts empty.
            let data = loaded_r.clone();
            Ok::<_, String>(demarcate_loaded(&data, reqs_r, dr).len())
        })
        .await?;
        let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
        for u in &list {
            *verdicts
                .entry(u.verdict.map_or("none".into(), |v| v.to_string()))
                .or_default() += 1;
        }
        // One user: an access-fault victim when there is one, else the worst poor user.
        let pick = arg(args, "--user")
            .or_else(|| {
                list.iter()
                    .find(|u| u.verdict == Some(Verdict::Access))
                    .or(list.first())
                    .map(|u| u.user_key.clone())
            })
            .ok_or_else(|| "no poor user to demarcate (pass --user KEY)".to_string())?;
        let req = DemarcationRequest {
            complaint_id: None,
            user: pick.clone(),
            user_key: pick.clone(),
            at_s: at + 60,
            window_s: None,
            home: None,
        };
        let reqr = &req;
        let (dm_best, dm_median, d) = time(runs, || async move {
            demarcate(s, reqr, dr).await.map_err(|e| e.to_string())
        })
        .await?;
        Ok::<_, String>(json!({
            "at": rfc3339(at),
            "runs": runs,
            "open_ms": open_ms,
            "poor_users_ms": {"best": pu_best, "median": pu_median},
            "poor_users_rule_only_ms": {"best": rule_best, "median": rule_median},
            "poor_users": list.len(),
            "verdicts": verdicts,
            "verdict_load_ms": load_best,
            "verdict_load_rows": loaded.len(),
            "verdict_ladder_ms": ladder_best,
            "demarcate_ms": {"best": dm_best, "median": dm_median},
            "demarcate_user": pick,
            "demarcate_at": rfc3339(at + 60),
            "demarcate_verdict": d.verdict,
            "demarcate_element": d.element,
        }))
    })?;
    println!("{out}");
    Ok(())
}
