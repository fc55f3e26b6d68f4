//! Decode + flow table (+ DPI on first packets) throughput on a generated mixed capture:
//! ≥ 1 M packets, ≥ 50 k flows, realistic size mix (TLS 1.3 over TCP with real hellos,
//! application records in full-size segments and ACKs, real DNS queries/answers,
//! QUIC-like UDP, RTP voice).
//!
//! The capture is written once to `$CEMFLOW_BENCH_DIR` (default: the system temp dir) as
//! `cemflow-bench-mixed-v5.pcap`, so peers (ndpiReader, nfstream, tshark) can be timed on the
//! very same file. Reported throughput is packets per second on
//! one core (the table is single-threaded), measured in thread CPU time ([`CpuTime`]) so
//! that other processes competing for the machine's cores don't distort it; the peer
//! ratio compares CPU times too (ours vs the ndpiReader child's).

use cemflow_ingest::capture::read_files;
use cemflow_ingest::decode::LinkType;
use cemflow_ingest::flow::{FlowConfig, FlowRecord, FlowTable};
use cemflow_ingest::source::{CaptureReader, PcapWriter, TsResolution};
use cemflow_ingest::synth::{dns_query_message, tls_client_hello_record, tls_server_hello_records};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
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
    dir.join("cemflow-bench-mixed-v5.pcap")
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
    // Per flow of the batch: next TCP sequence number of the client and of the server, RTP
    // packets sent per direction (so sequence numbers advance as a real stream's do: no
    // holes, ACKs acknowledge what the peer sent).
    let mut next_seq = vec![[0u32; 2]; batch as usize];
    let mut rtp_sent = vec![[0u16; 2]; batch as usize];
    for start in (0..FLOWS).step_by(batch as usize) {
        for (i, s) in next_seq.iter_mut().enumerate() {
            *s = [1_000 + i as u32 * 7_919, 900_000 + i as u32 * 104_729];
        }
        rtp_sent.iter_mut().for_each(|n| *n = [0, 0]);
        for round in 0..24u32 {
            for f in start..(start + batch).min(FLOWS) {
                let slot = (f - start) as usize;
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
                        let [cseq, sseq] = next_seq[slot];
                        let (seq, peer) = if up { (cseq, sseq) } else { (sseq, cseq) };
                        let t = b.tcp(sp, dp, seq, 64_000);
                        let (sent, len) = match round {
                            0 => (t.syn().write(&mut frame, &[]), 1),
                            1 => (t.syn().ack(peer).write(&mut frame, &[]), 1),
                            2 => {
                                let hello = &hellos[(f % 64) as usize];
                                (t.ack(peer).psh().write(&mut frame, hello), hello.len())
                            }
                            3 => (
                                t.ack(peer).psh().write(&mut frame, &server_hello),
                                server_hello.len(),
                            ),
                            6 => (
                                t.ack(peer).psh().write(&mut frame, &client_request),
                                client_request.len(),
                            ),
                            _ if up => (t.ack(peer).write(&mut frame, &[]), 0),
                            _ => (
                                t.ack(peer).write(&mut frame, &server_record),
                                server_record.len(),
                            ),
                        };
                        sent.expect("tcp");
                        let d = usize::from(!up);
                        next_seq[slot][d] = next_seq[slot][d].wrapping_add(len as u32);
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
                        let n = &mut rtp_sent[slot][usize::from(up)];
                        rtp[2..4].copy_from_slice(&n.to_be_bytes());
                        rtp[4..8].copy_from_slice(&(u32::from(*n) * 160).to_be_bytes());
                        *n = n.wrapping_add(1);
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

/// Thread CPU time (user + system) as criterion's measurement, in ns: what one core
/// spends, whatever else runs on the machine.
struct CpuTime;

/// CPU time of the calling thread, ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time (user + system) used so far by this process's waited-for children, s.
fn children_cpu_s() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Durations are formatted as criterion formats wall time.
static DURATION_FORMAT: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        DURATION_FORMAT.formatter()
    }
}

/// One full pass over the capture: flows ended.
fn one_pass(path: &std::path::Path, inspect: bool) -> u64 {
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
    read_files(&[path.to_path_buf()], &mut table, &mut sink, |_| {}).expect("read");
    table.finish(&mut sink);
    ends
}

/// Times cemflow's pass (with and without DPI/KPIs) and `ndpiReader -i FILE` on the same
/// file in the same run, in CPU time (best of 3 runs each; ndpiReader is single-threaded
/// too), and prints the ratios.
fn peer_ratio(path: &std::path::Path, packets: u64) {
    let best = |f: &mut dyn FnMut() -> Option<f64>| -> Option<f64> {
        let mut best = f64::MAX;
        for _ in 0..3 {
            best = best.min(f()?);
        }
        Some(best)
    };
    let ours = |inspect: bool| {
        best(&mut || {
            let t = thread_cpu_ns();
            (one_pass(path, inspect) > 0).then(|| (thread_cpu_ns() - t) as f64 / 1e9)
        })
        .unwrap_or(f64::NAN)
    };
    let (with_dpi, without) = (ours(true), ours(false));
    let mpps = |s: f64| packets as f64 / s / 1e6;
    println!(
        "cemflow from file, CPU time: decode+flows {:.3} s ({:.2} Mpps), +dpi/kpis {:.3} s \
         ({:.2} Mpps): DPI+KPIs add {:.0} %",
        without,
        mpps(without),
        with_dpi,
        mpps(with_dpi),
        (with_dpi / without - 1.0) * 100.0
    );
    let ndpi = best(&mut || {
        let before = children_cpu_s();
        let ok = std::process::Command::new("ndpiReader")
            .args(["-q", "-i"])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| children_cpu_s() - before)
    });
    match ndpi {
        Some(t) => println!(
            "ndpiReader -i, CPU time: {:.3} s, {:.2} Mpps; cemflow with DPI is {:.1}x faster",
            t,
            mpps(t),
            t / with_dpi
        ),
        None => println!("ndpiReader not available: apt-get install libndpi-bin for the ratio"),
    }
}

fn bench(c: &mut Criterion<CpuTime>) {
    let (path, packets) = ensure_capture();
    println!("bench capture: {} ({packets} packets)", path.display());
    peer_ratio(&path, packets);
    let mut g = c.benchmark_group("decode_flows");
    g.sample_size(10);
    g.throughput(Throughput::Elements(packets));
    for (name, inspect) in [
        ("read+decode+flow_table+dpi", true),
        ("read+decode+flow_table, no dpi/kpis", false),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let ends = one_pass(&path, inspect);
                assert!(ends >= FLOWS as u64);
                ends
            })
        });
    }
    // The same frames preloaded in memory: decode + flow table + DPI + KPIs alone,
    // without the file read; then without DPI/KPIs, which gives what DPI + KPIs add.
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
    g: &mut criterion::BenchmarkGroup<'_, CpuTime>,
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
                    range.len() as u32,
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

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench
}
criterion_main!(benches);
