//! Tests of the capture reader and directory expansion (writer tests live in `writer.rs`).

use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use super::*;

const T0: u64 = 1_700_000_000_000_000_000;

/// Owned copy of a packet, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pkt {
    ts_ns: u64,
    linktype: u32,
    data: Vec<u8>,
    wire_len: u32,
    interface: u32,
}

fn read_all(mut r: CaptureReader) -> (Vec<Pkt>, CaptureReader) {
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(Pkt {
            ts_ns: p.ts_ns,
            linktype: p.linktype,
            data: p.data.to_vec(),
            wire_len: p.wire_len,
            interface: p.interface,
        });
    }
    (out, r)
}

fn reader(bytes: Vec<u8>) -> CaptureReader {
    CaptureReader::from_reader("mem", Box::new(Cursor::new(bytes))).expect("capture")
}

fn read_bytes(bytes: Vec<u8>) -> (Vec<Pkt>, CaptureReader) {
    read_all(reader(bytes))
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A pcap written by `PcapWriter` with `n` packets of increasing sizes.
fn sample_pcap(res: TsResolution, n: usize) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1, res).unwrap();
    for i in 0..n {
        w.write_packet(T0 + i as u64 * 1_234_567, &payload(60 + i, i as u8))
            .unwrap();
    }
    w.finish().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zstd_compress(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).unwrap()
}

// ---------------------------------------------------------------- legacy pcap

#[test]
fn pcap_micro_and_nano_roundtrip() {
    for (res, nanos) in [(TsResolution::Micro, false), (TsResolution::Nano, true)] {
        let (pkts, r) = read_bytes(sample_pcap(res, 50));
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanos,
                big_endian: false
            }
        );
        assert_eq!(pkts.len(), 50);
        for (i, p) in pkts.iter().enumerate() {
            let ts = T0 + i as u64 * 1_234_567;
            let expected_ts = if nanos { ts } else { ts / 1_000 * 1_000 };
            assert_eq!(p.ts_ns, expected_ts);
            assert_eq!(p.linktype, 1);
            assert_eq!(p.data, payload(60 + i, i as u8));
            assert_eq!(p.wire_len, 60 + i as u32);
            assert_eq!(p.interface, 0);
        }
        assert!(r.damage().is_none());
        assert_eq!(
            r.offset(),
            24 + (0..50).map(|i| 16 + 60 + i as u64).sum::<u64>()
        );
    }
}

/// Hand-built big-endian pcap with the given magic.
fn be_pcap(magic: u32, linktype: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&magic.to_be_bytes());
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&4u16.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&65535u32.to_be_bytes());
    b.extend_from_slice(&linktype.to_be_bytes());
    for &(sec, frac, data, wire) in records {
        b.extend_from_slice(&sec.to_be_bytes());
        b.extend_from_slice(&frac.to_be_bytes());
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend_from_slice(&wire.to_be_bytes());
        b.extend_from_slice(data);
    }
    b
}

#[test]
fn pcap_big_endian_micro_and_nano() {
    let recs: [(u32, u32, &[u8], u32); 2] = [
        (1_600_000_000, 123_456, &[0x45, 0, 0, 20], 20),
        (1_600_000_001, 999_999, &[0x60; 40], 1500),
    ];
    let (pkts, r) = read_bytes(be_pcap(0xa1b2_c3d4, 101, &recs));
    assert_eq!(
        r.format(),
        CaptureFormat::Pcap {
            nanos: false,
            big_endian: true
        }
    );
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].ts_ns, 1_600_000_000_123_456_000);
    assert_eq!(pkts[1].ts_ns, 1_600_000_001_999_999_000);
    assert_eq!((pkts[0].linktype, pkts[0].wire_len), (101, 20));
    assert_eq!(pkts[0].data, vec![0x45, 0, 0, 20]);
    assert_eq!((pkts[1].data.len(), pkts[1].wire_len), (40, 1500));

    let (pkts, r) = read_bytes(be_pcap(0xa1b2_3c4d, 228, &recs));
    assert_eq!(
        r.format(),
        CaptureFormat::Pcap {
            nanos: true,
            big_endian: true
        }
    );
    assert_eq!(pkts[0].ts_ns, 1_600_000_000_000_123_456);
    assert_eq!(pkts[1].ts_ns, 1_600_000_001_000_999_999);
    assert_eq!(pkts[1].linktype, 228);
}

