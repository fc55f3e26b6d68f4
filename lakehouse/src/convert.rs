//! Rows → Arrow [`RecordBatch`]es in the tables' schemas ([`Table::schema`]).
//!
//! Arrays are built in one pass per column with their length known up front. Unsigned
//! counters are stored as `int64` (saturating at `i64::MAX`, unreachable in practice);
//! `u32` ids (TEIDs, VNIs, AS numbers) as `int64`; `u8`/`u16` codes as `int32`. Partition
//! columns (`date`, `hour`) are derived from the row's main instant in UTC.
//!
//! Conversion never panics: an out-of-range time or an unparsable flow timestamp is a
//! [`LakeError::Row`] naming the table and the row.

use crate::error::LakeError;
use crate::rows::{ComplaintRow, DemarcationRow, FlowTelemetryRow, SubscriberRow, TelemetryRow};
use crate::schema::Table;
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use cemflow_dataflow::{AnomalyRow, ElementMinute, FlowRow, UserMinute};
use std::sync::Arc;

const SECS_PER_DAY: i64 = 86_400;

/// Epoch seconds → epoch microseconds, or an error for instants beyond ±292 000 years.
fn s_to_us(table: Table, row: usize, s: i64) -> Result<i64, LakeError> {
    s.checked_mul(1_000_000).ok_or_else(|| LakeError::Row {
        table: table.name().into(),
        row,
        reason: format!("time {s} s out of range"),
    })
}

/// Epoch milliseconds → epoch microseconds.
fn ms_to_us(table: Table, row: usize, ms: i64) -> Result<i64, LakeError> {
    ms.checked_mul(1_000).ok_or_else(|| LakeError::Row {
        table: table.name().into(),
        row,
        reason: format!("time {ms} ms out of range"),
    })
}

/// UTC day number (days since 1970-01-01) of an instant in µs.
fn day_of_us(table: Table, row: usize, us: i64) -> Result<i32, LakeError> {
    i32::try_from(us.div_euclid(SECS_PER_DAY * 1_000_000)).map_err(|_| LakeError::Row {
        table: table.name().into(),
        row,
        reason: format!("time {us} µs out of the date range"),
    })
}

/// UTC hour of the day (0–23) of an instant in µs.
fn hour_of_us(us: i64) -> i32 {
    (us.div_euclid(3_600_000_000).rem_euclid(24)) as i32
}

fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ts_array(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

fn opt_ts_array(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

fn strs<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

fn opt_strs<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(it.collect::<StringArray>())
}

/// Parses an RFC 3339 timestamp to epoch µs.
pub fn parse_rfc3339_us(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

fn finish(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, LakeError> {
    RecordBatch::try_new(table.schema(), columns).map_err(|e| LakeError::arrow(table.name(), e))
}

/// Window starts (s) → (`window_start` µs, `date`) columns.
fn window_columns(
    table: Table,
    starts: impl ExactSizeIterator<Item = i64>,
) -> Result<(ArrayRef, ArrayRef), LakeError> {
    let n = starts.len();
    let mut ts = Vec::with_capacity(n);
    let mut days = Vec::with_capacity(n);
    for (i, s) in starts.enumerate() {
        let us = s_to_us(table, i, s)?;
        ts.push(us);
        days.push(day_of_us(table, i, us)?);
    }
    Ok((ts_array(ts), Arc::new(Date32Array::from(days))))
}

/// `user_minute` rows → batch.
pub fn user_minute_batch(rows: &[UserMinute]) -> Result<RecordBatch, LakeError> {
    let t = Table::UserMinute;
    let (ws, date) = window_columns(t, rows.iter().map(|r| r.window_start_s))?;
    let f32c = |f: fn(&UserMinute) -> Option<f32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float32Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        ws,
        strs(rows.iter().map(|r| r.user_key.as_str())),
        strs(rows.iter().map(|r| r.category.as_str())),
        strs(rows.iter().map(|r| r.access_element.as_str())),
        strs(rows.iter().map(|r| r.core_element.as_str())),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.flows)),
        )),
        Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.active_s),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| sat(r.bytes_down)),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| sat(r.bytes_up)),
        )),
        f32c(|r| r.throughput_down_mbps),
        f32c(|r| r.rtt_client_ms),
        f32c(|r| r.rtt_server_ms),
        f32c(|r| r.retrans_rate),
        f32c(|r| r.loss_pct),
        f32c(|r| r.jitter_ms),
        f32c(|r| r.txn_ms),
        f32c(|r| r.ttfb_ms),
        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.mos))),
        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.cei))),
        Arc::new(rows.iter().map(|r| Some(r.poor)).collect::<BooleanArray>()),
        opt_strs(rows.iter().map(|r| r.worst_server.as_deref())),
        strs(rows.iter().map(|r| r.source.as_str())),
        date,
    ];
    finish(t, columns)
}

