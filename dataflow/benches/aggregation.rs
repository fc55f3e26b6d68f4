//! Aggregation throughput (issue 6): flow slices → user minutes (CEI per category, overall),
//! element minutes and anomaly scores.
//!
//! * `user_window`: the pure per-(user, window) aggregation on one core;
//! * `graph/workers=N`: the whole timely graph (exchange by user, `UserWindows`,
//!   exchange by element, `ElementWindows`, anomaly scoring, sink on worker 0) with N worker
//!   threads, each feeding its own share of the users (as each process reads its own
//!   captures). Throughput is slices per second for all workers together; per worker
//!   divide by N.
//!
//! Input: a deterministic mix shaped like a synth capture's slices: per user-minute ≈ 6
//! slices (web pages with handshake/TTFB, a video stream, DNS, and per user one of gaming,
//! voice, live or download), users spread over 64 access elements, 4 cores, 12 servers.
//! Windows are fed in event-time order with the clock advanced at each window, as the
//! flow table emits them.
//!
//! Two clocks: the default wall time, and `cpu/…` with the process's CPU time (all
//! threads) — on a shared machine the CPU time per slice is what one worker costs, so
//! slices per CPU-second is the per-worker rate; scaling is read off the wall time.

use cemflow_dataflow::{build, user_window, CeiConfig, DataflowConfig, UserSlice};
use cemflow_ingest::catalog::Category;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// CPU time of the whole process (all threads), as a criterion measurement.
struct CpuTime;

fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

static WALL: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        process_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        process_cpu().saturating_sub(i)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

/// The binary ships with mimalloc; measure with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const T0: i64 = 1_736_150_400;
const USERS: u64 = 20_000;
const WINDOWS: i64 = 12;

/// Deterministic xorshift PRNG.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The slices of users `u` with `u % parts == part`, window by window.
fn slices(part: u64, parts: u64) -> Vec<Vec<UserSlice>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (part + 1));
    let mut out = Vec::new();
    let mut flow = part << 48;
    // Interned as the enricher does (one shared string per element).
    let servers: Vec<Arc<str>> = (0..12)
        .map(|i| format!("198.19.{i}.0/24|svc{}", i / 2).into())
        .collect();
    for w in 0..WINDOWS {
        let mut win = Vec::new();
        for u in (0..USERS).filter(|u| u % parts == part) {
            let user = u.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let access: Arc<str> = format!("olt{}", u % 64).into();
            let core: Arc<str> = format!("bng{}", u % 4).into();
            let base_rtt = 8.0 + (u % 13) as f32 + 4.0 * rng.f32();
            // Access element 5 congested in windows 6..
            let c_extra = if u % 64 == 5 && w >= 6 { 300.0 } else { 0.0 };
            let extra = match u % 4 {
                0 => Category::Gaming,
                1 => Category::Voice,
                2 => Category::Live,
                _ => Category::Download,
            };
            let kinds = [
                Category::Web,
                Category::Web,
                Category::Video,
                Category::Other,
                extra,
                Category::Web,
            ];
            for (k, cat) in kinds.into_iter().enumerate() {
                flow += 1;
                let server = Arc::clone(&servers[k * 2 + (u % 2) as usize]);
                let rc = base_rtt + c_extra;
                let rs = 15.0 + 10.0 * rng.f32();
                let mut s = UserSlice {
                    window_start_s: T0 + 60 * w,
                    user,
                    flow_id: flow,
                    access_element: Arc::clone(&access),
                    core_element: Arc::clone(&core),
                    plan_mbps: Some(100.0),
                    server,
                    category: cat,
                    l4: 6,
                    bytes_down: 40_000,
                    bytes_up: 4_000,
                    payload_down: 36_000,
                    active_ns: [500_000_000, 1_500_000_000],
                    rtt_client: (rc * 2.0, 2),
                    rtt_server: (rs * 2.0, 2),
                    data_segments: 60,
                    retransmissions: (rng.next() % 3) as u32,
                    lost_segments: (rng.next() % 2) as u32,
                    txn_ms: Some(3.0 * (rc + rs) + 40.0),
                    ttfb_ms: Some(rc + rs + 30.0),
                    ..UserSlice::default()
                };
                match cat {
                    Category::Video | Category::Live | Category::Download => {
                        s.payload_down = 4_000_000;
                        s.bytes_down = 4_200_000;
                        s.active_ns = [200_000_000, 8_000_000_000];
                        s.data_segments = 3_000;
                        s.required_mbps = Some(5.0);
                        s.txn_ms = None;
                        s.ttfb_ms = None;
                    }
                    Category::Gaming | Category::Voice => {
                        s.l4 = 17;
                        s.active_ns = [60_000_000_000, 60_000_000_000];
                        s.rtp = if cat == Category::Voice {
                            (3000, 3)
                        } else {
                            (0, 0)
                        };
                        s.jitter_ms = (cat == Category::Voice).then_some(2.0);
                        s.rtt_client = (0.0, 0);
                        s.rtt_server = (0.0, 0);
                        s.data_segments = 0;
                        s.txn_ms = None;
                        s.ttfb_ms = None;
                    }
                    Category::Other => {
                        s.l4 = 17;
                        s.bytes_down = 120;
                        s.payload_down = 92;
                        s.active_ns = [0, 0];
                        s.rtt_client = (0.0, 0);
                        s.rtt_server = (0.0, 0);
                        s.data_segments = 0;
                        s.txn_ms = None;
                        s.ttfb_ms = None;
                    }
                    Category::Web => {}
                }
                win.push(s);
            }
        }
        out.push(win);
    }
    out
}

