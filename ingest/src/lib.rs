//! cemflow-ingest: the first stage of the pipeline.
//!
//! Capture sources (pcap/pcapng files, live interfaces) → zero-copy decode of link layers,
//! encapsulations and tunnels → bidirectional flow table with minute slicing → DPI and
//! per-flow KPIs. The output is a stream of flow records (`FlowSlice` per flow per
//! window, `FlowEnd` when a flow expires) consumed by the dataflow crate and by
//! `cemflow flows`.
#![warn(missing_docs)]

pub mod capture;
pub mod catalog;
pub mod decode;
pub mod dpi;
pub mod flow;
pub mod kpi;
pub mod live;
pub mod source;
pub mod synth;
pub mod telemetry;
