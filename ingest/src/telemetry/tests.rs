//! Decoder tests: round trips through the encoders, and hostile inputs (lengths past the
//! end, zero-length sets, empty templates, unknown templates, variable-length overflow,
//! sequence wrap, random corruption).

use super::export::{ExportFlow, IpfixEncoder, NetflowV9Encoder, TEMPLATE_V4};
use super::fields::ie;
use super::kpi::{parse_kpi, KpiFormat};
use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const EXPORT_S: u32 = 1_700_000_000;

fn exporter() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn flow(i: u32) -> ExportFlow {
    ExportFlow {
        src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        src_port: 40_000 + i as u16,
        dst_port: 443,
        l4: 6,
        tcp_flags: 0x1b,
        packets: 10 + u64::from(i),
        bytes: 1000 + u64::from(i),
        start_ms: i64::from(EXPORT_S) * 1000 - 30_000,
        end_ms: i64::from(EXPORT_S) * 1000 - 1_000,
    }
}

/// IPFIX message from raw sets.
fn ipfix_msg(seq: u32, domain: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0, 10, 0, 0];
    b.extend_from_slice(&EXPORT_S.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&domain.to_be_bytes());
    for (id, body) in sets {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    let len = (b.len() as u16).to_be_bytes();
    b[2..4].copy_from_slice(&len);
    b
}

/// NetFlow v9 packet from raw FlowSets.
fn v9_packet(seq: u32, uptime: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0, 9, 0, sets.len() as u8];
    b.extend_from_slice(&uptime.to_be_bytes());
    b.extend_from_slice(&EXPORT_S.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&7u32.to_be_bytes());
    for (id, body) in sets {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    b
}

/// A template record: id, then (ie, len[, pen]) fields.
fn template(id: u16, fields: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (f, l, pen) in fields {
        let f = if *pen != 0 { f | 0x8000 } else { *f };
        b.extend_from_slice(&f.to_be_bytes());
        b.extend_from_slice(&l.to_be_bytes());
        if *pen != 0 {
            b.extend_from_slice(&pen.to_be_bytes());
        }
    }
    b
}

fn decode(c: &mut Collector, msg: &[u8]) -> Vec<FlowTelemetry> {
    let mut out = Vec::new();
    c.process(exporter(), msg, &mut out);
    out
}

fn stats(c: &Collector) -> ExporterStats {
    c.exporter_stats(exporter()).cloned().unwrap_or_default()
}

fn malformed(c: &Collector, m: Malformed) -> u64 {
    stats(c).malformed[m.index()]
}

#[test]
fn ipfix_round_trip() {
    let mut enc = IpfixEncoder::new(3, 100);
    let mut c = Collector::new();
    assert!(decode(&mut c, &enc.template_message(EXPORT_S)).is_empty());
    let mut flows: Vec<ExportFlow> = (0..50).map(flow).collect();
    flows.push(ExportFlow {
        src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        dst: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2)),
        ..flow(99)
    });
    let mut got = Vec::new();
    for m in enc.data_messages(EXPORT_S, &flows) {
        got.extend(decode(&mut c, &m));
    }
    assert_eq!(got.len(), 51);
    for (g, f) in got.iter().zip(&flows) {
        assert_eq!(g.version, 10);
        assert_eq!(g.domain, 3);
        assert_eq!(g.export_ts_s, i64::from(EXPORT_S));
        assert_eq!(g.fields.src, Some(f.src));
        assert_eq!(g.fields.dst, Some(f.dst));
        assert_eq!(g.fields.src_port, Some(f.src_port));
        assert_eq!(g.fields.dst_port, Some(443));
        assert_eq!(g.fields.l4, Some(6));
        assert_eq!(g.fields.tcp_flags, Some(0x1b));
        assert_eq!(g.fields.packets, Some(f.packets));
        assert_eq!(g.fields.bytes, Some(f.bytes));
        assert_eq!(g.fields.flow_start_ms, Some(f.start_ms));
        assert_eq!(g.fields.flow_end_ms, Some(f.end_ms));
        assert_eq!(g.fields.enterprise, None);
    }
    let s = stats(&c);
    assert_eq!(s.records, 51);
    assert_eq!(s.templates_received, 2);
    assert_eq!(
        (s.lost_records, s.sequence_gaps, s.malformed_total()),
        (0, 0, 0)
    );
}

