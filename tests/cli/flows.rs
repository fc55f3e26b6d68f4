//! `cemflow flows`: output formats, bad input, summaries.

use crate::util::{cemflow, jsonl};
use cemflow_ingest::source::{PcapWriter, TsResolution};
use etherparse::PacketBuilder;
use std::path::Path;

const T0: u64 = 1_767_225_600_000_000_000;

/// A small capture: one TCP connection with data and one DNS-like UDP exchange, plus an
/// ARP frame and two corrupt frames.
fn write_capture(path: &Path) {
    let f = std::fs::File::create(path).expect("create");
    let mut w = PcapWriter::new(f, 1, TsResolution::Micro).expect("writer");
    let c = [198, 18, 5, 1];
    let s = [198, 19, 7, 9];
    let mut ts = T0;
    let mut put = |w: &mut PcapWriter<std::fs::File>, frame: Vec<u8>| {
        ts += 1_000_000;
        w.write_packet(ts, &frame).expect("write");
    };
    let tcp = |from_c: bool, syn: bool, ack: bool, payload: &[u8]| {
        let (a, b, pa, pb) = if from_c {
            (c, s, 50000, 80)
        } else {
            (s, c, 80, 50000)
        };
        let mut builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(a, b, 64)
            .tcp(pa, pb, 7, 1000);
        if syn {
            builder = builder.syn();
        }
        if ack {
            builder = builder.ack(8);
        }
        let mut v = Vec::new();
        builder.write(&mut v, payload).expect("build");
        v
    };
    put(&mut w, tcp(true, true, false, b""));
    put(&mut w, tcp(false, true, true, b""));
    put(
        &mut w,
        tcp(
            true,
            false,
            true,
            b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
        ),
    );
    put(
        &mut w,
        tcp(
            false,
            false,
            true,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
    );
    let mut dns = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(c, [198, 19, 0, 53], 64)
        .udp(40001, 53)
        .write(&mut dns, &[0u8; 30])
        .expect("build");
    put(&mut w, dns);
    // ARP: ignored, not skipped.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[1; 6]);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    put(&mut w, arp);
    // Truncated IPv4 and a bad IPv4 version.
    let mut cut = vec![1; 12];
    cut.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
    put(&mut w, cut);
    let mut bad = vec![1; 12];
    bad.extend_from_slice(&[0x08, 0x00]);
    bad.extend_from_slice(&[0x35; 40]);
    put(&mut w, bad);
    w.finish().expect("finish");
}

#[test]
fn jsonl_has_the_spec_fields_and_exact_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("small.pcap");
    write_capture(&cap);
    let out = cemflow(&["flows", cap.to_str().expect("utf8"), "--format", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let tcp = rows.iter().find(|r| r["l4"] == 6).expect("tcp flow");
    for field in [
        "l4",
        "client_ip",
        "client_port",
        "server_ip",
        "server_port",
        "vlan",
        "tunnel",
        "c2s_pkts",
        "c2s_bytes",
        "s2c_pkts",
        "s2c_bytes",
        "c2s_ip_bytes",
        "s2c_ip_bytes",
        "c2s_payload",
        "s2c_payload",
        "l7_proto",
        "app",
        "category",
        "sni",
        "host",
        "first_ts",
        "last_ts",
        "end_reason",
    ] {
        assert!(tcp.get(field).is_some(), "missing {field}");
    }
    assert_eq!(tcp["client_ip"], "198.18.5.1");
    assert_eq!(tcp["server_port"], 80);
    assert_eq!(
        (tcp["c2s_pkts"].as_u64(), tcp["s2c_pkts"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(tcp["c2s_payload"].as_u64(), Some(41));
    assert_eq!(tcp["end_reason"], "end_of_input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 packets skipped: 1 truncated IPv4, 1 bad IPv4 header"),
        "{stderr}"
    );
    assert!(stderr.contains("1 non-IP frames ignored"), "{stderr}");
}

#[test]
fn csv_and_table_formats() {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("small.pcap");
    write_capture(&cap);
    let out = cemflow(&["flows", cap.to_str().expect("utf8"), "--format", "csv"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("flow_id,l4,client_ip,client_port,server_ip"),
        "{header}"
    );
    assert_eq!(lines.count(), 2);
    let out = cemflow(&["flows", cap.to_str().expect("utf8"), "--format", "table"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().expect("header").starts_with("l4"));
    assert!(text.contains("198.19.7.9"));
}

#[test]
fn a_file_that_is_no_capture_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello, this is not a pcap\n").expect("write");
    let out = cemflow(&["flows", txt.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("not a capture"),
        "{stderr}"
    );
    let missing = dir.path().join("missing.pcap");
    let out = cemflow(&["flows", missing.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_cut_file_yields_flows_up_to_the_damage() {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("cut.pcap");
    write_capture(&cap);
    let bytes = std::fs::read(&cap).expect("read");
    std::fs::write(&cap, &bytes[..bytes.len() - 20]).expect("cut");
    let out = cemflow(&["flows", cap.to_str().expect("utf8"), "--format", "jsonl"]);
    assert!(out.status.success());
    assert_eq!(jsonl(&out.stdout).len(), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged capture"));
}
