//! Live capture tests. Those opening sockets need CAP_NET_RAW and skip without it.

use super::*;
use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

#[test]
fn parses_tcpdump_ddd_output() {
    let p = BpfProgram::parse_ddd("udp", "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n")
        .expect("parses");
    assert_eq!(p.instructions.len(), 4);
    assert_eq!(
        p.instructions[1],
        BpfInstruction {
            code: 21,
            jt: 0,
            jf: 1,
            k: 2048
        }
    );
    assert!(BpfProgram::parse_ddd("x", "3\n40 0 0 12\n").is_err());
    assert!(BpfProgram::parse_ddd("x", "1\n40 zero 0 12\n").is_err());
    assert!(BpfProgram::parse_ddd("x", "").is_err());
}

#[test]
fn backend_names() {
    assert_eq!("pnet".parse::<Backend>(), Ok(Backend::Pnet));
    assert_eq!("tpacket".parse::<Backend>(), Ok(Backend::Tpacket));
    assert!("pcap".parse::<Backend>().is_err());
}

#[test]
fn loopback_is_ethernet_and_unknown_names_fail() {
    let lo = interface_info("lo").expect("lo exists");
    assert_eq!(lo.linktype, 1);
    assert!(lo.index > 0);
    assert!(matches!(
        interface_info("cemflow-nope0"),
        Err(LiveError::NoSuchInterface(_))
    ));
}

/// Sends 5 UDP datagrams to 127.0.0.1 and captures them on `lo` with `backend` (each is
/// seen twice there: sent and received); None when this process may not open packet
/// sockets.
fn capture_loopback(backend: Backend) -> Option<Vec<(u64, usize)>> {
    let opts = CaptureOptions {
        backend,
        buffer_bytes: 4 << 20,
        promiscuous: false,
        ..CaptureOptions::default()
    };
    let mut cap = match LiveCapture::open(&["lo".to_string()], &opts, &HashMap::new()) {
        Ok(c) => c,
        Err(LiveError::Permission { .. }) => {
            eprintln!("skipping: opening a packet socket needs CAP_NET_RAW");
            return None;
        }
        Err(e) => panic!("opening lo: {e}"),
    };
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // A marker per backend: the tests run in parallel on the same interface.
    let marker = format!("cemflow-live-test-marker-{:<12}", backend.as_str()).into_bytes();
    let marker = &marker[..];
    for _ in 0..5 {
        tx.send_to(marker, rx.local_addr().expect("addr"))
            .expect("send");
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < 10 && Instant::now() < deadline {
        cap.poll(Duration::from_millis(100), |p| {
            if p.data.windows(marker.len()).any(|w| w == marker) {
                seen.push((p.ts_ns, p.data.len()));
            }
        });
    }
    let c = cap.counters().next().expect("one interface").clone();
    assert!(c.packets >= seen.len() as u64);
    assert!(c.up);
    Some(seen)
}

#[test]
fn tpacket_ring_captures_loopback_traffic() {
    let Some(seen) = capture_loopback(Backend::Tpacket) else {
        return;
    };
    assert_eq!(seen.len(), 10, "{seen:?}");
    let now = now_ns();
    for (ts, len) in seen {
        // Kernel timestamps: within the last minute.
        assert!(ts <= now && now - ts < 60_000_000_000, "{ts} vs {now}");
        // Ethernet + IPv4 + UDP + payload.
        assert_eq!(len, 14 + 20 + 8 + 37);
    }
}

#[test]
fn pnet_channel_captures_loopback_traffic() {
    let Some(seen) = capture_loopback(Backend::Pnet) else {
        return;
    };
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(seen.iter().all(|(_, len)| *len == 14 + 20 + 8 + 37));
}
