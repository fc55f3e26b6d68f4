//! `--metrics ADDR`: Prometheus text exposition of a running capture over plain HTTP.
//!
//! Workers publish their cumulative counters into per-worker slots after every batch (no
//! atomic operation per packet); a scrape sums the slots. The server is a small thread on
//! a std `TcpListener` answering `GET /metrics` (and `/`) with text format 0.0.4.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One worker's counters for one interface.
#[derive(Default)]
struct InterfaceSlot {
    packets: AtomicU64,
    bytes: AtomicU64,
    kernel_drops: AtomicU64,
    own_drops: AtomicU64,
    reconnects: AtomicU64,
    up: AtomicBool,
}

/// One worker's flow table counters.
#[derive(Default)]
struct WorkerSlot {
    active_flows: AtomicU64,
    flows_evicted: AtomicU64,
    flows_ended: AtomicU64,
    late_slices: AtomicU64,
}

/// Counters of a capture run, shared by the workers, the lake writer and the server.
pub struct Metrics {
    interfaces: Vec<String>,
    /// `[worker][interface]`.
    per_interface: Vec<Vec<InterfaceSlot>>,
    per_worker: Vec<WorkerSlot>,
    windows_committed: AtomicU64,
    flow_rows_committed: AtomicU64,
    /// f64 bits.
    commit_lag_s: AtomicU64,
    /// f64 bits.
    last_commit_unix_s: AtomicU64,
    started: Instant,
}

/// Cumulative counters of one worker on one interface, as published.
#[derive(Clone, Copy, Debug, Default)]
pub struct InterfaceSample {
    /// Frames delivered.
    pub packets: u64,
    /// Bytes of those frames.
    pub bytes: u64,
    /// Kernel drops.
    pub kernel_drops: u64,
    /// cemflow's own drops.
    pub own_drops: u64,
    /// Reconnects after the interface went away.
    pub reconnects: u64,
    /// Socket open.
    pub up: bool,
}

impl Metrics {
    /// Slots for `workers` workers capturing `interfaces`.
    pub fn new(interfaces: Vec<String>, workers: usize) -> Metrics {
        Metrics {
            per_interface: (0..workers)
                .map(|_| {
                    interfaces
                        .iter()
                        .map(|_| InterfaceSlot::default())
                        .collect()
                })
                .collect(),
            per_worker: (0..workers).map(|_| WorkerSlot::default()).collect(),
            interfaces,
            windows_committed: AtomicU64::new(0),
            flow_rows_committed: AtomicU64::new(0),
            commit_lag_s: AtomicU64::new(0f64.to_bits()),
            last_commit_unix_s: AtomicU64::new(0f64.to_bits()),
            started: Instant::now(),
        }
    }

    /// Publishes worker `w`'s cumulative counters for interface `i`.
    pub fn set_interface(&self, w: usize, i: usize, s: InterfaceSample) {
        if let Some(slot) = self.per_interface.get(w).and_then(|v| v.get(i)) {
            slot.packets.store(s.packets, Ordering::Relaxed);
            slot.bytes.store(s.bytes, Ordering::Relaxed);
            slot.kernel_drops.store(s.kernel_drops, Ordering::Relaxed);
            slot.own_drops.store(s.own_drops, Ordering::Relaxed);
            slot.reconnects.store(s.reconnects, Ordering::Relaxed);
            slot.up.store(s.up, Ordering::Relaxed);
        }
    }

    /// Publishes worker `w`'s flow table state.
    pub fn set_flows(&self, w: usize, active: u64, evicted: u64, ended: u64, late_slices: u64) {
        if let Some(slot) = self.per_worker.get(w) {
            slot.active_flows.store(active, Ordering::Relaxed);
            slot.flows_evicted.store(evicted, Ordering::Relaxed);
            slot.flows_ended.store(ended, Ordering::Relaxed);
            slot.late_slices.store(late_slices, Ordering::Relaxed);
        }
    }

    /// Records a window commit: `n` windows, the last ending `lag_s` seconds before the
    /// commit completed at `now_unix_s`.
    pub fn windows_committed(&self, n: u64, lag_s: f64, now_unix_s: f64) {
        self.windows_committed.fetch_add(n, Ordering::Relaxed);
        self.commit_lag_s.store(lag_s.to_bits(), Ordering::Relaxed);
        self.last_commit_unix_s
            .store(now_unix_s.to_bits(), Ordering::Relaxed);
    }

    /// Records committed flow rows.
    pub fn flow_rows_committed(&self, rows: u64) {
        self.flow_rows_committed.fetch_add(rows, Ordering::Relaxed);
    }

