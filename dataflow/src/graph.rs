//! The timely-dataflow graph (SPEC §5).
//!
//! ```text
//! UnorderedInput<UserSlice>  (event-time capability = window start, epoch s)
//!   └─ exchange by user ─► UserWindows   (unary_frontier, capability stash per window)
//!        ├─ UserMinute rows + user anomalies ───────────────────────────┐
//!        └─ ElementObs ─ exchange by element ─► ElementWindows          │
//!                          └─ ElementMinute rows + element anomalies ───┤
//!                                           exchange to worker 0 ─► Sink (per window, in order)
//! ```
//!
//! Times are epoch seconds (`u64`). A slice of the window starting at `ws` is sent at time
//! `ws`. The input's capability sits at `now − window − lateness + 1` (`now` = the event
//! clock of the reader, e.g. the capture's packet time), so window `ws` closes once the
//! clock has reached `ws + window + lateness` in every reader; slices arriving for a window
//! that has closed are dropped and counted ([`SliceInput::late`]).
//!
//! Each operator keeps, per open window, a capability and the window's data, and emits
//! when the frontier passes the window. The sink on worker 0 receives one
//! [`WindowOutput`] per window, in window order, with rows sorted, so the output does not
//! depend on the number of workers or processes.
//!
//! Use: in every worker call [`build`]; workers that read captures [`SliceInput::send`]
//! slices and [`SliceInput::advance_clock`]; the others [`SliceInput::close`] their input
//! at once. Step the worker until the probe is done (see [`Pipeline::finish`]).

use crate::aggregate::{element_minute, user_window, ElementObs, Level};
use crate::anomaly::{AnomalyConfig, HourOfWeekBaselines, Score, Scorer};
use crate::cei::CeiConfig;
use crate::input::UserSlice;
use crate::pseudo::key_hex;
use crate::rows::{AnomalyRow, ElementMinute, UserMinute, CATEGORY_ALL};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::{OkErr, UnorderedHandle, UnorderedInput};
use timely::dataflow::operators::{ActivateCapability, Capability, Concat, Operator, Probe};
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

/// Timestamp of the graph: epoch seconds.
pub type Time = u64;

/// Configuration of the dataflow (`[dataflow]` and `[cei]` in `cemflow.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataflowConfig {
    /// Window length, seconds (windows are aligned to multiples of it).
    pub window_s: i64,
    /// Allowed lateness: a window closes when the event clock passes its end plus this.
    /// Seconds.
    pub lateness_s: i64,
    /// Slices buffered by the input before they are handed to the graph.
    pub input_batch: usize,
    /// Experience models.
    pub cei: CeiConfig,
    /// Anomaly scoring.
    pub anomaly: AnomalyConfig,
}

impl Default for DataflowConfig {
    fn default() -> Self {
        DataflowConfig {
            window_s: 60,
            lateness_s: 5,
            input_batch: 4096,
            cei: CeiConfig::default(),
            anomaly: AnomalyConfig::default(),
        }
    }
}

/// Everything one closed window produced, handed to the sink on worker 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowOutput {
    /// Window start, epoch seconds.
    pub window_start_s: i64,
    /// User rows, sorted by (user_key, category).
    pub user_minutes: Vec<UserMinute>,
    /// Element rows, sorted by (level, element_id).
    pub element_minutes: Vec<ElementMinute>,
    /// Anomaly rows, sorted by (entity_kind, entity_id, metric).
    pub anomalies: Vec<AnomalyRow>,
}

impl WindowOutput {
    fn sort(&mut self) {
        self.user_minutes
            .sort_by(|a, b| (&a.user_key, &a.category).cmp(&(&b.user_key, &b.category)));
        self.element_minutes
            .sort_by(|a, b| (&a.level, &a.element_id).cmp(&(&b.level, &b.element_id)));
        self.anomalies.sort_by(|a, b| {
            (&a.entity_kind, &a.entity_id, &a.metric).cmp(&(
                &b.entity_kind,
                &b.entity_id,
                &b.metric,
            ))
        });
    }
}

/// A row travelling to the sink.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Row {
    User(UserMinute),
    Element(ElementMinute),
    Anomaly(AnomalyRow),
}

