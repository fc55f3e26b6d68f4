//! Arrow schemas of the lake's tables (SPEC §6), documented column by column in
//! `docs/tables.md`.
//!
//! Conventions:
//! * Instants are `timestamp[µs, UTC]` (Delta `TIMESTAMP`); `window_start` is the start of a
//!   closed window (one minute by default).
//! * Partition columns: `date` (`date32`, UTC day of the row's main instant) on every
//!   windowed or dated table, plus `hour` (`int32`, 0–23 UTC) on `flows`. `subscribers` is
//!   a small dimension and is not partitioned.
//! * Unsigned counters of the pipeline are stored as signed 64-bit integers (Delta and
//!   Spark have no unsigned types), small codes (ports, protocol numbers) as `int32`.
//! * No column holds a raw subscriber IP, IMSI or MSISDN: subscribers appear only as
//!   `user_key` (HMAC pseudonym, SPEC §1). Server addresses are kept.
//!
//! Every table carries `cemflow.schema_version` = [`SCHEMA_VERSION`] and `cemflow.table` in
//! its Delta configuration, and a description naming both.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// Version of the table schemas written by this build, stored in every table's Delta
/// configuration under [`SCHEMA_VERSION_KEY`]. Bump on any incompatible change.
/// History: 2 added `subscribers.valid_from` / `valid_to` (versioned topology); 3 added
/// `user_minute.source` (probe or flow telemetry rows).
pub const SCHEMA_VERSION: u32 = 3;

/// Delta configuration key holding the schema version.
pub const SCHEMA_VERSION_KEY: &str = "cemflow.schema_version";

/// Delta configuration key holding the cemflow table name.
pub const TABLE_NAME_KEY: &str = "cemflow.table";

/// The lake's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per finished flow (client replaced by `user_key`).
    Flows,
    /// One row per (user, window, category), plus the user's `all` row.
    UserMinute,
    /// One row per (element level, element, window).
    ElementMinute,
    /// One row per scored (entity, metric, window).
    Anomalies,
    /// Element KPIs in long form (`ts, element_id, metric, value`).
    Telemetry,
    /// IPFIX / NetFlow v9 flow records, subscriber endpoints pseudonymised.
    FlowTelemetry,
    /// Subscriber dimension from the topology file (pseudonymised).
    Subscribers,
    /// Customer complaints (pseudonymised).
    Complaints,
    /// Demarcation verdicts (SPEC §7, §11).
    Demarcations,
}

impl Table {
    /// Every table, in commit order (fact tables of a window first, dimensions last).
    pub const ALL: [Table; 9] = [
        Table::Flows,
        Table::UserMinute,
        Table::ElementMinute,
        Table::Anomalies,
        Table::Telemetry,
        Table::FlowTelemetry,
        Table::Subscribers,
        Table::Complaints,
        Table::Demarcations,
    ];

    /// The tables written by window commits ([`crate::Lake::commit_window`]), in commit
    /// order.
    pub const WINDOWED: [Table; 6] = [
        Table::Flows,
        Table::UserMinute,
        Table::ElementMinute,
        Table::Anomalies,
        Table::Telemetry,
        Table::FlowTelemetry,
    ];

