//! End-to-end tests of the `cemflow` binary: one module per subcommand.

mod conformance;
mod flows;
mod ingest;
mod util;