#[test]
fn pcap_linktype_fcs_bits_are_masked() {
    let mut b = sample_pcap(TsResolution::Micro, 1);
    // FCS-present flag and length in the upper bits of the link-type field.
    b[20..24].copy_from_slice(&(0x1400_0000u32 | 113).to_le_bytes());
    let (pkts, _) = read_bytes(b);
    assert_eq!(pkts[0].linktype, 113);
}

#[test]
fn pcap_modified_format_records() {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_cd34u32.to_le_bytes());
    b.extend_from_slice(&[2, 0, 4, 0]);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..3u32 {
        b.extend_from_slice(&(100 + i).to_le_bytes());
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[0; 8]); // ifindex, protocol, pkt_type, pad
        b.extend_from_slice(&[i as u8; 4]);
    }
    let (pkts, r) = read_bytes(b);
    assert!(r.damage().is_none());
    assert_eq!(pkts.len(), 3);
    assert_eq!(pkts[2].ts_ns, 102_000_007_000);
    assert_eq!(pkts[2].data, vec![2; 4]);
}

#[test]
fn pcap_large_frames() {
    let sizes = [262_144usize, 60, 1 << 20, 300_000, 1];
    let mut w = PcapWriter::with_snaplen(Vec::new(), 1, TsResolution::Nano, 0).unwrap();
    for (i, &s) in sizes.iter().enumerate() {
        w.write_packet(T0 + i as u64, &payload(s, i as u8)).unwrap();
    }
    let (pkts, r) = read_bytes(w.finish().unwrap());
    assert!(r.damage().is_none(), "{:?}", r.damage());
    assert_eq!(pkts.len(), sizes.len());
    for (i, (p, &s)) in pkts.iter().zip(&sizes).enumerate() {
        assert_eq!(p.data, payload(s, i as u8));
        assert_eq!(p.wire_len as usize, s);
        assert_eq!(p.ts_ns, T0 + i as u64);
    }
}

/// Delivers at most `chunk` bytes per `read`, to exercise refills at every position.
struct Trickle {
    data: Cursor<Vec<u8>>,
    chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.data.read(&mut buf[..n])
    }
}

#[test]
fn many_packets_through_small_reads() {
    let bytes = sample_pcap(TsResolution::Nano, 5_000);
    let (expected, _) = read_bytes(bytes.clone());
    assert_eq!(expected.len(), 5_000);
    for chunk in [1, 7, 4096, 100_000] {
        let r = CaptureReader::from_reader(
            "trickle",
            Box::new(Trickle {
                data: Cursor::new(bytes.clone()),
                chunk,
            }),
        )
        .unwrap();
        let (pkts, r) = read_all(r);
        assert!(r.damage().is_none());
        assert_eq!(pkts, expected, "chunk {chunk}");
    }
}

// ---------------------------------------------------------------- compression

#[test]
fn gzip_and_zstd_inputs() {
    let plain = sample_pcap(TsResolution::Micro, 200);
    let (expected, _) = read_bytes(plain.clone());
    for (bytes, comp) in [
        (gzip(&plain), Compression::Gzip),
        (zstd_compress(&plain), Compression::Zstd),
    ] {
        let (pkts, r) = read_bytes(bytes);
        assert_eq!(r.compression(), comp);
        assert!(r.damage().is_none());
        assert_eq!(pkts, expected);
    }
    // Concatenated gzip members read as one stream.
    let mid = 24 + 16 + 60;
    let mut two = gzip(&plain[..mid]);
    two.extend(gzip(&plain[mid..]));
    let (pkts, _) = read_bytes(two);
    assert_eq!(pkts, expected);
}