/// Stable 64-bit hash (FNV-1a) for routing elements.
fn fnv(level: Level, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ level as u64;
    for b in id.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The input side of the graph in one worker.
pub struct SliceInput {
    handle: UnorderedHandle<Time, CapacityContainerBuilder<Vec<UserSlice>>>,
    cap: Option<ActivateCapability<Time>>,
    pending: BTreeMap<Time, Vec<UserSlice>>,
    pending_len: usize,
    batch: usize,
    window_s: i64,
    lateness_s: i64,
    sent: u64,
    late: u64,
}

impl SliceInput {
    /// Queues one slice (sent in batches). A slice of a window already closed is dropped
    /// and counted as late.
    pub fn send(&mut self, s: UserSlice) {
        let t = s.window_start_s.max(0) as Time;
        match &self.cap {
            Some(c) if t >= *c.time() => {
                self.pending.entry(t).or_default().push(s);
                self.pending_len += 1;
                if self.pending_len >= self.batch {
                    self.flush();
                }
            }
            _ => self.late += 1,
        }
    }

    /// Hands the queued slices to the graph.
    pub fn flush(&mut self) {
        let Some(cap) = &self.cap else { return };
        if self.pending_len == 0 {
            return;
        }
        let mut h = self.handle.activate();
        for (t, mut v) in std::mem::take(&mut self.pending) {
            let c = cap.delayed(&t);
            self.sent += v.len() as u64;
            h.session(&c).give_iterator(v.drain(..));
        }
        self.pending_len = 0;
    }

    /// Advances the event clock to `now_s` (epoch s): windows ending at or before
    /// `now_s − lateness_s` may close.
    pub fn advance_clock(&mut self, now_s: i64) {
        let f = (now_s - self.window_s - self.lateness_s + 1).max(0) as Time;
        if self.cap.as_ref().is_some_and(|c| f > *c.time()) {
            self.flush();
            if let Some(c) = &mut self.cap {
                c.downgrade(&f);
            }
        }
    }

    /// The earliest window start still accepted.
    pub fn frontier(&self) -> Option<i64> {
        self.cap.as_ref().map(|c| *c.time() as i64)
    }

    /// Flushes and closes the input: every window closes once all workers closed.
    pub fn close(&mut self) {
        self.flush();
        self.cap = None;
    }

    /// Slices handed to the graph.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Slices dropped because their window had closed.
    pub fn late(&self) -> u64 {
        self.late
    }
}

/// One worker's handle on the graph.
pub struct Pipeline {
    /// Input of slices.
    pub input: SliceInput,
    /// Probe at the sink: done when every window was delivered.
    pub probe: ProbeHandle<Time>,
}

impl Pipeline {
    /// Closes this worker's input and steps the worker until the whole graph has drained,
    /// parking the thread while it has nothing to do (a worker waiting for the others'
    /// windows must not spin on a core the readers need).
    pub fn finish(mut self, worker: &mut Worker) {
        self.input.close();
        while !self.probe.done() {
            worker.step_or_park(None);
        }
    }
}

/// Builds the graph in `worker`. `sink` is called on worker 0 only, once per closed window
/// in window order. `baselines`: hour-of-week baselines read from the lake, when ≥ 4 weeks
/// exist.
pub fn build<S>(
    worker: &mut Worker,
    cfg: DataflowConfig,
    baselines: Option<Arc<HourOfWeekBaselines>>,
    sink: S,
) -> Pipeline
where
    S: FnMut(WindowOutput) + 'static,
{
    let window_s = cfg.window_s.max(1);
    let lateness_s = cfg.lateness_s.max(0);
    let batch = cfg.input_batch.max(1);
    let probe = ProbeHandle::new();
    let probe2 = probe.clone();
    let (handle, cap) = worker.dataflow::<Time, _, _>(move |scope| {
        let ((handle, cap), slices) =
            scope.new_unordered_input::<CapacityContainerBuilder<Vec<UserSlice>>>();

        // Stage 1: per (user, window).
        let cfg1 = cfg.clone();
        let how1 = baselines.clone();
        let stage1 = slices
            .unary_frontier(
                Exchange::new(|s: &UserSlice| s.user),
                "UserWindows",
                move |_cap, _info| {
                    type Open = (Capability<Time>, HashMap<u64, Vec<UserSlice>, Fixed>);
                    let mut stash: BTreeMap<Time, Open> = BTreeMap::new();
                    let mut scorer = Scorer::new(USER_METRICS);
                    let mut scores = Vec::new();
                    move |(input, frontier), output| {
                        input.for_each_stamp(|cap, data| {
                            for batch in data {
                                for s in batch.drain(..) {
                                    let t = s.window_start_s.max(0) as Time;
                                    let e = stash.entry(t).or_insert_with(|| {
                                        (cap.delayed(&t, 0), HashMap::with_hasher(fixed()))
                                    });
                                    e.1.entry(s.user).or_default().push(s);
                                }
                            }
                        });
                        while let Some(entry) = stash.first_entry() {
                            if frontier.less_equal(entry.key()) {
                                break;
                            }
                            let (t, (cap, users)) = entry.remove_entry();
                            let mut session = output.session(&cap);
                            let mut users: Vec<_> = users.into_iter().collect();
                            users.sort_unstable_by_key(|u| u.0);
                            for (_, mut slices) in users {
                                let w = user_window(&cfg1.cei, window_s, &mut slices);
                                for m in w.minutes {
                                    if m.category == CATEGORY_ALL {
                                        user_anomalies(
                                            &mut scorer,
                                            &cfg1.anomaly,
                                            how1.as_deref(),
                                            window_s,
                                            &m,
                                            &mut scores,
                                        );
                                        for (k, sc) in scores.drain(..) {
                                            session.give(Ok(Row::Anomaly(user_row(&m, k, sc))));
                                        }
                                    }
                                    session.give(Ok(Row::User(m)));
                                }
                                for o in w.elements {
                                    session.give(Err(o));
                                }
                            }
                            scorer.evict(t as i64, window_s, &cfg1.anomaly);
                        }
                    }
                },
            )
            .container::<Vec<Result<Row, ElementObs>>>();
        let (rows, obs) = stage1.ok_err::<Vec<Row>, _, Vec<ElementObs>, _, _>(|x| x);

        // Stage 2: per (element, window).
        let cfg2 = cfg.clone();
        let how2 = baselines;
        let elements = obs
            .unary_frontier(
                Exchange::new(|o: &ElementObs| fnv(o.level, &o.element_id)),
                "ElementWindows",
                move |_cap, _info| {
                    type Open = (
                        Capability<Time>,
                        HashMap<(Level, Arc<str>), Vec<ElementObs>, Fixed>,
                    );
                    let mut stash: BTreeMap<Time, Open> = BTreeMap::new();
                    let mut scorer = Scorer::new(ELEMENT_METRICS);
                    let mut scores = Vec::new();
                    move |(input, frontier), output| {
                        input.for_each_stamp(|cap, data| {
                            for batch in data {
                                for o in batch.drain(..) {
                                    let t = o.window_start_s.max(0) as Time;
                                    let e = stash.entry(t).or_insert_with(|| {
                                        (cap.delayed(&t, 0), HashMap::with_hasher(fixed()))
                                    });
                                    e.1.entry((o.level, Arc::clone(&o.element_id)))
                                        .or_default()
                                        .push(o);
                                }
                            }
                        });
                        while let Some(entry) = stash.first_entry() {
                            if frontier.less_equal(entry.key()) {
                                break;
                            }
                            let (t, (cap, elems)) = entry.remove_entry();
                            let mut session = output.session(&cap);
                            let mut elems: Vec<_> = elems.into_iter().collect();
                            elems.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                            for ((level, id), obs) in elems {
                                let em = element_minute(t as i64, level, &id, &obs);
                                for r in element_anomalies(
                                    &mut scorer,
                                    &cfg2.anomaly,
                                    how2.as_deref(),
                                    window_s,
                                    &em,
                                    &mut scores,
                                ) {
                                    session.give(Row::Anomaly(r));
                                }
                                session.give(Row::Element(em));
                            }
                            scorer.evict(t as i64, window_s, &cfg2.anomaly);
                        }
                    }
                },
            )
            .container::<Vec<Row>>();

        // Sink: every row to worker 0, one call per window in order.
        let mut sink = sink;
        rows.concat(elements)
            .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Exchange::new(|_r: &Row| 0),
                "Sink",
                move |_cap, _info| {
                    let mut stash: BTreeMap<Time, WindowOutput> = BTreeMap::new();
                    move |(input, frontier), _output| {
                        input.for_each_stamp(|cap, data| {
                            let Some(&t) = cap.least() else { return };
                            let w = stash.entry(t).or_insert_with(|| WindowOutput {
                                window_start_s: t as i64,
                                ..WindowOutput::default()
                            });
                            for batch in data {
                                for r in batch.drain(..) {
                                    match r {
                                        Row::User(u) => w.user_minutes.push(u),
                                        Row::Element(e) => w.element_minutes.push(e),
                                        Row::Anomaly(a) => w.anomalies.push(a),
                                    }
                                }
                            }
                        });
                        while let Some(entry) = stash.first_entry() {
                            if frontier.less_equal(entry.key()) {
                                break;
                            }
                            let mut w = entry.remove();
                            w.sort();
                            sink(w);
                        }
                    }
                },
            )
            .probe_with(&probe2);
        (handle, cap)
    });
    Pipeline {
        input: SliceInput {
            handle,
            cap: Some(cap),
            pending: BTreeMap::new(),
            pending_len: 0,
            batch,
            window_s,
            lateness_s,
            sent: 0,
            late: 0,
        },
        probe,
    }
}

