//! Flow-level tests of the DPI engine with hand-built packets, and a randomized
//! robustness test.

use super::dns::tests::{build_query, build_response};
use super::hello::tests::{build_client_hello, build_server_hello};
use super::rtp::tests::rtp_packet;
use super::*;

struct Flow {
    st: DpiState,
    l4: u8,
    cport: u16,
    sport: u16,
    seq: [u32; 2],
    ts: u64,
}

impl Flow {
    fn new(l4: u8, cport: u16, sport: u16) -> Self {
        Self {
            st: DpiState::new(),
            l4,
            cport,
            sport,
            seq: [1000, 5000],
            ts: 0,
        }
    }
    fn send(&mut self, dir: Direction, payload: &[u8]) {
        let d = dir.index();
        self.ts += 1_000_000;
        let inp = DpiInput {
            l4: self.l4,
            dir,
            client_port: self.cport,
            server_port: self.sport,
            payload,
            ts_ns: self.ts,
            tcp_seq: (self.l4 == 6).then_some(self.seq[d]),
            tcp_syn: false,
        };
        self.seq[d] = self.seq[d].wrapping_add(payload.len() as u32);
        if self.st.wants_more() {
            self.st.on_packet(&inp);
        }
    }
    fn c(&mut self, b: &[u8]) {
        self.send(Direction::ClientToServer, b)
    }
    fn s(&mut self, b: &[u8]) {
        self.send(Direction::ServerToClient, b)
    }
    fn r(&self) -> &DpiResult {
        self.st.result()
    }
}

