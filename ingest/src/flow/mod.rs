//! Bidirectional flows: key, table, timeouts, minute slices and end records.

mod config;
mod frag;
mod index;
mod key;
mod record;
mod stats;
mod summary;
mod table;

pub use config::FlowConfig;
pub use key::{FlowKey, KeyDir};
pub use record::{
    DirCounters, EndReason, FlowClass, FlowEnd, FlowMeta, FlowRecord, FlowSink, FlowSlice,
};
pub use stats::FlowStats;
pub use summary::{rfc3339_micros, FlowSummary};
pub use table::FlowTable;

#[cfg(test)]
mod tests;
