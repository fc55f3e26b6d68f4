//! `cemflow report`: a complaints batch as `report.csv` and a self-contained `report.html`,
//! rendered in headless Chromium when Debian's `chromium` is installed.

use crate::util::bin;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "test-pseudonym-key";
const VERDICTS: [&str; 6] = [
    "no_fault_found",
    "home",
    "access",
    "core",
    "server",
    "inconclusive",
];
const CHROMIUM: &str = "/usr/bin/chromium";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("cemflow runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Synthesises and ingests a small lake with an access fault; returns the complaints
/// written from the truth's `expected` users (id, user).
fn lake_and_complaints(dir: &Path) -> Vec<(String, String)> {
    let (cap, topo, truth) = (
        dir.join("in.pcap"),
        dir.join("topo.csv"),
        dir.join("truth.json"),
    );
    run(Command::new(bin())
        .args(["synth", "--users", "24", "--minutes", "6", "--seed", "3"])
        .args(["--faults", "access:olt2:congestion@1-6m", "--truth"])
        .arg(&truth)
        .arg("--out")
        .arg(&cap)
        .arg("--topology")
        .arg(&topo));
    run(Command::new(bin())
        .env("CEMFLOW_PSEUDO_KEY", KEY)
        .arg("ingest")
        .arg(&cap)
        .arg("--topology")
        .arg(&topo)
        .args(["--no-progress", "--lake"])
        .arg(dir.join("lake")));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).expect("truth")).expect("json");
    let expected = t["expected"].as_array().expect("expected[]");
    assert!(!expected.is_empty());
    let mut csv = String::from("complaint_id,user,reported_at\n");
    let mut out = Vec::new();
    for (i, e) in expected.iter().enumerate() {
        // An id that needs HTML escaping, to check the page escapes text.
        let id = format!("CMP-{i}<&>");
        let user = e["user"].as_str().expect("user").to_string();
        csv.push_str(&format!("\"{id}\",{user},{}\n", e["at"]));
        out.push((id, user));
    }
    std::fs::write(dir.join("complaints.csv"), csv).expect("write complaints");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Runs headless Chromium on `html` and returns the DOM it rendered (`None` when
/// Chromium is not installed).
fn chromium_dom(html: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return None;
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).expect("read DOM");
        s
    });
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(st.success(), "chromium failed: {st}");
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(reader.join().expect("reader"))
}

#[test]
fn report_writes_csv_and_self_contained_html() {
    let dir = tempfile::tempdir().expect("tmp");
    let complaints = lake_and_complaints(dir.path());
    let out = dir.path().join("out");
    let stderr = run(Command::new(bin())
        .env("CEMFLOW_PSEUDO_KEY", KEY)
        .arg("report")
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .arg("--complaints")
        .arg(dir.path().join("complaints.csv"))
        .arg("--topology")
        .arg(dir.path().join("topo.csv"))
        .arg("--out")
        .arg(&out));
    assert!(stderr.contains("report.html"), "{stderr}");

    // report.csv: one row per complaint, in order, with a valid verdict.
    let mut rdr = csv::Reader::from_path(out.join("report.csv")).expect("report.csv");
    let headers = rdr.headers().expect("headers").clone();
    let col = |n: &str| headers.iter().position(|h| h == n).expect(n);
    let (ci, ui, vi, ti) = (
        col("complaint_id"),
        col("user"),
        col("verdict"),
        col("reported_at"),
    );
    col("confidence");
    col("element");
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), complaints.len());
    let mut verdicts = Vec::new();
    for (r, (id, user)) in rows.iter().zip(&complaints) {
        assert_eq!(&r[ci], id);
        assert_eq!(&r[ui], user);
        assert!(r[ti].ends_with('Z'), "{:?}", &r[ti]);
        assert!(VERDICTS.contains(&&r[vi]), "{:?}", &r[vi]);
        verdicts.push(r[vi].to_string());
    }

    // report.html: every complaint id (escaped), charts, no external resources.
    let html_path = out.join("report.html");
    let html = std::fs::read_to_string(&html_path).expect("report.html");
    for (id, _) in &complaints {
        assert!(html.contains(&escape(id)), "{id} missing");
        assert!(!html.contains(id.as_str()), "{id} not escaped");
    }
    assert!(html.contains("<svg"));
    for bad in [
        "<script src",
        "<link",
        "<img",
        "https://",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(bad), "external resource: {bad}");
    }

    // The rendered page: one verdict row per complaint, with its id and verdict.
    let Some(dom) = chromium_dom(&html_path) else {
        eprintln!(
            "skipping the browser check: {CHROMIUM} is not installed (apt-get install chromium)"
        );
        return;
    };
    let rows: Vec<&str> = dom
        .split("<tr class=\"verdict-row\"")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(""))
        .collect();
    assert_eq!(rows.len(), complaints.len(), "verdict rows in the DOM");
    for (row, ((id, user), v)) in rows.iter().zip(complaints.iter().zip(&verdicts)) {
        assert!(row.contains(&escape(id)), "{id} not in {row}");
        assert!(row.contains(user.as_str()), "{user} not in {row}");
        assert!(
            row.contains(&format!("data-verdict=\"{v}\"")),
            "{v} not in {row}"
        );
    }
    assert!(dom.contains("<svg"), "no SVG in the rendered DOM");
}