fn record(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ty, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

#[test]
fn tls_client_hello_split_over_segments() {
    let ch = build_client_hello(
        "www.ntop.org",
        &["h2", "http/1.1"],
        &[0x0304, 0x0303],
        false,
    );
    let rec = record(22, &ch);
    let mut f = Flow::new(6, 40000, 8443);
    f.c(&rec[..3]);
    f.c(&rec[3..50]);
    assert!(f.r().sni.is_none());
    f.c(&rec[50..]);
    assert_eq!(f.r().l7_proto, Some("TLS"));
    assert!(!f.r().guessed_by_port);
    assert_eq!(f.r().sni.as_deref(), Some("www.ntop.org"));
    assert_eq!(f.r().alpn.as_deref(), Some("h2,http/1.1"));
    assert_eq!(f.r().tls_version, Some(0x0304));
    assert_eq!(f.r().tls_client_hello_ts, Some(1_000_000));
    assert!(f.st.wants_more());
    // TLS 1.3 server flight: ServerHello, CCS, encrypted handshake as appdata
    let mut flight = record(22, &build_server_hello(true));
    flight.extend_from_slice(&record(20, &[1]));
    flight.extend_from_slice(&record(23, &[0u8; 300]));
    f.s(&flight);
    assert_eq!(f.r().tls_version, Some(0x0304));
    assert!(
        f.r().tls_server_data_ts.is_none(),
        "1.3: wait for the client Finished"
    );
    let mut fin = record(20, &[1]);
    fin.extend_from_slice(&record(23, &[0u8; 53]));
    f.c(&fin);
    f.s(&record(23, &[0u8; 200]));
    assert_eq!(f.r().tls_server_data_ts, Some(f.ts));
    assert!(!f.st.wants_more());
}

#[test]
fn tls12_server_hello_and_retransmission() {
    let ch = build_client_hello("a.example", &[], &[], false);
    let rec = record(22, &ch);
    let mut f = Flow::new(6, 40000, 443);
    f.c(&rec);
    // retransmission of the same segment must not desynchronise
    f.seq[0] = f.seq[0].wrapping_sub(rec.len() as u32);
    f.c(&rec);
    assert_eq!(f.r().sni.as_deref(), Some("a.example"));
    assert_eq!(f.r().tls_version, Some(0x0303));
    let sh = record(22, &build_server_hello(false));
    f.s(&sh);
    f.s(&record(22, &[11, 0, 0, 3, 0, 0, 0])); // certificate
    assert!(f.r().tls_server_data_ts.is_none());
    f.s(&record(23, &[1u8; 100]));
    assert!(f.r().tls_server_data_ts.is_some());
    assert!(!f.st.wants_more());
}

#[test]
fn tls_ech_outer_sni() {
    let ch = build_client_hello("public.example.com", &["h2"], &[0x0304], true);
    let mut f = Flow::new(6, 40000, 443);
    f.c(&record(22, &ch));
    assert_eq!(f.r().sni.as_deref(), Some("public.example.com"));
    assert!(f.r().tls_ech);
}

#[test]
fn tls_mid_flow_records() {
    let mut f = Flow::new(6, 443, 50000);
    // starts in the middle of a record: garbage first
    f.c(&[0x42; 700]);
    assert_eq!(f.r().l7_proto, Some("TLS"));
    assert!(f.r().guessed_by_port);
    let mut seg = record(23, &[7u8; 100]);
    seg.extend_from_slice(&record(23, &[7u8; 50]));
    f.s(&seg);
    assert_eq!(f.r().l7_proto, Some("TLS"));
    assert!(!f.r().guessed_by_port);
    assert!(!f.st.wants_more());
}

#[test]
fn tls_on_port_80() {
    let ch = build_client_hello("x.example", &[], &[], false);
    let mut f = Flow::new(6, 40000, 80);
    f.c(&record(22, &ch));
    assert_eq!(f.r().l7_proto, Some("TLS"));
    assert!(!f.r().guessed_by_port);
}

#[test]
fn http_request_response() {
    let mut f = Flow::new(6, 40000, 80);
    f.c(b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n");
    assert_eq!(f.r().l7_proto, Some("HTTP"));
    f.c(b"User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n");
    assert_eq!(f.r().host.as_deref(), Some("www.example.com"));
    assert_eq!(f.r().user_agent.as_deref(), Some("curl/8.0"));
    assert_eq!(f.r().http_method.as_deref(), Some("GET"));
    assert_eq!(f.r().http_request_ts, Some(1_000_000));
    f.s(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(f.r().http_status, Some(404));
    assert_eq!(f.r().http_response_ts, Some(3_000_000));
    assert!(!f.st.wants_more());
}

#[test]
fn http_connect_and_proxy() {
    let mut f = Flow::new(6, 40000, 8080);
    f.c(b"CONNECT apache.org:443 HTTP/1.1\r\nHost: apache.org:443\r\n\r\n");
    assert_eq!(f.r().l7_proto, Some("HTTP_Connect"));
    let mut f = Flow::new(6, 40000, 8080);
    f.c(b"GET http://http.com/ HTTP/1.1\r\nHost: http.com\r\n\r\n");
    assert_eq!(f.r().l7_proto, Some("HTTP_Proxy"));
    assert_eq!(f.r().host.as_deref(), Some("http.com"));
}

#[test]
fn dns_udp_query_response() {
    let q = build_query(0x1234, "www.example.com", 28);
    let mut f = Flow::new(17, 40000, 53);
    f.c(&q);
    assert_eq!(f.r().l7_proto, Some("DNS"));
    assert_eq!(f.r().dns_qname.as_deref(), Some("www.example.com"));
    assert_eq!(f.r().dns_qtype, Some(28));
    assert!(f.st.wants_more());
    f.s(&build_response(&q, 3));
    assert_eq!(f.r().dns_rcode, Some(3));
    assert_eq!(f.r().dns_query_ts, Some(1_000_000));
    assert_eq!(f.r().dns_response_ts, Some(2_000_000));
    assert!(!f.st.wants_more());
}

#[test]
fn dns_tcp_and_response_first() {
    let q = build_query(1, "weberlab.de", 255);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let mut f = Flow::new(6, 40000, 53);
    f.c(&framed);
    assert_eq!(f.r().l7_proto, Some("DNS"));
    assert_eq!(f.r().dns_qname.as_deref(), Some("weberlab.de"));
    // a flow first seen from the server side
    let mut f = Flow::new(17, 53, 40000);
    f.c(&build_response(&q, 0));
    assert_eq!(f.r().l7_proto, Some("DNS"));
    assert_eq!(f.r().dns_qname.as_deref(), Some("weberlab.de"));
    assert_eq!(f.r().dns_rcode, Some(0));
}

#[test]
fn mdns_llmnr_netbios() {
    let q = build_query(0, "_raop._tcp.local", 12);
    let mut f = Flow::new(17, 5353, 5353);
    f.c(&q);
    assert_eq!(f.r().l7_proto, Some("MDNS"));
    assert!(!f.st.wants_more());
    let mut f = Flow::new(17, 50000, 5355);
    f.c(&build_query(9, "wpad", 1));
    assert_eq!(f.r().l7_proto, Some("LLMNR"));
    let mut f = Flow::new(17, 137, 137);
    f.c(&build_query(9, "FHEPFCELEHFCEPFFFACACACACACACAAA", 32));
    assert_eq!(f.r().l7_proto, Some("NetBIOS"));
    assert_eq!(f.r().dns_qname.as_deref(), Some("workgroup"));
}

#[test]
fn rtp_stream() {
    let mut f = Flow::new(17, 30000, 40392);
    for i in 0..3u16 {
        f.c(&rtp_packet(100 + i, u32::from(i) * 160, 0xdeadbeef, 8));
    }
    assert_eq!(f.r().l7_proto, Some("RTP"));
    assert_eq!(f.r().rtp_ssrc, Some(0xdeadbeef));
    assert_eq!(f.r().rtp_payload_type, Some(8));
}

#[test]
fn stun_sip_and_others() {
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[5u8; 12]);
    let mut f = Flow::new(17, 50000, 3478);
    f.c(&stun);
    assert_eq!(f.r().l7_proto, Some("STUN"));

    let mut f = Flow::new(17, 5060, 5060);
    f.c(b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n");
    assert_eq!(f.r().l7_proto, Some("SIP"));

    let mut f = Flow::new(17, 50000, 1900);
    f.c(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n");
    assert_eq!(f.r().l7_proto, Some("SSDP"));
    assert_eq!(f.r().host.as_deref(), Some("239.255.255.250:1900"));

    let mut ntp = vec![0x23];
    ntp.resize(48, 0);
    let mut f = Flow::new(17, 50000, 123);
    f.c(&ntp);
    assert_eq!(f.r().l7_proto, Some("NTP"));

    let mut dhcp = vec![1u8, 1, 6, 0];
    dhcp.resize(236, 0);
    dhcp.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, 1, 12, 5]);
    dhcp.extend_from_slice(b"lucas");
    dhcp.push(255);
    let mut f = Flow::new(17, 68, 67);
    f.c(&dhcp);
    assert_eq!(f.r().l7_proto, Some("DHCP"));
    assert_eq!(f.r().host.as_deref(), Some("lucas"));

    let mut f = Flow::new(6, 50000, 2222);
    f.s(b"SSH-2.0-OpenSSH_9.6\r\n");
    assert_eq!(f.r().l7_proto, Some("SSH"));

    let mut f = Flow::new(6, 50000, 21);
    f.s(b"220 (vsFTPd 3.0.3)\r\n");
    assert_eq!(f.r().l7_proto, Some("FTP_CONTROL"));

    let mut f = Flow::new(6, 50000, 2525);
    f.s(b"220 mail.example.com ESMTP Postfix\r\n");
    assert_eq!(f.r().l7_proto, Some("SMTP"));

    let mut f = Flow::new(6, 50000, 110);
    f.s(b"+OK POP3 server ready\r\n");
    assert_eq!(f.r().l7_proto, Some("POP3"));

    let mut f = Flow::new(6, 50000, 143);
    f.s(b"* OK IMAP4rev1 ready\r\n");
    assert_eq!(f.r().l7_proto, Some("IMAP"));

    let mut f = Flow::new(6, 1550, 23);
    f.s(&[0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20]);
    assert_eq!(f.r().l7_proto, Some("Telnet"));

    let mut f = Flow::new(6, 38856, 8010);
    f.c(&[0x12, 0x34, 0x00, 0x02, 0x0a, 0x00]);
    assert_eq!(f.r().l7_proto, Some("AJP"));

    let mut f = Flow::new(6, 50000, 6881);
    f.c(b"\x13BitTorrent protocol\0\0\0\0\0\0\0\0");
    assert_eq!(f.r().l7_proto, Some("BitTorrent"));

    let mut f = Flow::new(17, 57621, 57621);
    f.c(b"SpotUdp0\x01\x02\x03\x04");
    assert_eq!(f.r().l7_proto, Some("Spotify"));
}

#[test]
fn port_guess_when_unknown() {
    let mut f = Flow::new(6, 40000, 443);
    for _ in 0..30 {
        f.c(&[0x55; 100]);
        f.s(&[0x66; 100]);
    }
    assert!(!f.st.wants_more());
    assert_eq!(f.r().l7_proto, Some("TLS"));
    assert!(f.r().guessed_by_port);
    let mut f = Flow::new(17, 40000, 40001);
    for _ in 0..30 {
        f.c(&[0x55; 100]);
    }
    assert!(!f.st.wants_more());
    assert_eq!(f.r().l7_proto, None);
}

/// Deterministic xorshift generator (no extra dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_payloads_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ports = [
        0u16, 21, 22, 23, 25, 53, 67, 68, 80, 110, 123, 137, 138, 143, 443, 546, 993, 1900, 3478,
        3544, 5060, 5353, 5355, 8009, 8080, 17500, 27036, 57621, 40000,
    ];
    let seeds: Vec<Vec<u8>> = vec![
        record(
            22,
            &build_client_hello("seed.example", &["h2"], &[0x0304], true),
        ),
        build_query(1, "seed.example", 1),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        rtp_packet(1, 2, 3, 0),
        quic::tests::build_initial(
            1,
            &[1, 2, 3, 4],
            0,
            &[(0, &build_client_hello("q.example", &[], &[0x0304], false))],
        ),
    ];
    for round in 0..3000 {
        let l4 = if rng.next().is_multiple_of(2) { 6 } else { 17 };
        let cport = ports[(rng.next() % ports.len() as u64) as usize];
        let sport = ports[(rng.next() % ports.len() as u64) as usize];
        let mut f = Flow::new(l4, cport, sport);
        for _ in 0..(rng.next() % 12 + 1) {
            let mut b: Vec<u8> = if round % 3 == 0 {
                // mutate a valid seed
                let mut s = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
                let cut = (rng.next() as usize) % (s.len() + 1);
                s.truncate(cut.max(1));
                for _ in 0..(rng.next() % 8) {
                    let i = (rng.next() as usize) % s.len();
                    s[i] = rng.next() as u8;
                }
                s
            } else {
                let len = (rng.next() % 1400) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            };
            if rng.next().is_multiple_of(7) {
                b.truncate(3);
            }
            if rng.next().is_multiple_of(5) {
                // random sequence jumps (holes, overlaps)
                let d = (rng.next() % 2) as usize;
                f.seq[d] = f.seq[d]
                    .wrapping_add(rng.next() as u32 % 3000)
                    .wrapping_sub(1500);
            }
            if rng.next().is_multiple_of(2) {
                f.c(&b);
            } else {
                f.s(&b);
            }
        }
        let _ = f.r();
    }
}