/// Deterministic hasher of the operators' maps (fast, no per-process random state).
type Fixed = foldhash::fast::FixedState;

fn fixed() -> Fixed {
    Fixed::with_seed(0x5eed)
}

/// User metrics scored for anomalies, in [`user_anomalies`]' order.
const USER_METRICS: &[&str] = &[
    "cei",
    "rtt_client_ms",
    "rtt_server_ms",
    "retrans_rate",
    "throughput_down_mbps",
];

/// Element metrics scored for anomalies, in [`element_anomalies`]' order.
const ELEMENT_METRICS: &[&str] = &[
    "cei",
    "poor_share",
    "rtt_client_ms",
    "rtt_server_ms",
    "retrans_rate",
];

/// Scores a user's overall row; pushes `(metric index, score)` of the rows to emit.
fn user_anomalies(
    scorer: &mut Scorer,
    cfg: &AnomalyConfig,
    how: Option<&HourOfWeekBaselines>,
    window_s: i64,
    m: &UserMinute,
    out: &mut Vec<(usize, Score)>,
) {
    let v = |x: Option<f32>| x.map(f64::from);
    let values = [
        Some(m.cei as f64),
        v(m.rtt_client_ms),
        v(m.rtt_server_ms),
        v(m.retrans_rate),
        v(m.throughput_down_mbps),
    ];
    // The pseudonym's hex form is the u64 it encodes; fall back to hashing it.
    let key =
        u64::from_str_radix(&m.user_key, 16).unwrap_or_else(|_| fnv(Level::Access, &m.user_key));
    scorer.observe(
        cfg,
        how,
        window_s,
        m.window_start_s,
        key,
        &m.user_key,
        &values,
        cfg.emit_all_user_rows,
        out,
    );
}

