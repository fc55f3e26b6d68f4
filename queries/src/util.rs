//! Small helpers: time and duration parsing, RFC 3339 formatting, SQL literals and
//! Arrow column extraction.

use crate::error::{QueryError, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

/// Parses an instant: RFC 3339 (`2024-05-01T10:00:00Z`, offsets allowed), a naive
/// `YYYY-MM-DD[T ]HH:MM[:SS]` taken as UTC, or epoch seconds. Returns epoch seconds.
pub fn parse_time(s: &str) -> Result<i64> {
    let t = s.trim();
    if t.is_empty() {
        return Err(QueryError::Input("empty time".into()));
    }
    if let Ok(v) = t.parse::<i64>() {
        return Ok(v);
    }
    if let Ok(v) = t.parse::<f64>() {
        if v.is_finite() {
            return Ok(v.floor() as i64);
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc().timestamp());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp());
        }
    }
    Err(QueryError::Input(format!(
        "invalid time `{s}`: expected RFC 3339 (2024-05-01T10:00:00Z) or epoch seconds"
    )))
}

/// Parses a duration: `30m`, `15min`, `1h`, `90s`, or a bare number of minutes. Returns
/// seconds (> 0).
pub fn parse_duration(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| QueryError::Input(format!("invalid duration `{s}` (e.g. 30m, 1h, 90s)")))?;
    let mult = match unit.trim() {
        "" | "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        u => {
            return Err(QueryError::Input(format!(
                "invalid duration `{s}`: unknown unit `{u}` (s, m, h, d)"
            )))
        }
    };
    let secs = (v * mult).round();
    if !(1.0..1e12).contains(&secs) {
        return Err(QueryError::Input(format!(
            "invalid duration `{s}`: must be positive"
        )));
    }
    Ok(secs as i64)
}

/// Epoch seconds as RFC 3339 UTC (`2024-05-01T10:00:00Z`).
pub fn rfc3339(s: i64) -> String {
    match Utc.timestamp_opt(s, 0).single() {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => s.to_string(),
    }
}

/// Epoch seconds as a `YYYY-MM-DD` UTC date (for partition filters).
pub fn date_of(s: i64) -> String {
    match Utc.timestamp_opt(s, 0).single() {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "1970-01-01".into(),
    }
}

/// A SQL string literal (single quotes doubled).
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// SQL predicate restricting `window_start` to `[from_s, to_s]` (inclusive), with the
/// matching `date` partition filter so Delta prunes files.
pub fn window_predicate(from_s: i64, to_s: i64) -> String {
    format!(
        "date >= {} AND date <= {} AND window_start >= {} AND window_start <= {}",
        lit(&date_of(from_s)),
        lit(&date_of(to_s)),
        lit(&rfc3339(from_s)),
        lit(&rfc3339(to_s)),
    )
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let idx = batch.schema().index_of(name).map_err(|e| {
        QueryError::DataFusion(datafusion::error::DataFusionError::ArrowError(
            Box::new(e),
            None,
        ))
    })?;
    let c = batch.column(idx);
    if c.data_type() == to {
        return Ok(c.clone());
    }
    cast(c, to).map_err(|e| {
        QueryError::DataFusion(datafusion::error::DataFusionError::ArrowError(
            Box::new(e),
            Some(format!("column {name}")),
        ))
    })
}

/// A string column (any string type) as owned optional strings.
pub fn col_str(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let a = column(batch, name, &DataType::Utf8)?;
    let a = a
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| QueryError::Input(format!("column {name} is not text")))?;
    Ok(a.iter().map(|v| v.map(str::to_string)).collect())
}

/// A text column as an Arrow string array (values read in place, no copy per row).
pub fn col_text(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let a = column(batch, name, &DataType::Utf8)?;
    a.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| QueryError::Input(format!("column {name} is not text")))
}

/// A numeric column as optional `f64` (NaN kept).
pub fn col_f64(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>> {
    let a = column(batch, name, &DataType::Float64)?;
    let a = a
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| QueryError::Input(format!("column {name} is not numeric")))?;
    Ok(a.iter().collect())
}

/// A boolean column.
pub fn col_bool(batch: &RecordBatch, name: &str) -> Result<Vec<Option<bool>>> {
    let a = column(batch, name, &DataType::Boolean)?;
    let a = a
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| QueryError::Input(format!("column {name} is not boolean")))?;
    Ok(a.iter().collect())
}

/// A timestamp column as epoch seconds (floor).
pub fn col_ts_s(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let a = column(
        batch,
        name,
        &DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ),
    )?;
    let a = cast(&a, &DataType::Int64).map_err(|e| {
        QueryError::DataFusion(datafusion::error::DataFusionError::ArrowError(
            Box::new(e),
            None,
        ))
    })?;
    let a = a
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| QueryError::Input(format!("column {name} is not a timestamp")))?;
    Ok(a.iter()
        .map(|v| v.map(|us| us.div_euclid(1_000_000)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1714557600").unwrap(), 1714557600);
        assert_eq!(parse_time("2024-05-01T10:00:00Z").unwrap(), 1714557600);
        assert_eq!(parse_time("2024-05-01T12:00:00+02:00").unwrap(), 1714557600);
        assert_eq!(parse_time("2024-05-01 10:00").unwrap(), 1714557600);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert_eq!(parse_duration("15").unwrap(), 900);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(rfc3339(1714557600), "2024-05-01T10:00:00Z");
        assert_eq!(lit("a'b"), "'a''b'");
    }
}