#[test]
fn state_stays_small() {
    // lives per flow: keep the inline part bounded (buffers are boxed and freed at the end)
    assert!(
        std::mem::size_of::<DpiState>() <= 512,
        "{}",
        std::mem::size_of::<DpiState>()
    );
}

#[test]
fn port_guess_without_payload() {
    let mut st = DpiState::new();
    st.on_packet(&DpiInput {
        l4: 17,
        dir: Direction::ClientToServer,
        client_port: 40000,
        server_port: 443,
        payload: &[],
        ts_ns: 0,
        tcp_seq: None,
        tcp_syn: false,
    });
    assert_eq!(st.result().l7_proto, Some("QUIC"));
    assert!(st.result().guessed_by_port);
}

/// Flow ends of a capture of the shared conformance corpus (`None` when the corpus is
/// absent: the test then prints why and passes).
fn corpus_flows(rel: &str) -> Option<Vec<crate::flow::FlowEnd>> {
    use crate::flow::{FlowConfig, FlowRecord, FlowTable};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(rel);
    if !path.exists() {
        eprintln!("skipped: {} not present", path.display());
        return None;
    }
    let mut table = FlowTable::new(FlowConfig::default());
    let mut records: Vec<FlowRecord> = Vec::new();
    crate::capture::read_files(&[path], &mut table, &mut records, |_| {}).expect("readable");
    table.finish(&mut records);
    Some(
        records
            .into_iter()
            .filter_map(|r| match r {
                FlowRecord::End(e) => Some(*e),
                FlowRecord::Slice(_) => None,
            })
            .collect(),
    )
}

