//! Errors of the queries crate.

use cemflow_lakehouse::LakeError;
use datafusion::error::DataFusionError;

/// An error answering a query: bad input (user, time, SQL), a DataFusion failure or a lake
/// failure. Every variant's message names what it is about.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// SQL planning or execution failed (includes bad SQL: parse and plan errors).
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// Opening or writing the lake failed.
    #[error("{0}")]
    Lake(#[from] LakeError),
    /// The caller's input is invalid (a time, a duration, a user, a complaints file row).
    #[error("{0}")]
    Input(String),
    /// Writing output or reading an input file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A table needed by the query is missing from the lake.
    #[error("table {0} does not exist in this lake (nothing ingested into it yet)")]
    MissingTable(String),
}

impl QueryError {
    /// True when the error is the caller's fault (bad SQL, bad time, unknown user…): CLIs
    /// map it to exit code 2.
    pub fn is_input(&self) -> bool {
        match self {
            QueryError::Input(_) | QueryError::MissingTable(_) => true,
            QueryError::DataFusion(e) => matches!(
                e.find_root(),
                DataFusionError::SQL(..)
                    | DataFusionError::Plan(_)
                    | DataFusionError::SchemaError(..)
                    | DataFusionError::NotImplemented(_)
            ),
            _ => false,
        }
    }
}

/// Result with [`QueryError`].
pub type Result<T, E = QueryError> = std::result::Result<T, E>;
