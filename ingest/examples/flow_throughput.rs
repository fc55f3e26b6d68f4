//! Throughput of decode + flow table (+ DPI/KPIs) on a capture, for profiling with
//! `perf record -g`:
//!
//! ```text
//! cargo build --profile bench -p cemflow-ingest --example flow_throughput
//! perf record -g target/release/examples/flow_throughput FILE [file|mem] [dpi|nodpi] [PASSES]
//! ```
//!
//! `file` reads the capture on every pass (as `cemflow flows` does); `mem` loads its frames
//! once and feeds them from memory (decode + flow table only). Prints packets per second of
//! the best pass.

use cemflow_ingest::capture::read_files;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowTable};
use cemflow_ingest::source::CaptureReader;
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: flow_throughput FILE [file|mem] [dpi|nodpi] [PASSES]");
        std::process::exit(2);
    };
    let from_memory = args.get(1).is_some_and(|m| m == "mem");
    let inspect = args.get(2).is_none_or(|m| m != "nodpi");
    let passes: u32 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(5);
    let cfg = FlowConfig {
        inspect,
        ..FlowConfig::default()
    };
    let frames = from_memory.then(|| load(&path));
    let mut best = f64::MAX;
    let mut packets = 0;
    for _ in 0..passes {
        let mut table = FlowTable::new(cfg.clone());
        let mut ends = 0u64;
        let mut sink = |r: FlowRecord| {
            if let FlowRecord::End(_) = r {
                ends += 1;
            }
        };
        let t = Instant::now();
        let cpu0 = thread_cpu_s();
        match &frames {
            Some((bytes, index)) => {
                for (ts, lt, r, wire) in index {
                    table.process(*ts, *lt, &bytes[r.clone()], *wire, &mut sink);
                }
            }
            None => {
                if let Err(e) =
                    read_files(std::slice::from_ref(&path), &mut table, &mut sink, |_| {})
                {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        table.finish(&mut sink);
        let cpu = thread_cpu_s() - cpu0;
        best = best.min(cpu);
        packets = table.stats().packets;
        eprintln!(
            "pass: {:.3} s CPU, {:.3} s wall, {ends} flows",
            cpu,
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "{packets} packets, best {best:.3} s CPU, {:.2} Mpps ({}, {})",
        packets as f64 / best / 1e6,
        if from_memory {
            "in memory"
        } else {
            "from file"
        },
        if inspect { "dpi+kpis" } else { "no dpi/kpis" }
    );
}

/// CPU time of this thread (user + system), seconds: immune to other processes' load.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

type Frames = (Vec<u8>, Vec<(u64, LinkType, std::ops::Range<usize>, u32)>);

fn load(path: &std::path::Path) -> Frames {
    let mut r = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let (mut bytes, mut index) = (Vec::new(), Vec::new());
    while let Some(p) = r.next_packet() {
        let start = bytes.len();
        bytes.extend_from_slice(p.data);
        index.push((
            p.ts_ns,
            LinkType::from_linktype(p.linktype),
            start..bytes.len(),
            p.wire_len,
        ));
    }
    (bytes, index)
}
