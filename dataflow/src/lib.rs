//! cemflow-dataflow: flow slices → per-user-minute CEI per category, element aggregates
//! and anomaly scores, on timely-dataflow (SPEC §5).
//!
//! - [`rows`]: the output rows (lake tables `user_minute`, `element_minute`, `anomalies`,
//!   `flows`).
//! - [`pseudo`]: keyed pseudonyms; [`topology`]: users → home/access/core elements.
//! - [`input`]: [`UserSlice`], a flow slice pseudonymised and placed at the ingest boundary.
//! - [`cei`]: the experience models; [`aggregate`]: pure per-window aggregation;
//!   [`anomaly`]: robust z-scores.
//! - [`graph`]: the timely dataflow wiring it all, windows closed by event-time frontier.
#![warn(missing_docs)]

pub mod aggregate;
pub mod anomaly;
pub mod cei;
pub mod graph;
pub mod input;
pub mod pseudo;
pub mod rows;
pub mod topology;

pub use aggregate::{element_minute, user_window, ElementObs, Level, UserWindow};
pub use anomaly::{AnomalyConfig, HourOfWeekBaselines};
pub use cei::{mos_to_cei, CeiConfig};
pub use graph::{build, DataflowConfig, Pipeline, SliceInput, WindowOutput};
pub use input::{Enricher, UserSlice};
pub use pseudo::{PseudoError, Pseudonymizer, PSEUDO_KEY_ENV};
pub use rows::{AnomalyRow, ElementMinute, FlowRow, RowSource, UserMinute, CATEGORY_ALL};
pub use topology::{Placement, PlacementConfig, Topology, TopologyError};
