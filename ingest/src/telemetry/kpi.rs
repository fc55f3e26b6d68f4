//! Element KPI files: `ts,element_id,metric,value` as CSV (header optional; with a header
//! the columns are found by name and others ignored) or JSON Lines (one object per line
//! with those keys). `ts` is RFC 3339 or epoch seconds (integer or fractional); samples are
//! snapped down to the minute grid, and several samples of one element and metric in the
//! same minute are averaged. A bad line is reported by its line number and skipped; the
//! good lines are kept.

use std::collections::BTreeMap;
use std::path::Path;

/// Grid step, seconds.
pub const MINUTE_S: i64 = 60;

/// Latest accepted epoch second (year 9999): larger values are likely milliseconds.
const MAX_EPOCH_S: f64 = 253_402_300_799.0;

/// Errors reading a KPI file (bad lines are not errors, see [`KpiFile::bad`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KpiError {
    /// The file could not be read.
    #[error("{path}: cannot read KPI file: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// One KPI value on the minute grid.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiSample {
    /// Minute start, epoch seconds.
    pub minute_s: i64,
    /// Element id (as in the topology).
    pub element_id: String,
    /// Metric name.
    pub metric: String,
    /// Mean of the file's samples of this element and metric in this minute.
    pub value: f64,
}

/// A rejected line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KpiBadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for KpiBadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The content of one KPI file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KpiFile {
    /// Samples on the minute grid, sorted by (minute, element, metric).
    pub samples: Vec<KpiSample>,
    /// Data lines accepted (before averaging).
    pub good_lines: usize,
    /// Rejected lines, in file order.
    pub bad: Vec<KpiBadLine>,
}

/// File format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KpiFormat {
    /// Comma-separated values.
    Csv,
    /// JSON Lines.
    Jsonl,
}

impl KpiFormat {
    /// By extension (`.jsonl`, `.ndjson`, `.json` → JSON Lines, else CSV), or, for other
    /// extensions, by the first non-blank character of `text` (`{` → JSON Lines).
    pub fn detect(path: &Path, text: &str) -> KpiFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if matches!(e.as_str(), "jsonl" | "ndjson" | "json") => KpiFormat::Jsonl,
            Some(e) if matches!(e.as_str(), "csv" | "tsv" | "txt") => KpiFormat::Csv,
            _ if text.trim_start().starts_with('{') => KpiFormat::Jsonl,
            _ => KpiFormat::Csv,
        }
    }
}

/// True for files a KPI directory holds (`.csv`, `.jsonl`, `.ndjson`, `.json`).
pub fn is_kpi_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .is_some_and(|e| matches!(e.as_str(), "csv" | "jsonl" | "ndjson" | "json"))
}

/// Reads and parses a KPI file.
pub fn read_kpi_file(path: &Path) -> Result<KpiFile, KpiError> {
    let bytes = std::fs::read(path).map_err(|source| KpiError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(parse_kpi(&text, KpiFormat::detect(path, &text)))
}

/// Parses KPI text.
pub fn parse_kpi(text: &str, format: KpiFormat) -> KpiFile {
    let mut acc = Accumulator::default();
    let mut bad = Vec::new();
    match format {
        KpiFormat::Csv => parse_csv(text, &mut acc, &mut bad),
        KpiFormat::Jsonl => {
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() {
                    continue;
                }
                match json_line(l) {
                    Ok(s) => acc.add(s),
                    Err(reason) => bad.push(KpiBadLine {
                        line: i + 1,
                        reason,
                    }),
                }
            }
        }
    }
    KpiFile {
        good_lines: acc.lines,
        samples: acc.finish(),
        bad,
    }
}

/// One accepted line before snapping.
struct RawSample {
    ts_s: f64,
    element_id: String,
    metric: String,
    value: f64,
}

#[derive(Default)]
struct Accumulator {
    sums: BTreeMap<(i64, String, String), (f64, u32)>,
    lines: usize,
}

impl Accumulator {
    fn add(&mut self, s: RawSample) {
        self.lines += 1;
        let minute = (s.ts_s.floor() as i64).div_euclid(MINUTE_S) * MINUTE_S;
        let e = self
            .sums
            .entry((minute, s.element_id, s.metric))
            .or_insert((0.0, 0));
        e.0 += s.value;
        e.1 += 1;
    }