/// `element_minute` rows → batch.
pub fn element_minute_batch(rows: &[ElementMinute]) -> Result<RecordBatch, LakeError> {
    let t = Table::ElementMinute;
    let (ws, date) = window_columns(t, rows.iter().map(|r| r.window_start_s))?;
    let f32c = |f: fn(&ElementMinute) -> Option<f32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float32Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        ws,
        strs(rows.iter().map(|r| r.level.as_str())),
        strs(rows.iter().map(|r| r.element_id.as_str())),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.users)),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.poor_users)),
        )),
        Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.poor_share),
        )),
        Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.cei_mean),
        )),
        Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.cei_p10),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| sat(r.bytes_down)),
        )),
        f32c(|r| r.rtt_client_ms_median),
        f32c(|r| r.rtt_server_ms_median),
        f32c(|r| r.retrans_rate),
        date,
    ];
    finish(t, columns)
}

/// `anomalies` rows → batch.
pub fn anomalies_batch(rows: &[AnomalyRow]) -> Result<RecordBatch, LakeError> {
    let t = Table::Anomalies;
    let (ws, date) = window_columns(t, rows.iter().map(|r| r.window_start_s))?;
    let f64c = |f: fn(&AnomalyRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        ws,
        strs(rows.iter().map(|r| r.entity_kind.as_str())),
        strs(rows.iter().map(|r| r.entity_id.as_str())),
        strs(rows.iter().map(|r| r.metric.as_str())),
        f64c(|r| r.value),
        f64c(|r| r.baseline_median),
        f64c(|r| r.baseline_mad),
        f64c(|r| r.score),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.anomalous))
                .collect::<BooleanArray>(),
        ),
        strs(rows.iter().map(|r| r.baseline.as_str())),
        date,
    ];
    finish(t, columns)
}

