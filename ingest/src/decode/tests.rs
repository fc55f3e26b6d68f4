//! Decoder tests on frames built byte by byte (etherparse builds the inner IP packets).

use super::*;
use etherparse::PacketBuilder;

const A4: [u8; 4] = [198, 18, 0, 1];
const B4: [u8; 4] = [198, 19, 0, 2];

fn ipv4_tcp(flags_syn: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(A4, B4, 64).tcp(40000, 443, 1000, 65535);
    if flags_syn {
        b = b.syn();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build");
    v
}

fn ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .expect("build");
    v
}

fn ipv6_udp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let a6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let b6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    PacketBuilder::ipv6(a6, b6, 64)
        .udp(5000, 53)
        .write(&mut v, payload)
        .expect("build");
    v
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn udp_carrier(dport: u16, payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &ipv4_udp(50000, dport, payload))
}

/// Decodes a copy of `f` (leaked: test frames are tiny) so results outlive temporaries.
fn decode(lt: LinkType, f: &[u8]) -> Result<Vec<Transport<'static>>, Skip> {
    decode_cut(lt, f, f.len() as u32)
}

/// Decodes `f`, the captured part of a frame `wire_len` bytes long on the wire.
fn decode_cut(lt: LinkType, f: &[u8], wire_len: u32) -> Result<Vec<Transport<'static>>, Skip> {
    let f: &'static [u8] = Box::leak(f.to_vec().into_boxed_slice());
    let mut d = Decoded::default();
    Decoder::default().decode_wire(lt, f, wire_len, &mut d)?;
    Ok(d.layers().to_vec())
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = eth(0x0800, &ipv4_tcp(true, b"hello"));
    let l = decode(LinkType::Ethernet, &f).expect("decodes");
    assert_eq!(l.len(), 1);
    let t = &l[0];
    assert_eq!(
        (t.ip_version, t.proto, t.src_port, t.dst_port),
        (4, 6, 40000, 443)
    );
    assert_eq!(&t.src[..4], &A4);
    assert_eq!(t.ip_len, 20 + 20 + 5);
    assert_eq!(t.payload, b"hello");
    assert_eq!(
        t.tcp.map(|x| x.flags & tcp_flags::SYN),
        Some(tcp_flags::SYN)
    );
}

#[test]
fn vlan_and_qinq_keep_outermost_id() {
    let inner = ipv4_udp(1, 2, b"x");
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
    tagged.extend_from_slice(&inner);
    let f = eth(0x8100, &tagged);
    let mut d = Decoded::default();
    Decoder::default()
        .decode(LinkType::Ethernet, &f, &mut d)
        .expect("vlan");
    assert_eq!(d.vlan, 100);
    let mut qinq = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
    qinq.extend_from_slice(&inner);
    let f = eth(0x88a8, &qinq);
    Decoder::default()
        .decode(LinkType::Ethernet, &f, &mut d)
        .expect("qinq");
    assert_eq!(d.vlan, 10);
    assert_eq!(d.layers()[0].dst_port, 2);
}

#[test]
fn mpls_stack_then_ipv4() {
    let mut p = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
    p.extend_from_slice(&ipv4_udp(7, 8, b"m"));
    let l = decode(LinkType::Ethernet, &eth(0x8847, &p)).expect("mpls");
    assert_eq!(l[0].dst_port, 8);
}

#[test]
fn pppoe_session() {
    let ip = ipv4_udp(7, 8, b"p");
    let mut p = vec![0x11, 0x00, 0x00, 0x01];
    p.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    p.extend_from_slice(&[0x00, 0x21]);
    p.extend_from_slice(&ip);
    let l = decode(LinkType::Ethernet, &eth(0x8864, &p)).expect("pppoe");
    assert_eq!(l[0].src_port, 7);
}

