//! DNS over UDP and TCP (port 53), MDNS (5353), LLMNR (5355) and NetBIOS name service
//! (137, first-level encoded names): first question name/type, response code, query and
//! response timestamps. Hand-written parser: bounded, compression pointers followed at
//! most 16 times.

use super::cross_flow::MAX_ANSWERS;
use super::dns_cache::DnsAnswer;
use super::netbios::decode_netbios_name;
use super::util::{be16, be32};
use super::{DpiInput, DpiState, Verdict};
use std::net::IpAddr;

/// Per-flow DNS state (inline, small).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DnsState {
    query_id: Option<u16>,
}

/// A parsed DNS message header and first question.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct DnsMsg {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub qname: Option<Box<str>>,
    pub qtype: Option<u16>,
}

/// Reads a (possibly compressed) domain name at `pos`; returns it (dotted, no trailing
/// dot, "." for the root) and the position after it in the original message.
pub(crate) fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let after = end.unwrap_or(pos + 1);
                    if out.is_empty() {
                        out.push('.');
                    }
                    return Some((out, after));
                }
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                if !out.is_empty() {
                    out.push('.');
                }
                if out.len() + label.len() > 255 {
                    return None;
                }
                for &c in label {
                    out.push(if (0x21..0x7f).contains(&c) {
                        c as char
                    } else {
                        '?'
                    });
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let ptr = usize::from(be16(msg, pos)? & 0x3fff);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                if jumps > 16 || ptr >= msg.len() {
                    return None;
                }
                pos = ptr;
            }
            _ => return None,
        }
    }
}

/// Parses the header and the first question of a DNS message.
pub(crate) fn parse(msg: &[u8], netbios: bool) -> Option<DnsMsg> {
    if msg.len() < 12 {
        return None;
    }
    let flags = be16(msg, 2)?;
    let mut m = DnsMsg {
        id: be16(msg, 0)?,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: (flags & 0x0f) as u8,
        qdcount: be16(msg, 4)?,
        ancount: be16(msg, 6)?,
        ..Default::default()
    };
    let nscount = be16(msg, 8)?;
    let arcount = be16(msg, 10)?;
    if m.opcode > 6 || m.qdcount > 16 || m.ancount > 512 || nscount > 512 || arcount > 512 {
        return None;
    }
    if !m.response && m.qdcount == 0 && !netbios {
        return None;
    }
    if m.qdcount > 0 || (m.response && m.ancount > 0) {
        // the first question, or for answer-only responses (MDNS announcements) the
        // first answer's owner name and type
        let (name, after) = read_name(msg, 12)?;
        m.qtype = Some(be16(msg, after)?);
        be16(msg, after + 2)?; // class
        m.qname = if netbios {
            decode_netbios_name(&name).or(Some(name.into()))
        } else {
            Some(name.into())
        };
    }
    Some(m)
}

/// Skips a (possibly compressed) name at `pos` without decoding it; the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return Some(pos + 2).filter(|&p| p <= msg.len()),
            _ => return None,
        }
    }
    None
}

/// The A and AAAA records of a response's answer section (at most
/// [`MAX_ANSWERS`](super::cross_flow::MAX_ANSWERS)); empty when the message is cut short.
pub(crate) fn answers(msg: &[u8]) -> Vec<DnsAnswer> {
    let mut out = Vec::new();
    let (Some(qd), Some(an)) = (be16(msg, 4), be16(msg, 6)) else {
        return out;
    };
    let mut pos = 12;
    for _ in 0..qd {
        match skip_name(msg, pos) {
            Some(p) => pos = p + 4,
            None => return out,
        }
    }
    for _ in 0..an {
        let Some(p) = skip_name(msg, pos) else {
            return out;
        };
        let (Some(ty), Some(ttl), Some(rdlen)) = (be16(msg, p), be32(msg, p + 4), be16(msg, p + 8))
        else {
            return out;
        };
        let rdata = p + 10;
        let Some(rd) = msg.get(rdata..rdata + usize::from(rdlen)) else {
            return out;
        };
        let addr = match (ty, rd.len()) {
            (1, 4) => Some(IpAddr::from([rd[0], rd[1], rd[2], rd[3]])),
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rd);
                Some(IpAddr::from(a))
            }
            _ => None,
        };
        if let Some(addr) = addr {
            // RFC 2181: a TTL with the top bit set counts as 0
            let ttl_s = if ttl & 0x8000_0000 != 0 { 0 } else { ttl };
            out.push(DnsAnswer { addr, ttl_s });
            if out.len() >= MAX_ANSWERS {
                return out;
            }
        }
        pos = rdata + usize::from(rdlen);
    }
    out
}

