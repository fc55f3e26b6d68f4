//! End-to-end tests of the `cemflow` binary: one module per subcommand.

mod conformance;
mod crash;
mod demarcation;
mod flows;
mod ingest;
mod lake;
mod live;
mod poor_minutes;
mod report;
mod serve;
mod synth_realism;
mod telemetry;
mod topology_versions;
mod tshark_kpi;
mod util;
