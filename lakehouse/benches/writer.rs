//! Lake writer throughput (issue 7): `user_minute` rows → Arrow → Parquet → Delta commit.
//!
//! * `user_minute/convert`: [`TableBatches::add_user_minutes`] alone (rows → Arrow batch);
//! * `user_minute/encode`: Parquet encoding of the converted batches with the lake's writer
//!   properties (zstd, dictionaries, page statistics, `user_key` bloom filter) into memory;
//! * `user_minute/commit`: end to end, as `cemflow ingest` does it: rows → batches →
//!   [`Lake::commit_windows`] of `WINDOWS` closed windows into a lake in a temp directory
//!   (Parquet files on disk, one Delta commit per windowed table carrying the app
//!   transaction).
//!
//! Throughput is rows per second on the calling thread (conversion and encoding run
//! there; the lake's runtime only does file and log I/O).
//!
//! Input: `USERS` users per window, each with an `all` row and three category rows
//! (web, video and one of gaming/voice/live/download), users spread over 256 access and 8
//! core elements, a few percent poor with a worst server — the shape of a synth capture's
//! `user_minute`.

use cemflow_dataflow::{RowSource, UserMinute};
use cemflow_lakehouse::{Lake, LakeOptions, Table, TableBatches};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::cell::Cell;

/// The binary ships with mimalloc; measure with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 2025-01-06T08:00:00Z.
const T0: i64 = 1_736_150_400;
const USERS: u64 = 50_000;
/// Windows per commit (`cemflow ingest --commit-every`).
const WINDOWS: i64 = 5;

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

/// The rows of one window.
fn window_rows(w: i64, rng: &mut Rng) -> Vec<UserMinute> {
    let extra = ["gaming", "voice", "live", "download"];
    let mut rows = Vec::with_capacity(USERS as usize * 4);
    for u in 0..USERS {
        let user_key = format!("{:016x}", u.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let access = format!("olt{}/pon{}", u % 32, (u / 32) % 8);
        let core = format!("bng{}", u % 8);
        let cats = ["web", "video", extra[(u % 4) as usize], "all"];
        for cat in cats {
            let cei = 100.0 * rng.f32();
            let poor = cei < 8.0;
            rows.push(UserMinute {
                window_start_s: T0 + 60 * w,
                user_key: user_key.clone(),
                category: cat.to_string(),
                access_element: access.clone(),
                core_element: core.clone(),
                flows: 1 + (rng.next() % 12) as u32,
                active_s: 60.0 * rng.f32(),
                bytes_down: rng.next() % 50_000_000,
                bytes_up: rng.next() % 2_000_000,
                throughput_down_mbps: (cat != "voice").then(|| 100.0 * rng.f32()),
                rtt_client_ms: Some(5.0 + 20.0 * rng.f32()),
                rtt_server_ms: Some(10.0 + 40.0 * rng.f32()),
                retrans_rate: Some(0.02 * rng.f32()),
                loss_pct: (cat == "voice" || cat == "gaming").then(|| rng.f32()),
                jitter_ms: (cat == "voice").then(|| 10.0 * rng.f32()),
                txn_ms: (cat == "web").then(|| 100.0 + 400.0 * rng.f32()),
                ttfb_ms: (cat == "web").then(|| 50.0 + 200.0 * rng.f32()),
                mos: 1.0 + 3.5 * cei / 100.0,
                cei,
                poor,
                worst_server: poor.then(|| format!("198.51.{}.0/24|svc{}", u % 16, u % 5)),
                source: RowSource::Probe,
            });
        }
    }
    rows
}

fn windows(first: i64) -> Vec<Vec<UserMinute>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..WINDOWS)
        .map(|w| window_rows(first + w, &mut rng))
        .collect()
}

fn bench_writer(c: &mut Criterion) {
    let input = windows(0);
    let rows: usize = input.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("user_minute");
    g.sample_size(10);

    g.throughput(Throughput::Elements(input[0].len() as u64));
    g.bench_function("convert", |b| {
        b.iter(|| {
            let mut tb = TableBatches::new();
            tb.add_user_minutes(&input[0]).expect("convert");
            tb
        })
    });

    let batches: Vec<_> = input
        .iter()
        .flat_map(|w| {
            let mut tb = TableBatches::new();
            tb.add_user_minutes(w).expect("convert");
            tb.batches(Table::UserMinute).to_vec()
        })
        .collect();
    let props = LakeOptions::default()
        .writer_properties(Table::UserMinute)
        .expect("properties");
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut buf = Vec::with_capacity(64 << 20);
            let mut w = parquet::arrow::ArrowWriter::try_new(
                &mut buf,
                batches[0].schema(),
                Some(props.clone()),
            )
            .expect("writer");
            for batch in &batches {
                w.write(batch).expect("write");
            }
            w.close().expect("close");
            buf.len()
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    for (name, zstd_level) in [("commit", 3), ("commit_zstd1", 1)] {
        bench_commit(&mut g, name, &dir.path().join(name), zstd_level, rows);
    }
    g.finish();
}

/// End-to-end commits into a fresh lake at `root` written with `zstd_level` (the default
/// is 3; level 1 is the write-speed end of the trade-off, `lake optimize` can recompress).
fn bench_commit(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    root: &std::path::Path,
    zstd_level: i32,
    rows: usize,
) {
    let opts = LakeOptions {
        zstd_level,
        ..LakeOptions::default()
    };
    let lake = Lake::open_with(&root.display().to_string(), opts).expect("lake");
    let next = Cell::new(0i64);
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                let first = next.get();
                next.set(first + WINDOWS);
                (first, windows(first))
            },
            |(first, input)| {
                let mut commit = Vec::with_capacity(input.len());
                for (i, w) in input.iter().enumerate() {
                    let mut tb = TableBatches::new();
                    tb.add_user_minutes(w).expect("convert");
                    commit.push((T0 + 60 * (first + i as i64), tb));
                }
                let r = lake.commit_windows("bench", commit).expect("commit");
                assert_eq!(r.rows(), rows);
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group!(benches, bench_writer);
criterion_main!(benches);