#[test]
fn netflow_v9_round_trip_with_uptime_times() {
    let boot_ms = i64::from(EXPORT_S) * 1000 - 3_600_000;
    let mut enc = NetflowV9Encoder::new(7, 0, boot_ms);
    let mut c = Collector::new();
    decode(&mut c, &enc.template_packet(EXPORT_S));
    let flows: Vec<ExportFlow> = (0..70).map(flow).collect();
    let mut got = Vec::new();
    for p in enc.data_packets(EXPORT_S, &flows) {
        got.extend(decode(&mut c, &p));
    }
    assert_eq!(got.len(), 70);
    for (g, f) in got.iter().zip(&flows) {
        assert_eq!(g.version, 9);
        assert_eq!(g.domain, 7);
        assert_eq!(g.fields.flow_start_ms, Some(f.start_ms));
        assert_eq!(g.fields.flow_end_ms, Some(f.end_ms));
        assert_eq!(g.fields.bytes, Some(f.bytes));
    }
    let s = stats(&c);
    assert_eq!((s.lost_packets, s.malformed_total()), (0, 0));
}

#[test]
fn unknown_template_is_counted_and_recovered() {
    let mut enc = IpfixEncoder::new(1, 0);
    let data = enc.data_messages(EXPORT_S, &[flow(1), flow(2)]);
    let mut c = Collector::new();
    assert!(decode(&mut c, &data[0]).is_empty());
    assert_eq!(stats(&c).unknown_template_sets, 1);
    decode(&mut c, &enc.template_message(EXPORT_S));
    let again = enc.data_messages(EXPORT_S, &[flow(3)]);
    assert_eq!(decode(&mut c, &again[0]).len(), 1);
    // Templates are per exporter and domain: another domain does not know them.
    let mut other = IpfixEncoder::new(2, 0);
    assert!(decode(&mut c, &other.data_messages(EXPORT_S, &[flow(4)])[0]).is_empty());
    assert_eq!(stats(&c).unknown_template_sets, 2);
    // The gap after the unknown set is not reported as loss (the count was unknown).
    assert_eq!(stats(&c).lost_records, 0);
}

#[test]
fn lengths_past_the_end_are_malformed() {
    let mut c = Collector::new();
    let mut enc = IpfixEncoder::new(1, 0);
    let t = enc.template_message(EXPORT_S);
    decode(&mut c, &t);
    // Truncated datagram: header length says more than received.
    let d = enc.data_messages(EXPORT_S, &[flow(1), flow(2)]).remove(0);
    assert!(decode(&mut c, &d[..d.len() - 5]).is_empty());
    assert_eq!(malformed(&c, Malformed::BadMessageLength), 1);
    // Set length past the message end (header length patched to match).
    let mut m = ipfix_msg(0, 1, &[(TEMPLATE_V4, vec![0; 10])]);
    m[18..20].copy_from_slice(&200u16.to_be_bytes());
    assert!(decode(&mut c, &m).is_empty());
    assert_eq!(malformed(&c, Malformed::BadSetLength), 1);
    // Header cut.
    assert!(decode(&mut c, &[0, 10, 0]).is_empty());
    assert!(decode(&mut c, &[0, 9]).is_empty());
    assert!(decode(&mut c, &[0]).is_empty());
    assert_eq!(malformed(&c, Malformed::TruncatedHeader), 3);
    assert!(decode(&mut c, &[0, 5, 0, 0, 0, 0]).is_empty());
    assert_eq!(malformed(&c, Malformed::BadVersion), 1);
    // Template record whose field list runs past the set.
    let mut tr = template(300, &[(ie::SRC_V4, 4, 0), (ie::DST_V4, 4, 0)]);
    tr[3] = 9; // claims 9 fields
    decode(&mut c, &ipfix_msg(0, 1, &[(2, tr)]));
    assert_eq!(malformed(&c, Malformed::BadTemplate), 1);
    // v9 FlowSet past the end.
    let mut p = v9_packet(0, 1000, &[(0, template(256, &[(ie::SRC_V4, 4, 0)]))]);
    p[22..24].copy_from_slice(&400u16.to_be_bytes());
    decode(&mut c, &p);
    assert_eq!(malformed(&c, Malformed::BadSetLength), 2);
}