#[test]
fn compressed_pcapng() {
    let plain = two_interface_pcapng();
    let (expected, _) = read_bytes(plain.clone());
    assert_eq!(read_bytes(gzip(&plain)).0, expected);
    assert_eq!(read_bytes(zstd_compress(&plain)).0, expected);
}

#[test]
fn truncated_compressed_stream_reports_damage() {
    let plain = sample_pcap(TsResolution::Micro, 2_000);
    for bytes in [gzip(&plain), zstd_compress(&plain)] {
        let cut = bytes[..bytes.len() / 2].to_vec();
        let (pkts, r) = read_bytes(cut);
        assert!(!pkts.is_empty() && pkts.len() < 2_000);
        let d = r.damage().expect("damage");
        assert!(d.offset >= 24, "{d}");
    }
}

// ---------------------------------------------------------------- pcapng

fn u16b(v: u16, be: bool) -> [u8; 2] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A pcapng block with the given type and body (padded to 4 bytes).
fn block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&u32b(btype, be));
    b.extend_from_slice(&u32b(total, be));
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&u32b(total, be));
    b
}

fn shb(be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u32b(0x1a2b_3c4d, be));
    body.extend_from_slice(&u16b(1, be));
    body.extend_from_slice(&u16b(0, be));
    body.extend_from_slice(&[0xff; 8]);
    block(be, 0x0a0d_0d0a, &body)
}

fn idb(
    be: bool,
    linktype: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: Option<i64>,
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u16b(linktype, be));
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&u32b(snaplen, be));
    // if_name first, to check option walking
    body.extend_from_slice(&u16b(2, be));
    body.extend_from_slice(&u16b(5, be));
    body.extend_from_slice(b"eth0\0\0\0\0");
    if let Some(r) = tsresol {
        body.extend_from_slice(&u16b(9, be));
        body.extend_from_slice(&u16b(1, be));
        body.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        body.extend_from_slice(&u16b(14, be));
        body.extend_from_slice(&u16b(8, be));
        body.extend_from_slice(&if be { o.to_be_bytes() } else { o.to_le_bytes() });
    }
    body.extend_from_slice(&[0; 4]);
    block(be, 1, &body)
}

fn epb(be: bool, if_id: u32, units: u64, data: &[u8], wire_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u32b(if_id, be));
    body.extend_from_slice(&u32b((units >> 32) as u32, be));
    body.extend_from_slice(&u32b(units as u32, be));
    body.extend_from_slice(&u32b(data.len() as u32, be));
    body.extend_from_slice(&u32b(wire_len, be));
    body.extend_from_slice(data);
    body.resize(body.len().div_ceil(4) * 4, 0);
    // epb_flags option + end of options
    body.extend_from_slice(&u16b(2, be));
    body.extend_from_slice(&u16b(4, be));
    body.extend_from_slice(&u32b(1, be));
    body.extend_from_slice(&[0; 4]);
    block(be, 6, &body)
}

fn spb(be: bool, wire_len: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u32b(wire_len, be));
    body.extend_from_slice(data);
    block(be, 3, &body)
}

fn obsolete_pb(be: bool, if_id: u16, units: u64, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u16b(if_id, be));
    body.extend_from_slice(&u16b(0, be));
    body.extend_from_slice(&u32b((units >> 32) as u32, be));
    body.extend_from_slice(&u32b(units as u32, be));
    body.extend_from_slice(&u32b(data.len() as u32, be));
    body.extend_from_slice(&u32b(data.len() as u32, be));
    body.extend_from_slice(data);
    block(be, 2, &body)
}

