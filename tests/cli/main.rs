//! End-to-end tests of the `cemflow` binary: one module per subcommand.

mod conformance;
mod crash;
mod demarcation;
mod flows;
mod ingest;
mod report;
mod serve;
mod synth_realism;
mod tshark_kpi;
mod util;