fn user_row(m: &UserMinute, k: usize, sc: Score) -> AnomalyRow {
    let metric = USER_METRICS.get(k).copied().unwrap_or("cei");
    let value = match k {
        0 => Some(m.cei),
        1 => m.rtt_client_ms,
        2 => m.rtt_server_ms,
        3 => m.retrans_rate,
        _ => m.throughput_down_mbps,
    };
    sc.row(
        m.window_start_s,
        "user",
        &m.user_key,
        metric,
        value.map_or(f64::NAN, f64::from),
    )
}

/// Scores an element's row; every scored metric gives a row.
fn element_anomalies(
    scorer: &mut Scorer,
    cfg: &AnomalyConfig,
    how: Option<&HourOfWeekBaselines>,
    window_s: i64,
    e: &ElementMinute,
    scores: &mut Vec<(usize, Score)>,
) -> Vec<AnomalyRow> {
    let id = format!("{}:{}", e.level, e.element_id);
    let v = |x: Option<f32>| x.map(f64::from);
    let values = [
        Some(e.cei_mean as f64),
        Some(e.poor_share as f64),
        v(e.rtt_client_ms_median),
        v(e.rtt_server_ms_median),
        v(e.retrans_rate),
    ];
    scorer.observe(
        cfg,
        how,
        window_s,
        e.window_start_s,
        crate::anomaly::fnv1a(&id),
        &id,
        &values,
        true,
        scores,
    );
    scores
        .drain(..)
        .map(|(k, sc)| {
            let metric = ELEMENT_METRICS.get(k).copied().unwrap_or("cei");
            let value = values.get(k).copied().flatten().unwrap_or(f64::NAN);
            sc.row(e.window_start_s, "element", &id, metric, value)
        })
        .collect()
}

/// Formats a 64-bit user pseudonym as stored in rows (re-exported for drivers).
pub fn user_key_string(user: u64) -> String {
    key_hex(user)
}