/// Written by `PcapNgWriter`: Ethernet at µs resolution and raw IP at ns resolution.
fn two_interface_pcapng() -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let eth = w.add_interface(1, false).unwrap();
    let raw = w.add_interface(101, true).unwrap();
    for i in 0..20u64 {
        w.write_packet(eth, T0 + i * 1_000_777, &payload(64 + i as usize, 1))
            .unwrap();
        w.write_packet_with_wire_len(
            raw,
            T0 + i * 999_999 + 1,
            &payload(20 + i as usize, 2),
            1400,
        )
        .unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn pcapng_two_interfaces_tsresol_6_and_9() {
    let (pkts, r) = read_bytes(two_interface_pcapng());
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    assert!(r.damage().is_none());
    assert!(r.skipped().is_empty());
    assert_eq!(pkts.len(), 40);
    for i in 0..20usize {
        let (a, b) = (&pkts[2 * i], &pkts[2 * i + 1]);
        let ts = T0 + i as u64 * 1_000_777;
        assert_eq!((a.interface, a.linktype), (0, 1));
        assert_eq!(a.ts_ns, ts / 1_000 * 1_000);
        assert_eq!(a.data, payload(64 + i, 1));
        assert_eq!(a.wire_len, 64 + i as u32);
        assert_eq!((b.interface, b.linktype), (1, 101));
        assert_eq!(b.ts_ns, T0 + i as u64 * 999_999 + 1);
        assert_eq!((b.data.len(), b.wire_len), (20 + i, 1400));
    }
}

#[test]
fn pcapng_tsoffset_pow2_resolution_spb_and_pb() {
    let mut f = shb(false);
    // if0: default µs resolution, offset +1000 s
    f.extend(idb(false, 113, 0, None, Some(1_000)));
    // if1: 2^-10 s units
    f.extend(idb(false, 276, 0, Some(0x80 | 10), None));
    // if2: 10^-3 s units, negative offset
    f.extend(idb(false, 0, 0, Some(3), Some(-5)));
    f.extend(block(false, 4, &[0; 8])); // NRB: ignored
    f.extend(epb(false, 0, 1_500_000, b"abc", 3));
    f.extend(spb(false, 5, b"hello"));
    f.extend(epb(false, 1, 3 * 1024 + 512, b"x", 1));
    f.extend(obsolete_pb(false, 2, 12_345, b"pb"));
    f.extend(block(false, 5, &[0; 16])); // ISB: ignored
    f.extend(block(false, 0x4000_0bad, &[0; 4])); // unknown/custom: ignored
    let (pkts, r) = read_bytes(f);
    assert!(r.damage().is_none(), "{:?}", r.damage());
    assert!(r.skipped().is_empty(), "{:?}", r.skipped());
    let summary: Vec<_> = pkts
        .iter()
        .map(|p| (p.ts_ns, p.linktype, p.interface, p.data.clone(), p.wire_len))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1_001_500_000_000, 113, 0, b"abc".to_vec(), 3),
            // SPB: interface 0, last seen timestamp
            (1_001_500_000_000, 113, 0, b"hello".to_vec(), 5),
            (3_500_000_000, 276, 1, b"x".to_vec(), 1),
            (7_345_000_000, 0, 2, b"pb".to_vec(), 2),
        ]
    );
}

#[test]
fn pcapng_spb_respects_snaplen_and_wire_len() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 4, Some(9), None));
    f.extend(epb(false, 0, 42, b"ab", 2));
    f.extend(spb(false, 10, b"0123456789"));
    f.extend(spb(false, 3, b"xyz"));
    let (pkts, _) = read_bytes(f);
    assert_eq!(pkts[1].data, b"0123".to_vec());
    assert_eq!((pkts[1].wire_len, pkts[1].ts_ns), (10, 42));
    assert_eq!(pkts[2].data, b"xyz".to_vec());
}

#[test]
fn pcapng_sections_reset_interfaces_and_byte_order() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(idb(false, 113, 0, None, None));
    f.extend(epb(false, 1, 1_000_000, b"s1", 2));
    // Second section, big-endian, one interface only.
    f.extend(shb(true));
    f.extend(idb(true, 229, 0, Some(9), Some(7)));
    f.extend(epb(true, 0, 5, b"s2", 2));
    f.extend(epb(true, 1, 6, b"gone", 4)); // interface 1 belonged to section 1
    f.extend(spb(true, 2, b"sp"));
    let (pkts, r) = read_bytes(f);
    assert!(r.damage().is_none(), "{:?}", r.damage());
    assert_eq!(pkts.len(), 3);
    assert_eq!(
        (pkts[0].ts_ns, pkts[0].linktype, pkts[0].interface),
        (1_000_000_000, 113, 1)
    );
    assert_eq!(
        (pkts[1].ts_ns, pkts[1].linktype, pkts[1].interface),
        (7_000_000_005, 229, 0)
    );
    assert_eq!(
        (pkts[2].ts_ns, pkts[2].data.as_slice()),
        (7_000_000_005, &b"sp"[..])
    );
    assert_eq!(
        r.skipped(),
        &[("packet block references an undeclared interface", 1)]
    );
}