#[test]
fn zero_length_sets_do_not_loop() {
    let mut c = Collector::new();
    // IPFIX set length 0 (below its own header).
    let mut m = ipfix_msg(0, 1, &[(2, vec![0; 8])]);
    m[18..20].copy_from_slice(&0u16.to_be_bytes());
    assert!(decode(&mut c, &m).is_empty());
    assert_eq!(malformed(&c, Malformed::BadSetLength), 1);
    // A set of just its header is legal and empty.
    decode(&mut c, &ipfix_msg(1, 1, &[(2, vec![]), (3, vec![])]));
    assert_eq!(malformed(&c, Malformed::BadSetLength), 1);
    // v9 FlowSet length 0 and 3.
    for l in [0u16, 3] {
        let mut p = v9_packet(5, 1000, &[(300, vec![0; 8])]);
        p[22..24].copy_from_slice(&l.to_be_bytes());
        decode(&mut c, &p);
    }
    assert_eq!(malformed(&c, Malformed::BadSetLength), 3);
}

#[test]
fn template_with_zero_fields_withdraws_ipfix_and_is_bad_in_v9() {
    let mut c = Collector::new();
    let mut enc = IpfixEncoder::new(1, 0);
    decode(&mut c, &enc.template_message(EXPORT_S));
    assert_eq!(c.stats().templates_active, 2);
    // Withdraw template 256 only.
    decode(&mut c, &ipfix_msg(0, 1, &[(2, template(256, &[]))]));
    assert_eq!(c.stats().templates_active, 1);
    assert_eq!(stats(&c).templates_withdrawn, 1);
    assert!(decode(&mut c, &enc.data_messages(EXPORT_S, &[flow(1)])[0]).is_empty());
    assert_eq!(stats(&c).unknown_template_sets, 1);
    // Refresh, then withdraw all data templates (template id 2 = the set id).
    decode(&mut c, &enc.template_message(EXPORT_S));
    let opt = {
        // options template 400: scope count 1, scope = observationDomainId, field 160.
        let mut b = vec![1, 144, 0, 2, 0, 1];
        b.extend_from_slice(&[0, 149, 0, 4, 0, 160, 0, 8]);
        b
    };
    decode(&mut c, &ipfix_msg(0, 1, &[(3, opt)]));
    assert_eq!(c.stats().templates_active, 3);
    decode(&mut c, &ipfix_msg(0, 1, &[(2, template(2, &[]))]));
    assert_eq!(c.stats().templates_active, 1, "options template survives");
    decode(&mut c, &ipfix_msg(0, 1, &[(3, template(3, &[]))]));
    assert_eq!(c.stats().templates_active, 0);
    // A template of only zero-length fields can't be stepped over: rejected.
    decode(
        &mut c,
        &ipfix_msg(0, 1, &[(2, template(500, &[(ie::SRC_V4, 0, 0)]))]),
    );
    assert_eq!(malformed(&c, Malformed::BadTemplate), 1);
    // v9: a template with 0 fields is invalid; a template id < 256 too.
    decode(&mut c, &v9_packet(0, 0, &[(0, template(256, &[]))]));
    decode(&mut c, &v9_packet(1, 0, &[(0, template(12, &[(8, 4, 0)]))]));
    assert_eq!(malformed(&c, Malformed::BadTemplate), 3);
    assert_eq!(c.stats().templates_active, 0);
}

#[test]
fn variable_length_fields_and_enterprise_raw() {
    let mut c = Collector::new();
    let tpl = template(
        300,
        &[
            (ie::SRC_V4, 4, 0),
            (82, 65535, 0),    // interfaceName, variable length
            (7, 65535, 29305), // enterprise, variable length
            (ie::OCTET_DELTA, 4, 0),
        ],
    );
    decode(&mut c, &ipfix_msg(0, 1, &[(2, tpl)]));
    let mut data = Vec::new();
    // record 1: short var-len (1-byte length), enterprise 2 bytes
    data.extend_from_slice(&[10, 0, 0, 1, 3, b'e', b't', b'h', 2, 0xbe, 0xef, 0, 0, 1, 0]);
    // record 2: 3-byte length form (255, u16)
    data.extend_from_slice(&[
        10, 0, 0, 2, 255, 0, 2, b'x', b'y', 255, 0, 1, 0xaa, 0, 0, 2, 0,
    ]);
    let got = decode(&mut c, &ipfix_msg(0, 1, &[(300, data.clone())]));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].fields.bytes, Some(256));
    assert_eq!(got[0].fields.enterprise.as_deref(), Some("29305.7=beef"));
    assert_eq!(got[1].fields.enterprise.as_deref(), Some("29305.7=aa"));
    assert_eq!(got[1].fields.bytes, Some(512));
    // Overflow: a var-len length past the set end. The first record is kept.
    let mut bad = data[..15].to_vec();
    bad.extend_from_slice(&[10, 0, 0, 3, 200, b'z', 0, 0, 0, 0, 0, 0]);
    let got = decode(&mut c, &ipfix_msg(1, 1, &[(300, bad)]));
    assert_eq!(got.len(), 1);
    assert_eq!(malformed(&c, Malformed::RecordOverrun), 1);
    // 3-byte form with a length past the end.
    let got = decode(
        &mut c,
        &ipfix_msg(
            2,
            1,
            &[(300, vec![10, 0, 0, 4, 255, 0xff, 0xff, 0, 0, 0, 0])],
        ),
    );
    assert!(got.is_empty());
    assert_eq!(malformed(&c, Malformed::RecordOverrun), 2);
}