    /// Table name: the directory under the lake root and the SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Flows => "flows",
            Table::UserMinute => "user_minute",
            Table::ElementMinute => "element_minute",
            Table::Anomalies => "anomalies",
            Table::Telemetry => "telemetry",
            Table::FlowTelemetry => "flow_telemetry",
            Table::Subscribers => "subscribers",
            Table::Complaints => "complaints",
            Table::Demarcations => "demarcations",
        }
    }

    /// The table called `name`, if any.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// True for the tables written by window commits.
    pub fn is_windowed(self) -> bool {
        Table::WINDOWED.contains(&self)
    }

    /// Partition columns (the last columns of the schema).
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            Table::Flows => &["date", "hour"],
            Table::Subscribers => &[],
            _ => &["date"],
        }
    }

    /// One-line description stored in the Delta metadata.
    pub fn description(self) -> String {
        let what = match self {
            Table::Flows => "finished flows, client pseudonymised as user_key",
            Table::UserMinute => "per-user per-window experience (KPIs, MOS, CEI) by category",
            Table::ElementMinute => "per-element per-window aggregates of users' experience",
            Table::Anomalies => "robust z-score anomaly scores per entity, metric and window",
            Table::Telemetry => "element KPIs in long form",
            Table::FlowTelemetry => "IPFIX/NetFlow v9 records, subscriber endpoints pseudonymised",
            Table::Subscribers => "subscriber dimension from the topology file, pseudonymised",
            Table::Complaints => "customer complaints, pseudonymised",
            Table::Demarcations => "complaint demarcation verdicts",
        };
        format!(
            "cemflow {}: {what} ({SCHEMA_VERSION_KEY}={SCHEMA_VERSION})",
            self.name()
        )
    }

    /// The table's Arrow schema (shared; built once).
    pub fn schema(self) -> SchemaRef {
        static SCHEMAS: OnceLock<Vec<SchemaRef>> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            Table::ALL
                .iter()
                .map(|t| Arc::new(build_schema(*t)))
                .collect()
        });
        let idx = Table::ALL.iter().position(|t| *t == self).unwrap_or(0);
        all[idx].clone()
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `timestamp[µs, UTC]`, the Delta `TIMESTAMP` type.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, ts_type(), nullable)
}
fn s(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn i32f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int32, nullable)
}
fn i64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}
fn f32f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float32, nullable)
}
fn f64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}
fn b(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Boolean, nullable)
}
fn date() -> Field {
    Field::new("date", DataType::Date32, false)
}

