//! Decode + flow table (+ DPI on first packets) throughput on a synthesized mixed capture:
//! ≥ 1 M packets, ≥ 50 k flows, realistic size mix (TLS-like TCP transfers with full-size
//! segments and ACKs, DNS, QUIC-like UDP, RTP-like voice).
//!
//! The capture is written once to `$CEMFLOW_BENCH_DIR` (default: the system temp dir) as
//! `cemflow-bench-mixed.pcap`, so peers (ndpiReader, nfstream, tshark) can be timed on the
//! very same file by `benches/compare.sh`. Reported throughput is packets per second on
//! one core (the table is single-threaded).

use cemflow_ingest::capture::read_files;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowTable};
use cemflow_ingest::source::CaptureReader;
use cemflow_ingest::synth::{generate, FaultSpec, SynthConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;

/// Least number of flows the bench capture must have.
const FLOWS: u32 = 50_000;

/// The binary ships with mimalloc; measure with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn capture_path() -> PathBuf {
    let dir = std::env::var_os("CEMFLOW_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join("cemflow-bench-mixed.pcap")
}

/// Writes the mixed capture with the traffic synthesizer unless it exists; returns its
/// path and packet count. 12 000 subscribers for 2 minutes with small transfer volumes:
/// real TLS ClientHellos, QUIC Initials, DNS, RTP voice, gaming UDP, ≈ 70 k flows.
fn ensure_capture() -> (PathBuf, u64) {
    let path = capture_path();
    if let Ok(mut r) = CaptureReader::open(&path) {
        let mut n = 0;
        while r.next_packet().is_some() {
            n += 1;
        }
        if n >= 1_000_000 {
            return (path, n);
        }
    }
    let cfg = SynthConfig {
        users: 12_000,
        access_elements: 60,
        core_elements: 6,
        servers: 60,
        minutes: 2,
        activity: 1.5,
        volume: 0.002,
        faults: FaultSpec::parse_list("access:olt3:loss@0-2m,server:srv7:slow@1-2m")
            .expect("fault spec"),
        ..SynthConfig::default()
    };
    let f = std::fs::File::create(&path).expect("create bench capture");
    let summary = generate(
        &cfg,
        std::io::BufWriter::new(f),
        None::<std::io::Sink>,
        None::<std::io::Sink>,
    )
    .expect("synth");
    assert!(
        summary.flows >= FLOWS as u64,
        "only {} flows",
        summary.flows
    );
    (path, summary.packets)
}

/// One full pass over the capture: flows ended.
fn one_pass(path: &std::path::Path) -> u64 {
    let mut table = FlowTable::new(FlowConfig::default());
    let mut ends = 0u64;
    let mut sink = |r: FlowRecord| {
        if let FlowRecord::End(_) = r {
            ends += 1;
        }
    };
    read_files(&[path.to_path_buf()], &mut table, &mut sink, |_| {}).expect("read");
    table.finish(&mut sink);
    ends
}

/// Times cemflow's pass and `ndpiReader -i FILE` on the same file in the same run, and
/// prints the ratio (best of 3 wall-clock runs each; ndpiReader is single-threaded too).
fn peer_ratio(path: &std::path::Path, packets: u64) {
    let best = |f: &mut dyn FnMut() -> bool| -> Option<f64> {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            if !f() {
                return None;
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        Some(best)
    };
    let ours = best(&mut || one_pass(path) > 0).unwrap_or(f64::NAN);
    println!(
        "cemflow decode+flows+dpi: {:.3} s, {:.2} Mpps on one core",
        ours,
        packets as f64 / ours / 1e6
    );
    let ndpi = best(&mut || {
        std::process::Command::new("ndpiReader")
            .args(["-q", "-i"])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    match ndpi {
        Some(t) => println!(
            "ndpiReader -i: {:.3} s, {:.2} Mpps; cemflow is {:.1}x faster",
            t,
            packets as f64 / t / 1e6,
            t / ours
        ),
        None => println!("ndpiReader not available: apt-get install libndpi-bin for the ratio"),
    }
}

fn bench(c: &mut Criterion) {
    let (path, packets) = ensure_capture();
    println!("bench capture: {} ({packets} packets)", path.display());
    peer_ratio(&path, packets);
    let mut g = c.benchmark_group("decode_flows");
    g.sample_size(10);
    g.throughput(Throughput::Elements(packets));
    g.bench_function("read+decode+flow_table+dpi", |b| {
        b.iter(|| {
            let ends = one_pass(&path);
            assert!(ends >= FLOWS as u64);
            ends
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
