//! QUIC (IETF v1, v2, drafts 23–34; Google QUIC with clear CHLO).
//!
//! Client Initial packets are decrypted with the version's initial secret (derived from
//! the packet's Destination Connection ID), header protection removed, frames walked
//! (PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE) and the CRYPTO stream reassembled by
//! offset across coalesced and consecutive Initial packets (≤ 16 KiB) until the
//! ClientHello is complete; then SNI/ALPN/versions come from [`super::hello`].

pub(crate) mod crypto;
mod gquic;

use super::hello::{apply_client_hello, parse_client_hello, HS_CLIENT_HELLO};
use super::util::{be24, be32, varint};
use super::{DpiInput, DpiResult, DpiState, Verdict};

const MAX_CRYPTO: usize = 16 * 1024;
const MAX_RANGES: usize = 32;

/// Per-flow QUIC state (boxed; only while the ClientHello is incomplete).
#[derive(Debug, Default)]
pub(crate) struct QuicState {
    crypto: Vec<u8>,
    /// Received CRYPTO byte ranges, sorted and merged.
    ranges: Vec<(u32, u32)>,
    decrypted: bool,
    hello_done: bool,
    first_ts: Option<u64>,
}

impl QuicState {
    fn add_crypto(&mut self, off: u64, data: &[u8]) {
        let Ok(off) = usize::try_from(off) else {
            return;
        };
        if off >= MAX_CRYPTO || data.is_empty() {
            return;
        }
        let end = (off + data.len()).min(MAX_CRYPTO);
        if self.crypto.len() < end {
            self.crypto.resize(end, 0);
        }
        self.crypto[off..end].copy_from_slice(&data[..end - off]);
        let (mut s, mut e) = (off as u32, end as u32);
        let mut merged = Vec::with_capacity(self.ranges.len() + 1);
        for &(a, b) in &self.ranges {
            if b < s || a > e {
                merged.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        merged.push((s, e));
        merged.sort_unstable();
        merged.truncate(MAX_RANGES);
        self.ranges = merged;
    }

    fn contiguous(&self) -> usize {
        match self.ranges.first() {
            Some(&(0, e)) => e as usize,
            _ => 0,
        }
    }

    /// Tries to parse the ClientHello from the reassembled CRYPTO stream.
    fn try_hello(&mut self, res: &mut DpiResult) {
        if self.hello_done {
            return;
        }
        let have = self.contiguous();
        let Some(len) = be24(&self.crypto[..have], 1) else {
            return;
        };
        if self.crypto.first() != Some(&HS_CLIENT_HELLO) {
            self.hello_done = true;
            return;
        }
        let total = 4 + len as usize;
        if total > MAX_CRYPTO {
            self.hello_done = true;
            return;
        }
        if have < total {
            return;
        }
        if let Some(ch) = parse_client_hello(&self.crypto[4..total]) {
            apply_client_hello(res, ch);
            res.tls_client_hello_ts = self.first_ts;
        }
        self.hello_done = true;
        self.crypto = Vec::new();
        self.ranges = Vec::new();
    }

    /// Walks the frames of a decrypted Initial payload.
    fn frames(&mut self, b: &[u8]) {
        let mut pos = 0usize;
        while pos < b.len() {
            if b[pos] == 0 {
                pos += 1;
                continue;
            }
            let Some(ty) = varint(b, &mut pos) else {
                return;
            };
            let ok = match ty {
                0x01 => Some(()),
                0x02 | 0x03 => skip_ack(b, &mut pos, ty == 0x03),
                0x06 => (|| {
                    let off = varint(b, &mut pos)?;
                    let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                    let data = b.get(pos..pos.checked_add(len)?)?;
                    pos += len;
                    self.add_crypto(off, data);
                    Some(())
                })(),
                0x1c | 0x1d => (|| {
                    varint(b, &mut pos)?;
                    if ty == 0x1c {
                        varint(b, &mut pos)?;
                    }
                    let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                    pos = pos.checked_add(len)?;
                    Some(())
                })(),
                _ => None,
            };
            if ok.is_none() {
                return;
            }
        }
    }

    /// Processes a client datagram (possibly several coalesced long-header packets).
    /// Returns (saw a QUIC long header with a known version, decrypted something).
    fn datagram(&mut self, p: &DpiInput<'_>, res: &mut DpiResult) -> (bool, bool) {
        let mut b = p.payload;
        let mut known = false;
        let mut decrypted = false;
        while let Some(&first) = b.first() {
            if first & 0x80 == 0 {
                break;
            }
            let Some(version) = be32(b, 1) else { break };
            let Some(params) = crypto::version_params(version) else {
                break;
            };
            known = true;
            if res.quic_version.is_none() {
                res.quic_version = Some(version);
            }
            let Some(h) = long_header(b) else { break };
            let packet_end = h.pn_offset.saturating_add(h.length).min(b.len());
            let pkt = &b[..packet_end];
            if (first >> 4) & 0x03 == params.initial_type() {
                if let Some(keys) = crypto::initial_keys(params, h.dcid, p.c2s()) {
                    if let Some(plain) = crypto::decrypt_packet(&keys, pkt, h.pn_offset) {
                        decrypted = true;
                        if p.c2s() {
                            if self.first_ts.is_none() {
                                self.first_ts = Some(p.ts_ns);
                            }
                            self.frames(&plain);
                        }
                    }
                }
            }
            if packet_end >= b.len() {
                break;
            }
            b = &b[packet_end..];
        }
        (known, decrypted)
    }
}

struct LongHeader<'a> {
    dcid: &'a [u8],
    pn_offset: usize,
    /// Length field: packet number + payload.
    length: usize,
}

/// Parses an Initial (or 0-RTT/Handshake, without token) long header.
fn long_header(b: &[u8]) -> Option<LongHeader<'_>> {
    let first = *b.first()?;
    let version = be32(b, 1)?;
    let v2 = version == 0x6b33_43cf;
    let ty = (first >> 4) & 0x03;
    let is_initial = if v2 { ty == 1 } else { ty == 0 };
    let is_retry = if v2 { ty == 0 } else { ty == 3 };
    if is_retry {
        return None;
    }
    let dcid_len = usize::from(*b.get(5)?);
    if dcid_len > 20 {
        return None;
    }
    let dcid = b.get(6..6 + dcid_len)?;
    let mut pos = 6 + dcid_len;
    let scid_len = usize::from(*b.get(pos)?);
    if scid_len > 20 {
        return None;
    }
    pos += 1 + scid_len;
    if is_initial {
        let tok = usize::try_from(varint(b, &mut pos)?).ok()?;
        pos = pos.checked_add(tok)?;
    }
    let length = usize::try_from(varint(b, &mut pos)?).ok()?;
    if pos > b.len() {
        return None;
    }
    Some(LongHeader {
        dcid,
        pn_offset: pos,
        length,
    })
}

