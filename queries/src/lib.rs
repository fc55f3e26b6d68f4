//! cemflow-queries: the analyst side of cemflow (SPEC §7).
//!
//! * [`QuerySession`]: a DataFusion session with every Delta table of the lake registered,
//!   the UDFs `mos_to_cei` and `wilson_lower` ([`udf`]) and views for common questions.
//! * [`shell`]: run SQL statements with formatted output; the interactive `cemflow sql`.
//! * [`poor_users`]: the poor-quality user list with root-cause verdicts.
//! * [`demarcate`]: the complaint demarcation ladder, appended to `demarcations`.
//! * [`report`]: the batch complaint report (`report.csv`, self-contained `report.html`).
//! * [`scalegen`]: a synthetic lake at operator scale for benchmarks.
//! * [`serve`]: the session over the PostgreSQL wire protocol (SCRAM-SHA-256).
//!
//! Design notes and the verdict logic: `docs/queries.md`.
#![warn(missing_docs)]

pub mod demarcate;
pub mod element_kpi;
pub mod error;
pub mod poor_users;
pub mod report;
pub mod scalegen;
pub mod serve;
pub mod session;
pub mod shell;
pub mod udf;
pub mod users;
pub mod util;

pub use demarcate::{
    append_demarcations, demarcate, demarcate_many, Demarcation, DemarcationConfig,
    DemarcationRequest, Verdict,
};
pub use error::{QueryError, Result};
pub use poor_users::{poor_users, PoorUser, PoorUsersQuery};
pub use report::{build_report, render_html, write_report, Report};
pub use session::QuerySession;
pub use shell::{OutputFormat, Shell};
pub use users::UserResolver;