fn find_flow(
    ends: &[crate::flow::FlowEnd],
    server_port: u16,
    client_port: u16,
) -> &crate::flow::FlowEnd {
    ends.iter()
        .find(|e| e.meta.server_port == server_port && e.meta.client_port == client_port)
        .unwrap_or_else(|| panic!("no flow {client_port} -> {server_port}"))
}

#[test]
fn dns_answer_names_a_later_tls_flow_without_sni() {
    // KakaoTalk_chat.pcap: DNS answers map 210.103.240.15 to *.kakao.com; the TLS flow from
    // port 37821 to it sends a ClientHello without SNI (nDPI: TLS.KakaoTalk).
    let Some(ends) = corpus_flows("ndpi/KakaoTalk_chat.pcap") else {
        return;
    };
    let f = find_flow(&ends, 443, 37821);
    assert_eq!(f.dpi.l7_proto, Some("TLS"));
    assert_eq!(f.dpi.sni, None);
    assert!(f
        .dpi
        .server_name
        .as_deref()
        .is_some_and(|n| n.ends_with("kakao.com")));
    assert_eq!(f.class.app.as_deref(), Some("KakaoTalk"));
    // a flow with its own SNI keeps the SNI's app
    let fb = find_flow(&ends, 443, 45213);
    assert_eq!(fb.class.app.as_deref(), Some("Facebook"));
}

