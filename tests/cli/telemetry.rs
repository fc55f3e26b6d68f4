//! `cemflow telemetry`: flow exports from captures and from softflowd over loopback
//! (checked against nfcapd/nfdump decoding the same export), and element KPI files.
//!
//! The softflowd test needs `softflowd`, `softflowctl`, `nfcapd` and `nfdump` (Debian
//! packages softflowd, nfdump): it skips with a message when they are absent, and fails
//! instead under `CEMFLOW_REQUIRE_INTEROP=1`.

use crate::util::{bin, conformance_dir};
use cemflow_ingest::source::{PcapWriter, TsResolution};
use cemflow_ingest::telemetry::export::{ExportFlow, IpfixEncoder, NetflowV9Encoder};
use etherparse::PacketBuilder;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "telemetry-test-key";
const EXPORT_S: u32 = 1_709_643_600; // 2024-03-05 13:00 UTC

fn cemflow(args: &[&str]) -> Output {
    Command::new(bin())
        .env("CEMFLOW_PSEUDO_KEY", KEY)
        .args(args)
        .output()
        .expect("cemflow runs")
}

/// Runs cemflow, asserts it succeeded, and returns its stderr (the run summary).
fn cemflow_ok(args: &[&str]) -> String {
    let out = cemflow(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

/// One CSV row of `SELECT …` over the lake.
fn sql_row(lake: &Path, q: &str) -> Vec<String> {
    let out = Command::new(bin())
        .args(["sql", "--format", "csv", "--lake"])
        .arg(lake)
        .args(["-e", q])
        .output()
        .expect("sql runs");
    assert!(
        out.status.success(),
        "{q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().nth(1).unwrap_or_default().to_string();
    line.split(',').map(str::to_string).collect()
}

fn flow(i: u32) -> ExportFlow {
    ExportFlow {
        src: IpAddr::V4(Ipv4Addr::new(10, 1, (i / 200) as u8, (i % 200) as u8 + 2)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 19, 0, (i % 50) as u8 + 1)),
        src_port: 40_000 + i as u16,
        dst_port: 443,
        l4: 6,
        tcp_flags: 0x1b,
        packets: 3 + u64::from(i % 17),
        bytes: 200 + u64::from(i) * 7,
        start_ms: i64::from(EXPORT_S) * 1000 - 50_000,
        end_ms: i64::from(EXPORT_S) * 1000 - 2_000,
    }
}

/// A UDP datagram in an Ethernet frame.
fn udp_frame(src: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, [192, 0, 2, 100], 64)
        .udp(sport, dport)
        .write(&mut f, payload)
        .expect("frame");
    f
}

/// A UDP datagram as IPv4 fragments of at most `mtu` bytes, each in an Ethernet frame.
fn fragmented_udp_frames(
    src: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
    mtu: usize,
    id: u16,
) -> Vec<Vec<u8>> {
    let mut dgram = Vec::with_capacity(payload.len() + 8);
    dgram.extend_from_slice(&sport.to_be_bytes());
    dgram.extend_from_slice(&dport.to_be_bytes());
    dgram.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    dgram.extend_from_slice(&[0, 0]);
    dgram.extend_from_slice(payload);
    let step = (mtu - 20) / 8 * 8;
    dgram
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let off = i * step;
            let more = off + chunk.len() < dgram.len();
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&((off / 8) as u16 | if more { 0x2000 } else { 0 }).to_be_bytes());
            f.extend_from_slice(&[64, 17, 0, 0]);
            f.extend_from_slice(&src);
            f.extend_from_slice(&[192, 0, 2, 100]);
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

#[test]
fn from_pcap_decodes_ipfix_and_netflow_v9_exports() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("exports.pcap");
    let lake = dir.path().join("lake");
    let flows: Vec<ExportFlow> = (0..300).map(flow).collect();
    let mut w =
        PcapWriter::new(std::fs::File::create(&cap).unwrap(), 1, TsResolution::Micro).unwrap();
    let ts = std::cell::Cell::new(u64::from(EXPORT_S) * 1_000_000_000);
    let next_ts = || {
        ts.set(ts.get() + 1_000_000);
        ts.get()
    };
    let put = |w: &mut PcapWriter<std::fs::File>, src: [u8; 4], sport, payload: &[u8]| {
        w.write_packet(next_ts(), &udp_frame(src, sport, 4739, payload))
            .unwrap();
    };
    // IPFIX from one router: flows 0..150 (template first).
    let mut ipfix = IpfixEncoder::new(5, 0);
    put(
        &mut w,
        [192, 0, 2, 1],
        50_000,
        &ipfix.template_message(EXPORT_S),
    );
    // Its data messages cross a 576-byte path MTU: IP fragments, the first message's in
    // reverse order.
    let mut fragmented = 0;
    for (i, m) in ipfix
        .data_messages(EXPORT_S, &flows[..150])
        .iter()
        .enumerate()
    {
        let mut frames = fragmented_udp_frames([192, 0, 2, 1], 50_000, 4739, m, 576, i as u16);
        assert!(frames.len() > 1);
        if i == 0 {
            frames.reverse();
        }
        for f in frames {
            w.write_packet(next_ts(), &f).unwrap();
        }
        fragmented += 1;
    }
    // NetFlow v9 from another: a data packet before its template (unknown template,
    // skipped), then the template and flows 150..300.
    let mut v9 = NetflowV9Encoder::new(9, 100, i64::from(EXPORT_S) * 1000 - 86_400_000);
    let early = v9.data_packets(EXPORT_S, &flows[..5]);
    for p in &early {
        put(&mut w, [192, 0, 2, 2], 2055, p);
    }
    put(&mut w, [192, 0, 2, 2], 2055, &v9.template_packet(EXPORT_S));
    for p in v9.data_packets(EXPORT_S, &flows[150..]) {
        put(&mut w, [192, 0, 2, 2], 2055, &p);
    }
    // Noise: DNS, and an IPFIX message whose set overruns it.
    put(
        &mut w,
        [192, 0, 2, 3],
        53,
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
    );
    let mut bad = ipfix.template_message(EXPORT_S);
    bad[18..20].copy_from_slice(&900u16.to_be_bytes());
    put(&mut w, [192, 0, 2, 1], 50_000, &bad);
    w.finish().unwrap();

    let lake_s = lake.to_str().unwrap();
    let err = cemflow_ok(&[
        "telemetry",
        "--lake",
        lake_s,
        "--from-pcap",
        cap.to_str().unwrap(),
    ]);
    assert!(err.contains("flow telemetry: 300 records"), "{err}");
    assert!(err.contains("1 data sets of unknown templates"), "{err}");
    assert!(err.contains("1 bad set length"), "{err}");
    assert!(err.contains("300 flow_telemetry rows"), "{err}");
    assert!(
        err.contains(&format!(
            "{fragmented} reassembled from IP fragments, 0 incomplete"
        )),
        "{err}"
    );

    let want_pk: u64 = flows.iter().map(|f| f.packets).sum();
    let want_by: u64 = flows.iter().map(|f| f.bytes).sum();
    let row = sql_row(
        &lake,
        "SELECT count(*), sum(packets), sum(bytes), count(src_addr), count(src_user_key), \
         count(dst_addr), count(DISTINCT exporter), min(flow_start), count(DISTINCT version) \
         FROM flow_telemetry",
    );
    assert_eq!(row[0], "300");
    assert_eq!(row[1], want_pk.to_string());
    assert_eq!(row[2], want_by.to_string());
    assert_eq!(
        row[3], "0",
        "subscriber sources (10/8) are never stored raw"
    );
    assert_eq!(row[4], "300");
    assert_eq!(row[5], "300", "servers keep their address");
    assert_eq!(row[6], "2");
    assert!(row[7].starts_with("2024-03-05T12:59:10"), "{row:?}");
    assert_eq!(row[8], "2");

    // The exporters see subscribers (10/8): their volume reaches the per-user
    // aggregation, one user per source address, all in the minute 12:59, upstream.
    let row = sql_row(
        &lake,
        "SELECT count(DISTINCT user_key), count(*), sum(bytes_up), sum(bytes_down), \
         sum(flows), min(window_start), max(window_start), count(DISTINCT source), \
         min(source), sum(CASE WHEN rtt_client_ms IS NULL THEN 0 ELSE 1 END) \
         FROM user_minute WHERE category = 'all'",
    );
    assert_eq!(row[0], "300", "{row:?}");
    assert_eq!(row[1], "300");
    assert_eq!(row[2], want_by.to_string());
    assert_eq!(row[3], "0");
    assert_eq!(row[4], "300");
    assert!(row[5].starts_with("2024-03-05T12:59:00"), "{row:?}");
    assert_eq!(row[5], row[6]);
    assert_eq!((row[7].as_str(), row[8].as_str()), ("1", "flow_telemetry"));
    assert_eq!(row[9], "0", "flow records measure no RTT");
    // The users' keys are the flow_telemetry pseudonyms.
    let row = sql_row(
        &lake,
        "SELECT count(*) FROM user_minute u JOIN flow_telemetry f \
         ON u.user_key = f.src_user_key WHERE u.category = 'all'",
    );
    assert_eq!(row[0], "300");
    // Rating queries use probe rows only: nobody is poor from flow records.
    let out = cemflow(&[
        "poor-users",
        "--lake",
        lake.to_str().unwrap(),
        "--at",
        "2024-03-05T12:59:00Z",
        "--format",
        "csv",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).lines().count() <= 1,
        "header only"
    );

    // Exactly once: the same captures again write nothing.
    let err = cemflow_ok(&[
        "telemetry",
        "--lake",
        lake_s,
        "--from-pcap",
        cap.to_str().unwrap(),
    ]);
    assert!(
        err.contains("0 flow_telemetry rows, 0 user_minute rows"),
        "{err}"
    );
    assert_eq!(
        sql_row(&lake, "SELECT count(*) FROM flow_telemetry")[0],
        "300"
    );
    assert_eq!(
        sql_row(
            &lake,
            "SELECT count(*) FROM user_minute WHERE category = 'all'"
        )[0],
        "300"
    );
}