fn proto_name(p: &DpiInput<'_>) -> Option<&'static str> {
    if p.is_tcp() {
        return p.has_port(53).then_some("DNS");
    }
    if p.has_port(5353) {
        Some("MDNS")
    } else if p.has_port(5355) {
        Some("LLMNR")
    } else if p.has_port(137) {
        Some("NetBIOS")
    } else if p.has_port(53) {
        Some("DNS")
    } else {
        None
    }
}

/// Handles one message; returns whether more packets are wanted (a query awaiting its
/// response), or None when the payload is not DNS.
fn handle(p: &DpiInput<'_>, st: &mut DpiState, name: &'static str) -> Option<bool> {
    let msg = if p.is_tcp() {
        let len = usize::from(be16(p.payload, 0)?);
        let m = p.payload.get(2..)?;
        &m[..m.len().min(len)]
    } else {
        p.payload
    };
    let m = parse(msg, name == "NetBIOS")?;
    let ts = p.ts_ns;
    let query_id = st.dns.query_id;
    let res = st.res();
    if res.dns_qname.is_none() {
        if let Some(q) = m.qname {
            if res.host.is_none() && q.as_ref() != "." {
                res.host = Some(q.clone());
            }
            res.dns_qname = Some(q);
            res.dns_qtype = m.qtype;
        }
    }
    if !m.response {
        if query_id.is_none() {
            res.dns_query_ts = Some(ts);
            st.dns.query_id = Some(m.id);
        }
        return Some(name != "MDNS");
    }
    if query_id.is_none() || query_id == Some(m.id) {
        res.dns_rcode = Some(m.rcode);
        if query_id.is_some() {
            res.dns_response_ts = Some(ts);
        }
        if m.rcode == 0 && m.ancount > 0 && name == "DNS" {
            let a = answers(msg);
            if !a.is_empty() {
                st.learnt_mut().dns = a;
            }
        }
        return Some(false);
    }
    Some(true)
}

/// Probe: a well-formed message on a DNS-family port.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    let Some(name) = proto_name(p) else {
        return Verdict::NotForUs;
    };
    match handle(p, st, name) {
        Some(more) => Verdict::Certain(name, more),
        None if st.total_pkts() < 3 => Verdict::Unsure,
        None => Verdict::NotForUs,
    }
}

/// Tracking: the response to the first query.
pub(crate) fn track(p: &DpiInput<'_>, st: &mut DpiState) -> bool {
    let Some(name) = proto_name(p) else {
        return false;
    };
    handle(p, st, name).unwrap_or(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A DNS query for `name`/`qtype` with id.
    pub(crate) fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    /// The response to `q` with rcode and one compressed A answer.
    pub(crate) fn build_response(q: &[u8], rcode: u8) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        r
    }

    #[test]
    fn answers_of_a_response() {
        let q = build_query(7, "www.example.com", 1);
        let r = build_response(&q, 0);
        let a = answers(&r);
        assert_eq!(
            a,
            vec![DnsAnswer {
                addr: IpAddr::from([1, 2, 3, 4]),
                ttl_s: 60
            }]
        );
        // an AAAA record after a CNAME
        let mut r2 = q.clone();
        r2[2] = 0x81;
        r2[3] = 0x80;
        r2[7] = 2;
        r2.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 2, 0xc0, 12]);
        r2.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0x80, 0, 0, 9, 0, 16]);
        r2.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let a = answers(&r2);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].addr, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(a[0].ttl_s, 0, "TTL with the top bit set counts as 0");
        // hostile: every cut of the message, counts past the end, pointer loops
        for n in 0..r2.len() {
            let _ = answers(&r2[..n]);
        }
        let mut bad = r.clone();
        bad[7] = 0xff;
        assert_eq!(answers(&bad).len(), 1);
        let mut lp = q.clone();
        lp[7] = 1;
        let n = lp.len();
        lp.extend_from_slice(&[0xc0, n as u8]);
        assert!(answers(&lp).is_empty());
    }

    #[test]
    fn names_and_compression() {
        let q = build_query(7, "www.example.com", 1);
        let m = parse(&q, false).unwrap();
        assert_eq!(m.qname.as_deref(), Some("www.example.com"));
        let r = build_response(&q, 3);
        let m = parse(&r, false).unwrap();
        assert!(m.response);
        assert_eq!(m.rcode, 3);
        // the answer's compressed name
        assert_eq!(read_name(&r, q.len()).unwrap().0, "www.example.com");
        // pointer loop
        let mut bad = r.clone();
        let n = bad.len();
        bad.extend_from_slice(&[0xc0, n as u8]);
        assert!(read_name(&bad, n).is_none());
    }
}
