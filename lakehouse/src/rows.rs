//! Row types owned by the lakehouse, for the tables whose rows are not produced by the
//! dataflow (whose `UserMinute`, `ElementMinute`, `AnomalyRow` and `FlowRow` are converted
//! directly, see [`crate::convert`]).
//!
//! Times are epoch-based integers in the unit named by the field suffix (`_s`, `_ms`),
//! UTC. Conversion to Arrow is in [`crate::convert`].

use serde::{Deserialize, Serialize};

/// One element KPI sample (`telemetry` table), e.g. PON utilisation of an OLT port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TelemetryRow {
    /// Sample time, epoch milliseconds (UTC); on the minute grid when ingested from KPI
    /// files.
    pub ts_ms: i64,
    /// Element id as in the topology (`access_element` / `core_element` values).
    pub element_id: String,
    /// Metric name (e.g. `pon_util_pct`, `optical_rx_dbm`, `prb_util_pct`, `cqi`).
    pub metric: String,
    /// Value, in the metric's own unit (the metric name should carry it).
    pub value: f64,
}

/// One IPFIX / NetFlow v9 data record (`flow_telemetry` table).
///
/// **Privacy:** an endpoint that is a subscriber must be given only as its pseudonym
/// (`*_user_key`, with `*_addr` = `None`); other endpoints (servers) keep their address.
/// The caller (the telemetry decoder, which knows the subscriber prefixes / topology)
/// decides which side is the subscriber.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowTelemetryRow {
    /// Exporter address (`ip` or `ip:port`) of the router/BNG/UPF that sent the record.
    pub exporter: String,
    /// Observation domain id (IPFIX) or source id (NetFlow v9).
    pub domain: u32,
    /// Protocol version: 9 (NetFlow v9) or 10 (IPFIX).
    pub version: u16,
    /// Export time of the message header, epoch seconds.
    pub export_ts_s: i64,
    /// Flow start, epoch milliseconds (from `flowStart*` / sysUpTime-relative fields).
    pub flow_start_ms: Option<i64>,
    /// Flow end, epoch milliseconds.
    pub flow_end_ms: Option<i64>,
    /// Source address when the source is not a subscriber.
    pub src_addr: Option<String>,
    /// Source pseudonym when the source is a subscriber.
    pub src_user_key: Option<String>,
    /// Destination address when the destination is not a subscriber.
    pub dst_addr: Option<String>,
    /// Destination pseudonym when the destination is a subscriber.
    pub dst_user_key: Option<String>,
    /// Source transport port.
    pub src_port: Option<u16>,
    /// Destination transport port.
    pub dst_port: Option<u16>,
    /// IP protocol number.
    pub l4: Option<u8>,
    /// Octets (`octetDeltaCount`).
    pub bytes: Option<u64>,
    /// Packets (`packetDeltaCount`).
    pub packets: Option<u64>,
    /// Union of TCP flags.
    pub tcp_flags: Option<u8>,
    /// IP type of service / traffic class.
    pub tos: Option<u8>,
    /// Ingress interface index.
    pub input_if: Option<u32>,
    /// Egress interface index.
    pub output_if: Option<u32>,
    /// VLAN id.
    pub vlan: Option<u16>,
    /// Source BGP AS.
    pub src_as: Option<u32>,
    /// Destination BGP AS.
    pub dst_as: Option<u32>,
    /// Flow direction (0 ingress, 1 egress).
    pub direction: Option<u8>,
    /// Enterprise-specific fields, raw: `<pen>.<id>=<hex>` separated by spaces.
    pub enterprise: Option<String>,
}

/// One subscriber placement of the topology (`subscribers` table): a subscriber moved to
/// another port has one row per validity interval.
///
/// The topology's `home_id` is not stored: when present it *is* the subscriber id the
/// pseudonym is computed from (dataflow's `Topology::subscriber_id` rule), so storing it
/// would undo the pseudonymisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriberRow {
    /// Pseudonym of the subscriber id (`home_id` when given, else the `user` value).
    pub user_key: String,
    /// What the topology's `user` value was: `ip`, `prefix`, `imsi`, `msisdn` or `id`.
    pub user_kind: String,
    /// Access element id.
    pub access_element: String,
    /// Core element id.
    pub core_element: String,
    /// Region.
    pub region: Option<String>,
    /// Subscribed plan, Mbit/s.
    pub plan_mbps: Option<f64>,
    /// Start of the placement's validity (inclusive), epoch seconds; `None` = since ever.
    pub valid_from_s: Option<i64>,
    /// End of the placement's validity (exclusive), epoch seconds; `None` = still valid.
    pub valid_to_s: Option<i64>,
}

/// One customer complaint (`complaints` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComplaintRow {
    /// Complaint id as given.
    pub complaint_id: String,
    /// Pseudonym of the complaining subscriber.
    pub user_key: String,
    /// When the complaint was reported, epoch seconds.
    pub reported_at_s: i64,
    /// Service the customer named (free text or a category).
    pub service: Option<String>,
    /// Complaint text.
    pub text: Option<String>,
}

/// One demarcation verdict (`demarcations` table): SPEC §11 `demarcate` fields except the
/// raw `user` (never stored), plus `evaluated_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DemarcationRow {
    /// Complaint id, `None` for an ad-hoc `--user` demarcation.
    pub complaint_id: Option<String>,
    /// Pseudonym of the user.
    pub user_key: String,
    /// Start of the evaluated window, epoch seconds.
    pub window_start_s: i64,
    /// End of the evaluated window, epoch seconds.
    pub window_end_s: i64,
    /// `no_fault_found`, `home`, `access`, `core`, `server` or `inconclusive`.
    pub verdict: String,
    /// Element id, server prefix or service; `None` when none.
    pub element: Option<String>,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// The numbers that decided the verdict (stored as JSON text).
    pub evidence: serde_json::Value,
    /// When the verdict was computed, epoch seconds.
    pub evaluated_at_s: i64,
}