#[test]
fn kpi_files_keep_good_lines_and_name_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let kdir = dir.path().join("kpi");
    std::fs::create_dir(&kdir).unwrap();
    std::fs::write(
        kdir.join("olt.csv"),
        "ts,element_id,metric,value\n\
         2024-03-05T13:00:05Z,olt1/pon0,pon_util_pct,80\n\
         1709643655,olt1/pon0,pon_util_pct,90\n\
         2024-03-05T13:01:00Z,olt1/pon0,pon_util_pct,oops\n\
         2024-03-05T13:01:00Z,olt1/pon0,pon_util_pct,70\n",
    )
    .unwrap();
    std::fs::write(
        kdir.join("cells.jsonl"),
        "{\"ts\":1709643600,\"element_id\":\"cell7\",\"metric\":\"prb_util_pct\",\"value\":55}\n\
         {\"ts\":1709643600,\"element_id\":\"cell7\"}\n",
    )
    .unwrap();
    let lake_s = lake.to_str().unwrap();
    let err = cemflow_ok(&[
        "telemetry",
        "--lake",
        lake_s,
        "--kpi",
        kdir.to_str().unwrap(),
    ]);
    assert!(err.contains("olt.csv:4: skipped: value `oops`"), "{err}");
    assert!(
        err.contains("cells.jsonl:2: skipped: missing `metric`"),
        "{err}"
    );
    assert!(
        err.contains("kpi: 2 file(s), 4 lines → 3 minute samples, 2 bad lines"),
        "{err}"
    );
    let row = sql_row(
        &lake,
        "SELECT count(*), \
         max(CASE WHEN element_id = 'olt1/pon0' AND ts = TIMESTAMP '2024-03-05T13:00:00Z' \
         THEN value END) FROM telemetry",
    );
    assert_eq!(row, vec!["3".to_string(), "85.0".to_string()]);
    // Loading again adds nothing.
    let out = cemflow(&[
        "telemetry",
        "--lake",
        lake_s,
        "--kpi",
        kdir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(sql_row(&lake, "SELECT count(*) FROM telemetry")[0], "3");
}

/// Skips (or fails under CEMFLOW_REQUIRE_INTEROP=1) when a tool is missing.
fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
                && !Path::new("/usr/sbin").join(t).is_file()
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "softflowd interop test skipped: {} not installed (apt-get install softflowd nfdump)",
        missing.join(", ")
    );
    if std::env::var("CEMFLOW_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{msg} (CEMFLOW_REQUIRE_INTEROP=1)");
    }
    eprintln!("{msg}");
    false
}

