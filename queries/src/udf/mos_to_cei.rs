//! `mos_to_cei(mos)`: the CEI of a MOS, `100·(MOS − 1)/3.5` with the MOS clamped to
//! [1, 4.5] (SPEC §5), exactly as the dataflow computes it
//! ([`cemflow_dataflow::mos_to_cei`]). NULL in, NULL out; NaN maps to 0.

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::compute::kernels::arity::unary;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The `mos_to_cei(mos DOUBLE) → DOUBLE` scalar UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MosToCei {
    signature: Signature,
}

impl Default for MosToCei {
    fn default() -> Self {
        Self::new()
    }
}

impl MosToCei {
    /// The UDF (arguments coerced to `DOUBLE`).
    pub fn new() -> Self {
        MosToCei {
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MosToCei {
    fn name(&self) -> &str {
        "mos_to_cei"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("mos_to_cei takes one argument, got {}", args.args.len());
        };
        match arg {
            ColumnarValue::Scalar(s) => {
                let v = match s.cast_to(&DataType::Float64)? {
                    ScalarValue::Float64(v) => v,
                    other => return exec_err!("mos_to_cei: unexpected argument {other:?}"),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Float64(
                    v.map(cemflow_dataflow::mos_to_cei),
                )))
            }
            ColumnarValue::Array(a) => {
                // Fast path: one vectorised pass over the values buffer, nulls kept.
                let Some(f) = a.as_any().downcast_ref::<Float64Array>() else {
                    return exec_err!("mos_to_cei: expected DOUBLE, got {}", a.data_type());
                };
                let out: Float64Array = unary(f, cemflow_dataflow::mos_to_cei);
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }
        }
    }
}
