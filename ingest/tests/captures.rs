//! Captures written by the project itself, one per link type and encapsulation, read back
//! through the capture reader and the flow table with exact expected counts.

use cemflow_ingest::capture::{open_inputs, read_files};
use cemflow_ingest::flow::{FlowConfig, FlowEnd, FlowRecord, FlowTable};
use cemflow_ingest::source::{PcapNgWriter, PcapWriter, TsResolution};
use etherparse::PacketBuilder;
use std::path::{Path, PathBuf};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_767_225_600 * SEC;
const CLIENT: [u8; 4] = [198, 18, 1, 10];
const SERVER: [u8; 4] = [198, 19, 2, 20];

/// A TCP exchange (handshake, 2 data segments each way, FIN/ACK both ways) as IP packets:
/// `(from_client, ip_packet)`.
fn tcp_exchange() -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut push =
        |from_client: bool, f: &dyn Fn(PacketBuilderStep) -> PacketBuilderStep, payload: &[u8]| {
            let (s, d, sp, dp) = if from_client {
                (CLIENT, SERVER, 41000, 443)
            } else {
                (SERVER, CLIENT, 443, 41000)
            };
            let b = PacketBuilder::ipv4(s, d, 64).tcp(sp, dp, 100, 64000);
            let mut v = Vec::new();
            f(b).write(&mut v, payload).expect("build");
            out.push((from_client, v));
        };
    push(true, &|b| b.syn(), b"");
    push(false, &|b| b.syn().ack(101), b"");
    push(true, &|b| b.ack(1), b"");
    push(true, &|b| b.ack(1).psh(), &[1u8; 300]);
    push(false, &|b| b.ack(401), &[2u8; 1200]);
    push(false, &|b| b.ack(401).psh(), &[3u8; 800]);
    push(true, &|b| b.ack(2101).fin(), b"");
    push(false, &|b| b.ack(402).fin(), b"");
    push(true, &|b| b.ack(2102), b"");
    out
}

type PacketBuilderStep = etherparse::PacketBuilderStep<etherparse::TcpHeader>;

struct Expect {
    c2s_pkts: u64,
    s2c_pkts: u64,
    c2s_ip: u64,
    s2c_ip: u64,
}

fn expected(ip: &[(bool, Vec<u8>)]) -> Expect {
    let mut e = Expect {
        c2s_pkts: 0,
        s2c_pkts: 0,
        c2s_ip: 0,
        s2c_ip: 0,
    };
    for (c, p) in ip {
        if *c {
            e.c2s_pkts += 1;
            e.c2s_ip += p.len() as u64;
        } else {
            e.s2c_pkts += 1;
            e.s2c_ip += p.len() as u64;
        }
    }
    e
}

fn run(paths: &[PathBuf]) -> (Vec<FlowEnd>, FlowTable) {
    let files = open_inputs(paths).expect("captures open");
    let mut table = FlowTable::new(FlowConfig::default());
    let mut records: Vec<FlowRecord> = Vec::new();
    read_files(&files, &mut table, &mut records, |_| {}).expect("read");
    table.finish(&mut records);
    let ends = records
        .into_iter()
        .filter_map(|r| match r {
            FlowRecord::End(e) => Some(*e),
            FlowRecord::Slice(_) => None,
        })
        .collect();
    (ends, table)
}

