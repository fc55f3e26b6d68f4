//! Scalar UDFs registered in every [`crate::QuerySession`]: [`mos_to_cei`](MosToCei) and
//! [`wilson_lower`](WilsonLower).

mod mos_to_cei;
mod wilson_lower;

pub use mos_to_cei::MosToCei;
pub use wilson_lower::{wilson_lower, WilsonLower, DEFAULT_Z};

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Registers every cemflow UDF in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(MosToCei::new()));
    ctx.register_udf(ScalarUDF::from(WilsonLower::new()));
}