fn total(v: &[Vec<UserSlice>]) -> u64 {
    v.iter().map(|w| w.len() as u64).sum()
}

fn bench_user_window<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let cfg = CeiConfig::default();
    let windows = slices(0, 1);
    // Group by user once (the graph does this while receiving).
    let mut groups: Vec<Vec<UserSlice>> = Vec::new();
    for w in &windows[..2] {
        let mut by: std::collections::BTreeMap<u64, Vec<UserSlice>> = Default::default();
        for s in w {
            by.entry(s.user).or_default().push(s.clone());
        }
        groups.extend(by.into_values());
    }
    let n: u64 = groups.iter().map(|g| g.len() as u64).sum();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("user_window", |b| {
        b.iter_batched_ref(
            || groups.clone(),
            |groups| {
                let mut rows = 0usize;
                for s in groups.iter_mut() {
                    rows += user_window(&cfg, 60, s).minutes.len();
                }
                rows
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Runs the graph with `workers` threads over pre-built per-worker inputs; returns rows.
fn run_graph(workers: usize, inputs: Vec<Vec<Vec<UserSlice>>>) -> usize {
    let inputs = Arc::new(Mutex::new(inputs.into_iter().map(Some).collect::<Vec<_>>()));
    let rows = Arc::new(Mutex::new(0usize));
    let r2 = Arc::clone(&rows);
    timely::execute(timely::Config::process(workers), move |worker| {
        let r3 = Arc::clone(&r2);
        let mut p = build(worker, DataflowConfig::default(), None, move |w| {
            if let Ok(mut r) = r3.lock() {
                *r += w.user_minutes.len() + w.element_minutes.len() + w.anomalies.len();
            }
        });
        let mine = inputs
            .lock()
            .ok()
            .and_then(|mut v| v.get_mut(worker.index()).and_then(Option::take))
            .unwrap_or_default();
        for (i, win) in mine.into_iter().enumerate() {
            p.input.advance_clock(T0 + 60 * i as i64 + 1);
            for s in win {
                p.input.send(s);
            }
            worker.step();
        }
        p.finish(worker);
    })
    .expect("timely starts")
    .join();
    let n = *rows.lock().expect("rows");
    n
}

fn bench_graph<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for workers in [1usize, 2] {
        let parts = workers as u64;
        let inputs: Vec<Vec<Vec<UserSlice>>> = (0..parts).map(|p| slices(p, parts)).collect();
        let n: u64 = inputs.iter().map(|v| total(v)).sum();
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("graph/workers={workers}"), |b| {
            b.iter_batched(
                || inputs.clone(),
                |inp| run_graph(workers, inp),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn wall(c: &mut Criterion) {
    bench_user_window(c, "aggregation");
    bench_graph(c, "aggregation");
}

fn cpu(c: &mut Criterion<CpuTime>) {
    bench_user_window(c, "aggregation-cpu");
    bench_graph(c, "aggregation-cpu");
}

criterion_group!(benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = cpu
}
criterion_main!(benches, cpu_benches);
