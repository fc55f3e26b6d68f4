//! IPFIX messages (RFC 7011): header, template / options template sets (with
//! withdrawals), data sets.

use super::collector::Exporter;
use super::data::{decode_data_set, SetContext};
use super::fields::{FlowTelemetry, TimeBase};
use super::session::{SeqCheck, Session};
use super::template::{FieldSpec, Template, MIN_TEMPLATE_ID};
use super::wire::{u16_at, u32_at, Malformed};
use foldhash::fast::RandomState;
use hashbrown::HashMap;
use std::net::SocketAddr;

/// Message header length.
pub(crate) const HEADER_LEN: usize = 16;
/// Set id of template sets.
pub(crate) const TEMPLATE_SET: u16 = 2;
/// Set id of options template sets.
pub(crate) const OPTIONS_TEMPLATE_SET: u16 = 3;

/// Decodes one IPFIX message.
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
    let len = usize::from(u16_at(msg, 2).ok_or(Malformed::TruncatedHeader)?);
    if len != msg.len() {
        return Err(Malformed::BadMessageLength);
    }
    let export_s = i64::from(u32_at(msg, 4).ok_or(Malformed::TruncatedHeader)?);
    let seq = u32_at(msg, 8).ok_or(Malformed::TruncatedHeader)?;
    let domain = u32_at(msg, 12).ok_or(Malformed::TruncatedHeader)?;
    let session = sessions.entry((addr, domain)).or_default();
    let check = session.seq.check(seq);
    ex.sequence(check, true);
    let ctx = SetContext {
        exporter: addr,
        domain,
        version: 10,
        base: TimeBase {
            export_s,
            sys_uptime_ms: None,
            system_init_ms: None,
        },
    };
    let mut data_records = 0u32;
    let mut countable = true;
    let mut off = HEADER_LEN;
    let mut result = Ok(());
    while off < len {
        let (Some(set_id), Some(set_len)) = (u16_at(msg, off), u16_at(msg, off + 2)) else {
            result = Err(Malformed::BadSetLength);
            break;
        };
        let set_len = usize::from(set_len);
        let Some(body) = (set_len >= 4)
            .then(|| msg.get(off + 4..off + set_len))
            .flatten()
        else {
            result = Err(Malformed::BadSetLength);
            break;
        };
        off += set_len;
        match set_id {
            TEMPLATE_SET | OPTIONS_TEMPLATE_SET => {
                if let Err(m) = templates(session, ex, body, set_id == OPTIONS_TEMPLATE_SET) {
                    ex.malformed(addr, m);
                }
            }
            id if id >= MIN_TEMPLATE_ID => match decode_data_set(session, id, body, &ctx, out) {
                Ok(Some(r)) => {
                    data_records = data_records.wrapping_add(r.flows + r.options);
                    ex.stats.options_records += u64::from(r.options);
                }
                Ok(None) => {
                    countable = false;
                    ex.unknown_template(addr, domain, id);
                }
                Err((r, m)) => {
                    countable = false;
                    ex.stats.options_records += u64::from(r.options);
                    ex.malformed(addr, m);
                }
            },
            // Set ids 0, 1 (NetFlow v9) and 4–255 are reserved in IPFIX: skipped.
            _ => {}
        }
    }
    if result.is_err() {
        countable = false;
    }
    if countable || check == SeqCheck::Reordered {
        session.seq.advance(check, seq, data_records);
    } else {
        session.seq.resync();
    }
    result
}

/// Template or options template records of one set (definitions, refreshes and
/// withdrawals).
fn templates(
    session: &mut Session,
    ex: &mut Exporter,
    body: &[u8],
    options: bool,
) -> Result<(), Malformed> {
    let mut off = 0usize;
    // A record header is 4 bytes; fewer left is padding.
    while body.len().saturating_sub(off) >= 4 {
        let id = u16_at(body, off).ok_or(Malformed::BadTemplate)?;
        let count = usize::from(u16_at(body, off + 2).ok_or(Malformed::BadTemplate)?);
        if count == 0 {
            // Withdrawal (RFC 7011 §8.1): the set id as template id withdraws all
            // templates of the set's kind.
            let all_id = if options {
                OPTIONS_TEMPLATE_SET
            } else {
                TEMPLATE_SET
            };
            if id == all_id {
                ex.stats.templates_withdrawn += session.withdraw_all(options) as u64;
            } else if id >= MIN_TEMPLATE_ID {
                if session.withdraw(id) {
                    ex.stats.templates_withdrawn += 1;
                }
            } else {
                return Err(Malformed::BadTemplate);
            }
            off += 4;
            continue;
        }
        if id < MIN_TEMPLATE_ID {
            return Err(Malformed::BadTemplate);
        }
        let mut p = off + 4;
        if options {
            // Scope field count: at least one scope field, within the field count.
            let scope = usize::from(u16_at(body, p).ok_or(Malformed::BadTemplate)?);
            p += 2;
            if scope == 0 || scope > count {
                return Err(Malformed::BadTemplate);
            }
        }
        let mut fields = Vec::with_capacity(count.min(256));
        for _ in 0..count {
            let raw_id = u16_at(body, p).ok_or(Malformed::BadTemplate)?;
            let flen = u16_at(body, p + 2).ok_or(Malformed::BadTemplate)?;
            p += 4;
            let pen = if raw_id & 0x8000 != 0 {
                let pen = u32_at(body, p).ok_or(Malformed::BadTemplate)?;
                p += 4;
                pen
            } else {
                0
            };
            fields.push(FieldSpec::new(raw_id & 0x7fff, pen, flen));
        }
        off = p;
        let t = Template::new(fields, options).ok_or(Malformed::BadTemplate)?;
        ex.stats.templates_received += 1;
        session.define(id, t);
    }
    Ok(())
}