#[test]
fn cooked_raw_and_loopback_link_types() {
    let ip = ipv4_udp(7, 8, b"r");
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&ip);
    assert_eq!(
        decode(LinkType::LinuxSll, &sll).expect("sll")[0].dst_port,
        8
    );
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend_from_slice(&[0u8; 18]);
    sll2.extend_from_slice(&ip);
    assert_eq!(
        decode(LinkType::LinuxSll2, &sll2).expect("sll2")[0].dst_port,
        8
    );
    assert_eq!(decode(LinkType::Raw, &ip).expect("raw")[0].dst_port, 8);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    assert_eq!(decode(LinkType::Null, &null).expect("null")[0].dst_port, 8);
    let mut lo6 = 30u32.to_be_bytes().to_vec();
    lo6.extend_from_slice(&ipv6_udp(b"q"));
    let l = decode(LinkType::Loop, &lo6).expect("loop v6");
    assert_eq!((l[0].ip_version, l[0].dst_port), (6, 53));
    assert_eq!(
        decode(LinkType::Other(147), &ip).unwrap_err(),
        Skip::UnsupportedLinkType
    );
}

#[test]
fn gre_with_key_and_erspan() {
    let inner = ipv4_tcp(false, b"g");
    let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42];
    gre.extend_from_slice(&inner);
    let outer = ip_with_proto(47, &gre);
    let l = decode(LinkType::Raw, &outer).expect("gre");
    assert_eq!(l.len(), 1, "GRE carrier has no flow of its own");
    assert_eq!(
        (l[0].tunnel, l[0].tunnel_id, l[0].dst_port),
        (TunnelKind::Gre, 42, 443)
    );
    // ERSPAN II with sequence number.
    let mut erspan = vec![
        0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0,
    ];
    erspan.extend_from_slice(&eth(0x0800, &inner));
    let l = decode(LinkType::Raw, &ip_with_proto(47, &erspan)).expect("erspan");
    assert_eq!(l[0].dst_port, 443);
}

#[test]
fn ip_in_ip_both_versions() {
    let l = decode(LinkType::Raw, &ip_with_proto(4, &ipv4_udp(1, 2, b"i"))).expect("4in4");
    assert_eq!(
        (l.len(), l[0].tunnel, l[0].dst_port),
        (1, TunnelKind::IpIp, 2)
    );
    let l = decode(LinkType::Raw, &ip_with_proto(41, &ipv6_udp(b"i"))).expect("6in4");
    assert_eq!((l[0].ip_version, l[0].tunnel), (6, TunnelKind::IpIp));
}

#[test]
fn undecodable_gre_keeps_carrier() {
    let gre = vec![0x00, 0x00, 0x12, 0x34, 1, 2, 3];
    let l = decode(LinkType::Raw, &ip_with_proto(47, &gre)).expect("carrier");
    assert_eq!((l.len(), l[0].proto, l[0].src_port), (1, 47, 0));
}

#[test]
fn vxlan_yields_carrier_and_inner() {
    let mut v = vec![0x08, 0, 0, 0, 0, 0, 0x07, 0];
    v.extend_from_slice(&eth(0x0800, &ipv4_tcp(false, b"v")));
    let f = udp_carrier(4789, &v);
    let l = decode(LinkType::Ethernet, &f).expect("vxlan");
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].carrier_of, l[0].dst_port), (TunnelKind::Vxlan, 4789));
    assert_eq!(
        (l[1].tunnel, l[1].tunnel_id, l[1].dst_port),
        (TunnelKind::Vxlan, 7, 443)
    );
}

#[test]
fn gtpu_with_extension_header() {
    let inner = ipv4_tcp(false, b"u");
    // flags: version 1, PT, E; G-PDU; TEID 0x1234; seq/npdu/next=0x85 (PDU session container).
    let mut g = vec![0x34, 0xff];
    g.extend_from_slice(&((inner.len() + 8) as u16).to_be_bytes());
    g.extend_from_slice(&0x1234u32.to_be_bytes());
    g.extend_from_slice(&[0, 0, 0, 0x85, 1, 0x10, 0x09, 0x00]);
    g.extend_from_slice(&inner);
    let l = decode(LinkType::Ethernet, &udp_carrier(2152, &g)).expect("gtp");
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].carrier_of, TunnelKind::Gtpu);
    assert_eq!(
        (l[1].tunnel, l[1].teid, l[1].tunnel_id),
        (TunnelKind::Gtpu, 0x1234, 0)
    );
    // A GTP echo request is the carrier only.
    let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
    let l = decode(LinkType::Ethernet, &udp_carrier(2152, &echo)).expect("echo");
    assert_eq!((l.len(), l[0].carrier_of), (1, TunnelKind::Gtpu));
}