fn tool(name: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(name);
    if sbin.is_file() {
        sbin
    } else {
        PathBuf::from(name)
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Replays `cap` with softflowd exporting version `v` to 127.0.0.1:`port`, to the end of
/// the file. softflowd 1.1.0 reading a file blocks on its control socket after the last
/// packet; a `softflowctl statistics` request unblocks it, it sees EOF, expires every
/// flow and exits.
fn softflowd_replay(cap: &Path, v: u8, port: u16, work: &Path) {
    let ctl = work.join(format!("sf-{port}.ctl"));
    let mut sf = Command::new(tool("softflowd"))
        .arg("-r")
        .arg(cap)
        .args([
            "-n",
            &format!("127.0.0.1:{port}"),
            "-v",
            &v.to_string(),
            "-d",
        ])
        .arg("-p")
        .arg(work.join(format!("sf-{port}.pid")))
        .arg("-c")
        .arg(&ctl)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("softflowd starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if sf.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "softflowd did not finish");
        std::thread::sleep(Duration::from_millis(100));
        if ctl.exists() {
            let _ = Command::new(tool("softflowctl"))
                .arg("-c")
                .arg(&ctl)
                .arg("statistics")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn terminate(child: &mut Child) -> Output {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "process did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        std::io::Read::read_to_end(&mut s, &mut out).ok();
    }
    if let Some(mut s) = child.stderr.take() {
        std::io::Read::read_to_end(&mut s, &mut err).ok();
    }
    Output {
        status: child.try_wait().ok().flatten().expect("exited"),
        stdout: out,
        stderr: err,
    }
}

/// (flows, bytes, packets) nfdump reads from nfcapd's files in `dir`.
fn nfdump_summary(dir: &Path) -> (u64, u64, u64) {
    let out = Command::new(tool("nfdump"))
        .arg("-R")
        .arg(dir)
        .args(["-o", "csv"])
        .output()
        .expect("nfdump runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("flows,bytes,packets"));
    lines.next();
    let v: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(v.len(), 3, "nfdump summary: {text}");
    (v[0], v[1], v[2])
}

#[test]
fn softflowd_export_matches_nfdump() {
    if !tools_present(&["softflowd", "softflowctl", "nfcapd", "nfdump"]) {
        return;
    }
    let Some(conf) = conformance_dir() else {
        eprintln!("softflowd interop test skipped: ../shared/conformance not found");
        return;
    };
    let cap = conf.join("ndpi/netflix.pcap");
    let dir = tempfile::tempdir().unwrap();
    for v in [9u8, 10] {
        let lake = dir.path().join(format!("lake-v{v}"));
        let nfdir = dir.path().join(format!("nfcapd-v{v}"));
        std::fs::create_dir(&nfdir).unwrap();
        let (p_cem, p_nf) = (free_udp_port(), free_udp_port());
        let mut col = Command::new(bin())
            .env("CEMFLOW_PSEUDO_KEY", KEY)
            .args([
                "telemetry",
                "--lake",
                lake.to_str().unwrap(),
                "--ipfix-listen",
            ])
            .arg(format!("127.0.0.1:{p_cem}"))
            .args(["--duration", "120s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("collector starts");
        let mut nf = Command::new(tool("nfcapd"))
            .args(["-p", &p_nf.to_string(), "-t", "3600", "-w"])
            .arg(&nfdir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd starts");
        // Both collectors bound before the export starts.
        std::thread::sleep(Duration::from_millis(700));
        softflowd_replay(&cap, v, p_cem, dir.path());
        softflowd_replay(&cap, v, p_nf, dir.path());
        std::thread::sleep(Duration::from_millis(500));
        let out = terminate(&mut col);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "v{v}: {err}");
        terminate(&mut nf);
        let (flows, bytes, packets) = nfdump_summary(&nfdir);
        assert!(flows > 50, "v{v}: nfdump saw {flows} flows");
        let row = sql_row(
            &lake,
            "SELECT count(*), sum(bytes), sum(packets), count(DISTINCT version) FROM flow_telemetry",
        );
        assert_eq!(
            row[..3],
            [flows.to_string(), bytes.to_string(), packets.to_string()],
            "v{v}: cemflow vs nfdump (flows, bytes, packets); collector said: {err}"
        );
        assert_eq!(row[3], "1");
        // The live collector feeds the per-user aggregation too: every byte of a record
        // with a subscriber endpoint (192.168/16 here) lands in exactly one user-minute.
        let subs = sql_row(
            &lake,
            "SELECT sum(bytes) FROM flow_telemetry \
             WHERE src_user_key IS NOT NULL OR dst_user_key IS NOT NULL",
        );
        let users = sql_row(
            &lake,
            "SELECT sum(bytes_up + bytes_down), count(DISTINCT source) FROM user_minute \
             WHERE category = 'all' AND source = 'flow_telemetry'",
        );
        assert!(
            subs[0].parse::<u64>().is_ok_and(|b| b > 0),
            "v{v}: {subs:?}"
        );
        assert_eq!(
            users[0], subs[0],
            "v{v}: user_minute volume vs flow_telemetry"
        );
        assert_eq!(users[1], "1");
        assert!(err.contains("malformed: 0"), "v{v}: {err}");
        assert!(
            err.contains("0 data sets of unknown templates"),
            "v{v}: {err}"
        );
        eprintln!(
            "softflowd -v {v}: cemflow = nfdump = {flows} flows, {bytes} bytes, {packets} packets"
        );
    }
}