/// `flows` rows → batch. `first_ts`/`last_ts` (RFC 3339) become timestamps; partitions
/// `date`/`hour` are those of `first_ts` (the flow's start, as Zeek's `ts`).
pub fn flows_batch(rows: &[FlowRow]) -> Result<RecordBatch, LakeError> {
    let t = Table::Flows;
    let n = rows.len();
    let mut first = Vec::with_capacity(n);
    let mut last = Vec::with_capacity(n);
    let mut days = Vec::with_capacity(n);
    let mut hours = Vec::with_capacity(n);
    for (i, r) in rows.iter().enumerate() {
        let parse = |what: &str, s: &str| {
            parse_rfc3339_us(s).ok_or_else(|| LakeError::Row {
                table: t.name().into(),
                row: i,
                reason: format!("flow {}: {what} {s:?} is not RFC 3339", r.flow_id),
            })
        };
        let f = parse("first_ts", &r.first_ts)?;
        let l = parse("last_ts", &r.last_ts)?;
        first.push(f);
        last.push(l);
        days.push(day_of_us(t, i, f)?);
        hours.push(hour_of_us(f));
    }
    let i32c = |f: fn(&FlowRow) -> Option<i32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int32Array>())
    };
    let i64c = |f: fn(&FlowRow) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int64Array>())
    };
    let u64c = |f: fn(&FlowRow) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| sat(f(r)))))
    };
    let u32c = |f: fn(&FlowRow) -> u32| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(f(r))),
        ))
    };
    let f32c = |f: fn(&FlowRow) -> Option<f32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float32Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        strs(rows.iter().map(|r| r.flow_id.as_str())),
        strs(rows.iter().map(|r| r.user_key.as_str())),
        strs(rows.iter().map(|r| r.access_element.as_str())),
        strs(rows.iter().map(|r| r.core_element.as_str())),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| i32::from(r.l4)),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| i32::from(r.client_port)),
        )),
        strs(rows.iter().map(|r| r.server_ip.as_str())),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| i32::from(r.server_port)),
        )),
        i32c(|r| r.vlan.map(i32::from)),
        opt_strs(rows.iter().map(|r| r.tunnel.as_deref())),
        i64c(|r| r.tunnel_id.map(i64::from)),
        i64c(|r| r.teid_c2s.map(i64::from)),
        i64c(|r| r.teid_s2c.map(i64::from)),
        u64c(|r| r.c2s_pkts),
        u64c(|r| r.c2s_bytes),
        u64c(|r| r.s2c_pkts),
        u64c(|r| r.s2c_bytes),
        u64c(|r| r.c2s_ip_bytes),
        u64c(|r| r.s2c_ip_bytes),
        u64c(|r| r.c2s_payload),
        u64c(|r| r.s2c_payload),
        opt_strs(rows.iter().map(|r| r.l7_proto.as_deref())),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.l7_by_port))
                .collect::<BooleanArray>(),
        ),
        opt_strs(rows.iter().map(|r| r.app.as_deref())),
        strs(rows.iter().map(|r| r.category.as_str())),
        opt_strs(rows.iter().map(|r| r.sni.as_deref())),
        opt_strs(rows.iter().map(|r| r.host.as_deref())),
        opt_strs(rows.iter().map(|r| r.alpn.as_deref())),
        opt_strs(rows.iter().map(|r| r.tls_version.as_deref())),
        opt_strs(rows.iter().map(|r| r.quic_version.as_deref())),
        opt_strs(rows.iter().map(|r| r.http_method.as_deref())),
        i32c(|r| r.http_status.map(i32::from)),
        opt_strs(rows.iter().map(|r| r.dns_query.as_deref())),
        i32c(|r| r.dns_qtype.map(i32::from)),
        i32c(|r| r.dns_rcode.map(i32::from)),
        ts_array(first),
        ts_array(last),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.duration_s),
        )),
        strs(rows.iter().map(|r| r.end_reason.as_str())),
        i32c(|r| r.c2s_tcp_flags.map(i32::from)),
        i32c(|r| r.s2c_tcp_flags.map(i32::from)),
        f32c(|r| r.hs_rtt_client_ms),
        f32c(|r| r.hs_rtt_server_ms),
        f32c(|r| r.rtt_client_ms),
        f32c(|r| r.rtt_server_ms),
        u32c(|r| r.rtt_client_samples),
        u32c(|r| r.rtt_server_samples),
        u32c(|r| r.c2s_retrans),
        u32c(|r| r.s2c_retrans),
        u32c(|r| r.c2s_ooo),
        u32c(|r| r.s2c_ooo),
        u32c(|r| r.c2s_loss_upstream),
        u32c(|r| r.s2c_loss_upstream),
        u32c(|r| r.c2s_loss_downstream),
        u32c(|r| r.s2c_loss_downstream),
        u32c(|r| r.c2s_zero_windows),
        u32c(|r| r.s2c_zero_windows),
        Arc::new(
            rows.iter()
                .map(|r| r.c2s_throughput_mbps)
                .collect::<Float64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.s2c_throughput_mbps)
                .collect::<Float64Array>(),
        ),
        f32c(|r| r.tls_handshake_ms),
        f32c(|r| r.http_ttfb_ms),
        f32c(|r| r.dns_response_ms),
        f32c(|r| r.rtp_loss_pct),
        f32c(|r| r.rtp_jitter_ms),
        Arc::new(Date32Array::from(days)),
        Arc::new(Int32Array::from(hours)),
    ];
    finish(t, columns)
}

