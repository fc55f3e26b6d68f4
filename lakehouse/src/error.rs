//! Errors of the lakehouse crate. Every variant names the table, path or input it is
//! about.

use deltalake::DeltaTableError;

/// An error of the lake: opening, writing, reading or maintaining its tables, or loading
/// dimension data into it.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake root is not a usable location.
    #[error("lake root {root}: {reason}")]
    Root {
        /// The root as given.
        root: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lake root uses a URI scheme this build has no object store for.
    #[error(
        "lake root {root}: the `{scheme}` scheme is not supported by this build \
         (deltalake has no `{scheme}` object store compiled in); use a local path, \
         a file:// URI or an s3:// URI"
    )]
    UnsupportedScheme {
        /// The root as given.
        root: String,
        /// The URI scheme.
        scheme: String,
    },
    /// No lake (no cemflow table) exists at the root and the caller asked not to create one.
    #[error("{root} is not a cemflow lake (no table found); run an ingest or `cemflow lake load-*` first")]
    NotALake {
        /// The root as given.
        root: String,
    },
    /// A Delta Lake operation on a table failed.
    #[error("table {table} ({uri}): {source}")]
    Delta {
        /// Table name.
        table: String,
        /// Table URI.
        uri: String,
        /// The deltalake error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// A table's stored schema version differs from this build's.
    #[error(
        "table {table} has schema version {found}, this build writes version {expected}; \
         migrate or use a new lake root"
    )]
    SchemaVersion {
        /// Table name.
        table: String,
        /// Version found in the table's metadata (`cemflow.schema_version`).
        found: String,
        /// Version this build expects.
        expected: u32,
    },
    /// A record batch does not match the table's schema.
    #[error("table {table}: record batch does not match the table schema: {reason}")]
    Schema {
        /// Table name.
        table: String,
        /// The mismatch.
        reason: String,
    },
    /// A row could not be converted (an unparsable timestamp, a value out of range).
    #[error("table {table}: row {row}: {reason}")]
    Row {
        /// Table name.
        table: String,
        /// Row index in the converted slice (0-based).
        row: usize,
        /// What is wrong.
        reason: String,
    },
    /// An Arrow operation failed.
    #[error("table {table}: arrow: {source}")]
    Arrow {
        /// Table name.
        table: String,
        /// The arrow error.
        #[source]
        source: Box<arrow::error::ArrowError>,
    },
    /// Reading an input file (topology, complaints) failed as a whole.
    #[error("{path}: {reason}")]
    Input {
        /// The input file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The source id can't be used in a Delta app id.
    #[error("invalid source id {0:?}: must be non-empty printable text without whitespace")]
    SourceId(String),
    /// A [`crate::LakeOptions`] value is out of range (zstd level, file size).
    #[error("lake option {option}: {reason}")]
    Option {
        /// The option's name.
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The lake's async runtime could not be created or a worker thread panicked.
    #[error("lake runtime: {0}")]
    Runtime(String),
}

impl LakeError {
    /// Wraps an arrow error with the table it happened on.
    pub(crate) fn arrow(table: &str, source: arrow::error::ArrowError) -> LakeError {
        LakeError::Arrow {
            table: table.to_string(),
            source: Box::new(source),
        }
    }

    /// Wraps a deltalake error with the table and URI it happened on.
    pub(crate) fn delta(table: &str, uri: &str, source: DeltaTableError) -> LakeError {
        LakeError::Delta {
            table: table.to_string(),
            uri: uri.to_string(),
            source: Box::new(source),
        }
    }
}
