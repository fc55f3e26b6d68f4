//! The timely graph: 1 and 2 workers give identical rows; windows close in order; late
//! slices are counted; anomalies are scored against the trailing baseline.

use cemflow_dataflow::{build, DataflowConfig, UserSlice, WindowOutput};
use cemflow_ingest::catalog::Category;
use std::sync::{Arc, Mutex};

const T0: i64 = 1_700_000_040; // minute-aligned
const WINDOWS: i64 = 16;
const USERS: u64 = 40;

/// Deterministic synthetic slices, in event-time order per window.
fn slices() -> Vec<UserSlice> {
    let mut out = Vec::new();
    let mut flow = 0u64;
    for w in 0..WINDOWS {
        for u in 0..USERS {
            let access = format!("olt{}", u % 4);
            // User 3 suffers a latency spike in the last window; access olt1 degrades at
            // window 12 and later.
            let mut rtt = 10.0 + (u % 7) as f32 + (w % 3) as f32;
            if (u == 3 && w == WINDOWS - 1) || (u % 4 == 1 && w >= 12) {
                rtt *= 40.0;
            }
            for (k, cat) in [Category::Web, Category::Video, Category::Gaming]
                .into_iter()
                .enumerate()
            {
                if (u + k as u64).is_multiple_of(3) && k > 0 {
                    continue;
                }
                flow += 1;
                out.push(UserSlice {
                    window_start_s: T0 + 60 * w,
                    user: u.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    flow_id: flow,
                    access_element: access.as_str().into(),
                    core_element: format!("bng{}", u % 2).into(),
                    server: format!("203.0.113.0/24|svc{k}").into(),
                    category: cat,
                    l4: 6,
                    bytes_down: 1_000_000 * (k as u64 + 1),
                    bytes_up: 10_000,
                    payload_down: 900_000 * (k as u64 + 1),
                    active_ns: [1_000_000_000, 2_000_000_000 * (k as u64 + 1)],
                    rtt_client: (rtt * 3.0, 3),
                    rtt_server: (30.0 * 3.0, 3),
                    data_segments: 700,
                    retransmissions: (u % 5) as u32,
                    txn_ms: Some(3.0 * rtt + 60.0),
                    ..UserSlice::default()
                });
            }
        }
    }
    out
}

fn run(config: timely::Config) -> (Vec<WindowOutput>, u64) {
    let out: Arc<Mutex<Vec<WindowOutput>>> = Arc::default();
    let late: Arc<Mutex<u64>> = Arc::default();
    let (o2, l2) = (Arc::clone(&out), Arc::clone(&late));
    let input = Arc::new(slices());
    timely::execute(config, move |worker| {
        let o3 = Arc::clone(&o2);
        let mut p = build(worker, DataflowConfig::default(), None, move |w| {
            o3.lock().unwrap().push(w)
        });
        if worker.index() == 0 {
            let mut last_w = T0;
            for s in input.iter() {
                if s.window_start_s > last_w {
                    // The flow table emits a window's slices when its clock crosses the end.
                    p.input.advance_clock(s.window_start_s);
                    last_w = s.window_start_s;
                    worker.step();
                }
                p.input.send(s.clone());
            }
            p.input.advance_clock(last_w + 66);
            worker.step();
            // A slice for a closed window is late.
            p.input.send(input[0].clone());
            *l2.lock().unwrap() = p.input.late();
        }
        p.finish(worker);
    })
    .unwrap()
    .join();
    let v = std::mem::take(&mut *out.lock().unwrap());
    let l = *late.lock().unwrap();
    (v, l)
}

#[test]
fn one_and_two_workers_agree_windows_in_order() {
    let (one, late1) = run(timely::Config::thread());
    let (two, late2) = run(timely::Config::process(2));
    assert_eq!((late1, late2), (1, 1));
    assert_eq!(one.len(), WINDOWS as usize);
    let starts: Vec<i64> = one.iter().map(|w| w.window_start_s).collect();
    let expect: Vec<i64> = (0..WINDOWS).map(|w| T0 + 60 * w).collect();
    assert_eq!(starts, expect, "windows close in order");
    assert_eq!(one, two, "1 vs 2 workers");
    for w in &one {
        let all = w
            .user_minutes
            .iter()
            .filter(|m| m.category == "all")
            .count();
        assert_eq!(all, USERS as usize);
        assert!(w.element_minutes.iter().any(|e| e.level == "access"));
        assert!(w.element_minutes.iter().any(|e| e.level == "core"));
        assert!(w.element_minutes.iter().any(|e| e.level == "server"));
    }
    // Degraded access element olt1 from window 12: poor share up, anomalous.
    let w12 = &one[12];
    let olt1 = w12
        .element_minutes
        .iter()
        .find(|e| e.level == "access" && e.element_id == "olt1")
        .unwrap();
    assert!(olt1.poor_share > 0.5, "{olt1:?}");
    let a = w12
        .anomalies
        .iter()
        .find(|a| a.entity_id == "access:olt1" && a.metric == "rtt_client_ms")
        .expect("element anomaly row");
    assert!(a.anomalous && a.baseline == "trailing_60m", "{a:?}");
    // Before window 10 (min_points) no anomaly rows at all.
    assert!(one[..10].iter().all(|w| w.anomalies.is_empty()));
    // User 3's spike in the last window is an anomalous CEI.
    let last = one.last().unwrap();
    let u3 = last
        .user_minutes
        .iter()
        .find(|m| {
            m.category == "all" && m.access_element == "olt3" && m.rtt_client_ms.unwrap() > 100.0
        })
        .expect("user 3");
    assert!(last.anomalies.iter().any(|a| a.entity_kind == "user"
        && a.entity_id == u3.user_key
        && a.metric == "rtt_client_ms"
        && a.anomalous));
}

/// Throughput of the whole graph; run with `--release -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    // 20 flows per user-minute: each slice repeated with distinct flow ids.
    let base: Vec<UserSlice> = slices()
        .into_iter()
        .flat_map(|s| {
            (0..8u64).map(move |i| UserSlice {
                flow_id: s.flow_id * 8 + i,
                ..s.clone()
            })
        })
        .collect();
    let n_rep = 20usize;
    for workers in [1usize, 2] {
        let input = Arc::new(base.clone());
        let t = std::time::Instant::now();
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut p = build(worker, DataflowConfig::default(), None, |_w| {});
            let idx = worker.index();
            let mut sent = 0u64;
            for rep in 0..n_rep {
                // Each worker reads its own share (as each process reads its own captures).
                let mut last_w = 0;
                for s in input.iter() {
                    let mut s = s.clone();
                    s.window_start_s += 60 * WINDOWS * rep as i64;
                    s.user ^= (idx as u64) << 40;
                    if s.window_start_s > last_w {
                        p.input.advance_clock(s.window_start_s);
                        last_w = s.window_start_s;
                        worker.step();
                    }
                    p.input.send(s);
                    sent += 1;
                }
            }
            let _ = sent;
            p.finish(worker);
        })
        .unwrap()
        .join();
        let n = base.len() * n_rep * workers;
        let dt = t.elapsed().as_secs_f64();
        println!(
            "workers={workers}: {n} slices in {dt:.2}s = {:.0} slices/s",
            n as f64 / dt
        );
    }
}