#[test]
fn ftp_data_connections_follow_the_control_connection() {
    // zeek/ftp/ipv6.pcap: three EPSV (passive) and two EPRT (active) data connections
    let Some(ends) = corpus_flows("zeek/ftp/ipv6.pcap") else {
        return;
    };
    let data: Vec<u16> = ends
        .iter()
        .filter(|e| e.dpi.l7_proto == Some("FTP_DATA"))
        .map(|e| e.meta.server_port)
        .collect();
    let mut sorted = data.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![49189, 49190, 57086, 57087, 57088]);
    let ctl = find_flow(&ends, 21, 49185);
    assert_eq!(ctl.dpi.l7_proto, Some("FTP_CONTROL"));
}

#[test]
fn whatsapp_call_stun_genshin_tcp_and_steam_relay_on_real_captures() {
    if let Some(ends) = corpus_flows("ndpi/whatsapp_voice_and_message.pcap") {
        let calls: Vec<_> = ends.iter().filter(|e| e.meta.server_port == 3478).collect();
        assert_eq!(calls.len(), 8);
        for c in calls {
            assert_eq!(c.dpi.l7_proto, Some("STUN"));
            assert_eq!(c.class.app.as_deref(), Some("WhatsAppCall"));
        }
    }
    if let Some(ends) = corpus_flows("ndpi/genshin-impact.pcap") {
        for (sp, cp) in [(80, 39686), (80, 39822), (10012, 45246)] {
            assert_eq!(find_flow(&ends, sp, cp).dpi.l7_proto, Some("GenshinImpact"));
        }
    }
    if let Some(ends) = corpus_flows("ndpi/steam.pcapng") {
        let f = find_flow(&ends, 27045, 46604);
        assert_eq!(f.dpi.l7_proto, Some("SteamDatagramRelay"));
    }
}

#[test]
fn flows_without_payload_get_the_port_guess() {
    // http_ipv6.pcap: TLS connections to 443 that never carried payload (nDPI: "Match by
    // port" TLS)
    let Some(ends) = corpus_flows("ndpi/http_ipv6.pcap") else {
        return;
    };
    let f = find_flow(&ends, 443, 33062);
    assert_eq!(f.c2s.payload_bytes + f.s2c.payload_bytes, 0);
    assert_eq!(f.dpi.l7_proto, Some("TLS"));
    assert!(f.dpi.guessed_by_port);
}