#[test]
fn sequence_numbers_count_loss_and_wrap() {
    // v9 counts packets.
    let mut c = Collector::new();
    let tpl = (0u16, template(256, &[(ie::SRC_V4, 4, 0)]));
    for seq in [u32::MAX - 1, u32::MAX, 0, 1, 4, 3] {
        decode(&mut c, &v9_packet(seq, 1000, std::slice::from_ref(&tpl)));
    }
    let s = stats(&c);
    assert_eq!(s.lost_packets, 2, "1 → 4 lost 2, the wrap lost nothing");
    assert_eq!(s.sequence_gaps, 1);
    assert_eq!(s.reordered, 1);
    // A restart of the counter is not loss.
    decode(
        &mut c,
        &v9_packet(2_000_000_000, 1000, std::slice::from_ref(&tpl)),
    );
    decode(&mut c, &v9_packet(0, 1000, std::slice::from_ref(&tpl)));
    let s = stats(&c);
    assert_eq!(s.sequence_resets, 1);
    assert_eq!(s.lost_packets, 2 + 2_000_000_000 - 5);

    // IPFIX counts data records, across the 2^32 wrap.
    let mut c = Collector::new();
    let mut enc = IpfixEncoder::new(1, u32::MAX - 2);
    decode(&mut c, &enc.template_message(EXPORT_S));
    let flows: Vec<ExportFlow> = (0..5).map(flow).collect();
    for m in enc.data_messages(EXPORT_S, &flows) {
        decode(&mut c, &m);
    }
    let skipped = enc.data_messages(EXPORT_S, &flows[..3]);
    assert_eq!(skipped.len(), 1);
    for m in enc.data_messages(EXPORT_S, &flows[..2]) {
        decode(&mut c, &m);
    }
    let s = stats(&c);
    assert_eq!(s.records, 7);
    assert_eq!(s.lost_records, 3);
    assert_eq!(s.sequence_gaps, 1);
}

#[test]
fn options_data_gives_uptime_base() {
    let mut c = Collector::new();
    let init_ms: u64 = 1_699_990_000_000;
    let mut opt = vec![1, 144, 0, 2, 0, 1];
    opt.extend_from_slice(&[0, 149, 0, 4, 0, 160, 0, 8]);
    let tpl = template(
        256,
        &[
            (ie::SRC_V4, 4, 0),
            (ie::START_UPTIME, 4, 0),
            (ie::END_UPTIME, 4, 0),
        ],
    );
    let mut odata = 1u32.to_be_bytes().to_vec();
    odata.extend_from_slice(&init_ms.to_be_bytes());
    let mut data = vec![10, 0, 0, 1];
    data.extend_from_slice(&5_000u32.to_be_bytes());
    data.extend_from_slice(&9_000u32.to_be_bytes());
    let got = decode(
        &mut c,
        &ipfix_msg(0, 1, &[(3, opt), (2, tpl), (400, odata), (256, data)]),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].fields.flow_start_ms, Some(init_ms as i64 + 5_000));
    assert_eq!(got[0].fields.flow_end_ms, Some(init_ms as i64 + 9_000));
    assert_eq!(stats(&c).options_records, 1);
    assert_eq!(stats(&c).records, 1);
}

#[test]
fn template_refresh_replaces_the_layout() {
    let mut c = Collector::new();
    decode(
        &mut c,
        &ipfix_msg(0, 1, &[(2, template(256, &[(ie::SRC_V4, 4, 0)]))]),
    );
    let got = decode(&mut c, &ipfix_msg(0, 1, &[(256, vec![10, 0, 0, 9])]));
    assert_eq!(
        got[0].fields.src,
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)))
    );
    decode(
        &mut c,
        &ipfix_msg(
            1,
            1,
            &[(
                2,
                template(256, &[(ie::DST_V4, 4, 0), (ie::PROTOCOL, 1, 0)]),
            )],
        ),
    );
    let got = decode(
        &mut c,
        &ipfix_msg(1, 1, &[(256, vec![10, 0, 0, 9, 17, 0, 0, 0])]),
    );
    assert_eq!(got.len(), 1, "3 bytes of padding are not a record");
    assert_eq!(got[0].fields.src, None);
    assert_eq!(
        got[0].fields.dst,
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)))
    );
    assert_eq!(got[0].fields.l4, Some(17));
}

