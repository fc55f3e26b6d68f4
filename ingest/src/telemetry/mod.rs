//! Network telemetry: flow exports (IPFIX, RFC 7011; NetFlow v9, RFC 3954) and element KPI
//! files (`ts,element_id,metric,value`).
//!
//! * [`Collector`] decodes export messages of many exporters: templates and options
//!   templates per (exporter, observation domain / source id), template withdrawal and
//!   refresh, variable-length fields, enterprise-specific fields (kept raw, hex), and
//!   sequence numbers (lost export packets / records). A message it cannot decode is a
//!   counted outcome ([`Malformed`]), never a panic; a data set whose template is unknown
//!   is counted and skipped.
//! * [`udp`] is the collector's socket (large receive buffer, kernel drop counter).
//! * [`export`] encodes IPFIX / NetFlow v9 messages (test fixtures, benches, load senders).
//! * [`kpi`] reads element KPI files (CSV or JSON Lines) onto the minute grid.
//!
//! Nothing here knows about subscribers: a decoded [`FlowTelemetry`] holds raw addresses;
//! the caller pseudonymises subscriber endpoints before anything is stored.

mod collector;
mod data;
pub mod export;
mod fields;
mod ipfix;
pub mod kpi;
mod netflow_v9;
mod session;
mod template;
pub mod udp;
mod wire;

pub use collector::{Collector, CollectorStats, ExporterStats};
pub use fields::{ie, FlowFields, FlowTelemetry};
pub use wire::Malformed;

#[cfg(test)]
mod tests;
