//! `cemflow capture` in a network lab: namespaces and veth pairs (addresses only from
//! 198.18.0.0/15, the benchmarking range), a server namespace with nginx (HTTPS, a
//! self-signed certificate for two names) and dnsmasq, a client namespace running a bounded
//! curl loop, and `tc … mirred egress mirror` copying the client link's traffic (both
//! directions) to a veth in a probe namespace where `cemflow capture` and tcpdump listen.
//!
//! ```text
//!  ns client                     ns server
//!  veth0 198.18.0.1 ─────────── veth0 198.18.0.2  (nginx :443, dnsmasq :53)
//!   └ tc clsact ingress+egress: mirred egress mirror dev mir0
//!  mir0 ─────────────────────── mir0  ns probe (cemflow capture, tcpdump)
//! ```
//!
//! Needs root and `ip netns`; skips with a message otherwise (fails under
//! `CEMFLOW_REQUIRE_INTEROP=1` when a tool is missing). Namespaces are named after the test
//! process id and removed by a guard, also when the test fails.

use crate::util::bin;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "test-pseudonym-key";
const CLIENT_IP: &str = "198.18.0.1";
const SERVER_IP: &str = "198.18.0.2";
const NAMES: [&str; 2] = ["alpha.cemflow.test", "beta.cemflow.test"];
const METRICS: &str = "127.0.0.1:9464";
const TOOLS: [&str; 7] = ["ip", "tc", "nginx", "dnsmasq", "curl", "tcpdump", "openssl"];

static LAB_SEQ: AtomicUsize = AtomicUsize::new(0);

fn require_interop() -> bool {
    std::env::var("CEMFLOW_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Finds `tool` on PATH or in the sbin directories.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Tools resolved, or None (with a printed reason) when the lab cannot run here.
fn lab_tools() -> Option<Vec<PathBuf>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping live capture lab: needs root (network namespaces, CAP_NET_RAW)");
        return None;
    }
    let found: Vec<Option<PathBuf>> = TOOLS.iter().map(|t| tool(t)).collect();
    let missing: Vec<&str> = TOOLS
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(t, _)| *t)
        .collect();
    if !missing.is_empty() {
        let msg = format!("live capture lab needs {}", missing.join(", "));
        if require_interop() {
            panic!("{msg} (CEMFLOW_REQUIRE_INTEROP=1)");
        }
        eprintln!("skipping: {msg}");
        return None;
    }
    let probe = format!("cfprobe{}", std::process::id());
    let ok = Command::new(found[0].as_ref()?)
        .args(["netns", "add", &probe])
        .output()
        .is_ok_and(|o| o.status.success());
    let _ = Command::new(found[0].as_ref()?)
        .args(["netns", "del", &probe])
        .output();
    if !ok {
        let msg = "`ip netns add` failed: network namespaces are unavailable here";
        if require_interop() {
            panic!("{msg} (CEMFLOW_REQUIRE_INTEROP=1)");
        }
        eprintln!("skipping live capture lab: {msg}");
        return None;
    }
    found.into_iter().collect()
}