#[test]
fn quic_handshake_rtt_on_real_captures() {
    // Legs from the frame times tshark shows for these captures: client Initial → first
    // server long-header packet → the client's next packet.
    for (rel, client_ms, server_ms) in [
        ("ndpi/quic-29.pcap", 0.664, 0.7608),
        ("ndpi/quic-v2.pcapng", 0.2928, 1.7724),
        ("ndpi/quic046.pcap", 4.014, 2.5158),
        ("zeek/ppp/quic-interop-retry.pcap", 0.574, 32.752),
    ] {
        let Some(ends) = corpus_flows(rel) else {
            continue;
        };
        let f = ends
            .iter()
            .find(|e| e.dpi.l7_proto == Some("QUIC"))
            .unwrap_or_else(|| panic!("{rel}: no QUIC flow"));
        let c = f.kpi.hs_rtt_client_ms.expect("client leg") as f64;
        let s = f.kpi.hs_rtt_server_ms.expect("server leg") as f64;
        assert!((c - client_ms).abs() < 0.001, "{rel}: client leg {c}");
        assert!((s - server_ms).abs() < 0.001, "{rel}: server leg {s}");
    }
}

/// A DNS response for `name` → `addr` from 198.51.100.53, then a TCP flow to `addr` whose
/// payload identifies nothing: classified by the DNS name through the table's cache.
#[test]
fn dns_cache_labels_flows_through_the_flow_table() {
    use crate::decode::LinkType;
    use crate::flow::{FlowConfig, FlowRecord, FlowTable};
    use etherparse::PacketBuilder;
    let client = [10, 0, 0, 7];
    let resolver = [198, 51, 100, 53];
    let server = [203, 0, 113, 9];
    let q = build_query(0x1234, "rr1.googlevideo.com", 1);
    let mut r = build_response(&q, 0);
    let n = r.len();
    r[n - 4..].copy_from_slice(&server);
    let frame =
        |src: [u8; 4], dst: [u8; 4], udp: Option<(u16, u16)>, tcp: Option<(u16, u16)>, p: &[u8]| {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4(src, dst, 64);
            let mut v = Vec::new();
            match (udp, tcp) {
                (Some((s, d)), _) => b.udp(s, d).write(&mut v, p),
                (_, Some((s, d))) => b.tcp(s, d, 1, 1000).ack(1).write(&mut v, p),
                _ => unreachable!(),
            }
            .expect("frame");
            v
        };
    let run = |cache: usize| {
        let mut t = FlowTable::new(FlowConfig {
            dns_cache_entries: cache,
            ..FlowConfig::default()
        });
        let mut rec: Vec<FlowRecord> = Vec::new();
        let s = 1_000_000_000u64;
        let e = LinkType::Ethernet;
        let f = frame(client, resolver, Some((40053, 53)), None, &q);
        t.process(s, e, &f, f.len() as u32, &mut rec);
        let f = frame(resolver, client, Some((53, 40053)), None, &r);
        t.process(s + 1, e, &f, f.len() as u32, &mut rec);
        let data = [0x17u8, 0x42, 0x99, 0x01, 0x02, 0x03];
        let f = frame(client, server, None, Some((40001, 8443)), &data);
        t.process(2 * s, e, &f, f.len() as u32, &mut rec);
        let f = frame(server, client, None, Some((8443, 40001)), &data);
        t.process(2 * s + 5, e, &f, f.len() as u32, &mut rec);
        t.finish(&mut rec);
        rec.into_iter()
            .filter_map(|r| match r {
                FlowRecord::End(e) if e.meta.server_port == 8443 => Some(e),
                _ => None,
            })
            .next()
            .expect("tcp flow")
    };
    let f = run(16);
    assert_eq!(f.dpi.server_name.as_deref(), Some("rr1.googlevideo.com"));
    assert_eq!(f.class.app.as_deref(), Some("YouTube"));
    let f = run(0);
    assert_eq!(f.dpi.server_name, None);
    assert_ne!(f.class.app.as_deref(), Some("YouTube"));
}
