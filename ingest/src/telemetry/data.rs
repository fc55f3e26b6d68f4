//! Data sets (IPFIX) / data FlowSets (NetFlow v9): the records of one template.

use super::fields::{FlowFields, FlowTelemetry, RecordTimes, TimeBase};
use super::session::Session;
use super::wire::Malformed;
use std::net::SocketAddr;

/// Where a data set came from.
pub(crate) struct SetContext {
    pub exporter: SocketAddr,
    pub domain: u32,
    pub version: u16,
    pub base: TimeBase,
}

/// What a data set held.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SetRecords {
    /// Flow records appended to the output.
    pub flows: u32,
    /// Options data records (exporter metadata).
    pub options: u32,
}

/// Decodes the records of data set `body` with `session`'s template `id`. `Ok(None)` when
/// the template is unknown. On a record overrun, the records before it are kept and the
/// error is returned with them.
pub(crate) fn decode_data_set(
    session: &mut Session,
    id: u16,
    body: &[u8],
    ctx: &SetContext,
    out: &mut Vec<FlowTelemetry>,
) -> Result<Option<SetRecords>, (SetRecords, Malformed)> {
    let Some(tpl) = session.templates.get(&id) else {
        return Ok(None);
    };
    let mut got = SetRecords::default();
    let mut off = 0usize;
    let mut base = ctx.base;
    base.system_init_ms = session.system_init_ms;
    let mut learnt_init = None;
    // Fewer bytes left than the shortest record: padding (RFC 7011 §3.3.1).
    while body.len().saturating_sub(off) >= tpl.min_len {
        let rest = body.get(off..).unwrap_or_default();
        let mut fields = FlowFields::default();
        let mut times = RecordTimes::default();
        let n = match tpl.decode_record(rest, &mut fields, &mut times) {
            Ok(n) if n > 0 => n,
            Ok(_) => break,
            Err(m) => return Err((got, m)),
        };
        off += n;
        if tpl.options {
            got.options += 1;
            if times.system_init_ms.is_some() {
                learnt_init = times.system_init_ms;
            }
            continue;
        }
        let (start, end) = times.resolve(&base);
        fields.flow_start_ms = start;
        fields.flow_end_ms = end;
        got.flows += 1;
        out.push(FlowTelemetry {
            exporter: ctx.exporter,
            domain: ctx.domain,
            version: ctx.version,
            export_ts_s: ctx.base.export_s,
            fields,
        });
    }
    if learnt_init.is_some() {
        session.system_init_ms = learnt_init;
    }
    Ok(Some(got))
}