    fn finish(self) -> Vec<KpiSample> {
        self.sums
            .into_iter()
            .map(|((minute_s, element_id, metric), (sum, n))| KpiSample {
                minute_s,
                element_id,
                metric,
                value: sum / f64::from(n.max(1)),
            })
            .collect()
    }
}

const COLUMNS: [&str; 4] = ["ts", "element_id", "metric", "value"];

fn parse_csv(text: &str, acc: &mut Accumulator, bad: &mut Vec<KpiBadLine>) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    // Column index of ts, element_id, metric, value (positional until a header says so).
    let mut cols = [0usize, 1, 2, 3];
    let mut first = true;
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                bad.push(KpiBadLine {
                    line,
                    reason: format!("unreadable CSV: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if first {
            first = false;
            let names: Vec<String> = rec.iter().map(str::to_ascii_lowercase).collect();
            if names.iter().any(|n| n == "ts" || n == "element_id") {
                for (k, want) in COLUMNS.iter().enumerate() {
                    match names.iter().position(|n| n == want) {
                        Some(i) => cols[k] = i,
                        None => {
                            bad.push(KpiBadLine {
                                line,
                                reason: format!(
                                    "header has no `{want}` column (expected ts,element_id,metric,value)"
                                ),
                            });
                            return;
                        }
                    }
                }
                continue;
            }
        }
        let get = |k: usize| rec.get(cols[k]).unwrap_or("");
        match csv_sample(get(0), get(1), get(2), get(3)) {
            Ok(s) => acc.add(s),
            Err(reason) => bad.push(KpiBadLine { line, reason }),
        }
    }
}

fn csv_sample(ts: &str, element: &str, metric: &str, value: &str) -> Result<RawSample, String> {
    let ts_s = parse_ts(ts)?;
    let (element_id, metric) = names(element, metric)?;
    let value = parse_value(value)?;
    Ok(RawSample {
        ts_s,
        element_id,
        metric,
        value,
    })
}

fn json_line(l: &str) -> Result<RawSample, String> {
    let v: serde_json::Value = serde_json::from_str(l).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let ts_s = match obj.get("ts") {
        Some(serde_json::Value::String(s)) => parse_ts(s)?,
        Some(serde_json::Value::Number(n)) => epoch(n.as_f64().ok_or("ts is not a number")?)?,
        Some(_) => return Err("ts must be an RFC 3339 string or epoch seconds".into()),
        None => return Err("missing `ts`".into()),
    };
    let text = |k: &str| -> Result<String, String> {
        match obj.get(k) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            Some(_) => Err(format!("`{k}` must be a string")),
            None => Err(format!("missing `{k}`")),
        }
    };
    let (element_id, metric) = names(&text("element_id")?, &text("metric")?)?;
    let value = match obj.get("value") {
        Some(serde_json::Value::Number(n)) => n.as_f64().ok_or("value is not a number")?,
        Some(serde_json::Value::String(s)) => parse_value(s)?,
        Some(_) => return Err("value must be a number".into()),
        None => return Err("missing `value`".into()),
    };
    if !value.is_finite() {
        return Err("value is not finite".into());
    }
    Ok(RawSample {
        ts_s,
        element_id,
        metric,
        value,
    })
}

fn names(element: &str, metric: &str) -> Result<(String, String), String> {
    let (e, m) = (element.trim(), metric.trim());
    if e.is_empty() {
        return Err("empty element_id".into());
    }
    if m.is_empty() {
        return Err("empty metric".into());
    }
    Ok((e.to_string(), m.to_string()))
}

fn parse_value(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("value `{s}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("value `{s}` is not finite"));
    }
    Ok(v)
}

/// RFC 3339 or epoch seconds → epoch seconds.
fn parse_ts(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty ts".into());
    }
    if let Ok(x) = s.parse::<f64>() {
        return epoch(x);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp() as f64 + f64::from(d.timestamp_subsec_micros()) / 1e6)
        .map_err(|e| format!("ts `{s}` is neither RFC 3339 nor epoch seconds: {e}"))
}

fn epoch(x: f64) -> Result<f64, String> {
    if !x.is_finite() || !(0.0..=MAX_EPOCH_S).contains(&x) {
        return Err(format!(
            "ts {x} out of range (epoch seconds expected, not milliseconds)"
        ));
    }
    Ok(x)
}