#[test]
fn random_corruption_never_panics() {
    let mut enc = IpfixEncoder::new(1, 0);
    let mut v9 = NetflowV9Encoder::new(1, 0, 0);
    let flows: Vec<ExportFlow> = (0..20).map(flow).collect();
    let mut seeds = vec![enc.template_message(EXPORT_S), v9.template_packet(EXPORT_S)];
    seeds.extend(enc.data_messages(EXPORT_S, &flows));
    seeds.extend(v9.data_packets(EXPORT_S, &flows));
    let mut c = Collector::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    for i in 0..20_000usize {
        let mut m = seeds[i % seeds.len()].clone();
        for _ in 0..(next() % 6) {
            let p = (next() as usize) % m.len();
            m[p] = next() as u8;
        }
        if next() % 4 == 0 {
            m.truncate((next() as usize) % (m.len() + 1));
        }
        out.clear();
        c.process(exporter(), &m, &mut out);
    }
    assert_eq!(stats(&c).packets, 20_000);
}

#[test]
fn kpi_csv_names_bad_lines_and_keeps_good_ones() {
    let text = "ts,element_id,metric,value\n\
                2024-03-05T13:00:10Z,olt1/pon0,pon_util_pct,40\n\
                1709643650,olt1/pon0,pon_util_pct,60\n\
                not-a-time,olt1/pon0,pon_util_pct,1\n\
                2024-03-05T13:01:00+01:00,olt1/pon0,pon_util_pct,abc\n\
                # comment\n\
                1709643720.5,cell9,prb_util_pct,77.5\n\
                1709643720000,cell9,prb_util_pct,1\n\
                ,cell9,prb_util_pct,1\n";
    let f = parse_kpi(text, KpiFormat::Csv);
    assert_eq!(f.good_lines, 3);
    let lines: Vec<usize> = f.bad.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![4, 5, 8, 9]);
    assert!(f.bad[1].reason.contains("abc"), "{:?}", f.bad[1]);
    assert!(f.bad[2].reason.contains("milliseconds"), "{:?}", f.bad[2]);
    assert_eq!(f.samples.len(), 2);
    // 13:00:10 and 13:00:50 averaged in minute 13:00.
    assert_eq!(f.samples[0].minute_s, 1_709_643_600);
    assert_eq!(f.samples[0].value, 50.0);
    assert_eq!(f.samples[1].minute_s, 1_709_643_720);
    assert_eq!(f.samples[1].element_id, "cell9");
}

#[test]
fn kpi_csv_header_by_name_and_headerless() {
    let f = parse_kpi(
        "value,metric,element_id,ts,unit\n3,cqi,cell1,120,x\n",
        KpiFormat::Csv,
    );
    assert_eq!(f.samples.len(), 1);
    assert_eq!(f.samples[0].value, 3.0);
    assert_eq!(f.samples[0].minute_s, 120);
    let f = parse_kpi("61,cell1,cqi,9\n", KpiFormat::Csv);
    assert_eq!(f.samples[0].minute_s, 60);
    let f = parse_kpi("ts,element,metric,value\n61,cell1,cqi,9\n", KpiFormat::Csv);
    assert_eq!(f.samples.len(), 0);
    assert_eq!(f.bad[0].line, 1);
}

#[test]
fn kpi_jsonl() {
    let text = r#"{"ts":"2024-03-05T13:00:10Z","element_id":"olt1","metric":"pon_util_pct","value":12.5}

{"ts":1709643610,"element_id":"olt1","metric":"optical_rx_dbm","value":"-21.5"}
{"ts":true,"element_id":"olt1","metric":"x","value":1}
not json
{"ts":1709643610,"element_id":"olt1","metric":"x"}
"#;
    let f = parse_kpi(text, KpiFormat::Jsonl);
    assert_eq!(f.good_lines, 2);
    assert_eq!(
        f.bad.iter().map(|b| b.line).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(f.samples[0].metric, "optical_rx_dbm");
    assert_eq!(f.samples[0].value, -21.5);
}
