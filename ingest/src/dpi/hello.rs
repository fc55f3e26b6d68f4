//! TLS ClientHello / ServerHello metadata, shared by TLS-over-TCP and QUIC.
//!
//! The fixed part of a ServerHello is parsed with `tls-parser`; the fixed part of a
//! ClientHello is walked by hand with `tls-parser`'s exact acceptance rules (its parser
//! collects the cipher suites and compression methods into vectors, an allocation per
//! hello that nothing here reads). The extension block is walked by hand (type/length
//! pairs) so that GREASE, ECH, post-quantum key shares or a malformed extension we do not
//! care about never hide the SNI.

use super::util::{be16, printable_trimmed, push_printable, text};
use super::DpiResult;
use tls_parser::parse_tls_handshake_server_hello;

const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
const EXT_ECH: u16 = 0xfe0d;
const EXT_ESNI: u16 = 0xffce;

/// Handshake message types.
pub(crate) const HS_CLIENT_HELLO: u8 = 1;
pub(crate) const HS_SERVER_HELLO: u8 = 2;

/// GREASE values (RFC 8701) are 0x?a?a with both bytes equal.
#[inline]
pub(crate) fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Metadata of a ClientHello.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ClientHelloInfo {
    pub sni: Option<Box<str>>,
    pub alpn: Option<Box<str>>,
    /// Highest non-GREASE version offered (supported_versions, else legacy version).
    pub max_version: u16,
    pub ech: bool,
}

/// The legacy version and the extension block of a ClientHello body, accepted exactly
/// when `tls_parser::parse_tls_handshake_client_hello` accepts it: version, 32 random
/// bytes, a session id of at most 32 bytes, cipher suites (even length), compression
/// methods, then an extension block when its length fits (else none).
fn client_hello_fixed(body: &[u8]) -> Option<(u16, Option<&[u8]>)> {
    let version = be16(body, 0)?;
    let sid_len = usize::from(*body.get(34)?);
    if sid_len > 32 {
        return None;
    }
    let mut off = 35 + sid_len;
    let ciphers_len = usize::from(be16(body, off)?);
    off += 2;
    if ciphers_len % 2 == 1 || ciphers_len > body.len().saturating_sub(off) {
        return None;
    }
    off += ciphers_len;
    let comp_len = usize::from(*body.get(off)?);
    off += 1;
    if comp_len > body.len().saturating_sub(off) {
        return None;
    }
    off += comp_len;
    let ext = be16(body, off).and_then(|n| body.get(off + 2..off + 2 + usize::from(n)));
    Some((version, ext))
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub(crate) fn parse_client_hello(body: &[u8]) -> Option<ClientHelloInfo> {
    let (version, ext) = client_hello_fixed(body)?;
    let mut info = ClientHelloInfo {
        max_version: version,
        ..Default::default()
    };
    let mut sv_max = 0u16;
    for (ty, data) in extensions(ext.unwrap_or(&[])) {
        match ty {
            EXT_SNI => info.sni = parse_sni(data),
            EXT_ALPN => info.alpn = parse_alpn(data),
            EXT_SUPPORTED_VERSIONS => {
                // u8 length, then u16 versions
                let n = usize::from(*data.first().unwrap_or(&0));
                let list = data.get(1..1 + n).unwrap_or(&[]);
                for c in list.chunks_exact(2) {
                    let v = u16::from_be_bytes([c[0], c[1]]);
                    if !is_grease(v) && v > sv_max && v <= 0x0304 {
                        sv_max = v;
                    }
                }
            }
            EXT_ECH | EXT_ESNI => info.ech = true,
            _ => {}
        }
    }
    if sv_max != 0 {
        info.max_version = sv_max;
    }
    Some(info)
}

/// Parses a ServerHello body: the negotiated version (supported_versions wins).
pub(crate) fn parse_server_hello(body: &[u8]) -> Option<u16> {
    let legacy = be16(body, 0)?;
    let ext = match parse_tls_handshake_server_hello(body) {
        Ok((_, sh)) => sh.ext,
        Err(_) => {
            // tls-parser rejects unknown legacy versions; report what the server said.
            return (legacy >> 8 == 3 || legacy >> 8 == 0x7f).then_some(legacy);
        }
    };
    for (ty, data) in extensions(ext.unwrap_or(&[])) {
        if ty == EXT_SUPPORTED_VERSIONS {
            if let Some(v) = be16(data, 0) {
                return Some(v);
            }
        }
    }
    Some(legacy)
}

/// Iterates over (type, data) extension pairs, stopping at the first malformed one.
fn extensions(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let ty = be16(b, 0)?;
        let len = usize::from(be16(b, 2)?);
        let data = b.get(4..4 + len)?;
        b = &b[4 + len..];
        Some((ty, data))
    })
}

fn parse_sni(data: &[u8]) -> Option<Box<str>> {
    let list_len = usize::from(be16(data, 0)?);
    let mut l = data.get(2..2 + list_len).or_else(|| data.get(2..))?;
    while l.len() >= 3 {
        let ty = l[0];
        let n = usize::from(be16(l, 1)?);
        let name = l.get(3..3 + n)?;
        if ty == 0 {
            return text(name, 255);
        }
        l = &l[3 + n..];
    }
    None
}

fn parse_alpn(data: &[u8]) -> Option<Box<str>> {
    let list_len = usize::from(be16(data, 0)?);
    let mut l = data.get(2..2 + list_len).or_else(|| data.get(2..))?;
    // Each kept name takes at most its length byte's place for the comma, so the output
    // is never longer than the list: one allocation.
    let mut out = String::with_capacity(l.len());
    while let Some((&n, rest)) = l.split_first() {
        let p = rest.get(..usize::from(n))?;
        l = &rest[usize::from(n)..];
        if p.is_empty() || out.len() + p.len() > 128 {
            continue;
        }
        // GREASE ALPN values (0x?A?A) are skipped.
        if p.len() == 2 && is_grease(u16::from_be_bytes([p[0], p[1]])) {
            continue;
        }
        let t = printable_trimmed(p, 64);
        if !t.is_empty() {
            if !out.is_empty() {
                out.push(',');
            }
            push_printable(&mut out, t);
        }
    }
    (!out.is_empty()).then(|| out.into_boxed_str())
}

