//! cemflow-dataflow: flow slices → per-user-minute CEI per category, element aggregates
//! and anomaly scores, on timely-dataflow (SPEC §5).
#![warn(missing_docs)]

pub mod rows;

pub use rows::{AnomalyRow, ElementMinute, FlowRow, UserMinute, CATEGORY_ALL};
