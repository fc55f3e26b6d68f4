//! `cemflow serve`: the lake over the PostgreSQL wire protocol, queried with real `psql`
//! and psycopg2; SCRAM password authentication; no unauthenticated non-loopback server.

use crate::util::{bin, cemflow};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "test-pseudonym-key";
const USER: &str = "analyst";
const PASSWORD: &str = "s3cret-pw";
const PW_VAR: &str = "CEMFLOW_TEST_PG_PASSWORD";

/// Queries whose results must be identical over the wire and from `cemflow sql`.
const QUERIES: [&str; 2] = [
    "SELECT count(*) FROM user_minute",
    "SELECT user_key, category, flows, bytes_down FROM user_minute \
     ORDER BY user_key, category, window_start",
];

/// Kills the server when the test ends, also on failure.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn small_lake(dir: &Path) -> PathBuf {
    let cap = dir.join("in.pcap");
    let out = cemflow(&[
        "synth",
        "--users",
        "10",
        "--minutes",
        "2",
        "--out",
        &cap.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lake = dir.join("lake");
    let out = Command::new(bin())
        .env("CEMFLOW_PSEUDO_KEY", KEY)
        .args([
            "ingest",
            &cap.display().to_string(),
            "--no-progress",
            "--lake",
        ])
        .arg(&lake)
        .output()
        .expect("ingest runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lake
}

/// Starts `cemflow serve` on a free loopback port (random high ports, retried when taken)
/// and waits until it accepts connections.
fn start_server(lake: &Path) -> (ServerGuard, u16) {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for attempt in 0..20u64 {
        let port = 20000 + ((seed.wrapping_mul(2654435761) + attempt * 7919) % 40000) as u16;
        let child = Command::new(bin())
            .env(PW_VAR, PASSWORD)
            .arg("serve")
            .arg("--lake")
            .arg(lake)
            .args(["--pg", &format!("127.0.0.1:{port}")])
            .args(["--user", USER, "--password-env", PW_VAR])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cemflow serve starts");
        let mut guard = ServerGuard(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = guard.0.try_wait() {
                break; // exited: most likely the port was taken; try another one
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // Someone else may own this port: make sure our server is still alive.
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(None) = guard.0.try_wait() {
                    return (guard, port);
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cemflow serve did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free port found for cemflow serve");
}

fn psql(port: u16, password: &str, sql: &str) -> Output {
    Command::new("psql")
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
        .args(["-d", "datafusion", "-X", "-v", "ON_ERROR_STOP=1"])
        .args([
            "--no-align",
            "--tuples-only",
            "--field-separator=,",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs")
}

/// `cemflow sql -e SQL --format csv` rows, header dropped.
fn sql_rows(lake: &Path, sql: &str) -> Vec<String> {
    let out = cemflow(&[
        "sql",
        "--lake",
        &lake.display().to_string(),
        "-e",
        sql,
        "--format",
        "csv",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn have_psql() -> bool {
    Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The venv's python when it has psycopg2.
fn psycopg2_python() -> Option<PathBuf> {
    let py = PathBuf::from(std::env::var_os("HOME")?).join(".cache/cemflow-venv/bin/python");
    Command::new(&py)
        .args(["-c", "import psycopg2"])
        .output()
        .ok()?
        .status
        .success()
        .then_some(py)
}

const PSYCOPG2_SCRIPT: &str = r#"
import sys, psycopg2
port, user, password, sql = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
try:
    psycopg2.connect(host="127.0.0.1", port=port, user=user, password="wrong", dbname="datafusion", connect_timeout=10)
    print("WRONG PASSWORD ACCEPTED")
    sys.exit(1)
except psycopg2.OperationalError:
    pass
conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="datafusion", connect_timeout=10)
cur = conn.cursor()
cur.execute(sql)
for row in cur.fetchall():
    print(",".join(str(v) for v in row))
conn.close()
"#;

#[test]
fn serve_answers_psql_and_psycopg2_with_password_auth() {
    if !have_psql() {
        eprintln!("SKIPPED serve test: psql not found (apt-get install postgresql-client)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let lake = small_lake(dir.path());
    let (_server, port) = start_server(&lake);

    for sql in QUERIES {
        let expected = sql_rows(&lake, sql);
        assert!(!expected.is_empty(), "{sql}");
        let out = psql(port, PASSWORD, sql);
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines(&out.stdout), expected, "psql: {sql}");
    }
    let count: u64 = sql_rows(&lake, QUERIES[0])[0].parse().expect("a count");
    assert!(count > 0);

    // A wrong password and an unknown user are refused.
    let out = psql(port, "not-the-password", QUERIES[0]);
    assert!(!out.status.success(), "wrong password accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authentication failed"), "{err}");
    let out = Command::new("psql")
        .env("PGPASSWORD", PASSWORD)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "someone-else",
        ])
        .args(["-d", "datafusion", "-X", "-c", "SELECT 1"])
        .output()
        .expect("psql runs");
    assert!(!out.status.success(), "unknown user accepted");

    // psycopg2 (libpq, extended protocol): same rows; wrong password refused.
    match psycopg2_python() {
        None => eprintln!(
            "psycopg2 part SKIPPED: no psycopg2 in $HOME/.cache/cemflow-venv (.ci/run installs it)"
        ),
        Some(py) => {
            let sql = QUERIES[1];
            let out = Command::new(py)
                .args([
                    "-c",
                    PSYCOPG2_SCRIPT,
                    &port.to_string(),
                    USER,
                    PASSWORD,
                    sql,
                ])
                .output()
                .expect("python runs");
            assert!(
                out.status.success(),
                "psycopg2: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(lines(&out.stdout), sql_rows(&lake, sql), "psycopg2: {sql}");
        }
    }
}

#[test]
fn serve_refuses_non_loopback_without_credentials() {
    let lake = tempfile::tempdir().expect("tmp");
    let lake = lake.path().display().to_string();
    let out = cemflow(&["serve", "--lake", &lake, "--pg", "0.0.0.0:55432"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without authentication"), "{err}");

    // Credentials must come from a set environment variable.
    let out = Command::new(bin())
        .env_remove("CEMFLOW_TEST_UNSET_PW")
        .args(["serve", "--lake", &lake, "--pg", "0.0.0.0:55432"])
        .args(["--user", "u", "--password-env", "CEMFLOW_TEST_UNSET_PW"])
        .output()
        .expect("cemflow runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CEMFLOW_TEST_UNSET_PW"), "{err}");
}
