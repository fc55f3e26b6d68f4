//! Reassembly of IP-fragmented UDP datagrams for `--from-pcap`: an IPFIX message or
//! NetFlow v9 packet larger than the exporter's path MTU arrives as IP fragments, and only
//! the whole datagram decodes.
//!
//! Bounded: at most [`MAX_PENDING`] datagrams are held (the oldest is dropped beyond
//! that); a datagram whose fragments were cut by the snap length, overlap inconsistently
//! or never complete is counted and dropped.

use cemflow_ingest::decode::{Fragment, Transport};
use std::collections::{HashMap, VecDeque};

/// Most incomplete datagrams held.
const MAX_PENDING: usize = 1024;
/// Largest IP payload of a datagram, bytes.
const MAX_DATAGRAM: u32 = 65_535;

/// (IP version, source, destination, IP id).
type Key = (u8, [u8; 16], [u8; 16], u32);

#[derive(Debug, Default)]
struct Partial {
    /// Ports and UDP payload of the first fragment.
    first: Option<(u16, u16, Vec<u8>)>,
    /// Later fragments: (offset in the IP payload, data).
    later: Vec<(u32, Vec<u8>)>,
    /// IP payload length, known from the last fragment.
    total: Option<u32>,
}

/// Counters of the reassembly.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReassemblyStats {
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Datagrams dropped incomplete (cut by the snap length, inconsistent, evicted, or
    /// still incomplete at the end of the input).
    pub dropped: u64,
}

/// Fragmented UDP datagrams in progress.
#[derive(Debug, Default)]
pub struct UdpReassembler {
    pending: HashMap<Key, Partial>,
    order: VecDeque<Key>,
    /// Counters.
    pub stats: ReassemblyStats,
}

impl UdpReassembler {
    /// Adds a UDP fragment; the datagram's (source port, UDP payload) once complete.
    pub fn push(&mut self, t: &Transport<'_>) -> Option<(u16, Vec<u8>)> {
        let id = match t.frag {
            Fragment::No => return Some((t.src_port, t.payload.to_vec())),
            Fragment::First { id } | Fragment::Later { id, .. } => id,
        };
        let key = (t.ip_version, t.src, t.dst, id);
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_PENDING {
                if let Some(old) = self.order.pop_front() {
                    self.pending.remove(&old);
                    self.stats.dropped += 1;
                }
            }
            self.order.push_back(key);
        }
        let p = self.pending.entry(key).or_default();
        let cut = t.payload.len() < t.payload_len as usize;
        match t.frag {
            Fragment::First { .. } => {
                p.first = Some((t.src_port, t.dst_port, t.payload.to_vec()));
            }
            Fragment::Later { offset, more, .. } => {
                p.later.push((offset, t.payload.to_vec()));
                if !more {
                    p.total = Some(offset.saturating_add(t.payload_len));
                }
            }
            Fragment::No => {}
        }
        if cut || p.total.is_some_and(|n| n > MAX_DATAGRAM) {
            self.drop_key(&key);
            return None;
        }
        let done = complete(p)?;
        self.pending.remove(&key);
        self.order.retain(|k| *k != key);
        match done {
            Ok(d) => {
                self.stats.reassembled += 1;
                Some(d)
            }
            Err(()) => {
                self.stats.dropped += 1;
                None
            }
        }
    }

    /// Counts what is still incomplete as dropped (end of input).
    pub fn finish(&mut self) {
        self.stats.dropped += self.pending.len() as u64;
        self.pending.clear();
        self.order.clear();
    }

    fn drop_key(&mut self, key: &Key) {
        if self.pending.remove(key).is_some() {
            self.stats.dropped += 1;
            self.order.retain(|k| k != key);
        }
    }
}

/// `None` while fragments are missing; `Some(Err)` when they cannot form a datagram.
fn complete(p: &mut Partial) -> Option<Result<(u16, Vec<u8>), ()>> {
    let (sport, _, first) = p.first.as_ref()?;
    let total = p.total?;
    p.later.sort_unstable_by_key(|(o, _)| *o);
    // The first fragment covers the UDP header (8 bytes) and its payload.
    let mut covered = 8 + first.len() as u32;
    let mut out = Vec::with_capacity(total.saturating_sub(8) as usize);
    out.extend_from_slice(first);
    for (off, data) in &p.later {
        if *off > covered {
            return None; // a hole: wait for the missing fragment
        }
        let end = off.saturating_add(data.len() as u32);
        if end <= covered {
            continue; // duplicate
        }
        let skip = (covered - off) as usize;
        out.extend_from_slice(data.get(skip..).unwrap_or_default());
        covered = end;
    }
    Some(if covered == total {
        Ok((*sport, out))
    } else {
        Err(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cemflow_ingest::decode::{Decoded, Decoder, LinkType};

    /// IPv4 frames (raw link type) of a UDP datagram of `payload` fragmented at `mtu`.
    fn fragments(payload: &[u8], mtu: usize, id: u16) -> Vec<Vec<u8>> {
        let mut ip_payload = vec![0x10, 0x00, 0x08, 0x07]; // ports 4096 → 2055
        ip_payload.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        ip_payload.extend_from_slice(&[0, 0]);
        ip_payload.extend_from_slice(payload);
        let step = (mtu - 20) / 8 * 8;
        let mut out = Vec::new();
        for (i, chunk) in ip_payload.chunks(step).enumerate() {
            let off = i * step;
            let more = off + chunk.len() < ip_payload.len();
            let mut h = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            let frag = (off / 8) as u16 | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&frag.to_be_bytes());
            h.extend_from_slice(chunk);
            out.push(h);
        }
        out
    }

    fn feed(r: &mut UdpReassembler, frame: &[u8]) -> Option<(u16, Vec<u8>)> {
        let mut d = Decoded::default();
        Decoder { udp_tunnels: false }
            .decode(LinkType::Raw, frame, &mut d)
            .expect("decodes");
        r.push(&d.layers()[0])
    }

    #[test]
    fn reassembles_in_any_order() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut frames = fragments(&payload, 1500, 7);
        assert_eq!(frames.len(), 3);
        frames.swap(0, 2);
        let mut r = UdpReassembler::default();
        assert!(feed(&mut r, &frames[0]).is_none());
        assert!(feed(&mut r, &frames[1]).is_none());
        let (sport, got) = feed(&mut r, &frames[2]).expect("complete");
        assert_eq!((sport, got), (4096, payload));
        assert_eq!(r.stats.reassembled, 1);
    }

    #[test]
    fn incomplete_datagrams_are_counted() {
        let payload = vec![1u8; 2000];
        let frames = fragments(&payload, 1000, 9);
        let mut r = UdpReassembler::default();
        assert!(feed(&mut r, &frames[0]).is_none());
        assert!(feed(&mut r, &frames[2]).is_none());
        r.finish();
        assert_eq!((r.stats.reassembled, r.stats.dropped), (0, 1));
        // Unfragmented datagrams pass straight through.
        let whole = fragments(b"abc", 1500, 1);
        assert_eq!(feed(&mut r, &whole[0]), Some((4096, b"abc".to_vec())));
    }
}
