//! One module per subcommand.

pub mod demo;
pub mod flows;
pub mod ingest;
pub mod synth;
