//! RTP / RTCP (RFC 3550) heuristics: version 2, a plausible payload type, and the same
//! SSRC with small sequence-number steps over consecutive packets of one direction
//! (UDP, or TCP with RFC 4571 framing). RTCP: version 2, packet type 200–204, length
//! consistent with the datagram.
//!
//! [`RtpHeader`] and [`RtpQuality`] are exported so that the flow table can keep computing
//! loss and interarrival jitter on every packet after the DPI has finished.

use super::util::{be16, be32};
use super::{DpiInput, DpiState, Verdict};

/// The fixed part of an RTP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Parses an RTP header (version 2, not an RTCP packet type), None otherwise.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b0 = *b.first()?;
        let b1 = *b.get(1)?;
        if b0 >> 6 != 2 || b.len() < 12 {
            return None;
        }
        let pt = b1 & 0x7f;
        // 72..=76 with the marker bit are RTCP SR/RR/SDES/BYE/APP
        if (72..=76).contains(&pt) {
            return None;
        }
        let cc = usize::from(b0 & 0x0f);
        if b.len() < 12 + 4 * cc {
            return None;
        }
        Some(Self {
            payload_type: pt,
            marker: b1 & 0x80 != 0,
            seq: be16(b, 2)?,
            timestamp: be32(b, 4)?,
            ssrc: be32(b, 8)?,
        })
    }
}

/// True when `b` is a well-formed RTCP compound packet start (RFC 3550 §6.4).
pub fn is_rtcp(b: &[u8]) -> bool {
    let (Some(&b0), Some(&pt)) = (b.first(), b.get(1)) else {
        return false;
    };
    if b0 >> 6 != 2 || !(200..=204).contains(&pt) {
        return false;
    }
    let Some(words) = be16(b, 2) else {
        return false;
    };
    (usize::from(words) + 1) * 4 <= b.len()
}

/// Running RTP quality of one stream (RFC 3550 §6.4.1 jitter, A.3 loss).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RtpQuality {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u32,
    received: u64,
    last_transit: Option<i64>,
    jitter: f64,
}

impl RtpQuality {
    /// Accounts one packet (`clock_rate` in Hz, e.g. 8000 for G.711, 90000 for video).
    /// Packets of another SSRC than the first one are ignored.
    pub fn update(&mut self, h: &RtpHeader, arrival_ns: u64, clock_rate: u32) {
        match self.ssrc {
            None => {
                self.ssrc = Some(h.ssrc);
                self.base_seq = u32::from(h.seq);
                self.max_seq = u32::from(h.seq);
            }
            Some(s) if s != h.ssrc => return,
            Some(_) => {
                // extend the 16-bit sequence number relative to max_seq
                let max16 = (self.max_seq & 0xffff) as u16;
                let delta = h.seq.wrapping_sub(max16);
                if delta < 0x8000 {
                    self.max_seq = self.max_seq.wrapping_add(u32::from(delta));
                }
            }
        }
        self.received += 1;
        let arrival = (u128::from(arrival_ns) * u128::from(clock_rate) / 1_000_000_000) as i64;
        let transit = arrival.wrapping_sub(i64::from(h.timestamp));
        if let Some(last) = self.last_transit {
            let d = (transit.wrapping_sub(last)).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected from the sequence-number range.
    pub fn expected(&self) -> u64 {
        if self.ssrc.is_none() {
            0
        } else {
            u64::from(self.max_seq.wrapping_sub(self.base_seq)) + 1
        }
    }

    /// Packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets lost (expected − received, never negative).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Interarrival jitter, in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
}

/// Per-flow probe state (inline).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RtpState {
    last: [Option<(u32, u16, u8)>; 2],
    hits: [u8; 2],
    rtcp: u8,
    misses: u8,
}

fn plausible_pt(pt: u8) -> bool {
    pt <= 34 || (96..=127).contains(&pt)
}

/// Probe: consecutive packets of one SSRC (RTP) or RTCP packets.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    let b = if p.is_tcp() {
        // RFC 4571 framing: 16-bit length then the RTP packet
        match be16(p.payload, 0) {
            Some(len) if usize::from(len) + 2 <= p.payload.len() && len >= 12 => &p.payload[2..],
            _ => return tcp_giveup(st),
        }
    } else if p.is_udp() {
        p.payload
    } else {
        return Verdict::NotForUs;
    };
    let d = p.dir.index();
    if is_rtcp(b) {
        st.rtp.rtcp = st.rtp.rtcp.saturating_add(1);
        if st.rtp.rtcp >= 3 {
            return Verdict::Certain("RTCP", false);
        }
        return Verdict::Unsure;
    }
    let Some(h) = RtpHeader::parse(b).filter(|h| plausible_pt(h.payload_type)) else {
        st.rtp.misses = st.rtp.misses.saturating_add(1);
        return if st.rtp.misses >= 4 && st.rtp.hits == [0, 0] {
            Verdict::NotForUs
        } else {
            Verdict::Unsure
        };
    };
    if let Some((ssrc, seq, pt)) = st.rtp.last[d] {
        let step = h.seq.wrapping_sub(seq);
        if ssrc == h.ssrc && pt == h.payload_type && (1..=16).contains(&step) {
            st.rtp.hits[d] = st.rtp.hits[d].saturating_add(1);
        }
    }
    st.rtp.last[d] = Some((h.ssrc, h.seq, h.payload_type));
    let [a, c] = st.rtp.hits;
    if a >= 2 || c >= 2 || (a >= 1 && c >= 1) {
        let res = st.res();
        res.rtp_ssrc = Some(h.ssrc);
        res.rtp_payload_type = Some(h.payload_type);
        return Verdict::Certain("RTP", false);
    }
    Verdict::Unsure
}

fn tcp_giveup(st: &DpiState) -> Verdict {
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rtp_packet(seq: u16, ts: u32, ssrc: u32, pt: u8) -> Vec<u8> {
        let mut b = vec![0x80, pt];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&ssrc.to_be_bytes());
        b.extend_from_slice(&[0xd5; 160]);
        b
    }

    #[test]
    fn quality_loss_and_jitter() {
        let mut q = RtpQuality::default();
        for (i, seq) in [1u16, 2, 3, 5, 6].iter().enumerate() {
            let h = RtpHeader::parse(&rtp_packet(*seq, u32::from(*seq) * 160, 7, 0)).unwrap();
            // 20 ms spacing, perfect clock except one late packet
            let late = if i == 2 { 5_000_000 } else { 0 };
            q.update(&h, (u64::from(*seq)) * 20_000_000 + late, 8000);
        }
        assert_eq!(q.expected(), 6);
        assert_eq!(q.received(), 5);
        assert_eq!(q.lost(), 1);
        assert!(q.jitter() > 0.0);
    }

    #[test]
    fn rtcp() {
        let b = [0x80, 200, 0, 1, 0, 0, 0, 1];
        assert!(is_rtcp(&b));
        assert!(!is_rtcp(&b[..4]));
        assert!(RtpHeader::parse(&[0x80, 0xc8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]).is_none());
    }
}
