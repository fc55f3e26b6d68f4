//! Loopback load test of the flow-telemetry collector.
//!
//! ```text
//! cargo run --release -p cemflow-ingest --example ipfix_loopback -- [RECORDS] [RATE] [TARGET]
//! ```
//! * `RECORDS` (default 3 000 000): IPFIX records to send (≈ 30 per 1.4 kB message);
//! * `RATE` records/s to pace the sender at (0 = as fast as possible, the default);
//! * `TARGET` (`host:port`): only send, to a running `cemflow telemetry --ipfix-listen`;
//!   without it the example binds its own collector socket (64 MiB receive buffer) on
//!   127.0.0.1, receives and decodes with [`Collector`] on this thread while a second
//!   thread sends, and prints records/s decoded, datagrams the kernel dropped, and the
//!   records the IPFIX sequence numbers say were lost.

use cemflow_ingest::telemetry::export::{ExportFlow, IpfixEncoder};
use cemflow_ingest::telemetry::udp::{UdpSource, MAX_DATAGRAM};
use cemflow_ingest::telemetry::Collector;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXPORT_S: u32 = 1_767_225_600;

/// Encodes `records` records as IPFIX messages (template message first).
fn messages(records: u64) -> Vec<Vec<u8>> {
    let mut enc = IpfixEncoder::new(1, 0);
    let mut out = vec![enc.template_message(EXPORT_S)];
    let chunk = 30_000u64;
    let mut done = 0u64;
    while done < records {
        let n = chunk.min(records - done);
        let flows: Vec<ExportFlow> = (done..done + n)
            .map(|i| ExportFlow {
                src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % 1_000_000) as u32)),
                dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 251) as u8)),
                src_port: 1024 + (i % 60_000) as u16,
                dst_port: 443,
                l4: 6,
                tcp_flags: 0x1b,
                packets: 1 + i % 977,
                bytes: 60 + (i % 977) * 1200,
                start_ms: i64::from(EXPORT_S) * 1000 - 60_000,
                end_ms: i64::from(EXPORT_S) * 1000 - 1_000,
            })
            .collect();
        out.extend(enc.data_messages(EXPORT_S, &flows));
        done += n;
    }
    out
}

/// Sends `msgs` to `to`, pacing at `rate` records/s (0: unpaced); re-sends the template
/// every 1000 messages as exporters do. Returns (datagrams sent, seconds).
fn send(msgs: &[Vec<u8>], to: SocketAddr, rate: u64) -> std::io::Result<(u64, f64)> {
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut records = 0u64;
    let mut template = msgs[0].clone();
    tx.send_to(&template, to)?;
    for (i, m) in msgs.iter().enumerate().skip(1) {
        if i % 1000 == 0 {
            // A template message carries the sequence number of the next data record.
            template[8..12].copy_from_slice(&m[8..12]);
            tx.send_to(&template, to)?;
        }
        // ENOBUFS on a full socket buffer: retry (what an exporter would do is drop).
        while tx.send_to(m, to).is_err() {
            std::thread::yield_now();
        }
        sent += 1;
        records += 30;
        if rate > 0 && records.is_multiple_of(3000) {
            let due = Duration::from_secs_f64(records as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok((sent, start.elapsed().as_secs_f64()))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let records: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000_000);
    let rate: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let msgs = messages(records);
    if let Some(target) = args.get(2) {
        let to: SocketAddr = target
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let (sent, secs) = send(&msgs, to, rate)?;
        println!(
            "sent {records} records in {sent} datagrams to {to} in {secs:.2} s ({:.0} records/s)",
            records as f64 / secs
        );
        return Ok(());
    }
    let src = UdpSource::bind("127.0.0.1:0", 64 << 20, Duration::from_millis(500))?;
    let to = src.local_addr()?;
    let sender = std::thread::spawn(move || send(&msgs, to, rate));
    let mut col = Collector::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut decoded = 0u64;
    loop {
        match src.recv(&mut buf)? {
            Some((n, from)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                out.clear();
                decoded += col.process(from, &buf[..n], &mut out) as u64;
            }
            None if sender.is_finished() => break,
            None => {}
        }
    }
    let (sent, send_s) = sender
        .join()
        .map_err(|_| std::io::Error::other("sender panicked"))??;
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64()).max(1e-9);
    let s = col.stats();
    println!(
        "sent {records} records in {sent} datagrams in {send_s:.2} s; collector decoded \
         {decoded} records in {secs:.2} s = {:.0} records/s ({:.0} datagrams/s); receive \
         buffer {} B, kernel drops {}, lost records by sequence {}, malformed {}",
        decoded as f64 / secs,
        s.totals.packets as f64 / secs,
        src.rcvbuf(),
        src.kernel_drops().map_or("n/a".into(), |d| d.to_string()),
        s.totals.lost_records,
        s.totals.malformed_total()
    );
    Ok(())
}
