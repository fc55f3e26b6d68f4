//! TLS over TCP (any port).
//!
//! Each direction is walked record by record following TCP sequence numbers: record
//! headers are validated (type 20–24, version 3.x, length ≤ 2^14 + 2048), handshake record
//! bodies are reassembled (≤ 16 KiB) until the first handshake message — ClientHello from
//! the client, ServerHello from the server — is complete. A flow that starts mid-stream
//! (or after a lost segment) re-synchronises on a segment that begins with a record header;
//! chained valid records (ChangeCipherSpec, ApplicationData, …) are enough to call the flow
//! TLS, as nDPI does.

use super::hello::{
    apply_client_hello, parse_client_hello, parse_server_hello, HS_CLIENT_HELLO, HS_SERVER_HELLO,
};
use super::util::be24;
use super::{DpiInput, DpiState, Verdict};

const MAX_HS: usize = 16 * 1024;
const MAX_RECORD: u16 = 16384 + 2048;
const CT_CCS: u8 = 20;
const CT_HANDSHAKE: u8 = 22;
const CT_APPDATA: u8 = 23;

/// Per-flow TLS walker state (boxed, only for TCP flows).
#[derive(Debug, Default)]
pub(crate) struct TlsState {
    dirs: [Dir; 2],
    /// Valid record headers seen (both directions).
    records: u16,
    /// Of which validated right after a previous record (strong evidence).
    chained: u16,
    client_hello: bool,
    server_hello: bool,
    /// A ClientHello/ServerHello header was seen but the message is incomplete.
    hello_pending: bool,
    client_appdata: bool,
    /// Direction index of the client (the ClientHello sender; 0 until known).
    client_dir: usize,
    /// An ApplicationData record exactly filling a segment was seen.
    whole_appdata: bool,
    server_data: bool,
}

#[derive(Debug, Default)]
struct Dir {
    next_seq: Option<u32>,
    synced: bool,
    /// Bytes of the current record body still to come.
    need: u16,
    cur_type: u8,
    hdr: [u8; 5],
    hdr_len: u8,
    hs: Vec<u8>,
    hs_done: bool,
    hs_ts: Option<u64>,
    /// Timestamp of the packet where the current record header started.
    hdr_ts: u64,
}

fn valid_header(h: &[u8]) -> Option<(u8, u16)> {
    let (&ty, rest) = h.split_first()?;
    if !(20..=24).contains(&ty) || rest.len() < 4 {
        return None;
    }
    if rest[0] != 3 || rest[1] > 4 {
        return None;
    }
    let len = u16::from_be_bytes([rest[2], rest[3]]);
    if len == 0 && ty != CT_APPDATA || len > MAX_RECORD {
        return None;
    }
    Some((ty, len))
}

/// A segment shorter than a record header that starts like one.
fn header_prefix(b: &[u8]) -> bool {
    b.len() < 5
        && b.first().is_some_and(|t| (20..=24).contains(t))
        && b.get(1).is_none_or(|&v| v == 3)
        && b.get(2).is_none_or(|&v| v <= 4)
}

impl TlsState {
    fn segment(&mut self, p: &DpiInput<'_>, res: &mut super::DpiResult) {
        let d = p.dir.index();
        let mut data = p.payload;
        {
            let dir = &mut self.dirs[d];
            if let Some(seq) = p.tcp_seq {
                let end = seq.wrapping_add(data.len() as u32);
                if let Some(next) = dir.next_seq {
                    let diff = seq.wrapping_sub(next) as i32;
                    if diff < 0 {
                        let overlap = diff.unsigned_abs() as usize;
                        if overlap >= data.len() {
                            return; // pure retransmission
                        }
                        data = &data[overlap..];
                    } else if diff > 0 {
                        // hole: record boundaries are lost until a segment starts with a header
                        dir.synced = false;
                        dir.hdr_len = 0;
                        dir.need = 0;
                        if !dir.hs.is_empty() && !dir.hs_done {
                            dir.hs_done = true;
                            dir.hs = Vec::new();
                        }
                    }
                }
                dir.next_seq = Some(end);
            }
            if !dir.synced {
                if valid_header(data).is_none() && !header_prefix(data) {
                    return;
                }
                dir.synced = true;
                dir.hdr_len = 0;
                dir.need = 0;
            }
        }
        let mut first_in_seg = true;
        while !data.is_empty() {
            let dir = &mut self.dirs[d];
            if dir.need > 0 {
                let take = data.len().min(usize::from(dir.need));
                let handshake = dir.cur_type == CT_HANDSHAKE && !dir.hs_done;
                let body = &data[..take];
                data = &data[take..];
                dir.need -= take as u16;
                // The whole record body in this segment (the usual case): its first
                // message is read in place, without reassembly.
                if handshake
                    && dir.need == 0
                    && dir.hs.is_empty()
                    && self.handshake_message(d, body, res)
                {
                    continue;
                }
                let dir = &mut self.dirs[d];
                if handshake {
                    let room = MAX_HS.saturating_sub(dir.hs.len());
                    dir.hs.extend_from_slice(&body[..take.min(room)]);
                }
                if dir.need == 0 && dir.cur_type == CT_HANDSHAKE {
                    self.try_handshake(d, res);
                }
                continue;
            }
            let want = 5 - usize::from(dir.hdr_len);
            let take = want.min(data.len());
            let start = usize::from(dir.hdr_len);
            if start == 0 {
                dir.hdr_ts = p.ts_ns;
            }
            dir.hdr[start..start + take].copy_from_slice(&data[..take]);
            dir.hdr_len += take as u8;
            data = &data[take..];
            if dir.hdr_len < 5 {
                break;
            }
            dir.hdr_len = 0;
            let Some((ty, len)) = valid_header(&dir.hdr) else {
                dir.synced = false;
                break;
            };
            dir.cur_type = ty;
            dir.need = len;
            if ty == CT_HANDSHAKE && dir.hs_ts.is_none() {
                dir.hs_ts = Some(dir.hdr_ts);
            }
            self.records = self.records.saturating_add(1);
            if !first_in_seg || start > 0 {
                self.chained = self.chained.saturating_add(1);
            }
            if ty == CT_APPDATA
                && first_in_seg
                && start == 0
                && usize::from(len) + 5 == p.payload.len()
            {
                self.whole_appdata = true;
            }
            if ty == CT_APPDATA {
                if d == self.client_dir {
                    self.client_appdata = true;
                } else if !self.server_data && self.client_hello {
                    let v13 = res.tls_version == Some(0x0304);
                    if !v13 || self.client_appdata {
                        self.server_data = true;
                        res.tls_server_data_ts = Some(p.ts_ns);
                    }
                }
            }
            first_in_seg = false;
            if ty == CT_CCS && len != 1 {
                self.records = self.records.saturating_sub(1);
            }
        }
    }