    /// Windows committed so far.
    pub fn windows(&self) -> u64 {
        self.windows_committed.load(Ordering::Relaxed)
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        type Field = fn(&InterfaceSlot) -> u64;
        let per_if: [(&str, &str, &str, Field); 6] = [
            (
                "cemflow_capture_packets_total",
                "counter",
                "Frames captured.",
                |s| s.packets.load(Ordering::Relaxed),
            ),
            (
                "cemflow_capture_bytes_total",
                "counter",
                "Bytes of the frames captured.",
                |s| s.bytes.load(Ordering::Relaxed),
            ),
            (
                "cemflow_capture_kernel_drops_total",
                "counter",
                "Frames the kernel dropped because the socket buffer or ring was full (PACKET_STATISTICS).",
                |s| s.kernel_drops.load(Ordering::Relaxed),
            ),
            (
                "cemflow_capture_own_drops_total",
                "counter",
                "Frames cemflow received but could not use in full (cut at the frame limit).",
                |s| s.own_drops.load(Ordering::Relaxed),
            ),
            (
                "cemflow_capture_reconnects_total",
                "counter",
                "Times the interface went down or away and capture reopened it.",
                |s| s.reconnects.load(Ordering::Relaxed),
            ),
            (
                "cemflow_capture_interface_up",
                "gauge",
                "Sockets open on the interface (one per worker while capturing).",
                |s| s.up.load(Ordering::Relaxed) as u64,
            ),
        ];
        for (name, kind, help, field) in per_if {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (i, iface) in self.interfaces.iter().enumerate() {
                let v: u64 = self
                    .per_interface
                    .iter()
                    .filter_map(|w| w.get(i))
                    .map(field)
                    .sum();
                let _ = writeln!(out, "{name}{{interface=\"{}\"}} {v}", escape(iface));
            }
        }
        type WField = fn(&WorkerSlot) -> u64;
        let per_w: [(&str, &str, &str, WField); 4] = [
            (
                "cemflow_flows_active",
                "gauge",
                "Flows held in the flow tables.",
                |s| s.active_flows.load(Ordering::Relaxed),
            ),
            (
                "cemflow_flows_evicted_total",
                "counter",
                "Flows evicted because a flow table was full (--max-flows).",
                |s| s.flows_evicted.load(Ordering::Relaxed),
            ),
            (
                "cemflow_flows_ended_total",
                "counter",
                "Flows ended (timeout, close, eviction).",
                |s| s.flows_ended.load(Ordering::Relaxed),
            ),
            (
                "cemflow_late_slices_total",
                "counter",
                "Flow slices dropped because their window had already closed.",
                |s| s.late_slices.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, field) in per_w {
            let v: u64 = self.per_worker.iter().map(field).sum();
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let scalars: [(&str, &str, &str, String); 5] = [
            (
                "cemflow_windows_committed_total",
                "counter",
                "Windows committed to the lake.",
                self.windows_committed.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cemflow_flow_rows_committed_total",
                "counter",
                "Flow rows committed to the lake.",
                self.flow_rows_committed.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cemflow_commit_lag_seconds",
                "gauge",
                "Seconds between the end of the last committed window and its commit.",
                f64::from_bits(self.commit_lag_s.load(Ordering::Relaxed)).to_string(),
            ),
            (
                "cemflow_last_commit_timestamp_seconds",
                "gauge",
                "Unix time of the last window commit.",
                f64::from_bits(self.last_commit_unix_s.load(Ordering::Relaxed)).to_string(),
            ),
            (
                "cemflow_uptime_seconds",
                "gauge",
                "Seconds since the capture started.",
                self.started.elapsed().as_secs_f64().to_string(),
            ),
        ];
        for (name, kind, help, v) in scalars {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` (so a bad address fails at startup) and serves `metrics` from a thread.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("--metrics {addr}: cannot listen: {e}"))?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("cemflow-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // One scrape at a time is plenty for Prometheus; a slow client times out.
                let _ = answer(stream, &metrics);
            }
        })?;
    Ok(local)
}

fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let request = String::from_utf8_lossy(&buf[..len]);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/metrics" | "/" => ("200 OK", metrics.render()),
        _ => ("404 Not Found", "not found: try /metrics\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_workers_per_interface_and_serves_text() {
        let m = Arc::new(Metrics::new(vec!["eth0".into(), "eth1".into()], 2));
        let s = |p| InterfaceSample {
            packets: p,
            bytes: p * 100,
            up: true,
            ..InterfaceSample::default()
        };
        m.set_interface(0, 0, s(3));
        m.set_interface(1, 0, s(4));
        m.set_interface(1, 1, s(5));
        m.set_flows(0, 10, 1, 2, 0);
        m.set_flows(1, 20, 0, 3, 0);
        m.windows_committed(1, 6.5, 1_700_000_000.0);
        let text = m.render();
        assert!(text.contains("cemflow_capture_packets_total{interface=\"eth0\"} 7\n"));
        assert!(text.contains("cemflow_capture_packets_total{interface=\"eth1\"} 5\n"));
        assert!(text.contains("cemflow_capture_interface_up{interface=\"eth0\"} 2\n"));
        assert!(text.contains("cemflow_flows_active 30\n"));
        assert!(text.contains("cemflow_windows_committed_total 1\n"));
        assert!(text.contains("cemflow_commit_lag_seconds 6.5\n"));

        let addr = serve("127.0.0.1:0".parse().expect("addr"), Arc::clone(&m)).expect("serve");
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut resp = String::new();
        c.read_to_string(&mut resp).expect("read");
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        assert!(resp.contains("cemflow_flows_evicted_total 1\n"), "{resp}");
    }
}