#[test]
fn pcapng_recoverable_oddities_are_counted() {
    let mut f = shb(false);
    f.extend(spb(false, 1, b"z")); // before any IDB
    f.extend(idb(false, 1, 0, Some(42), None)); // 10^-42: unusable
    f.extend(epb(false, 0, 1, b"a", 1));
    f.extend(epb(false, 3, 1, b"b", 1));
    f.extend(epb(false, 3, 1, b"c", 1));
    let mut short = block(false, 6, &[0; 8]); // EPB too short
    f.append(&mut short);
    // EPB whose caplen exceeds its block.
    let mut bad = epb(false, 0, 1, b"abcd", 4);
    bad[20..24].copy_from_slice(&1000u32.to_le_bytes());
    f.extend(bad);
    f.extend(idb(false, 101, 0, None, None));
    f.extend(epb(false, 1, 2, b"ok", 2));
    let (pkts, r) = read_bytes(f);
    assert!(r.damage().is_none(), "{:?}", r.damage());
    assert_eq!(pkts.len(), 1);
    assert_eq!(
        (pkts[0].data.as_slice(), pkts[0].ts_ns),
        (&b"ok"[..], 2_000)
    );
    let skipped: u64 = r.skipped().iter().map(|(_, n)| n).sum();
    assert_eq!(skipped, 7, "{:?}", r.skipped());
    assert!(r
        .skipped()
        .contains(&("packet block references an undeclared interface", 2)));
}

#[test]
fn pcapng_large_frames() {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let i = w.add_interface(1, true).unwrap();
    let sizes = [262_144usize, 3, 2 << 20, 262_143];
    for (k, &s) in sizes.iter().enumerate() {
        w.write_packet(i, k as u64, &payload(s, k as u8)).unwrap();
    }
    let (pkts, r) = read_bytes(w.finish().unwrap());
    assert!(r.damage().is_none(), "{:?}", r.damage());
    for (k, (p, &s)) in pkts.iter().zip(&sizes).enumerate() {
        assert_eq!(p.data, payload(s, k as u8));
    }
    assert_eq!(pkts.len(), sizes.len());
}

#[test]
fn pcapng_block_over_limit_is_damage() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let at = f.len() as u64;
    f.extend(6u32.to_le_bytes());
    f.extend(((32u32 << 20) + 32).to_le_bytes());
    f.extend([0; 64]);
    let (pkts, r) = read_bytes(f);
    assert!(pkts.is_empty());
    let d = r.damage().unwrap();
    assert_eq!(d.offset, at);
    assert!(d.reason.contains("invalid block length"), "{d}");
}

// ---------------------------------------------------------------- damage

#[test]
fn truncated_pcap_mid_record() {
    let full = sample_pcap(TsResolution::Nano, 10);
    // Record k starts at 24 + sum_{i<k}(16 + 60 + i).
    let start = |k: usize| 24 + (0..k).map(|i| 16 + 60 + i).sum::<usize>();
    // Cut inside the data of record 7.
    let (pkts, r) = read_bytes(full[..start(7) + 16 + 10].to_vec());
    assert_eq!(pkts.len(), 7);
    let d = r.damage().unwrap();
    assert_eq!(d.offset, start(7) as u64);
    assert!(d.reason.starts_with("truncated record"), "{d}");
    // Cut inside the header of record 3.
    let (pkts, r) = read_bytes(full[..start(3) + 5].to_vec());
    assert_eq!(pkts.len(), 3);
    assert_eq!(r.damage().unwrap().offset, start(3) as u64);
    assert!(r.damage().unwrap().reason.starts_with("truncated record"));
    // Cut exactly at a record boundary: clean end.
    let (pkts, r) = read_bytes(full[..start(4)].to_vec());
    assert_eq!(pkts.len(), 4);
    assert!(r.damage().is_none());
}