fn skip_ack(b: &[u8], pos: &mut usize, ecn: bool) -> Option<()> {
    varint(b, pos)?; // largest acknowledged
    varint(b, pos)?; // delay
    let count = varint(b, pos)?;
    varint(b, pos)?; // first range
    for _ in 0..count.min(256) {
        varint(b, pos)?;
        varint(b, pos)?;
    }
    if count > 256 {
        return None;
    }
    if ecn {
        for _ in 0..3 {
            varint(b, pos)?;
        }
    }
    Some(())
}

/// Probe: Certain once an Initial packet decrypts (or a gQUIC CHLO is seen).
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_udp() || p.payload.len() < 7 {
        return if st.total_pkts() >= 4 {
            Verdict::NotForUs
        } else {
            Verdict::Unsure
        };
    }
    // Google QUIC
    if let Some(v) = gquic::gquic_version(p.payload) {
        if p.c2s() {
            let res = st.res();
            res.quic_version = Some(v);
            let chlo = gquic::parse_chlo(p.payload, res);
            if chlo || p.has_port(443) || st.total_pkts() >= 2 {
                return Verdict::Certain("QUIC", false);
            }
            return Verdict::Unsure;
        }
    }
    let mut q = st.quic.take().unwrap_or_default();
    let (known, decrypted) = q.datagram(p, &mut st.result);
    q.decrypted |= decrypted;
    q.try_hello(&mut st.result);
    let v = if q.decrypted {
        Verdict::Certain("QUIC", !q.hello_done)
    } else if known && st.total_pkts() < 6 {
        Verdict::Unsure
    } else if st.total_pkts() < 3 && p.payload[0] & 0xc0 == 0xc0 {
        // a long header of an unknown version: give it another packet or two
        Verdict::Unsure
    } else {
        Verdict::NotForUs
    };
    if v == Verdict::NotForUs {
        st.result.quic_version = None;
        st.quic = None;
    } else {
        st.quic = Some(q);
    }
    v
}

/// Tracking after the verdict: more Initial packets until the ClientHello is complete.
pub(crate) fn track(p: &DpiInput<'_>, st: &mut DpiState) -> bool {
    let Some(mut q) = st.quic.take() else {
        return false;
    };
    if p.c2s() {
        q.datagram(p, &mut st.result);
        q.try_hello(&mut st.result);
    }
    let more = !q.hello_done;
    st.quic = Some(q);
    more
}

#[cfg(test)]
pub(crate) mod tests {
    use super::crypto::{encrypt_packet, initial_keys, version_params};
    use super::*;
    use crate::dpi::hello::tests::build_client_hello;

    fn put_varint(out: &mut Vec<u8>, v: u64) {
        if v < 64 {
            out.push(v as u8);
        } else if v < 16384 {
            out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
        } else {
            out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
        }
    }