    /// Reads the first handshake message of direction `d` from its reassembled record
    /// bodies, once they hold all of it.
    fn try_handshake(&mut self, d: usize, res: &mut super::DpiResult) {
        let dir = &mut self.dirs[d];
        if dir.hs_done || dir.hs.len() < 4 {
            return;
        }
        let hs = std::mem::take(&mut dir.hs);
        if !self.handshake_message(d, &hs, res) {
            // incomplete: keep reassembling
            self.dirs[d].hs = hs;
        }
    }

    /// Reads the first handshake message of direction `d` from `hs` (record body bytes
    /// from the message's start): a ClientHello or ServerHello fills `res`, anything else
    /// ends the direction's handshake inspection. False when `hs` does not hold the whole
    /// message yet (or not even its header).
    fn handshake_message(&mut self, d: usize, hs: &[u8], res: &mut super::DpiResult) -> bool {
        let (Some(&ty), Some(len)) = (hs.first(), be24(hs, 1)) else {
            return false;
        };
        let total = 4 + len as usize;
        let dir = &mut self.dirs[d];
        if !(ty == HS_CLIENT_HELLO || ty == HS_SERVER_HELLO) || total > MAX_HS {
            dir.hs_done = true;
            dir.hs = Vec::new();
            return true;
        }
        self.hello_pending = true;
        let Some(body) = hs.get(4..total) else {
            return false;
        };
        // Hellos are accepted in either direction: the flow's "client" may be the TLS
        // server when the capture starts with its SYN/ACK.
        if ty == HS_CLIENT_HELLO {
            if let Some(ch) = parse_client_hello(body) {
                self.client_hello = true;
                self.client_dir = d;
                res.tls_client_hello_ts = dir.hs_ts;
                // the ServerHello (if already seen) decided the version
                let negotiated = res.tls_version.filter(|_| self.server_hello);
                res.tls_version = None;
                apply_client_hello(res, ch);
                if negotiated.is_some() {
                    res.tls_version = negotiated;
                }
            }
        } else if let Some(v) = parse_server_hello(body) {
            self.server_hello = true;
            if !self.client_hello {
                self.client_dir = 1 - d;
            }
            res.tls_version = Some(v);
        }
        dir.hs_done = true;
        dir.hs = Vec::new();
        self.hello_pending = false;
        true
    }

    fn complete(&self) -> bool {
        let dirs_done = self.dirs[0].hs_done && self.dirs[1].hs_done;
        dirs_done && (self.server_data || !self.client_hello)
    }
}

/// Probe: feeds the stream walker; Certain on a parsed hello or on chained records.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let mut tls = st.tls.take().unwrap_or_default();
    tls.segment(p, st.res());
    let v = if tls.client_hello || tls.server_hello {
        Verdict::Certain(name(p), !tls.complete())
    } else if tls.chained >= 1 && tls.records >= 2 || tls.records >= 3 || tls.whole_appdata {
        // mid-flow: record patterns only; no handshake to wait for
        Verdict::Certain(name(p), false)
    } else if tls.hello_pending || tls.records > 0 || st.total_pkts() < 8 {
        Verdict::Unsure
    } else {
        Verdict::NotForUs
    };
    if v == Verdict::NotForUs {
        st.tls = None;
    } else {
        st.tls = Some(tls);
    }
    v
}

/// Tracking after the verdict: ServerHello version and handshake timing.
pub(crate) fn track(p: &DpiInput<'_>, st: &mut DpiState) -> bool {
    let Some(mut tls) = st.tls.take() else {
        return false;
    };
    tls.segment(p, st.res());
    let more = !tls.complete();
    st.tls = Some(tls);
    more
}

/// nDPI names TLS on some well-known ports after the tunnelled protocol.
fn name(p: &DpiInput<'_>) -> &'static str {
    let port = |x: u16| match x {
        993 => Some("IMAPS"),
        995 => Some("POP3S"),
        465 => Some("SMTPS"),
        _ => None,
    };
    port(p.server_port)
        .or_else(|| port(p.client_port))
        .unwrap_or("TLS")
}