/// The lab: namespaces, links, servers. Dropping it kills what it started and deletes the
/// namespaces (and their veths).
struct Lab {
    ip: PathBuf,
    tc: PathBuf,
    nginx: PathBuf,
    dnsmasq: PathBuf,
    curl: PathBuf,
    tcpdump: PathBuf,
    client: String,
    server: String,
    probe: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SIGTERM first so servers stop their own children; then make sure.
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let start = Instant::now();
            while c.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(2)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client, &self.server, &self.probe] {
            let _ = Command::new(&self.ip).args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.client));
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Lab {
    fn new(tools: &[PathBuf]) -> Lab {
        let id = format!(
            "{}x{}",
            std::process::id(),
            LAB_SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            ip: tools[0].clone(),
            tc: tools[1].clone(),
            nginx: tools[2].clone(),
            dnsmasq: tools[3].clone(),
            curl: tools[4].clone(),
            tcpdump: tools[5].clone(),
            client: format!("cfc{id}"),
            server: format!("cfs{id}"),
            probe: format!("cfp{id}"),
            dir: tempfile::tempdir().expect("tmp"),
            children: Vec::new(),
        };
        lab.build_network();
        lab.make_certificate(&tools[6]);
        lab.start_servers();
        lab
    }

    fn ip(&self, args: &[&str]) {
        run_ok(Command::new(&self.ip).args(args));
    }

    /// `ip netns exec NS PROGRAM ARGS…`.
    fn in_ns(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    fn build_network(&self) {
        for ns in [&self.client, &self.server, &self.probe] {
            self.ip(&["netns", "add", ns]);
            // No IPv6: no router solicitations or MLD reports wandering into the mirror.
            run_ok(
                Command::new(&self.ip)
                    .args(["netns", "exec", ns, "sysctl", "-qw"])
                    .args([
                        "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1",
                    ]),
            );
            self.ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let (c, s, p) = (&self.client, &self.server, &self.probe);
        self.ip(&[
            "-n", c, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", s,
        ]);
        self.ip(&[
            "-n", c, "link", "add", "mir0", "type", "veth", "peer", "name", "mir0", "netns", p,
        ]);
        self.ip(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            "veth0",
        ]);
        self.ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            "veth0",
        ]);
        for (ns, dev) in [(c, "veth0"), (s, "veth0"), (c, "mir0"), (p, "mir0")] {
            self.ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        // Mirror both directions of the client link to mir0 (its peer is the probe's port).
        run_ok(
            self.in_ns(c, &self.tc)
                .args(["qdisc", "add", "dev", "veth0", "clsact"]),
        );
        for dir in ["ingress", "egress"] {
            let matchall = self
                .in_ns(c, &self.tc)
                .args(["filter", "add", "dev", "veth0", dir, "matchall"])
                .args(["action", "mirred", "egress", "mirror", "dev", "mir0"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !matchall {
                // Kernels without cls_matchall: a u32 filter matching everything.
                run_ok(
                    self.in_ns(c, &self.tc)
                        .args(["filter", "add", "dev", "veth0", dir, "protocol", "all"])
                        .args(["u32", "match", "u32", "0", "0"])
                        .args(["action", "mirred", "egress", "mirror", "dev", "mir0"]),
                );
            }
        }
        // The client resolves through dnsmasq (`ip netns exec` bind-mounts this file).
        let etc = Path::new("/etc/netns").join(c);
        std::fs::create_dir_all(&etc).expect("mkdir /etc/netns");
        std::fs::write(etc.join("resolv.conf"), format!("nameserver {SERVER_IP}\n"))
            .expect("resolv.conf");
    }

    fn make_certificate(&self, openssl: &Path) {
        let d = self.dir.path();
        run_ok(
            Command::new(openssl)
                .args(["req", "-x509", "-nodes", "-newkey", "ec"])
                .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "2"])
                .arg("-keyout")
                .arg(d.join("key.pem"))
                .arg("-out")
                .arg(d.join("cert.pem"))
                .args(["-subj", &format!("/CN={}", NAMES[0])])
                .args([
                    "-addext",
                    &format!("subjectAltName=DNS:{},DNS:{}", NAMES[0], NAMES[1]),
                ]),
        );
    }

    fn start_servers(&mut self) {
        let d = self.dir.path().to_path_buf();
        let mut servers = String::new();
        for name in NAMES {
            servers.push_str(&format!(
                "server {{ listen {SERVER_IP}:443 ssl; server_name {name}; \
                 ssl_certificate {cert}; ssl_certificate_key {key}; \
                 location / {{ return 200 \"{name}\\n\"; }} }}\n",
                cert = d.join("cert.pem").display(),
                key = d.join("key.pem").display(),
            ));
        }
        let tmp = d.join("nginx-tmp");
        std::fs::create_dir_all(&tmp).expect("mkdir");
        let conf = format!(
            "daemon off; master_process off; user root;\n\
             pid {pid}; error_log {log};\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {t}/b; proxy_temp_path {t}/p;\n\
             fastcgi_temp_path {t}/f; uwsgi_temp_path {t}/u; scgi_temp_path {t}/s;\n{servers}}}\n",
            pid = d.join("nginx.pid").display(),
            log = d.join("nginx.log").display(),
            t = tmp.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).expect("nginx.conf");
        let nginx = self
            .in_ns(&self.server, &self.nginx)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("nginx.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        self.children.push(nginx);
        let mut dns = self.in_ns(&self.server, &self.dnsmasq);
        dns.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
        ])
        .args(["--no-hosts", "--bind-interfaces", "--user=root"])
        .arg(format!("--listen-address={SERVER_IP}"))
        .arg(format!("--pid-file={}", d.join("dnsmasq.pid").display()));
        for name in NAMES {
            dns.arg(format!("--address=/{name}/{SERVER_IP}"));
        }
        let dns = dns
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        self.children.push(dns);
        wait_for(Duration::from_secs(10), "nginx and dnsmasq", || {
            d.join("nginx.pid").exists() && d.join("dnsmasq.pid").exists()
        });
    }

    /// `rounds` rounds of one HTTPS request to each name, resolved through dnsmasq.
    fn curl_loop(&self, rounds: usize) {
        let cert = self.dir.path().join("cert.pem");
        for _ in 0..rounds {
            let mut c = self.in_ns(&self.client, &self.curl);
            c.args(["-sS", "--fail", "--max-time", "5", "-o", "/dev/null"])
                .arg("--cacert")
                .arg(&cert);
            for name in NAMES {
                c.arg(format!("https://{name}/"));
            }
            run_ok(&mut c);
        }
    }

    fn tcpdump(&mut self, filter: &[&str]) -> PathBuf {
        let pcap = self.dir.path().join("mirror.pcap");
        let child = self
            .in_ns(&self.probe, &self.tcpdump)
            .args(["-i", "mir0", "-n", "-U", "-w"])
            .arg(&pcap)
            .args(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts");
        self.children.push(child);
        wait_for(Duration::from_secs(10), "tcpdump", || pcap.exists());
        // The file exists once the handle is open; give the socket a moment.
        std::thread::sleep(Duration::from_millis(300));
        pcap
    }

    fn capture(&self, lake: &Path, extra: &[&str]) -> Child {
        let child = self
            .in_ns(&self.probe, &bin())
            .env("CEMFLOW_PSEUDO_KEY", KEY)
            .args(["capture", "-i", "mir0", "--metrics", METRICS, "--lake"])
            .arg(lake)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cemflow capture starts");
        wait_for(Duration::from_secs(20), "cemflow metrics endpoint", || {
            self.metrics().is_some()
        });
        child
    }

    /// The metrics text, scraped from inside the probe namespace.
    fn metrics(&self) -> Option<String> {
        let out = self
            .in_ns(&self.probe, &self.curl)
            .args(["-sf", "--max-time", "2"])
            .arg(format!("http://{METRICS}/metrics"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and waits (bounded) for the exit; returns (exit code, stderr).
fn terminate(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let _ = pipe.read_to_string(&mut stderr);
        stderr
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), reader.join().expect("stderr reader"))
}

/// Records in a classic pcap file.
fn pcap_records(path: &Path) -> u64 {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .expect("pcap")
        .read_to_end(&mut bytes)
        .expect("read pcap");
    let mut off = 24;
    let mut n = 0;
    while off + 16 <= bytes.len() {
        let incl = u32::from_le_bytes([
            bytes[off + 8],
            bytes[off + 9],
            bytes[off + 10],
            bytes[off + 11],
        ]) as usize;
        off += 16 + incl;
        if off <= bytes.len() {
            n += 1;
        }
    }
    n
}

/// A number after `label` in a `capture on IF: …` summary line of cemflow's stderr.
fn summary_number(stderr: &str, label: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("capture on mir0:"))
        .unwrap_or_else(|| panic!("no capture summary in: {stderr}"));
    line.split(',')
        .find_map(|part| {
            let part = part.trim().trim_start_matches("capture on mir0:").trim();
            part.strip_suffix(label)
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"))
}

/// tcpdump's own "N packets dropped by kernel".
fn tcpdump_drops(stderr: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.contains("dropped by kernel"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn sql(lake: &Path, query: &str) -> Vec<Vec<String>> {
    let out = run_ok(
        Command::new(bin())
            .args(["sql", "--format", "csv", "--lake"])
            .arg(lake)
            .args(["-e", query]),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn capture_on_a_mirror_port_matches_tcpdump_and_fills_the_lake() {
    let Some(tools) = lab_tools() else { return };
    let mut lab = Lab::new(&tools);
    let lake = lab.dir.path().join("lake");
    // The same filter for both: ARP is left out, everything IP goes through.
    let filter = "ip or ip6";
    let pcap = lab.tcpdump(&[filter]);
    let cemflow = lab.capture(&lake, &["--bpf", filter]);

    lab.curl_loop(6);
    // Let the last FIN/ACKs cross the mirror, then check the live metrics.
    std::thread::sleep(Duration::from_millis(500));
    let metrics = lab.metrics().expect("metrics while running");
    assert!(
        metrics.contains("cemflow_capture_packets_total{interface=\"mir0\"}")
            && !metrics.contains("cemflow_capture_packets_total{interface=\"mir0\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cemflow_capture_kernel_drops_total"),
        "{metrics}"
    );

    let (code, stderr) = terminate(cemflow, Duration::from_secs(30));
    assert_eq!(code, Some(0), "cemflow capture: {stderr}");
    std::thread::sleep(Duration::from_millis(200));
    let dump = lab.children.pop().expect("tcpdump child");
    let (_, dump_err) = terminate(dump, Duration::from_secs(10));

    let ours = summary_number(&stderr, "packets");
    let kernel = summary_number(&stderr, "kernel drops") + tcpdump_drops(&dump_err);
    let theirs = pcap_records(&pcap);
    assert!(theirs > 0, "tcpdump saw nothing: {dump_err}");
    assert!(
        ours.abs_diff(theirs) <= kernel,
        "cemflow {ours} vs tcpdump {theirs} packets, kernel drops {kernel}: {stderr}"
    );

    // The client's flows carry both names; its user minutes exist.
    let keys = sql(
        &lake,
        &format!("SELECT DISTINCT user_key FROM flows WHERE server_ip = '{SERVER_IP}'"),
    );
    assert_eq!(keys.len(), 1, "one client expected: {keys:?}");
    let key = &keys[0][0];
    let snis: Vec<String> = sql(
        &lake,
        &format!(
            "SELECT DISTINCT sni FROM flows WHERE user_key = '{key}' AND sni IS NOT NULL \
             ORDER BY sni"
        ),
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert_eq!(snis, NAMES, "{stderr}");
    let minutes = sql(
        &lake,
        &format!("SELECT count(*) FROM user_minute WHERE user_key = '{key}'"),
    );
    let n: u64 = minutes[0][0].parse().expect("count");
    assert!(n > 0, "no user_minute rows for the client: {stderr}");
    // No raw client address in the lake's tables.
    let raw = sql(
        &lake,
        &format!("SELECT count(*) FROM flows WHERE server_ip = '{CLIENT_IP}'"),
    );
    assert_eq!(raw[0][0], "0");
}

#[test]
fn capture_survives_the_interface_going_down_and_up() {
    let Some(tools) = lab_tools() else { return };
    let lab = Lab::new(&tools);
    let lake = lab.dir.path().join("lake");
    let cemflow = lab.capture(&lake, &["--backend", "pnet"]);
    lab.curl_loop(1);
    lab.ip(&["-n", &lab.probe, "link", "set", "mir0", "down"]);
    std::thread::sleep(Duration::from_millis(1500));
    lab.ip(&["-n", &lab.probe, "link", "set", "mir0", "up"]);
    wait_for(Duration::from_secs(10), "capture to reopen mir0", || {
        lab.metrics()
            .is_some_and(|m| m.contains("cemflow_capture_interface_up{interface=\"mir0\"} 1\n"))
    });
    lab.curl_loop(2);
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = terminate(cemflow, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("went down"), "{stderr}");
    assert!(stderr.contains("capturing again"), "{stderr}");
    assert_eq!(summary_number(&stderr, "reconnects"), 1, "{stderr}");
    let snis = sql(&lake, "SELECT count(*) FROM flows WHERE sni IS NOT NULL");
    // 2 names × 3 rounds; at least the rounds after the flap.
    let n: u64 = snis[0][0].parse().expect("count");
    assert!(n >= 4, "{n} TLS flows: {stderr}");
}

#[test]
fn capture_without_cap_net_raw_names_the_capability() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: the plain command already lacks the capability.
        let dir = tempfile::tempdir().expect("tmp");
        let out = Command::new(bin())
            .env("CEMFLOW_PSEUDO_KEY", KEY)
            .args(["capture", "-i", "lo", "--duration", "1s", "--lake"])
            .arg(dir.path().join("lake"))
            .output()
            .expect("runs");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("CAP_NET_RAW"));
        return;
    }
    let Some(setpriv) = tool("setpriv") else {
        eprintln!("skipping: setpriv (util-linux) is needed to drop CAP_NET_RAW as root");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(setpriv)
        .args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(bin())
        .env("CEMFLOW_PSEUDO_KEY", KEY)
        .args(["capture", "-i", "lo", "--duration", "1s", "--lake"])
        .arg(dir.path().join("lake"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    // Nothing was created before the capability check.
    assert!(!dir.path().join("lake").exists());
}
