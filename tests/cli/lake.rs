//! `cemflow lake` maintenance and object storage.
//!
//! * `optimize` compacts the small files of an ingested lake (one per partition and
//!   commit) without changing any row count, and a second run rewrites nothing;
//! * an `s3://` lake on a local S3-compatible server (moto, from the venv
//!   `$HOME/.cache/cemflow-venv`, started on a free loopback port): `ingest`, `lake info`,
//!   `sql -e`, a re-run (exactly once) and `optimize` give the same row counts as a
//!   local-directory lake. Skipped with a message when moto is not installed; fails
//!   instead under `CEMFLOW_REQUIRE_INTEROP=1`.

use crate::util::{bin, jsonl};
use cemflow_lakehouse::{Lake, Table};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "test-pseudonym-key";
const SOURCE: &str = "lake-test";
const BUCKET: &str = "cemflow-test";

fn synth(dir: &Path) -> (PathBuf, PathBuf) {
    let cap = dir.join("in.pcap");
    let topo = dir.join("topo.csv");
    let out = Command::new(bin())
        .args(["synth", "--users", "16", "--minutes", "4", "--seed", "5"])
        .args(["--faults", "access:olt1:congestion@1-3m"])
        .arg("--out")
        .arg(&cap)
        .arg("--topology")
        .arg(&topo)
        .output()
        .expect("synth runs");
    assert!(out.status.success(), "{}", stderr(&out));
    (cap, topo)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `cemflow ARGS` with the pseudonymisation key and `env`; must succeed.
fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(bin());
    c.env("CEMFLOW_PSEUDO_KEY", KEY).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("cemflow runs");
    assert!(
        out.status.success(),
        "cemflow {args:?} failed: {}",
        stderr(&out)
    );
    out
}

fn ingest(cap: &Path, topo: &Path, lake: &str, env: &[(&str, String)]) -> Output {
    run(
        &[
            "ingest",
            &cap.display().to_string(),
            "--topology",
            &topo.display().to_string(),
            "--no-progress",
            "--commit-every",
            "1",
            "--source-id",
            SOURCE,
            "--lake",
            lake,
        ],
        env,
    )
}

/// `lake info` as `table → (rows, files)`.
fn info(lake: &str, env: &[(&str, String)]) -> BTreeMap<String, (u64, u64)> {
    let out = run(&["lake", "info", "--format", "jsonl", "--lake", lake], env);
    jsonl(&out.stdout)
        .into_iter()
        .map(|v| {
            (
                v["table"].as_str().expect("table").to_string(),
                (
                    v["rows"].as_u64().expect("rows"),
                    v["files"].as_u64().expect("files"),
                ),
            )
        })
        .collect()
}

fn rows_of(info: &BTreeMap<String, (u64, u64)>) -> BTreeMap<String, u64> {
    info.iter().map(|(t, (r, _))| (t.clone(), *r)).collect()
}

/// Row counts of the main tables through `cemflow sql -e` (CSV lines).
fn sql_counts(lake: &str, env: &[(&str, String)]) -> Vec<String> {
    let q = "SELECT 'flows', count(*) FROM flows; \
             SELECT 'user_minute', count(*) FROM user_minute; \
             SELECT 'element_minute', count(*) FROM element_minute; \
             SELECT 'poor', count(*) FROM poor_minutes";
    let out = run(&["sql", "--format", "csv", "--lake", lake, "-e", q], env);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.contains("count("))
        .map(str::to_string)
        .collect()
}

