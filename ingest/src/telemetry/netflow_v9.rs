//! NetFlow v9 export packets (RFC 3954): header, template and options template
//! FlowSets, data FlowSets.

use super::collector::Exporter;
use super::data::{decode_data_set, SetContext};
use super::fields::{FlowTelemetry, TimeBase};
use super::session::Session;
use super::template::{FieldSpec, Template, MIN_TEMPLATE_ID};
use super::wire::{u16_at, u32_at, Malformed};
use foldhash::fast::RandomState;
use hashbrown::HashMap;
use std::net::SocketAddr;

/// Packet header length.
pub(crate) const HEADER_LEN: usize = 20;
/// FlowSet id of template FlowSets.
pub(crate) const TEMPLATE_FLOWSET: u16 = 0;
/// FlowSet id of options template FlowSets.
pub(crate) const OPTIONS_TEMPLATE_FLOWSET: u16 = 1;

/// Decodes one NetFlow v9 export packet.
pub(crate) fn process(
    sessions: &mut HashMap<(SocketAddr, u32), Session, RandomState>,
    ex: &mut Exporter,
    addr: SocketAddr,
    msg: &[u8],
    out: &mut Vec<FlowTelemetry>,
) -> Result<(), Malformed> {
    if msg.len() < HEADER_LEN {
        return Err(Malformed::TruncatedHeader);
    }
    let sys_uptime = u32_at(msg, 4).ok_or(Malformed::TruncatedHeader)?;
    let export_s = i64::from(u32_at(msg, 8).ok_or(Malformed::TruncatedHeader)?);
    let seq = u32_at(msg, 12).ok_or(Malformed::TruncatedHeader)?;
    let domain = u32_at(msg, 16).ok_or(Malformed::TruncatedHeader)?;
    let session = sessions.entry((addr, domain)).or_default();
    // v9 numbers export packets: one per packet, whatever it holds.
    let check = session.seq.check(seq);
    ex.sequence(check, false);
    session.seq.advance(check, seq, 1);
    let ctx = SetContext {
        exporter: addr,
        domain,
        version: 9,
        base: TimeBase {
            export_s,
            sys_uptime_ms: Some(sys_uptime),
            system_init_ms: None,
        },
    };
    let mut off = HEADER_LEN;
    // Fewer than 4 bytes left: padding.
    while msg.len().saturating_sub(off) >= 4 {
        let (Some(set_id), Some(set_len)) = (u16_at(msg, off), u16_at(msg, off + 2)) else {
            return Err(Malformed::BadSetLength);
        };
        let set_len = usize::from(set_len);
        let Some(body) = (set_len >= 4)
            .then(|| msg.get(off + 4..off + set_len))
            .flatten()
        else {
            return Err(Malformed::BadSetLength);
        };
        off += set_len;
        match set_id {
            TEMPLATE_FLOWSET => {
                if let Err(m) = templates(session, ex, body) {
                    ex.malformed(addr, m);
                }
            }
            OPTIONS_TEMPLATE_FLOWSET => {
                if let Err(m) = options_templates(session, ex, body) {
                    ex.malformed(addr, m);
                }
            }
            id if id >= MIN_TEMPLATE_ID => match decode_data_set(session, id, body, &ctx, out) {
                Ok(Some(r)) => ex.stats.options_records += u64::from(r.options),
                Ok(None) => ex.unknown_template(addr, domain, id),
                Err((r, m)) => {
                    ex.stats.options_records += u64::from(r.options);
                    ex.malformed(addr, m);
                }
            },
            // FlowSet ids 2–255 are reserved.
            _ => {}
        }
    }
    Ok(())
}

/// Reads `count` (type, length) field specifiers at `p`.
fn field_specs(body: &[u8], p: &mut usize, count: usize) -> Result<Vec<FieldSpec>, Malformed> {
    let mut fields = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let id = u16_at(body, *p).ok_or(Malformed::BadTemplate)?;
        let len = u16_at(body, *p + 2).ok_or(Malformed::BadTemplate)?;
        *p += 4;
        fields.push(FieldSpec::new(id, 0, len));
    }
    Ok(fields)
}

/// Template records of a template FlowSet. v9 has no withdrawal: a template id sent
/// again replaces the previous definition (refresh).
fn templates(session: &mut Session, ex: &mut Exporter, body: &[u8]) -> Result<(), Malformed> {
    let mut off = 0usize;
    while body.len().saturating_sub(off) >= 4 {
        let id = u16_at(body, off).ok_or(Malformed::BadTemplate)?;
        let count = usize::from(u16_at(body, off + 2).ok_or(Malformed::BadTemplate)?);
        if id < MIN_TEMPLATE_ID || count == 0 {
            return Err(Malformed::BadTemplate);
        }
        let mut p = off + 4;
        let fields = field_specs(body, &mut p, count)?;
        off = p;
        let t = Template::new(fields, false).ok_or(Malformed::BadTemplate)?;
        ex.stats.templates_received += 1;
        session.define(id, t);
    }
    Ok(())
}

/// Options template records (scope and option lengths in bytes), each padded to 4 bytes.
fn options_templates(
    session: &mut Session,
    ex: &mut Exporter,
    body: &[u8],
) -> Result<(), Malformed> {
    let mut off = 0usize;
    while body.len().saturating_sub(off) >= 6 {
        let id = u16_at(body, off).ok_or(Malformed::BadTemplate)?;
        if id == 0 && body.get(off..).is_some_and(|r| r.iter().all(|b| *b == 0)) {
            break; // padding
        }
        let scope_len = usize::from(u16_at(body, off + 2).ok_or(Malformed::BadTemplate)?);
        let opt_len = usize::from(u16_at(body, off + 4).ok_or(Malformed::BadTemplate)?);
        if id < MIN_TEMPLATE_ID || scope_len % 4 != 0 || opt_len % 4 != 0 {
            return Err(Malformed::BadTemplate);
        }
        let mut p = off + 6;
        let mut fields = field_specs(body, &mut p, scope_len / 4)?;
        fields.extend(field_specs(body, &mut p, opt_len / 4)?);
        // Records are padded to a 32-bit boundary.
        off = p.next_multiple_of(4);
        let t = Template::new(fields, true).ok_or(Malformed::BadTemplate)?;
        ex.stats.templates_received += 1;
        session.define(id, t);
    }
    Ok(())
}