    /// Builds a protected client Initial packet carrying the given CRYPTO fragments.
    pub(crate) fn build_initial(
        version: u32,
        dcid: &[u8],
        pn: u64,
        frags: &[(usize, &[u8])],
    ) -> Vec<u8> {
        let params = version_params(version).unwrap();
        let keys = initial_keys(params, dcid, true).unwrap();
        let mut payload = Vec::new();
        payload.push(0x01); // PING
        for &(off, data) in frags {
            payload.push(0x06);
            put_varint(&mut payload, off as u64);
            put_varint(&mut payload, data.len() as u64);
            payload.extend_from_slice(data);
        }
        payload.resize(payload.len().max(1100), 0);
        let pn_len = 2;
        let mut hdr = vec![0xc0 | (params.initial_type() << 4) | (pn_len as u8 - 1)];
        hdr.extend_from_slice(&version.to_be_bytes());
        hdr.push(dcid.len() as u8);
        hdr.extend_from_slice(dcid);
        hdr.push(0); // scid
        hdr.push(0); // token
        put_varint(&mut hdr, (pn_len + payload.len() + 16) as u64);
        let pn_offset = hdr.len();
        hdr.extend_from_slice(&(pn as u16).to_be_bytes());
        encrypt_packet(&keys, &hdr, pn_offset, pn, &payload)
    }

    fn input(payload: &[u8]) -> DpiInput<'_> {
        DpiInput {
            l4: 17,
            dir: crate::dpi::Direction::ClientToServer,
            client_port: 50000,
            server_port: 4443,
            payload,
            ts_ns: 1,
            tcp_seq: None,
            tcp_syn: false,
        }
    }

    #[test]
    fn initial_single_packet_all_versions() {
        let ch = build_client_hello("quic.example.org", &["h3"], &[0x0304], false);
        for v in [1u32, 0x6b3343cf, 0xff00001d, 0xff00001b] {
            let pkt = build_initial(v, &[1, 2, 3, 4, 5, 6, 7, 8], 0, &[(0, &ch)]);
            let mut st = DpiState::new();
            st.on_packet(&input(&pkt));
            let r = st.result();
            assert_eq!(r.l7_proto, Some("QUIC"), "version {v:x}");
            assert!(!r.guessed_by_port);
            assert_eq!(r.sni.as_deref(), Some("quic.example.org"));
            assert_eq!(r.alpn.as_deref(), Some("h3"));
            assert_eq!(r.quic_version, Some(v));
            assert_eq!(r.tls_version, Some(0x0304));
            assert!(!st.wants_more());
        }
    }

    #[test]
    fn client_hello_split_out_of_order_and_coalesced() {
        let ch = build_client_hello("split.example.net", &["h3"], &[0x0304], true);
        let (a, rest) = ch.split_at(40);
        let (b, c) = rest.split_at(30);
        let dcid = [9u8; 8];
        // packet 1: fragments c then a (out of order); packet 2: b, coalesced after a second
        // packet with nothing new
        let p1 = build_initial(1, &dcid, 0, &[(70, c), (0, a)]);
        let mut p2 = build_initial(1, &dcid, 1, &[(0, a)]);
        p2.extend_from_slice(&build_initial(1, &dcid, 2, &[(40, b)]));
        let mut st = DpiState::new();
        st.on_packet(&input(&p1));
        assert_eq!(st.result().l7_proto, Some("QUIC"));
        assert!(st.result().sni.is_none());
        assert!(st.wants_more());
        st.on_packet(&input(&p2));
        assert_eq!(st.result().sni.as_deref(), Some("split.example.net"));
        assert!(st.result().tls_ech);
        assert!(!st.wants_more());
    }

    #[test]
    fn gquic_chlo() {
        // Q043-style public header + clear CHLO
        let mut pkt = vec![0x0d];
        pkt.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        pkt.extend_from_slice(b"Q043");
        pkt.push(1);
        pkt.extend_from_slice(&[0u8; 12]);
        pkt.extend_from_slice(&[0xa0, 0x01, 0x04, 0x00]);
        pkt.extend_from_slice(b"CHLO");
        pkt.extend_from_slice(&2u16.to_le_bytes());
        pkt.extend_from_slice(&[0, 0]);
        pkt.extend_from_slice(b"SNI\0");
        pkt.extend_from_slice(&11u32.to_le_bytes());
        pkt.extend_from_slice(b"UAID");
        pkt.extend_from_slice(&15u32.to_le_bytes());
        pkt.extend_from_slice(b"i.ytimg.comtest");
        let mut inp = input(&pkt);
        inp.server_port = 443;
        let mut st = DpiState::new();
        st.on_packet(&inp);
        assert_eq!(st.result().l7_proto, Some("QUIC"));
        assert_eq!(st.result().sni.as_deref(), Some("i.ytimg.com"));
        assert_eq!(st.result().user_agent.as_deref(), Some("test"));
        assert_eq!(st.result().quic_version, Some(u32::from_be_bytes(*b"Q043")));
    }
}