fn build_schema(table: Table) -> Schema {
    let fields = match table {
        Table::Flows => vec![
            s("flow_id", false),
            s("user_key", false),
            s("access_element", false),
            s("core_element", false),
            i32f("l4", false),
            i32f("client_port", false),
            s("server_ip", false),
            i32f("server_port", false),
            i32f("vlan", true),
            s("tunnel", true),
            i64f("tunnel_id", true),
            i64f("teid_c2s", true),
            i64f("teid_s2c", true),
            i64f("c2s_pkts", false),
            i64f("c2s_bytes", false),
            i64f("s2c_pkts", false),
            i64f("s2c_bytes", false),
            i64f("c2s_ip_bytes", false),
            i64f("s2c_ip_bytes", false),
            i64f("c2s_payload", false),
            i64f("s2c_payload", false),
            s("l7_proto", true),
            b("l7_by_port", false),
            s("app", true),
            s("category", false),
            s("sni", true),
            s("host", true),
            s("alpn", true),
            s("tls_version", true),
            s("quic_version", true),
            s("http_method", true),
            i32f("http_status", true),
            s("dns_query", true),
            i32f("dns_qtype", true),
            i32f("dns_rcode", true),
            ts("first_ts", false),
            ts("last_ts", false),
            f64f("duration_s", false),
            s("end_reason", false),
            i32f("c2s_tcp_flags", true),
            i32f("s2c_tcp_flags", true),
            f32f("hs_rtt_client_ms", true),
            f32f("hs_rtt_server_ms", true),
            f32f("rtt_client_ms", true),
            f32f("rtt_server_ms", true),
            i64f("rtt_client_samples", false),
            i64f("rtt_server_samples", false),
            i64f("c2s_retrans", false),
            i64f("s2c_retrans", false),
            i64f("c2s_ooo", false),
            i64f("s2c_ooo", false),
            i64f("c2s_loss_upstream", false),
            i64f("s2c_loss_upstream", false),
            i64f("c2s_loss_downstream", false),
            i64f("s2c_loss_downstream", false),
            i64f("c2s_zero_windows", false),
            i64f("s2c_zero_windows", false),
            f64f("c2s_throughput_mbps", true),
            f64f("s2c_throughput_mbps", true),
            f32f("tls_handshake_ms", true),
            f32f("http_ttfb_ms", true),
            f32f("dns_response_ms", true),
            f32f("rtp_loss_pct", true),
            f32f("rtp_jitter_ms", true),
            date(),
            i32f("hour", false),
        ],
        Table::UserMinute => vec![
            ts("window_start", false),
            s("user_key", false),
            s("category", false),
            s("access_element", false),
            s("core_element", false),
            i64f("flows", false),
            f32f("active_s", false),
            i64f("bytes_down", false),
            i64f("bytes_up", false),
            f32f("throughput_down_mbps", true),
            f32f("rtt_client_ms", true),
            f32f("rtt_server_ms", true),
            f32f("retrans_rate", true),
            f32f("loss_pct", true),
            f32f("jitter_ms", true),
            f32f("txn_ms", true),
            f32f("ttfb_ms", true),
            f32f("mos", false),
            f32f("cei", false),
            b("poor", false),
            s("worst_server", true),
            s("source", false),
            date(),
        ],
        Table::ElementMinute => vec![
            ts("window_start", false),
            s("level", false),
            s("element_id", false),
            i64f("users", false),
            i64f("poor_users", false),
            f32f("poor_share", false),
            f32f("cei_mean", false),
            f32f("cei_p10", false),
            i64f("bytes_down", false),
            f32f("rtt_client_ms_median", true),
            f32f("rtt_server_ms_median", true),
            f32f("retrans_rate", true),
            date(),
        ],
        Table::Anomalies => vec![
            ts("window_start", false),
            s("entity_kind", false),
            s("entity_id", false),
            s("metric", false),
            f64f("value", false),
            f64f("baseline_median", false),
            f64f("baseline_mad", false),
            f64f("score", false),
            b("anomalous", false),
            s("baseline", false),
            date(),
        ],
        Table::Telemetry => vec![
            ts("ts", false),
            s("element_id", false),
            s("metric", false),
            f64f("value", false),
            date(),
        ],
        Table::FlowTelemetry => vec![
            s("exporter", false),
            i64f("domain", false),
            i32f("version", false),
            ts("export_ts", false),
            ts("flow_start", true),
            ts("flow_end", true),
            s("src_addr", true),
            s("src_user_key", true),
            s("dst_addr", true),
            s("dst_user_key", true),
            i32f("src_port", true),
            i32f("dst_port", true),
            i32f("l4", true),
            i64f("bytes", true),
            i64f("packets", true),
            i32f("tcp_flags", true),
            i32f("tos", true),
            i64f("input_if", true),
            i64f("output_if", true),
            i32f("vlan", true),
            i64f("src_as", true),
            i64f("dst_as", true),
            i32f("direction", true),
            s("enterprise", true),
            date(),
        ],
        Table::Subscribers => vec![
            s("user_key", false),
            s("user_kind", false),
            s("access_element", false),
            s("core_element", false),
            s("region", true),
            f64f("plan_mbps", true),
            ts("valid_from", true),
            ts("valid_to", true),
            ts("loaded_at", false),
        ],
        Table::Complaints => vec![
            s("complaint_id", false),
            s("user_key", false),
            ts("reported_at", false),
            s("service", true),
            s("text", true),
            ts("loaded_at", false),
            date(),
        ],
        Table::Demarcations => vec![
            s("complaint_id", true),
            s("user_key", false),
            ts("window_start", false),
            ts("window_end", false),
            s("verdict", false),
            s("element", true),
            f64f("confidence", false),
            s("evidence", false),
            ts("evaluated_at", false),
            date(),
        ],
    };
    Schema::new(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_columns_are_last_and_present() {
        for t in Table::ALL {
            let schema = t.schema();
            let n = schema.fields().len();
            let parts = t.partition_columns();
            for (i, p) in parts.iter().enumerate() {
                let idx = schema.index_of(p).expect("partition column in schema");
                assert_eq!(idx, n - parts.len() + i, "{t}: {p} not at the end");
            }
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn no_raw_subscriber_columns() {
        for t in Table::ALL {
            for f in t.schema().fields() {
                let n = f.name();
                assert!(
                    !matches!(n.as_str(), "client_ip" | "user" | "imsi" | "msisdn"),
                    "{t} has raw subscriber column {n}"
                );
            }
        }
    }
}
