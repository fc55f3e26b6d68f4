//! cemflow-lakehouse: the lake (SPEC §6).
//!
//! Delta Lake tables under one root, one per [`Table`]: Arrow schemas ([`schema`]),
//! row → Arrow conversion ([`convert`]), exactly-once window commits carrying a Delta app
//! transaction per source ([`Lake::commit_window`], design in [`lake`]), maintenance
//! ([`Lake::info`], [`Lake::optimize`] with bin-packing compaction, [`Lake::vacuum`])
//! and loading of the subscriber and complaint dimensions ([`load`]). Column-by-column documentation with units:
//! `docs/tables.md`.
#![warn(missing_docs)]

pub mod batches;
mod compact;
pub mod convert;
pub mod error;
pub mod lake;
pub mod load;
pub mod maintenance;
pub mod rows;
pub mod schema;

pub use batches::TableBatches;
pub use error::LakeError;
pub use lake::{app_id, CommitReport, Lake, LakeOptions, TableCommit};
pub use load::{LoadReport, RowError};
pub use maintenance::{
    FileInfo, OptimizeOptions, OptimizeReport, TableInfo, VacuumOptions, VacuumReport,
};
pub use rows::{ComplaintRow, DemarcationRow, FlowTelemetryRow, SubscriberRow, TelemetryRow};
pub use schema::{Table, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

/// The deltalake crate this lake is built on (with its `arrow`, `parquet` and
/// `datafusion` re-exports), for readers registering the tables in DataFusion.
pub use deltalake;
