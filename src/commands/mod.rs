//! One module per subcommand.

pub mod capture;
pub mod demarcate;
pub mod demo;
pub mod evaluate;
pub mod flows;
pub mod ingest;
pub mod lake;
pub mod pipeline;
pub mod poor_users;
pub mod report;
pub mod serve;
pub mod sql;
pub mod synth;
pub mod telemetry;