#[test]
fn teredo_with_origin_indication() {
    let mut t = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
    t.extend_from_slice(&ipv6_udp(b"t"));
    let l = decode(LinkType::Ethernet, &udp_carrier(3544, &t)).expect("teredo");
    assert_eq!(l.len(), 2);
    assert_eq!((l[1].tunnel, l[1].ip_version), (TunnelKind::Teredo, 6));
    // A relay on another port: still Teredo when the IPv6 packet fills the datagram and
    // has a Teredo endpoint.
    let mut teredo6 = ipv6_udp(b"t");
    teredo6[8..12].copy_from_slice(&[0x20, 0x01, 0, 0]);
    let mut relay = ipv4_udp(3797, 32900, &teredo6);
    let l = decode(LinkType::Raw, &relay).expect("relay");
    assert_eq!((l.len(), l[0].carrier_of), (2, TunnelKind::Teredo));
    // One byte more and it isn't.
    relay = ipv4_udp(3797, 32900, &[teredo6.clone(), vec![0]].concat());
    assert_eq!(decode(LinkType::Raw, &relay).expect("udp").len(), 1);
    // A documentation-prefix IPv6 packet (no Teredo endpoint) on a random port isn't.
    relay = ipv4_udp(3797, 32900, &ipv6_udp(b"t"));
    assert_eq!(decode(LinkType::Raw, &relay).expect("udp").len(), 1);
    // Not IPv6 inside: plain UDP.
    let l = decode(LinkType::Ethernet, &udp_carrier(3544, b"nope")).expect("udp");
    assert_eq!((l.len(), l[0].carrier_of), (1, TunnelKind::None));
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let base = ipv6_udp(b"abcdefgh");
    // Insert hop-by-hop (8 bytes) before UDP.
    let mut p = base[..40].to_vec();
    p[6] = 0;
    let plen = u16::from_be_bytes([p[4], p[5]]) + 8;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&base[40..]);
    let l = decode(LinkType::Raw, &p).expect("hbh");
    assert_eq!(
        (l[0].proto, l[0].dst_port, l[0].payload),
        (17, 53, &b"abcdefgh"[..])
    );
    // A later fragment: no ports, IP bytes = its payload.
    let mut fr = base[..40].to_vec();
    fr[6] = 44;
    fr[4..6].copy_from_slice(&(8u16 + 16).to_be_bytes());
    fr.extend_from_slice(&[17, 0, 0x00, 0x08, 0, 0, 0, 9]);
    fr.extend_from_slice(&[0u8; 16]);
    let l = decode(LinkType::Raw, &fr).expect("frag");
    assert_eq!(
        l[0].frag,
        Fragment::Later {
            id: 9,
            offset: 8,
            more: false
        }
    );
    assert_eq!((l[0].src_port, l[0].ip_len), (0, 16));
}

#[test]
fn ipv4_fragments() {
    let mut first = ipv4_udp(1, 2, &[0u8; 32]);
    first[6] = 0x20; // MF
    let l = decode(LinkType::Raw, &first).expect("first");
    assert!(matches!(l[0].frag, Fragment::First { .. }));
    assert_eq!(l[0].dst_port, 2);
    let mut later = ipv4_udp(1, 2, &[0u8; 32]);
    later[6] = 0x00;
    later[7] = 0x05; // offset 40 bytes
    let l = decode(LinkType::Raw, &later).expect("later");
    assert!(matches!(
        l[0].frag,
        Fragment::Later {
            offset: 40,
            more: false,
            ..
        }
    ));
    assert_eq!((l[0].src_port, l[0].ip_len), (0, 40));
}

#[test]
fn truncated_and_non_ip_frames_are_skipped() {
    let f = eth(0x0800, &ipv4_tcp(false, b"")[..10]);
    assert_eq!(
        decode(LinkType::Ethernet, &f).unwrap_err(),
        Skip::TruncatedIpv4
    );
    // A TCP header cut short by the snaplen still counts, without ports.
    let f = eth(0x0800, &ipv4_tcp(false, b""));
    let l = decode_cut(LinkType::Ethernet, &f[..14 + 30], f.len() as u32).expect("port-less");
    assert!(l[0].l4_truncated);
    assert_eq!((l[0].proto, l[0].src_port, l[0].dst_port), (6, 0, 0));
    assert_eq!(
        decode(LinkType::Ethernet, &eth(0x0806, &[0u8; 28])).unwrap_err(),
        Skip::NonIp
    );
    assert_eq!(
        decode(LinkType::Ethernet, &[0u8; 5]).unwrap_err(),
        Skip::TruncatedLink
    );
    let mut bad = ipv4_tcp(false, b"");
    bad[0] = 0x42;
    assert_eq!(decode(LinkType::Raw, &bad).unwrap_err(), Skip::BadIpv4);
}

