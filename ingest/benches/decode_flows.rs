//! Decode + flow table (+ DPI on first packets) throughput on a generated mixed capture:
//! ≥ 1 M packets, ≥ 50 k flows, realistic size mix (TLS 1.3 over TCP with real hellos,
//! application records in full-size segments and ACKs, real DNS queries/answers,
//! QUIC-like UDP, RTP voice).
//!
//! The capture is written once to `$CEMFLOW_BENCH_DIR` (default: the system temp dir) as
//! `cemflow-bench-mixed-v4.pcap`, so peers (ndpiReader, nfstream, tshark) can be timed on the
//! very same file. Reported throughput is packets per second on
//! one core (the table is single-threaded).

use cemflow_ingest::capture::read_files;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowTable};
use cemflow_ingest::source::{CaptureReader, PcapWriter, TsResolution};
use cemflow_ingest::synth::{dns_query_message, tls_client_hello_record, tls_server_hello_records};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use std::path::PathBuf;

/// Flows in the bench capture (≥ 50 k).
const FLOWS: u32 = 60_000;
const T0: u64 = 1_767_225_600_000_000_000;

/// The binary ships with mimalloc; measure with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deterministic xorshift PRNG (no dependency, reproducible file).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Where the bench capture lives (kept between runs; peers read the same file).
fn capture_path() -> PathBuf {
    let dir = std::env::var_os("CEMFLOW_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join("cemflow-bench-mixed-v4.pcap")
}

/// Writes the mixed capture unless it exists; returns its path and packet count.
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
    let f = std::fs::File::create(&path).expect("create bench capture");
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), 1, TsResolution::Micro).expect("pcap");
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut packets = 0u64;
    // Interleave flows: emit in rounds so many flows are open at once, like a real link.
    let mut ts = T0;
    let payload = vec![0xa5u8; 1460];
    let names: Vec<String> = (0..64)
        .map(|i| format!("www.service{i}.example.com"))
        .collect();
    let server_hello = tls_server_hello_records(7);
    // TLS application-data records: a 120-byte request, full-segment responses.
    let app_record = |len: usize| {
        let mut r = vec![0x17, 3, 3];
        r.extend_from_slice(&((len - 5) as u16).to_be_bytes());
        r.resize(len, 0xa5);
        r
    };
    let client_request = app_record(120);
    let server_record = app_record(1448);
    let hellos: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| tls_client_hello_record(n, i as u64 + 1))
        .collect();
    let mut frame = Vec::with_capacity(1600);
    let batch = 2_000u32;
    for start in (0..FLOWS).step_by(batch as usize) {
        for round in 0..24u32 {
            for f in start..(start + batch).min(FLOWS) {
                let kind = f % 10;
                let client = [10, (f >> 16) as u8, (f >> 8) as u8, f as u8];
                let server = [198, 19, (f % 200) as u8, 1 + (f % 50) as u8];
                let cport = 20_000 + (f % 40_000) as u16;
                frame.clear();
                ts += 1_000 + rng.below(2_000);
                // TCP: SYN, SYN/ACK, ACK+ClientHello, ServerHello+CCS, then the client's
                // first application record and ACKs against server application records.
                let up = if kind <= 5 {
                    matches!(round, 0 | 2) || (round >= 4 && round % 3 == 0)
                } else {
                    round % 3 == 0
                };
                let (src, dst, sp, dp) = if up {
                    (client, server, cport, 443)
                } else {
                    (server, client, 443, cport)
                };
                let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
                match kind {
                    // TLS over TCP: handshake, a real ClientHello, then data/ACKs.
                    0..=5 => {
                        let seq = round * 1448;
                        let t = b.tcp(sp, dp, seq, 64_000);
                        match round {
                            0 => t.syn().write(&mut frame, &[]),
                            1 => t.syn().ack(1).write(&mut frame, &[]),
                            2 => t
                                .ack(seq)
                                .psh()
                                .write(&mut frame, &hellos[(f % 64) as usize]),
                            3 => t.ack(seq).psh().write(&mut frame, &server_hello),
                            6 => t.ack(seq).psh().write(&mut frame, &client_request),
                            _ if up => t.ack(seq).write(&mut frame, &[]),
                            _ => t.ack(seq).write(&mut frame, &server_record),
                        }
                        .expect("tcp");
                    }
                    // QUIC-like UDP 443.
                    6 | 7 => {
                        let len = if up {
                            40 + rng.below(60) as usize
                        } else {
                            1200 + rng.below(50) as usize
                        };
                        b.udp(sp, dp)
                            .write(&mut frame, &payload[..len])
                            .expect("udp");
                    }
                    // DNS: a real query, then its answer (QR set), then silent.
                    8 => {
                        if round > 1 {
                            continue;
                        }
                        let (src, dst, sp, dp) = if round == 0 {
                            (client, server, cport, 53)
                        } else {
                            (server, client, 53, cport)
                        };
                        let mut q = dns_query_message(f as u16, &names[(f % 64) as usize]);
                        if round == 1 {
                            q[2] |= 0x80;
                        }
                        PacketBuilder::ethernet2([2; 6], [4; 6])
                            .ipv4(src, dst, 64)
                            .udp(sp, dp)
                            .write(&mut frame, &q)
                            .expect("dns");
                    }
                    // RTP voice (G.711, 20 ms): 12-byte RTP header + 160 bytes, both ways.
                    _ => {
                        let (sp, dp) = (16_384 + (f % 1000) as u16 * 2, 30_000);
                        let (sp, dp) = if up { (sp, dp) } else { (dp, sp) };
                        let mut rtp = [0u8; 172];
                        rtp[0] = 0x80;
                        rtp[2..4].copy_from_slice(&(round as u16).to_be_bytes());
                        rtp[4..8].copy_from_slice(&(round * 160).to_be_bytes());
                        rtp[8..12].copy_from_slice(&(f * 2 + u32::from(up)).to_be_bytes());
                        b.udp(sp, dp).write(&mut frame, &rtp).expect("rtp");
                    }
                }
                w.write_packet(ts, &frame).expect("write");
                packets += 1;
            }
        }
    }
    w.finish().expect("finish");
    (path, packets)
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
    // The same frames preloaded in memory: decode + flow table + DPI + KPIs alone,
    // without the file read (a kernel copy from the page cache); then without DPI/KPIs,
    // which gives what DPI + KPIs add.
    let frames = load_frames(&path);
    for (name, inspect) in [
        ("decode+flow_table+dpi (frames in memory)", true),
        ("decode+flow_table, no dpi/kpis (frames in memory)", false),
    ] {
        bench_in_memory(&mut g, name, &frames, inspect);
    }
    g.finish();
}

