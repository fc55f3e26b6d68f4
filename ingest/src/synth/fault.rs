//! Fault specifications: `LEVEL:ELEMENT:KIND[@START-END]`, e.g.
//! `access:olt2:congestion@5-12m` or `server:video.example:slow@480-900s`.

use std::fmt;
use std::str::FromStr;

/// Where a fault sits (SPEC §1 element levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultLevel {
    /// One user's CPE / Wi-Fi / terminal (client leg of one user).
    Home,
    /// An access element (OLT/PON port, cell): client leg of every user behind it.
    Access,
    /// A core element (BNG/UPF): server leg of every user under it, towards every server.
    Core,
    /// A content server prefix: server leg and server behaviour for all its users.
    Server,
}

impl FaultLevel {
    /// Lower-case name, as in truth.json and demarcation verdicts.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultLevel::Home => "home",
            FaultLevel::Access => "access",
            FaultLevel::Core => "core",
            FaultLevel::Server => "server",
        }
    }
}

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Saturation: large queueing delay (bufferbloat), a throughput cap, a little loss.
    Congestion,
    /// Packet loss (TCP retransmissions, RTP/gaming sequence gaps).
    Loss,
    /// Added latency and jitter.
    Delay,
    /// A slow server: long time to first byte, added delay, low throughput.
    Slow,
}

impl FaultKind {
    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Congestion => "congestion",
            FaultKind::Loss => "loss",
            FaultKind::Delay => "delay",
            FaultKind::Slow => "slow",
        }
    }
}

/// One injected fault. Times are offsets in seconds from the start of the capture; `end_s`
/// `None` means until the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpec {
    /// Level of the faulty element.
    pub level: FaultLevel,
    /// Element name as generated: `oltN` (access, 1-based), `bngN` (core), a server's SNI,
    /// service (app) name, IP, prefix, `srvN` or `CATEGORY.example` (the first server of
    /// that category), or for home a user IP or `homeN`.
    pub element: String,
    /// Kind of fault.
    pub kind: FaultKind,
    /// Start, seconds after the capture start.
    pub start_s: u64,
    /// End (exclusive), seconds after the capture start; `None` = end of the capture.
    pub end_s: Option<u64>,
}

/// Why a fault specification was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault spec {spec:?}: {reason} (expected LEVEL:ELEMENT:KIND[@START-END], e.g. access:olt2:congestion@5-12m; levels home|access|core|server, kinds congestion|loss|delay|slow)")]
pub struct FaultParseError {
    /// The offending text.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FaultSpec {
    /// Parses one fault, e.g. `access:olt2:congestion@5-12m`, `core:bng1:loss@300-600s`,
    /// `home:198.18.0.7:loss@2m-9m`, `server:video.example:slow` (whole capture).
    pub fn parse(s: &str) -> Result<FaultSpec, FaultParseError> {
        let err = |reason: String| FaultParseError {
            spec: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (what, when) = match t.split_once('@') {
            Some((a, b)) => (a, Some(b)),
            None => (t, None),
        };
        let Some((level, rest)) = what.split_once(':') else {
            return Err(err("missing ':' separators".into()));
        };
        let Some((element, kind)) = rest.rsplit_once(':') else {
            return Err(err("missing the KIND part".into()));
        };
        let level = match level.trim().to_ascii_lowercase().as_str() {
            "home" => FaultLevel::Home,
            "access" => FaultLevel::Access,
            "core" => FaultLevel::Core,
            "server" => FaultLevel::Server,
            other => return Err(err(format!("unknown level {other:?}"))),
        };
        let kind = match kind.trim().to_ascii_lowercase().as_str() {
            "congestion" | "congested" => FaultKind::Congestion,
            "loss" | "lossy" => FaultKind::Loss,
            "delay" | "latency" => FaultKind::Delay,
            "slow" => FaultKind::Slow,
            other => return Err(err(format!("unknown kind {other:?}"))),
        };
        let element = element.trim();
        if element.is_empty() {
            return Err(err("empty element name".into()));
        }
        let (start_s, end_s) = match when {
            None => (0, None),
            Some(w) => parse_window(w).map_err(err)?,
        };
        Ok(FaultSpec {
            level,
            element: element.to_string(),
            kind,
            start_s,
            end_s,
        })
    }

    /// Parses a comma-separated list of faults (empty string → no fault).
    pub fn parse_list(s: &str) -> Result<Vec<FaultSpec>, FaultParseError> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(FaultSpec::parse)
            .collect()
    }
}

impl FromStr for FaultSpec {
    type Err = FaultParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultSpec::parse(s)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}@{}-",
            self.level.as_str(),
            self.element,
            self.kind.as_str(),
            self.start_s
        )?;
        match self.end_s {
            Some(e) => write!(f, "{e}s"),
            None => f.write_str("end"),
        }
    }
}

/// `5-12m`, `5m-12m`, `300-720s`, `5-12` (minutes), `5m-` / `5-end` (until the end).
fn parse_window(w: &str) -> Result<(u64, Option<u64>), String> {
    let w = w.trim();
    let Some((a, b)) = w.split_once('-') else {
        return Err(format!("time window {w:?} needs START-END"));
    };
    let default_unit = match b.trim().chars().last() {
        Some('s') => 1,
        Some('h') => 3600,
        _ => 60,
    };
    let start =
        parse_time(a, default_unit)?.ok_or_else(|| format!("time window {w:?} has no start"))?;
    let end = parse_time(b, default_unit)?;
    if let Some(e) = end {
        if e <= start {
            return Err(format!("time window {w:?} ends before it starts"));
        }
    }
    Ok((start, end))
}

fn parse_time(t: &str, default_unit: u64) -> Result<Option<u64>, String> {
    let t = t.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("end") {
        return Ok(None);
    }
    let (num, unit) = match t.as_bytes()[t.len() - 1] {
        b's' => (&t[..t.len() - 1], 1),
        b'm' => (&t[..t.len() - 1], 60),
        b'h' => (&t[..t.len() - 1], 3600),
        _ => (t, default_unit),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad time {t:?} (a number with unit s, m or h)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("bad time {t:?}"));
    }
    Ok(Some((v * unit as f64).round() as u64))
}
