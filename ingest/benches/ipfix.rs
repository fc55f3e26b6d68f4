//! Flow-telemetry decoder throughput: IPFIX and NetFlow v9 data messages (≈ 30 IPv4
//! records of 46/38 bytes per 1.4 kB message, templates known) decoded by the
//! [`Collector`]. Reported as records per second on one core.

use cemflow_ingest::telemetry::export::{ExportFlow, IpfixEncoder, NetflowV9Encoder};
use cemflow_ingest::telemetry::Collector;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The binary ships with mimalloc; measure with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXPORT_S: u32 = 1_767_225_600;
const FLOWS: u32 = 30_000;

fn flows() -> Vec<ExportFlow> {
    (0..FLOWS)
        .map(|i| ExportFlow {
            src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
            dst: IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (i % 251))),
            src_port: 1024 + (i % 60_000) as u16,
            dst_port: 443,
            l4: 6,
            tcp_flags: 0x1b,
            packets: 1 + u64::from(i % 977),
            bytes: 60 + u64::from(i % 977) * 1200,
            start_ms: i64::from(EXPORT_S) * 1000 - 60_000,
            end_ms: i64::from(EXPORT_S) * 1000 - 1_000,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let exporter: SocketAddr = "192.0.2.1:4739".parse().expect("address");
    let flows = flows();
    let mut g = c.benchmark_group("telemetry_decode");
    g.throughput(Throughput::Elements(u64::from(FLOWS)));

    let mut enc = IpfixEncoder::new(1, 0);
    let tpl = enc.template_message(EXPORT_S);
    let msgs = enc.data_messages(EXPORT_S, &flows);
    let mut col = Collector::new();
    let mut out = Vec::with_capacity(64);
    col.process(exporter, &tpl, &mut out);
    g.bench_function("ipfix_records", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                out.clear();
                n += col.process(exporter, m, &mut out);
            }
            assert_eq!(n, FLOWS as usize);
        })
    });

    let mut enc = NetflowV9Encoder::new(1, 0, i64::from(EXPORT_S) * 1000 - 86_400_000);
    let tpl = enc.template_packet(EXPORT_S);
    let pkts = enc.data_packets(EXPORT_S, &flows);
    let mut col = Collector::new();
    col.process(exporter, &tpl, &mut out);
    g.bench_function("netflow_v9_records", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &pkts {
                out.clear();
                n += col.process(exporter, m, &mut out);
            }
            assert_eq!(n, FLOWS as usize);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