/// `telemetry` rows → batch (`date` of `ts`).
pub fn telemetry_batch(rows: &[TelemetryRow]) -> Result<RecordBatch, LakeError> {
    let t = Table::Telemetry;
    let mut ts = Vec::with_capacity(rows.len());
    let mut days = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let us = ms_to_us(t, i, r.ts_ms)?;
        ts.push(us);
        days.push(day_of_us(t, i, us)?);
    }
    let columns: Vec<ArrayRef> = vec![
        ts_array(ts),
        strs(rows.iter().map(|r| r.element_id.as_str())),
        strs(rows.iter().map(|r| r.metric.as_str())),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.value))),
        Arc::new(Date32Array::from(days)),
    ];
    finish(t, columns)
}

/// `flow_telemetry` rows → batch (`date` of the flow start, else of the export time).
pub fn flow_telemetry_batch(rows: &[FlowTelemetryRow]) -> Result<RecordBatch, LakeError> {
    let t = Table::FlowTelemetry;
    let n = rows.len();
    let mut export = Vec::with_capacity(n);
    let mut start = Vec::with_capacity(n);
    let mut end = Vec::with_capacity(n);
    let mut days = Vec::with_capacity(n);
    for (i, r) in rows.iter().enumerate() {
        let e = s_to_us(t, i, r.export_ts_s)?;
        let s = r.flow_start_ms.map(|ms| ms_to_us(t, i, ms)).transpose()?;
        let f = r.flow_end_ms.map(|ms| ms_to_us(t, i, ms)).transpose()?;
        export.push(e);
        start.push(s);
        end.push(f);
        days.push(day_of_us(t, i, s.unwrap_or(e))?);
    }
    let i32c = |f: fn(&FlowTelemetryRow) -> Option<i32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int32Array>())
    };
    let i64c = |f: fn(&FlowTelemetryRow) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        strs(rows.iter().map(|r| r.exporter.as_str())),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.domain)),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| i32::from(r.version)),
        )),
        ts_array(export),
        opt_ts_array(start),
        opt_ts_array(end),
        opt_strs(rows.iter().map(|r| r.src_addr.as_deref())),
        opt_strs(rows.iter().map(|r| r.src_user_key.as_deref())),
        opt_strs(rows.iter().map(|r| r.dst_addr.as_deref())),
        opt_strs(rows.iter().map(|r| r.dst_user_key.as_deref())),
        i32c(|r| r.src_port.map(i32::from)),
        i32c(|r| r.dst_port.map(i32::from)),
        i32c(|r| r.l4.map(i32::from)),
        i64c(|r| r.bytes.map(sat)),
        i64c(|r| r.packets.map(sat)),
        i32c(|r| r.tcp_flags.map(i32::from)),
        i32c(|r| r.tos.map(i32::from)),
        i64c(|r| r.input_if.map(i64::from)),
        i64c(|r| r.output_if.map(i64::from)),
        i32c(|r| r.vlan.map(i32::from)),
        i64c(|r| r.src_as.map(i64::from)),
        i64c(|r| r.dst_as.map(i64::from)),
        i32c(|r| r.direction.map(i32::from)),
        opt_strs(rows.iter().map(|r| r.enterprise.as_deref())),
        Arc::new(Date32Array::from(days)),
    ];
    finish(t, columns)
}

/// `subscribers` rows → batch, `loaded_at` = `loaded_at_s` for every row.
pub fn subscribers_batch(
    rows: &[SubscriberRow],
    loaded_at_s: i64,
) -> Result<RecordBatch, LakeError> {
    let t = Table::Subscribers;
    let loaded = s_to_us(t, 0, loaded_at_s)?;
    let columns: Vec<ArrayRef> = vec![
        strs(rows.iter().map(|r| r.user_key.as_str())),
        strs(rows.iter().map(|r| r.user_kind.as_str())),
        strs(rows.iter().map(|r| r.access_element.as_str())),
        strs(rows.iter().map(|r| r.core_element.as_str())),
        opt_strs(rows.iter().map(|r| r.region.as_deref())),
        Arc::new(rows.iter().map(|r| r.plan_mbps).collect::<Float64Array>()),
        opt_ts_array(
            rows.iter()
                .enumerate()
                .map(|(i, r)| r.valid_from_s.map(|s| s_to_us(t, i, s)).transpose())
                .collect::<Result<_, _>>()?,
        ),
        opt_ts_array(
            rows.iter()
                .enumerate()
                .map(|(i, r)| r.valid_to_s.map(|s| s_to_us(t, i, s)).transpose())
                .collect::<Result<_, _>>()?,
        ),
        ts_array(vec![loaded; rows.len()]),
    ];
    finish(t, columns)
}