#[test]
fn snaplen_cut_payload_keeps_wire_lengths() {
    let full = eth(0x0800, &ipv4_tcp(false, &[7u8; 1000]));
    let cut = &full[..14 + 40 + 10];
    let l = decode_cut(LinkType::Ethernet, cut, full.len() as u32).expect("cut");
    assert_eq!(
        (l[0].ip_len, l[0].payload_len, l[0].payload.len()),
        (1040, 1000, 10)
    );
    // The same cut without the wire length (captured whole): the header lies.
    assert_eq!(
        decode(LinkType::Ethernet, cut).unwrap_err(),
        Skip::IpLengthPastWire
    );
    // Claiming one byte more than the wire length.
    let mut past = full.clone();
    past[16..18].copy_from_slice(&1041u16.to_be_bytes());
    assert_eq!(
        decode_cut(LinkType::Ethernet, &past[..64], full.len() as u32).unwrap_err(),
        Skip::IpLengthPastWire
    );
}

#[test]
fn ip_lengths_are_checked_against_the_enclosing_packet() {
    // IPv6 payload length past the frame.
    let mut v6 = ipv6_udp(b"abcd");
    v6[5] += 1;
    assert_eq!(
        decode(LinkType::Raw, &v6).unwrap_err(),
        Skip::IpLengthPastWire
    );
    // Inner IPv4 claiming more than its carrier holds: the carrier stays a port-less flow,
    // even when the outer frame was cut (the cut is past the outer packet's end).
    let mut inner = ipv4_udp(1, 2, b"inner");
    inner[3] += 1;
    let outer = ip_with_proto(4, &inner);
    let l = decode_cut(LinkType::Raw, &outer, outer.len() as u32 + 100).expect("carrier");
    assert_eq!((l.len(), l[0].proto, l[0].tunnel), (1, 4, TunnelKind::None));
    // An outer packet cut by the snaplen: its inner packet may be cut as much.
    let inner = ipv4_udp(1, 2, &[9u8; 100]);
    let outer = ip_with_proto(4, &inner);
    let l = decode_cut(LinkType::Raw, &outer[..60], outer.len() as u32).expect("inner");
    assert_eq!((l[0].tunnel, l[0].ip_len), (TunnelKind::IpIp, 128));
}

#[test]
fn icmp_request_and_reply_share_a_key_errors_do_not() {
    let icmp = |ty: u8, code: u8| {
        let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&A4);
        p.extend_from_slice(&B4);
        p.extend_from_slice(&[ty, code, 0, 0, 0, 1, 0, 1]);
        p
    };
    let req = decode(LinkType::Raw, &icmp(8, 0)).expect("req");
    assert_eq!((req[0].src_port, req[0].dst_port), (8, 0));
    let rep = decode(LinkType::Raw, &icmp(0, 0)).expect("rep");
    assert_eq!((rep[0].src_port, rep[0].dst_port), (0, 8));
    let unreach = decode(LinkType::Raw, &icmp(3, 3)).expect("unreach");
    assert_eq!((unreach[0].src_port, unreach[0].dst_port), (3, 3));
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut buf = vec![0u8; 256];
    for round in 0..20_000 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Bias towards plausible headers so deeper layers get exercised.
        buf[12] = 0x08;
        buf[13] = if round % 3 == 0 { 0x00 } else { 0xdd };
        buf[14] = if round % 2 == 0 { 0x45 } else { 0x60 };
        let len = (x as usize) % buf.len();
        for lt in [
            LinkType::Ethernet,
            LinkType::Raw,
            LinkType::LinuxSll,
            LinkType::Ppp,
        ] {
            let mut d = Decoded::default();
            let _ = Decoder::default().decode(lt, &buf[..len], &mut d);
        }
    }
}

/// An IPv4 packet with the given protocol and payload.
fn ip_with_proto(proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&A4);
    p.extend_from_slice(&B4);
    p.extend_from_slice(payload);
    p
}
