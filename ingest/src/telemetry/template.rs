//! Templates and options templates: the field layout of data records, and decoding one
//! record with it.

use super::fields::{apply, FieldKind, FlowFields, RecordTimes, VARIABLE};
use super::wire::{var_len, Malformed};

/// Smallest template id of a data set (ids below are set ids).
pub(crate) const MIN_TEMPLATE_ID: u16 = 256;

/// One field specifier of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    /// Information element id (enterprise bit cleared).
    pub id: u16,
    /// Private enterprise number, 0 for IANA elements.
    pub pen: u32,
    /// Field length in bytes, or [`VARIABLE`].
    pub len: u16,
    /// What the decoder does with it.
    pub kind: FieldKind,
}

impl FieldSpec {
    /// A field specifier, its kind resolved.
    pub(crate) fn new(id: u16, pen: u32, len: u16) -> FieldSpec {
        FieldSpec {
            id,
            pen,
            len,
            kind: FieldKind::of(id, pen),
        }
    }
}

/// A (data or options) template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    fields: Box<[FieldSpec]>,
    /// True for an options template (its records describe the exporter, not flows).
    pub options: bool,
    /// Record length when every field has a fixed length.
    fixed_len: Option<usize>,
    /// Smallest possible record length (fixed fields + one length byte per variable
    /// field); always ≥ 1.
    pub min_len: usize,
}

impl Template {
    /// A template of `fields`; `None` when its records would be empty (no field, or only
    /// zero-length fields), which no decoder could step over.
    pub(crate) fn new(fields: Vec<FieldSpec>, options: bool) -> Option<Template> {
        let mut min_len = 0usize;
        let mut variable = false;
        for f in &fields {
            if f.len == VARIABLE {
                variable = true;
                min_len += 1;
            } else {
                min_len += usize::from(f.len);
            }
        }
        if min_len == 0 {
            return None;
        }
        Some(Template {
            fields: fields.into_boxed_slice(),
            options,
            fixed_len: (!variable).then_some(min_len),
            min_len,
        })
    }

    /// Decodes the record at the start of `b` into `f`/`t`; returns its length.
    #[inline]
    pub(crate) fn decode_record(
        &self,
        b: &[u8],
        f: &mut FlowFields,
        t: &mut RecordTimes,
    ) -> Result<usize, Malformed> {
        if let Some(n) = self.fixed_len {
            let rec = b.get(..n).ok_or(Malformed::RecordOverrun)?;
            let mut off = 0;
            for spec in self.fields.iter() {
                let len = usize::from(spec.len);
                // In bounds: the lengths add up to `n`.
                let v = rec.get(off..off + len).ok_or(Malformed::RecordOverrun)?;
                apply(spec.kind, spec.id, spec.pen, v, f, t);
                off += len;
            }
            return Ok(n);
        }
        let mut off = 0usize;
        for spec in self.fields.iter() {
            let len = if spec.len == VARIABLE {
                let (hdr, len) = var_len(b, off).ok_or(Malformed::RecordOverrun)?;
                off += hdr;
                len
            } else {
                usize::from(spec.len)
            };
            let end = off.checked_add(len).ok_or(Malformed::RecordOverrun)?;
            let v = b.get(off..end).ok_or(Malformed::RecordOverrun)?;
            apply(spec.kind, spec.id, spec.pen, v, f, t);
            off = end;
        }
        Ok(off)
    }
}