#[test]
fn optimize_compacts_an_ingested_lake_without_changing_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cap, topo) = synth(dir.path());
    let lake = dir.path().join("lake").display().to_string();
    ingest(&cap, &topo, &lake, &[]);
    let before = info(&lake, &[]);
    let (um_rows, um_files) = before["user_minute"];
    assert!(um_rows > 0 && um_files >= 4, "{before:?}");

    let out = run(
        &[
            "lake",
            "optimize",
            "--lake",
            &lake,
            "--target-mib",
            "4",
            "--format",
            "jsonl",
        ],
        &[],
    );
    let report = jsonl(&out.stdout);
    let um = report
        .iter()
        .find(|r| r["table"] == "user_minute")
        .expect("user_minute report");
    assert_eq!(um["files_removed"].as_u64(), Some(um_files));
    let after = info(&lake, &[]);
    assert_eq!(rows_of(&after), rows_of(&before));
    // Every partition now has one file (all were far below half the target).
    let l = Lake::open_existing(&lake).expect("lake");
    for t in Table::ALL {
        let files = l.files(t).expect("files");
        let parts: std::collections::BTreeSet<_> = files.iter().map(|f| &f.partition).collect();
        assert_eq!(files.len(), parts.len(), "{t}: {files:?}");
    }

    // Nothing left to do.
    let out = run(
        &["lake", "optimize", "--lake", &lake, "--format", "jsonl"],
        &[],
    );
    for r in jsonl(&out.stdout) {
        assert_eq!(r["files_removed"].as_u64(), Some(0), "{r}");
    }
}

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("CEMFLOW_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/cemflow-venv/bin/python")
}

/// Starts moto, or explains why it can't (`Err`).
fn start_moto() -> Result<Moto, String> {
    let py = python();
    let probe = Command::new(&py)
        .args(["-c", "import moto.server, flask, flask_cors"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            return Err(format!(
                "`{} -c 'import moto.server'` failed; install it: \
                 ~/.cache/cemflow-venv/bin/pip install -r .ci/requirements.txt",
                py.display()
            ))
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let child = Command::new(&py)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting moto: {e}"))?;
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "moto did not listen on 127.0.0.1:{port} within 30 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(moto)
}

/// Creates `bucket` with an (unsigned) `PUT /bucket`, which moto accepts.
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(
        resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"),
        "create bucket: {resp}"
    );
}

#[test]
fn s3_lake_on_a_local_server_matches_a_local_lake() {
    let moto = match start_moto() {
        Ok(m) => m,
        Err(why) => {
            if std::env::var("CEMFLOW_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
                panic!("S3 test needs moto (CEMFLOW_REQUIRE_INTEROP=1): {why}");
            }
            eprintln!("S3 lake test SKIPPED: {why}");
            return;
        }
    };
    create_bucket(moto.port, BUCKET);
    let env: Vec<(&str, String)> = vec![
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", moto.port),
        ),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let (cap, topo) = synth(dir.path());
    let local = dir.path().join("lake").display().to_string();
    let s3 = format!("s3://{BUCKET}/probes/lake");

    ingest(&cap, &topo, &local, &[]);
    ingest(&cap, &topo, &s3, &env);
    let want = info(&local, &[]);
    let got = info(&s3, &env);
    assert_eq!(rows_of(&got), rows_of(&want));
    assert!(got["user_minute"].0 > 0 && got["flows"].0 > 0, "{got:?}");
    assert_eq!(sql_counts(&s3, &env), sql_counts(&local, &[]));

    // Exactly once on S3 too: the re-run commits nothing new.
    ingest(&cap, &topo, &s3, &env);
    assert_eq!(rows_of(&info(&s3, &env)), rows_of(&want));

    // Maintenance works on the object store.
    run(
        &["lake", "optimize", "--lake", &s3, "--target-mib", "4"],
        &env,
    );
    let compacted = info(&s3, &env);
    assert_eq!(rows_of(&compacted), rows_of(&want));
    assert!(
        compacted["user_minute"].1 < got["user_minute"].1,
        "{compacted:?} vs {got:?}"
    );
    run(
        &["lake", "vacuum", "--lake", &s3, "--retention-hours", "0"],
        &env,
    );
    assert_eq!(sql_counts(&s3, &env), sql_counts(&local, &[]));
}