/// Copies ClientHello metadata into the flow result (keeps values already set).
pub(crate) fn apply_client_hello(res: &mut DpiResult, ch: ClientHelloInfo) {
    if res.sni.is_none() {
        res.sni = ch.sni;
    }
    if res.alpn.is_none() {
        res.alpn = ch.alpn;
    }
    res.tls_ech |= ch.ech;
    if res.tls_version.is_none() && ch.max_version != 0 {
        res.tls_version = Some(ch.max_version);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a ClientHello handshake message (with the 4-byte header).
    pub(crate) fn build_client_hello(
        sni: &str,
        alpn: &[&str],
        versions: &[u16],
        ech: bool,
    ) -> Vec<u8> {
        let mut exts = Vec::new();
        let mut push_ext = |ty: u16, data: &[u8]| {
            exts.extend_from_slice(&ty.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        };
        push_ext(0x0a0a, &[]); // GREASE
        let mut s = Vec::new();
        s.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
        s.push(0);
        s.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        s.extend_from_slice(sni.as_bytes());
        push_ext(EXT_SNI, &s);
        if !alpn.is_empty() {
            let mut a = Vec::new();
            for p in alpn {
                a.push(p.len() as u8);
                a.extend_from_slice(p.as_bytes());
            }
            let mut d = (a.len() as u16).to_be_bytes().to_vec();
            d.extend_from_slice(&a);
            push_ext(EXT_ALPN, &d);
        }
        if !versions.is_empty() {
            let mut d = vec![(versions.len() * 2) as u8];
            for v in versions {
                d.extend_from_slice(&v.to_be_bytes());
            }
            push_ext(EXT_SUPPORTED_VERSIONS, &d);
        }
        if ech {
            push_ext(EXT_ECH, &[0, 1, 2, 3]);
        }
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(32);
        body.extend_from_slice(&[1u8; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![HS_CLIENT_HELLO];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// Builds a ServerHello handshake message (with header), TLS 1.3 style when `v13`.
    pub(crate) fn build_server_hello(v13: bool) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[9u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0x13, 0x01, 0]);
        let mut exts = Vec::new();
        if v13 {
            exts.extend_from_slice(&[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![HS_SERVER_HELLO];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn client_hello_fields() {
        let m = build_client_hello(
            "www.example.com",
            &["h2", "http/1.1"],
            &[0x1a1a, 0x0304, 0x0303],
            true,
        );
        let ch = parse_client_hello(&m[4..]).expect("parse");
        assert_eq!(ch.sni.as_deref(), Some("www.example.com"));
        assert_eq!(ch.alpn.as_deref(), Some("h2,http/1.1"));
        assert_eq!(ch.max_version, 0x0304);
        assert!(ch.ech);
    }

    #[test]
    fn server_hello_versions() {
        assert_eq!(
            parse_server_hello(&build_server_hello(true)[4..]),
            Some(0x0304)
        );
        assert_eq!(
            parse_server_hello(&build_server_hello(false)[4..]),
            Some(0x0303)
        );
    }

    /// The hand-written walk of the ClientHello's fixed part accepts exactly what
    /// tls-parser accepts, and finds the same extension block, on valid, truncated and
    /// corrupted hellos.
    #[test]
    fn fixed_part_agrees_with_tls_parser() {
        fn reference(b: &[u8]) -> Option<(u16, Option<&[u8]>)> {
            tls_parser::parse_tls_handshake_client_hello(b)
                .ok()
                .map(|(_, ch)| (ch.version.0, ch.ext))
        }
        let hello = build_client_hello("a.example", &["h2"], &[0x0304], false);
        let body = &hello[4..];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for cut in 0..=body.len() {
            let b = &body[..cut];
            assert_eq!(client_hello_fixed(b), reference(b), "cut at {cut}");
        }
        // Corrupt the length fields (session id, cipher suites, compression, extensions)
        // and random bytes.
        let sid = 34;
        let ciphers = 35 + usize::from(body[sid]);
        let comp = ciphers + 2 + usize::from(be16(body, ciphers).unwrap_or(0));
        let ext = comp + 1 + usize::from(body[comp]);
        for _ in 0..4000 {
            let mut b = body.to_vec();
            let at = match next() % 5 {
                0 => sid,
                1 => ciphers + (next() % 2) as usize,
                2 => comp,
                3 => ext + (next() % 2) as usize,
                _ => (next() % b.len() as u64) as usize,
            };
            b[at] = next() as u8;
            let cut = b.len() - (next() % 8) as usize;
            let b = &b[..cut];
            assert_eq!(client_hello_fixed(b), reference(b), "byte {at} of {b:?}");
        }
    }

    #[test]
    fn alpn_is_bounded_and_printable() {
        let mut d = vec![0, 0];
        for p in [&b" h2 "[..], b"\x01x", b"\x0a\x0a", b"http/1.1"] {
            d.push(p.len() as u8);
            d.extend_from_slice(p);
        }
        let n = (d.len() - 2) as u16;
        d[..2].copy_from_slice(&n.to_be_bytes());
        assert_eq!(parse_alpn(&d).as_deref(), Some("h2,?x,http/1.1"));
        assert_eq!(parse_alpn(&[0, 2, 1, b' ']), None);
    }

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x0303));
    }
}