#[test]
fn truncated_pcapng_mid_block() {
    let full = two_interface_pcapng();
    let (all, _) = read_bytes(full.clone());
    // Every prefix gives a prefix of the packets; damage iff not cut at a block boundary.
    let mut boundaries = vec![0usize];
    let mut pos = 0;
    while pos < full.len() {
        let len = u32::from_le_bytes(full[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += len;
        boundaries.push(pos);
    }
    for cut in 4..full.len() {
        let (pkts, r) = read_bytes(full[..cut].to_vec());
        assert_eq!(pkts[..], all[..pkts.len()]);
        let last_boundary = *boundaries.iter().filter(|&&b| b <= cut).max().unwrap();
        match r.damage() {
            None => assert_eq!(cut, last_boundary),
            Some(d) => {
                assert_ne!(cut, last_boundary);
                assert_eq!(d.offset, last_boundary as u64);
                assert!(d.reason.starts_with("truncated record"), "{d}");
            }
        }
    }
}

#[test]
fn garbage_in_the_middle_stops_with_damage() {
    let good = sample_pcap(TsResolution::Micro, 5);
    let mut f = good.clone();
    f.extend_from_slice(b"this is not a pcap record at all, just garbage text.......");
    f.extend_from_slice(&good[24..]);
    let (pkts, r) = read_bytes(f);
    assert_eq!(pkts.len(), 5);
    let d = r.damage().unwrap();
    assert_eq!(d.offset, good.len() as u64);

    let good = two_interface_pcapng();
    let mut f = good.clone();
    f.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef].repeat(16));
    f.extend_from_slice(&good[good.len() - 64..]);
    let (pkts, r) = read_bytes(f);
    assert_eq!(pkts.len(), 40);
    assert_eq!(r.damage().unwrap().offset, good.len() as u64);

    // Length fields that agree with each other but the trailer does not.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let at = f.len() as u64;
    let mut b = epb(false, 0, 1, b"abcd", 4);
    let n = b.len();
    b[n - 4..].copy_from_slice(&999u32.to_le_bytes());
    f.extend(b);
    let (_, r) = read_bytes(f);
    let d = r.damage().unwrap();
    assert_eq!(d.offset, at);
    assert!(d.reason.contains("mismatch"), "{d}");
}

#[test]
fn empty_and_header_only_inputs() {
    for bytes in [
        Vec::new(),
        sample_pcap(TsResolution::Nano, 0),
        shb(false),
        [shb(true), idb(true, 1, 0, None, None)].concat(),
        gzip(&[]),
    ] {
        let (pkts, r) = read_bytes(bytes);
        assert!(pkts.is_empty());
        assert!(r.damage().is_none());
    }
    // A pcap header cut short is recognisably a capture, but damaged.
    let (pkts, r) = read_bytes(sample_pcap(TsResolution::Nano, 0)[..10].to_vec());
    assert!(pkts.is_empty());
    assert_eq!(r.damage().unwrap().offset, 0);
}

#[test]
fn not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello, this is text\n").unwrap();
    let err = CaptureReader::open(&path).unwrap_err();
    assert!(matches!(err, SourceError::NotACapture { .. }));
    let msg = err.to_string();
    assert!(msg.contains("notes.txt"), "{msg}");
    assert!(msg.contains("pcap") && msg.contains("68 65 6c 6c"), "{msg}");

    let err =
        CaptureReader::from_reader("g", Box::new(Cursor::new(gzip(b"plain text")))).unwrap_err();
    assert!(
        err.to_string().contains("after gzip decompression"),
        "{err}"
    );

    let err =
        CaptureReader::from_reader("short", Box::new(Cursor::new(vec![0xd4, 0xc3]))).unwrap_err();
    assert!(matches!(err, SourceError::NotACapture { .. }));

    let err = CaptureReader::open(&dir.path().join("missing.pcap")).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }));
    assert!(err.to_string().contains("missing.pcap"));
}

