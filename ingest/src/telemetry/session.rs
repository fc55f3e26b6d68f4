//! State of one transport session and observation domain: its templates, the exporter's
//! time base learnt from options data, and sequence-number tracking.

use super::template::Template;
use foldhash::fast::RandomState;
use hashbrown::HashMap;

/// How far behind the expected sequence number a message may be and still count as
/// reordered (rather than an exporter restart).
const REORDER_WINDOW: u32 = 1 << 16;

/// What a message's sequence number says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// First message, or the sequence is being resynchronised.
    Unknown,
    /// As expected.
    InOrder,
    /// Ahead of the expected number: this many packets (v9) or records (IPFIX) lost.
    Gap(u32),
    /// Slightly behind: a reordered or duplicated message.
    Reordered,
    /// Far behind: the exporter restarted its counter.
    Reset,
}

/// Sequence-number tracking of one session (modulo 2^32).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sequence {
    expected: Option<u32>,
}

impl Sequence {
    /// Checks `seq` against the expected number (does not advance).
    pub(crate) fn check(&self, seq: u32) -> SeqCheck {
        let Some(e) = self.expected else {
            return SeqCheck::Unknown;
        };
        let ahead = seq.wrapping_sub(e);
        if ahead == 0 {
            SeqCheck::InOrder
        } else if ahead < (1 << 31) {
            SeqCheck::Gap(ahead)
        } else if e.wrapping_sub(seq) <= REORDER_WINDOW {
            SeqCheck::Reordered
        } else {
            SeqCheck::Reset
        }
    }

    /// After a message with number `seq` carrying `n` units (packets for v9: 1; data
    /// records for IPFIX), the next expected number. A reordered message leaves the
    /// expectation alone.
    pub(crate) fn advance(&mut self, check: SeqCheck, seq: u32, n: u32) {
        if check != SeqCheck::Reordered {
            self.expected = Some(seq.wrapping_add(n));
        }
    }

    /// Forgets the expectation (records that could not be counted were skipped).
    pub(crate) fn resync(&mut self) {
        self.expected = None;
    }
}

/// One (exporter, observation domain) session.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Data and options templates by id.
    pub templates: HashMap<u16, Template, RandomState>,
    /// The exporter's systemInitTimeMilliseconds (IPFIX options data), for uptime-based
    /// flow times.
    pub system_init_ms: Option<i64>,
    /// Sequence tracking.
    pub seq: Sequence,
}

impl Session {
    /// Adds or replaces (refresh / redefinition) a template; true when it is new or
    /// changed.
    pub(crate) fn define(&mut self, id: u16, t: Template) -> bool {
        match self.templates.get(&id) {
            Some(old) if *old == t => false,
            _ => {
                self.templates.insert(id, t);
                true
            }
        }
    }

    /// Withdraws template `id`; true when it existed.
    pub(crate) fn withdraw(&mut self, id: u16) -> bool {
        self.templates.remove(&id).is_some()
    }

    /// Withdraws every data template (`options` false) or every options template.
    pub(crate) fn withdraw_all(&mut self, options: bool) -> usize {
        let before = self.templates.len();
        self.templates.retain(|_, t| t.options != options);
        before - self.templates.len()
    }
}