fn bench_in_memory(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    frames: &Frames,
    inspect: bool,
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut table = FlowTable::new(FlowConfig {
                inspect,
                ..FlowConfig::default()
            });
            let mut ends = 0u64;
            let mut sink = |r: FlowRecord| {
                if let FlowRecord::End(_) = r {
                    ends += 1;
                }
            };
            for (ts, range) in &frames.index {
                table.process(
                    *ts,
                    LinkType::Ethernet,
                    &frames.bytes[range.clone()],
                    &mut sink,
                );
            }
            table.finish(&mut sink);
            assert!(ends >= FLOWS as u64);
            ends
        })
    });
}

/// Every frame of a capture in one buffer.
struct Frames {
    bytes: Vec<u8>,
    index: Vec<(u64, std::ops::Range<usize>)>,
}

fn load_frames(path: &std::path::Path) -> Frames {
    let mut r = CaptureReader::open(path).expect("open");
    let mut f = Frames {
        bytes: Vec::new(),
        index: Vec::new(),
    };
    while let Some(p) = r.next_packet() {
        let start = f.bytes.len();
        f.bytes.extend_from_slice(p.data);
        f.index.push((p.ts_ns, start..f.bytes.len()));
    }
    f
}

criterion_group!(benches, bench);
criterion_main!(benches);