/// Deterministic xorshift for the fuzz-style test.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn mutated_inputs_never_panic() {
    let mut ng = shb(false);
    ng.extend(idb(false, 1, 0, Some(0x85), Some(3)));
    ng.extend(spb(false, 5, b"hello"));
    ng.extend(obsolete_pb(false, 0, 7, b"pb"));
    ng.extend(two_interface_pcapng());
    let seeds = [sample_pcap(TsResolution::Micro, 20), ng];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for seed in &seeds {
        for _ in 0..1_500 {
            let mut b = seed.clone();
            let flips = 1 + xorshift(&mut rng) % 8;
            for _ in 0..flips {
                let at = (xorshift(&mut rng) % b.len() as u64) as usize;
                b[at] = xorshift(&mut rng) as u8;
            }
            let cut = (xorshift(&mut rng) % (b.len() as u64 + 1)) as usize;
            b.truncate(cut.max(b.len() / 2));
            if let Ok(r) = CaptureReader::from_reader("fuzz", Box::new(Cursor::new(b))) {
                let (pkts, r) = read_all(r);
                assert!(pkts.len() <= 100);
                let _ = r.damage();
            }
        }
    }
}

// ---------------------------------------------------------------- directories

#[test]
fn expand_inputs_orders_by_first_packet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write_pcap = |name: &str, first_ts: u64| {
        let mut w = PcapWriter::new(Vec::new(), 1, TsResolution::Nano).unwrap();
        w.write_packet(first_ts, &[0; 14]).unwrap();
        w.write_packet(first_ts + 1, &[0; 14]).unwrap();
        std::fs::write(d.join(name), w.finish().unwrap()).unwrap();
    };
    write_pcap("c.pcap", 300_000);
    write_pcap("a.pcap", 200_000);
    std::fs::write(
        d.join("b.pcap.gz"),
        gzip(&std::fs::read(d.join("a.pcap")).unwrap()),
    )
    .unwrap();
    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    let i = ng.add_interface(1, true).unwrap();
    ng.write_packet(i, 100_000, &[0; 14]).unwrap();
    std::fs::write(d.join("z.pcapng.zst"), zstd_compress(&ng.finish().unwrap())).unwrap();
    std::fs::write(d.join("empty.pcap"), b"").unwrap();
    std::fs::write(
        d.join("damaged.pcap"),
        &sample_pcap(TsResolution::Nano, 1)[..30],
    )
    .unwrap();
    std::fs::write(d.join("README.txt"), "not a capture").unwrap();
    std::fs::write(d.join(".hidden.pcap"), sample_pcap(TsResolution::Nano, 1)).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    write_pcap("sub/inner.pcap", 1);

    let explicit = tempfile::tempdir().unwrap();
    let lone = explicit.path().join("lone.pcap");
    let mut w = PcapWriter::new(Vec::new(), 1, TsResolution::Micro).unwrap();
    w.write_packet(250_000, &[0; 14]).unwrap();
    std::fs::write(&lone, w.finish().unwrap()).unwrap();

    let got = expand_inputs(&[d.to_path_buf(), lone.clone()]).unwrap();
    let expected: Vec<PathBuf> = vec![
        d.join("z.pcapng.zst"),
        d.join("a.pcap"),
        d.join("b.pcap.gz"),
        lone.clone(),
        d.join("c.pcap"),
        d.join("damaged.pcap"),
        d.join("empty.pcap"),
    ];
    assert_eq!(got, expected);

    // Explicit non-capture files are kept (they fail later, with a clear error), last.
    let txt = d.join("README.txt");
    let got = expand_inputs(&[txt.clone(), lone.clone()]).unwrap();
    assert_eq!(got, vec![lone, txt]);

    let err = expand_inputs(&[d.join("nope")]).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }));
}
