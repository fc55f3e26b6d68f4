//! `wilson_lower(k, n[, z])`: the lower bound of the Wilson score interval of the
//! proportion `k/n` (`z` = 1.96 for 95 %, the default). Used by the demarcation ladder
//! (SPEC §7) to ask "is the poor share of this element's users at least X, with 95 %
//! confidence?".
//!
//! `n = 0` gives 0 (no evidence of anything). NULL when an argument is NULL or invalid
//! (`n < 0`, `k < 0`, `k > n`, `z < 0`, non-finite).

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use std::sync::Arc;

/// z of a two-sided 95 % interval.
pub const DEFAULT_Z: f64 = 1.96;

/// Wilson score interval lower bound of `k` successes out of `n` trials at `z` standard
/// deviations, in [0, 1]. `n = 0` → `Some(0.0)`; invalid input → `None`.
/// Real-valued `k` and `n` are accepted (e.g. mean per-minute counts).
pub fn wilson_lower(k: f64, n: f64, z: f64) -> Option<f64> {
    if !(k.is_finite() && n.is_finite() && z.is_finite()) || n < 0.0 || k < 0.0 || z < 0.0 {
        return None;
    }
    if k > n * (1.0 + 1e-9) {
        return None;
    }
    if n == 0.0 {
        return Some(0.0);
    }
    let p = (k / n).min(1.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = p + z2 / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - margin) / denom).clamp(0.0, 1.0))
}

/// The `wilson_lower(k, n[, z]) → DOUBLE` scalar UDF (arguments coerced to `DOUBLE`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WilsonLower {
    signature: Signature,
}

impl Default for WilsonLower {
    fn default() -> Self {
        Self::new()
    }
}

impl WilsonLower {
    /// The UDF.
    pub fn new() -> Self {
        WilsonLower {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Uniform(2, vec![DataType::Float64]),
                    TypeSignature::Uniform(3, vec![DataType::Float64]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

fn scalar_f64(s: &ScalarValue) -> Result<Option<f64>> {
    match s.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => Ok(v),
        other => exec_err!("wilson_lower: unexpected argument {other:?}"),
    }
}

fn as_f64(a: &ArrayRef) -> Result<&Float64Array> {
    match a.as_any().downcast_ref::<Float64Array>() {
        Some(f) => Ok(f),
        None => exec_err!("wilson_lower: expected DOUBLE, got {}", a.data_type()),
    }
}

impl ScalarUDFImpl for WilsonLower {
    fn name(&self) -> &str {
        "wilson_lower"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n_args = args.args.len();
        if !(2..=3).contains(&n_args) {
            return exec_err!("wilson_lower takes 2 or 3 arguments, got {n_args}");
        }
        // All scalars: one value.
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            let mut v = Vec::with_capacity(3);
            for a in &args.args {
                if let ColumnarValue::Scalar(s) = a {
                    v.push(scalar_f64(s)?);
                }
            }
            let z = if n_args == 3 { v[2] } else { Some(DEFAULT_Z) };
            let out = match (v[0], v[1], z) {
                (Some(k), Some(n), Some(z)) => wilson_lower(k, n, z),
                _ => None,
            };
            return Ok(ColumnarValue::Scalar(ScalarValue::Float64(out)));
        }
        // Fast path for the common shape: k and n columns, z constant or absent.
        let z_scalar = match args.args.get(2) {
            None => Some(Some(DEFAULT_Z)),
            Some(ColumnarValue::Scalar(s)) => Some(scalar_f64(s)?),
            Some(ColumnarValue::Array(_)) => None,
        };
        let rows = args.number_rows;
        let k = args.args[0].to_array(rows)?;
        let n = args.args[1].to_array(rows)?;
        let (k, n) = (as_f64(&k)?, as_f64(&n)?);
        let out: Float64Array = match z_scalar {
            Some(z) => k
                .iter()
                .zip(n.iter())
                .map(|(k, n)| match (k, n, z) {
                    (Some(k), Some(n), Some(z)) => wilson_lower(k, n, z),
                    _ => None,
                })
                .collect(),
            None => {
                let z = args.args[2].to_array(rows)?;
                let z = as_f64(&z)?;
                k.iter()
                    .zip(n.iter())
                    .zip(z.iter())
                    .map(|((k, n), z)| match (k, n, z) {
                        (Some(k), Some(n), Some(z)) => wilson_lower(k, n, z),
                        _ => None,
                    })
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let v = wilson_lower(3.0, 10.0, 1.96).unwrap();
        assert!((v - 0.1078).abs() < 1e-4, "{v}");
        assert_eq!(wilson_lower(0.0, 0.0, 1.96), Some(0.0));
        assert_eq!(wilson_lower(0.0, 10.0, 1.96), Some(0.0));
        assert!(wilson_lower(10.0, 10.0, 1.96).unwrap() > 0.69);
        assert_eq!(wilson_lower(11.0, 10.0, 1.96), None);
        assert_eq!(wilson_lower(-1.0, 10.0, 1.96), None);
        assert_eq!(wilson_lower(f64::NAN, 10.0, 1.96), None);
    }
}
