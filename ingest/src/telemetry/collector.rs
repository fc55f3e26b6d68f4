//! [`Collector`]: decodes the export messages of many exporters, keeping per-session
//! template state and per-exporter counters.

use super::fields::FlowTelemetry;
use super::session::{SeqCheck, Session};
use super::wire::{u16_at, Malformed};
use super::{ipfix, netflow_v9};
use foldhash::fast::RandomState;
use hashbrown::HashMap;
use std::net::SocketAddr;

/// Counters of one exporter (or, summed, of a whole collector).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// Export messages received (decodable or not).
    pub packets: u64,
    /// Flow records decoded.
    pub records: u64,
    /// Options data records decoded (exporter metadata, not flows).
    pub options_records: u64,
    /// Template and options template records received (definitions and refreshes).
    pub templates_received: u64,
    /// Templates withdrawn (IPFIX withdrawals, incl. withdraw-all).
    pub templates_withdrawn: u64,
    /// NetFlow v9 export packets lost (sequence gaps).
    pub lost_packets: u64,
    /// IPFIX data records lost (sequence gaps; IPFIX numbers records, not messages).
    pub lost_records: u64,
    /// Messages whose sequence number showed a gap.
    pub sequence_gaps: u64,
    /// Messages arriving behind the expected sequence number (reordered, duplicated).
    pub reordered: u64,
    /// Sequence counter restarts (exporter rebooted).
    pub sequence_resets: u64,
    /// Data sets skipped because their template is unknown (not yet received or
    /// withdrawn).
    pub unknown_template_sets: u64,
    /// Rejected messages/sets per [`Malformed`] reason (indexed by [`Malformed::index`]).
    pub malformed: [u64; Malformed::ALL.len()],
}

impl ExporterStats {
    /// Malformed counts over all reasons.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }

    /// Non-zero malformed counts with their reason.
    pub fn malformed_reasons(&self) -> Vec<(Malformed, u64)> {
        Malformed::ALL
            .iter()
            .map(|m| (*m, self.malformed[m.index()]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn add(&mut self, o: &ExporterStats) {
        self.packets += o.packets;
        self.records += o.records;
        self.options_records += o.options_records;
        self.templates_received += o.templates_received;
        self.templates_withdrawn += o.templates_withdrawn;
        self.lost_packets += o.lost_packets;
        self.lost_records += o.lost_records;
        self.sequence_gaps += o.sequence_gaps;
        self.reordered += o.reordered;
        self.sequence_resets += o.sequence_resets;
        self.unknown_template_sets += o.unknown_template_sets;
        for (a, b) in self.malformed.iter_mut().zip(o.malformed) {
            *a += b;
        }
    }
}

/// Totals of a [`Collector`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorStats {
    /// Distinct exporters (transport sessions) seen.
    pub exporters: usize,
    /// Templates currently defined, over all sessions.
    pub templates_active: usize,
    /// Counters summed over exporters.
    pub totals: ExporterStats,
}

/// Per-exporter state: counters and which problems were already logged.
#[derive(Debug, Default)]
pub(crate) struct Exporter {
    pub stats: ExporterStats,
    /// Bit per [`Malformed`] reason already logged, plus bit 7 for unknown templates.
    warned: u8,
}

const WARNED_UNKNOWN_TEMPLATE: u8 = 1 << 7;

impl Exporter {
    /// Counts a rejected message/set and logs the first of each reason.
    pub(crate) fn malformed(&mut self, addr: SocketAddr, m: Malformed) {
        self.stats.malformed[m.index()] += 1;
        let bit = 1u8 << m.index();
        if self.warned & bit == 0 {
            self.warned |= bit;
            tracing::warn!(
                exporter = %addr,
                "malformed flow export skipped: {m} (counted; logged once per exporter and reason)"
            );
        }
    }

    /// Counts a data set of an unknown template and logs the first one.
    pub(crate) fn unknown_template(&mut self, addr: SocketAddr, domain: u32, id: u16) {
        self.stats.unknown_template_sets += 1;
        if self.warned & WARNED_UNKNOWN_TEMPLATE == 0 {
            self.warned |= WARNED_UNKNOWN_TEMPLATE;
            tracing::warn!(
                exporter = %addr,
                "data set for unknown template {id} (domain {domain}) skipped until the \
                 template arrives (counted; logged once per exporter)"
            );
        }
    }

    /// Accounts for a sequence check (`units`: what the gap counts, packets or records).
    pub(crate) fn sequence(&mut self, check: SeqCheck, ipfix: bool) {
        match check {
            SeqCheck::Gap(n) => {
                self.stats.sequence_gaps += 1;
                if ipfix {
                    self.stats.lost_records += u64::from(n);
                } else {
                    self.stats.lost_packets += u64::from(n);
                }
            }
            SeqCheck::Reordered => self.stats.reordered += 1,
            SeqCheck::Reset => self.stats.sequence_resets += 1,
            SeqCheck::Unknown | SeqCheck::InOrder => {}
        }
    }
}

/// Decoder of IPFIX and NetFlow v9 export messages from any number of exporters.
///
/// Templates are scoped to (exporter address and port, observation domain / source id),
/// as RFC 7011 §8 scopes them to the transport session and domain.
#[derive(Debug, Default)]
pub struct Collector {
    pub(crate) sessions: HashMap<(SocketAddr, u32), Session, RandomState>,
    pub(crate) exporters: HashMap<SocketAddr, Exporter, RandomState>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Decodes one export message (a UDP payload) from `exporter`, appending its flow
    /// records to `out`. Returns the number of flow records appended. Malformed input
    /// is counted (see [`Collector::exporter_stats`]); records decoded before the damage
    /// are kept.
    pub fn process(
        &mut self,
        exporter: SocketAddr,
        msg: &[u8],
        out: &mut Vec<FlowTelemetry>,
    ) -> usize {
        let before = out.len();
        let ex = self.exporters.entry(exporter).or_default();
        ex.stats.packets += 1;
        let result = match u16_at(msg, 0) {
            None => Err(Malformed::TruncatedHeader),
            Some(10) => ipfix::process(&mut self.sessions, ex, exporter, msg, out),
            Some(9) => netflow_v9::process(&mut self.sessions, ex, exporter, msg, out),
            Some(_) => Err(Malformed::BadVersion),
        };
        if let Err(m) = result {
            ex.malformed(exporter, m);
        }
        let n = out.len() - before;
        ex.stats.records += n as u64;
        n
    }

    /// Counters of one exporter, if it sent anything.
    pub fn exporter_stats(&self, exporter: SocketAddr) -> Option<&ExporterStats> {
        self.exporters.get(&exporter).map(|e| &e.stats)
    }

    /// Every exporter with its counters.
    pub fn exporters(&self) -> impl Iterator<Item = (SocketAddr, &ExporterStats)> {
        self.exporters.iter().map(|(a, e)| (*a, &e.stats))
    }

    /// Totals over all exporters.
    pub fn stats(&self) -> CollectorStats {
        let mut totals = ExporterStats::default();
        for e in self.exporters.values() {
            totals.add(&e.stats);
        }
        CollectorStats {
            exporters: self.exporters.len(),
            templates_active: self.sessions.values().map(|s| s.templates.len()).sum(),
            totals,
        }
    }
}