fn write_pcap(path: &Path, linktype: u32, frames: &[Vec<u8>]) {
    let f = std::fs::File::create(path).expect("create");
    let mut w = PcapWriter::new(f, linktype, TsResolution::Micro).expect("writer");
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet(T0 + i as u64 * 1_000_000, fr)
            .expect("write");
    }
    w.finish().expect("finish");
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4_header(proto: u8, payload_len: usize, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

fn udp_header(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

/// Wraps an IP packet in an outer IPv4/UDP carrier between two tunnel endpoints.
fn udp_tunnel(dport: u16, tunnel_header: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut payload = tunnel_header.to_vec();
    payload.extend_from_slice(inner);
    let udp = udp_header(40000, dport, payload.len());
    let mut ip = ipv4_header(
        17,
        udp.len() + payload.len(),
        [198, 18, 200, 1],
        [198, 18, 200, 2],
    );
    ip.extend_from_slice(&udp);
    ip.extend_from_slice(&payload);
    eth(0x0800, &ip)
}

/// Checks the single inner flow of a capture against the exchange.
fn check_inner(ends: &[FlowEnd], ip: &[(bool, Vec<u8>)], link_overhead_per_pkt: Option<u64>) {
    let e = expected(ip);
    let inner: Vec<&FlowEnd> = ends.iter().filter(|f| f.meta.server_port == 443).collect();
    assert_eq!(inner.len(), 1, "one inner flow: {ends:#?}");
    let f = inner[0];
    assert_eq!(f.meta.client_ip.to_string(), "198.18.1.10");
    assert_eq!((f.c2s.pkts, f.s2c.pkts), (e.c2s_pkts, e.s2c_pkts));
    assert_eq!((f.c2s.ip_bytes, f.s2c.ip_bytes), (e.c2s_ip, e.s2c_ip));
    assert_eq!((f.c2s.payload_bytes, f.s2c.payload_bytes), (300, 2000));
    if let Some(o) = link_overhead_per_pkt {
        assert_eq!(f.c2s.frame_bytes, e.c2s_ip + o * e.c2s_pkts);
        assert_eq!(f.s2c.frame_bytes, e.s2c_ip + o * e.s2c_pkts);
    }
}

#[test]
fn every_link_type() {
    let dir = tempfile::tempdir().expect("tmp");
    let ip = tcp_exchange();
    type Wrap = fn(&[u8]) -> Vec<u8>;
    let cases: [(u32, &str, Wrap, u64); 8] = [
        (1, "ethernet", |p| eth(0x0800, p), 14),
        (
            113,
            "sll",
            |p| {
                let mut f = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
                f.extend_from_slice(p);
                f
            },
            16,
        ),
        (
            276,
            "sll2",
            |p| {
                let mut f = vec![
                    0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
                ];
                f.extend_from_slice(p);
                f
            },
            20,
        ),
        (101, "raw", |p| p.to_vec(), 0),
        (228, "ipv4", |p| p.to_vec(), 0),
        (
            0,
            "null",
            |p| {
                let mut f = 2u32.to_le_bytes().to_vec();
                f.extend_from_slice(p);
                f
            },
            4,
        ),
        (
            108,
            "loop",
            |p| {
                let mut f = 2u32.to_be_bytes().to_vec();
                f.extend_from_slice(p);
                f
            },
            4,
        ),
        (
            9,
            "ppp",
            |p| {
                let mut f = vec![0xff, 0x03, 0x00, 0x21];
                f.extend_from_slice(p);
                f
            },
            4,
        ),
    ];
    for (lt, name, wrap, overhead) in cases {
        let path = dir.path().join(format!("{name}.pcap"));
        let frames: Vec<Vec<u8>> = ip.iter().map(|(_, p)| wrap(p)).collect();
        write_pcap(&path, lt, &frames);
        let (ends, table) = run(&[path]);
        assert_eq!(table.stats().skipped_total(), 0, "{name}");
        check_inner(&ends, &ip, Some(overhead));
        assert_eq!(ends.len(), 1, "{name}");
    }
}

#[test]
fn vlan_qinq_mpls_pppoe() {
    let dir = tempfile::tempdir().expect("tmp");
    let ip = tcp_exchange();
    type Wrap = fn(&[u8]) -> Vec<u8>;
    let cases: [(&str, Wrap, u64, Option<u16>); 4] = [
        (
            "vlan",
            |p| {
                let mut t = vec![0x00, 0x2a, 0x08, 0x00];
                t.extend_from_slice(p);
                eth(0x8100, &t)
            },
            18,
            Some(42),
        ),
        (
            "qinq",
            |p| {
                let mut t = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00];
                t.extend_from_slice(p);
                eth(0x88a8, &t)
            },
            22,
            Some(100),
        ),
        (
            "mpls",
            |p| {
                let mut t = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
                t.extend_from_slice(p);
                eth(0x8847, &t)
            },
            22,
            None,
        ),
        (
            "pppoe",
            |p| {
                let mut t = vec![0x11, 0x00, 0x12, 0x34];
                t.extend_from_slice(&((p.len() + 2) as u16).to_be_bytes());
                t.extend_from_slice(&[0x00, 0x21]);
                t.extend_from_slice(p);
                eth(0x8864, &t)
            },
            22,
            None,
        ),
    ];
    for (name, wrap, overhead, vlan) in cases {
        let path = dir.path().join(format!("{name}.pcap"));
        let frames: Vec<Vec<u8>> = ip.iter().map(|(_, p)| wrap(p)).collect();
        write_pcap(&path, 1, &frames);
        let (ends, _) = run(&[path]);
        check_inner(&ends, &ip, Some(overhead));
        assert_eq!(ends[0].meta.vlan, vlan, "{name}");
    }
}

#[test]
fn tunnels_yield_inner_flows_and_udp_carriers() {
    let dir = tempfile::tempdir().expect("tmp");
    let ip = tcp_exchange();
    // GTP-U G-PDU, VXLAN (inner Ethernet), Teredo needs IPv6 (covered in unit tests).
    let gtp = |p: &[u8]| {
        let mut h = vec![0x30, 0xff];
        h.extend_from_slice(&(p.len() as u16).to_be_bytes());
        h.extend_from_slice(&0xabcdu32.to_be_bytes());
        udp_tunnel(2152, &h, p)
    };
    let vxlan = |p: &[u8]| udp_tunnel(4789, &[0x08, 0, 0, 0, 0, 0, 0x05, 0], &eth(0x0800, p));
    for (name, frames, carrier) in [
        (
            "gtp",
            ip.iter().map(|(_, p)| gtp(p)).collect::<Vec<_>>(),
            "GTP",
        ),
        (
            "vxlan",
            ip.iter().map(|(_, p)| vxlan(p)).collect::<Vec<_>>(),
            "VXLAN",
        ),
    ] {
        let path = dir.path().join(format!("{name}.pcap"));
        write_pcap(&path, 1, &frames);
        let (ends, _) = run(&[path]);
        assert_eq!(ends.len(), 2, "{name}: inner + carrier");
        check_inner(&ends, &ip, None);
        let outer = ends
            .iter()
            .find(|f| f.meta.server_port != 443)
            .expect("carrier");
        assert_eq!(
            outer.c2s.pkts,
            ip.len() as u64,
            "{name}: carrier counts every frame"
        );
        assert_eq!(outer.dpi.l7_proto, Some(carrier));
    }
    // GRE and IP-in-IP: inner only.
    let gre = |p: &[u8]| {
        let mut g = vec![0x00, 0x00, 0x08, 0x00];
        g.extend_from_slice(p);
        let mut o = ipv4_header(47, g.len(), [198, 18, 200, 1], [198, 18, 200, 2]);
        o.extend_from_slice(&g);
        eth(0x0800, &o)
    };
    let ipip = |p: &[u8]| {
        let mut o = ipv4_header(4, p.len(), [198, 18, 200, 1], [198, 18, 200, 2]);
        o.extend_from_slice(p);
        eth(0x0800, &o)
    };
    for (name, frames) in [
        ("gre", ip.iter().map(|(_, p)| gre(p)).collect::<Vec<_>>()),
        ("ipip", ip.iter().map(|(_, p)| ipip(p)).collect::<Vec<_>>()),
    ] {
        let path = dir.path().join(format!("{name}.pcap"));
        write_pcap(&path, 1, &frames);
        let (ends, _) = run(&[path]);
        assert_eq!(ends.len(), 1, "{name}");
        check_inner(
            &ends,
            &ip,
            Some(14 + 20 + if name == "gre" { 4 } else { 0 }),
        );
    }
}

#[test]
fn pcapng_two_interfaces_and_a_directory_in_time_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let ip = tcp_exchange();
    // Interface 0 Ethernet with µs timestamps, interface 1 raw IP with ns; alternate them.
    let path = dir.path().join("multi.pcapng");
    let f = std::fs::File::create(&path).expect("create");
    let mut w = PcapNgWriter::new(f).expect("ng");
    let e = w.add_interface(1, false).expect("if0");
    let r = w.add_interface(101, true).expect("if1");
    for (i, (_, p)) in ip.iter().enumerate() {
        let ts = T0 + i as u64 * 1_000_000;
        if i % 2 == 0 {
            w.write_packet(e, ts, &eth(0x0800, p)).expect("w");
        } else {
            w.write_packet(r, ts, p).expect("w");
        }
    }
    w.finish().expect("finish");
    let (ends, _) = run(std::slice::from_ref(&path));
    check_inner(&ends, &ip, None);

    // The same exchange split over two pcap files in a directory, named against time order.
    let sub = dir.path().join("split");
    std::fs::create_dir(&sub).expect("mkdir");
    let frames: Vec<Vec<u8>> = ip.iter().map(|(_, p)| eth(0x0800, p)).collect();
    let (early, late) = frames.split_at(4);
    let fw = |name: &str, part: &[Vec<u8>], offset: usize| {
        let f = std::fs::File::create(sub.join(name)).expect("create");
        let mut w = PcapWriter::new(f, 1, TsResolution::Nano).expect("w");
        for (i, fr) in part.iter().enumerate() {
            w.write_packet(T0 + (offset + i) as u64 * 1_000_000, fr)
                .expect("w");
        }
        w.finish().expect("finish");
    };
    fw("b-early.pcap", early, 0);
    fw("a-late.pcap", late, 4);
    let (ends, _) = run(&[sub]);
    check_inner(&ends, &ip, Some(14));
}

#[test]
fn truncated_file_is_read_up_to_the_damage() {
    let dir = tempfile::tempdir().expect("tmp");
    let ip = tcp_exchange();
    let path = dir.path().join("cut.pcap");
    let frames: Vec<Vec<u8>> = ip.iter().map(|(_, p)| eth(0x0800, p)).collect();
    write_pcap(&path, 1, &frames);
    let bytes = std::fs::read(&path).expect("read");
    // Cut inside the last record.
    std::fs::write(&path, &bytes[..bytes.len() - 10]).expect("write");
    let files = open_inputs(std::slice::from_ref(&path)).expect("open");
    let mut table = FlowTable::new(FlowConfig::default());
    let mut records: Vec<FlowRecord> = Vec::new();
    let summaries = read_files(&files, &mut table, &mut records, |_| {}).expect("read");
    assert_eq!(summaries[0].packets, ip.len() as u64 - 1);
    assert!(summaries[0].damage.is_some());
}