/// `complaints` rows → batch (`date` of `reported_at`), `loaded_at` = `loaded_at_s`.
pub fn complaints_batch(rows: &[ComplaintRow], loaded_at_s: i64) -> Result<RecordBatch, LakeError> {
    let t = Table::Complaints;
    let loaded = s_to_us(t, 0, loaded_at_s)?;
    let mut rep = Vec::with_capacity(rows.len());
    let mut days = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let us = s_to_us(t, i, r.reported_at_s)?;
        rep.push(us);
        days.push(day_of_us(t, i, us)?);
    }
    let columns: Vec<ArrayRef> = vec![
        strs(rows.iter().map(|r| r.complaint_id.as_str())),
        strs(rows.iter().map(|r| r.user_key.as_str())),
        ts_array(rep),
        opt_strs(rows.iter().map(|r| r.service.as_deref())),
        opt_strs(rows.iter().map(|r| r.text.as_deref())),
        ts_array(vec![loaded; rows.len()]),
        Arc::new(Date32Array::from(days)),
    ];
    finish(t, columns)
}

/// `demarcations` rows → batch (`date` of `window_end`); `evidence` is stored as JSON text.
pub fn demarcations_batch(rows: &[DemarcationRow]) -> Result<RecordBatch, LakeError> {
    let t = Table::Demarcations;
    let n = rows.len();
    let mut ws = Vec::with_capacity(n);
    let mut we = Vec::with_capacity(n);
    let mut ev = Vec::with_capacity(n);
    let mut days = Vec::with_capacity(n);
    for (i, r) in rows.iter().enumerate() {
        ws.push(s_to_us(t, i, r.window_start_s)?);
        let end = s_to_us(t, i, r.window_end_s)?;
        we.push(end);
        ev.push(s_to_us(t, i, r.evaluated_at_s)?);
        days.push(day_of_us(t, i, end)?);
    }
    let evidence: Vec<String> = rows.iter().map(|r| r.evidence.to_string()).collect();
    let columns: Vec<ArrayRef> = vec![
        opt_strs(rows.iter().map(|r| r.complaint_id.as_deref())),
        strs(rows.iter().map(|r| r.user_key.as_str())),
        ts_array(ws),
        ts_array(we),
        strs(rows.iter().map(|r| r.verdict.as_str())),
        opt_strs(rows.iter().map(|r| r.element.as_deref())),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.confidence),
        )),
        strs(evidence.iter().map(String::as_str)),
        ts_array(ev),
        Arc::new(Date32Array::from(days)),
    ];
    finish(t, columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    #[test]
    fn partitions_from_instants() {
        let us = parse_rfc3339_us("2024-03-05T13:59:59.999999Z").unwrap();
        assert_eq!(hour_of_us(us), 13);
        assert_eq!(day_of_us(Table::Flows, 0, us).unwrap(), 19_787);
        assert_eq!(day_of_us(Table::Flows, 0, -1).unwrap(), -1);
        assert_eq!(hour_of_us(-1), 23);
        assert!(s_to_us(Table::UserMinute, 3, i64::MAX).is_err());
    }

    #[test]
    fn telemetry_rows_convert() {
        let rows = vec![TelemetryRow {
            ts_ms: 1_700_000_040_000,
            element_id: "olt1/pon3".into(),
            metric: "pon_util_pct".into(),
            value: 87.5,
        }];
        let b = telemetry_batch(&rows).unwrap();
        assert_eq!(b.num_rows(), 1);
        let ts = b
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), 1_700_000_040_000_000);
        assert!(!ts.is_null(0));
    }
}
