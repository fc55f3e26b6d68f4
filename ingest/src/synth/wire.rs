//! Byte-level builders: Ethernet/IPv4/TCP/UDP frames with correct checksums, TLS 1.3
//! ClientHello/ServerHello, DNS queries/answers, QUIC v1 Initial packets (RFC 9001
//! protection with the version's initial secret) and RTP headers.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

pub(crate) const ETH_LEN: usize = 14;
pub(crate) const IP_LEN: usize = 20;
pub(crate) const TCP_LEN: usize = 20;
pub(crate) const UDP_LEN: usize = 8;
/// TCP payload per full segment (1500-byte MTU, no TCP options on data segments).
pub(crate) const MSS: u32 = 1460;
/// Largest TLS 1.3 record payload on the wire (16 KiB plaintext + content type + tag).
pub(crate) const TLS_REC_MAX: u32 = 16384 + 17;

pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;

/// Addressing of one packet (already oriented: `src` sends).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Addr {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: u32,
    pub dst_ip: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub ttl: u8,
    pub ip_id: u16,
}

#[inline]
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Writes Ethernet + IPv4 headers into `buf[0..34]` for an L4 segment of `l4_len` bytes.
fn eth_ip(buf: &mut [u8], a: &Addr, proto: u8, l4_len: usize) {
    buf[0..6].copy_from_slice(&a.dst_mac);
    buf[6..12].copy_from_slice(&a.src_mac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut buf[ETH_LEN..ETH_LEN + IP_LEN];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&((IP_LEN + l4_len) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&a.ip_id.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    ip[8] = a.ttl;
    ip[9] = proto;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&a.src_ip.to_be_bytes());
    ip[16..20].copy_from_slice(&a.dst_ip.to_be_bytes());
    let c = fold(sum16(ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

fn pseudo(a: &Addr, proto: u8, l4_len: usize) -> u64 {
    u64::from(a.src_ip >> 16)
        + u64::from(a.src_ip & 0xffff)
        + u64::from(a.dst_ip >> 16)
        + u64::from(a.dst_ip & 0xffff)
        + u64::from(proto)
        + l4_len as u64
}

/// TCP header fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpHdr<'o> {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: &'o [u8],
}

/// Appends an Ethernet/IPv4/TCP frame to `buf` with `payload_len` payload bytes written by
/// `fill`, then sets the checksums.
pub(crate) fn tcp_frame(
    buf: &mut Vec<u8>,
    a: &Addr,
    h: &TcpHdr<'_>,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let hdr_len = TCP_LEN + h.options.len();
    debug_assert!(h.options.len().is_multiple_of(4));
    let l4_len = hdr_len + payload_len;
    let base = buf.len();
    buf.resize(base + ETH_LEN + IP_LEN + l4_len, 0);
    let buf = &mut buf[base..];
    eth_ip(buf, a, 6, l4_len);
    let t = &mut buf[ETH_LEN + IP_LEN..];
    t[0..2].copy_from_slice(&a.src_port.to_be_bytes());
    t[2..4].copy_from_slice(&a.dst_port.to_be_bytes());
    t[4..8].copy_from_slice(&h.seq.to_be_bytes());
    t[8..12].copy_from_slice(&h.ack.to_be_bytes());
    t[12] = ((hdr_len / 4) as u8) << 4;
    t[13] = h.flags;
    t[14..16].copy_from_slice(&h.window.to_be_bytes());
    t[20..hdr_len].copy_from_slice(h.options);
    fill(&mut t[hdr_len..]);
    let c = fold(sum16(t, pseudo(a, 6, l4_len)));
    t[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Appends an Ethernet/IPv4/UDP frame to `buf` with `payload_len` bytes written by `fill`.
pub(crate) fn udp_frame(
    buf: &mut Vec<u8>,
    a: &Addr,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let l4_len = UDP_LEN + payload_len;
    let base = buf.len();
    buf.resize(base + ETH_LEN + IP_LEN + l4_len, 0);
    let buf = &mut buf[base..];
    eth_ip(buf, a, 17, l4_len);
    let u = &mut buf[ETH_LEN + IP_LEN..];
    u[0..2].copy_from_slice(&a.src_port.to_be_bytes());
    u[2..4].copy_from_slice(&a.dst_port.to_be_bytes());
    u[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    fill(&mut u[UDP_LEN..]);
    let mut c = fold(sum16(u, pseudo(a, 17, l4_len)));
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
}

/// SYN options: MSS 1460, SACK permitted, window scale 7 (with NOPs, 12 bytes).
pub(crate) const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1];

// ---- TLS -----------------------------------------------------------------------------------

fn put_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// Appends extension `typ` whose body is written by `f`.
fn ext(v: &mut Vec<u8>, typ: u16, f: impl FnOnce(&mut Vec<u8>)) {
    put_u16(v, typ);
    let at = v.len();
    put_u16(v, 0);
    f(v);
    let len = (v.len() - at - 2) as u16;
    v[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Appends a TLS 1.3 ClientHello handshake message (type, 24-bit length, body) as a browser
/// sends it: SNI, ALPN, supported_versions, key_share (x25519), signature algorithms… For
/// QUIC (`quic`), the legacy session id is empty, only TLS 1.3 suites are offered and
/// quic_transport_parameters is added.
pub(crate) fn client_hello(v: &mut Vec<u8>, sni: &str, alpn: &[&str], rnd: &[u8; 64], quic: bool) {
    let start = v.len();
    v.extend_from_slice(&[1, 0, 0, 0]);
    v.extend_from_slice(&[3, 3]);
    v.extend_from_slice(&rnd[..32]);
    if quic {
        v.push(0);
    } else {
        v.push(32);
        v.extend_from_slice(&rnd[32..64]);
    }
    let suites: &[u16] = if quic {
        &[0x1301, 0x1302, 0x1303]
    } else {
        &[
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ]
    };
    put_u16(v, (suites.len() * 2) as u16);
    for s in suites {
        put_u16(v, *s);
    }
    v.extend_from_slice(&[1, 0]); // compression: null
    let ext_at = v.len();
    put_u16(v, 0);
    ext(v, 0x0000, |v| {
        put_u16(v, (sni.len() + 3) as u16);
        v.push(0);
        put_u16(v, sni.len() as u16);
        v.extend_from_slice(sni.as_bytes());
    });
    if !quic {
        ext(v, 0x0017, |_| {});
        ext(v, 0xff01, |v| v.push(0));
    }
    ext(v, 0x000a, |v| {
        v.extend_from_slice(&[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18])
    });
    if !quic {
        ext(v, 0x000b, |v| v.extend_from_slice(&[1, 0]));
        ext(v, 0x0023, |_| {});
    }
    ext(v, 0x0010, |v| {
        let n: usize = alpn.iter().map(|p| p.len() + 1).sum();
        put_u16(v, n as u16);
        for p in alpn {
            v.push(p.len() as u8);
            v.extend_from_slice(p.as_bytes());
        }
    });
    ext(v, 0x0005, |v| v.extend_from_slice(&[1, 0, 0, 0, 0]));
    ext(v, 0x000d, |v| {
        v.extend_from_slice(&[0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1]);
    });
    ext(v, 0x0033, |v| {
        put_u16(v, 36);
        put_u16(v, 0x001d);
        put_u16(v, 32);
        v.extend_from_slice(&rnd[16..48]);
    });
    ext(v, 0x002d, |v| v.extend_from_slice(&[1, 1]));
    ext(v, 0x002b, |v| {
        if quic {
            v.extend_from_slice(&[2, 3, 4]);
        } else {
            v.extend_from_slice(&[4, 3, 4, 3, 3]);
        }
    });
    if quic {
        ext(v, 0x0039, |v| {
            // initial_max_data, initial_max_stream_data_bidi_local/remote, max_streams_bidi,
            // max_idle_timeout (varint id, varint len, varint value)
            v.extend_from_slice(&[0x04, 0x04, 0x80, 0x60, 0x00, 0x00]);
            v.extend_from_slice(&[0x05, 0x04, 0x80, 0x10, 0x00, 0x00]);
            v.extend_from_slice(&[0x06, 0x04, 0x80, 0x10, 0x00, 0x00]);
            v.extend_from_slice(&[0x08, 0x02, 0x40, 0x64]);
            v.extend_from_slice(&[0x01, 0x04, 0x80, 0x00, 0x75, 0x30]);
            v.extend_from_slice(&[0x0f, 0x08]);
            v.extend_from_slice(&rnd[40..48]);
        });
    }
    let ext_len = (v.len() - ext_at - 2) as u16;
    v[ext_at..ext_at + 2].copy_from_slice(&ext_len.to_be_bytes());
    let body = (v.len() - start - 4) as u32;
    v[start + 1..start + 4].copy_from_slice(&body.to_be_bytes()[1..]);
}

/// Appends a TLS 1.3 ServerHello handshake message (TLS_AES_128_GCM_SHA256, x25519).
pub(crate) fn server_hello(v: &mut Vec<u8>, rnd: &[u8; 64], session_id: bool) {
    let start = v.len();
    v.extend_from_slice(&[2, 0, 0, 0, 3, 3]);
    v.extend_from_slice(&rnd[..32]);
    if session_id {
        v.push(32);
        v.extend_from_slice(&rnd[32..64]);
    } else {
        v.push(0);
    }
    put_u16(v, 0x1301);
    v.push(0);
    let ext_at = v.len();
    put_u16(v, 0);
    ext(v, 0x002b, |v| put_u16(v, 0x0304));
    ext(v, 0x0033, |v| {
        put_u16(v, 0x001d);
        put_u16(v, 32);
        v.extend_from_slice(&rnd[8..40]);
    });
    let ext_len = (v.len() - ext_at - 2) as u16;
    v[ext_at..ext_at + 2].copy_from_slice(&ext_len.to_be_bytes());
    let body = (v.len() - start - 4) as u32;
    v[start + 1..start + 4].copy_from_slice(&body.to_be_bytes()[1..]);
}

/// Appends a TLS record header.
pub(crate) fn record_header(v: &mut Vec<u8>, content_type: u8, len: usize) {
    v.push(content_type);
    v.extend_from_slice(&[3, 3]);
    put_u16(v, len as u16);
}

/// Wire length of `payload` bytes of application data cut into maximal TLS records.
pub(crate) fn records_wire_len(payload: u32) -> u32 {
    payload + 5 * payload.div_ceil(TLS_REC_MAX)
}

/// Writes bytes `[off, off + out.len())` of a run of application-data records carrying
/// `payload` bytes in total (records of [`TLS_REC_MAX`] but the last); record bodies are
/// taken from `noise` starting at `salt`.
pub(crate) fn write_records(out: &mut [u8], off: u32, payload: u32, noise: &[u8], salt: usize) {
    let full = TLS_REC_MAX + 5;
    let mut pos = off;
    let mut i = 0usize;
    while i < out.len() {
        let rec = pos / full;
        let within = pos % full;
        let rec_payload = (payload - rec * TLS_REC_MAX).min(TLS_REC_MAX);
        if within < 5 {
            let mut h = [0x17, 3, 3, 0, 0];
            h[3..5].copy_from_slice(&(rec_payload as u16).to_be_bytes());
            let n = ((5 - within) as usize).min(out.len() - i);
            out[i..i + n].copy_from_slice(&h[within as usize..within as usize + n]);
            i += n;
            pos += n as u32;
        } else {
            let left = (rec_payload + 5 - within) as usize;
            let n = left.min(out.len() - i);
            fill_noise(&mut out[i..i + n], noise, salt + pos as usize);
            i += n;
            pos += n as u32;
        }
    }
}

/// Copies pseudo-random bytes from `noise` (cyclically) starting at `at`.
#[inline]
pub(crate) fn fill_noise(out: &mut [u8], noise: &[u8], at: usize) {
    let mut at = at % noise.len();
    let mut i = 0;
    while i < out.len() {
        let n = (noise.len() - at).min(out.len() - i);
        out[i..i + n].copy_from_slice(&noise[at..at + n]);
        i += n;
        at = 0;
    }
}

// ---- DNS -----------------------------------------------------------------------------------

fn qname(v: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
}

/// A recursive DNS query for `name`, type A.
pub(crate) fn dns_query(v: &mut Vec<u8>, id: u16, name: &str) {
    v.clear();
    put_u16(v, id);
    v.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    qname(v, name);
    v.extend_from_slice(&[0, 1, 0, 1]);
}

/// The answer to [`dns_query`]: one A record `addr`, TTL `ttl`.
pub(crate) fn dns_answer(v: &mut Vec<u8>, id: u16, name: &str, addr: u32, ttl: u32) {
    v.clear();
    put_u16(v, id);
    v.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    qname(v, name);
    v.extend_from_slice(&[0, 1, 0, 1]);
    v.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    v.extend_from_slice(&ttl.to_be_bytes());
    put_u16(v, 4);
    v.extend_from_slice(&addr.to_be_bytes());
}

// ---- QUIC ----------------------------------------------------------------------------------

const QUIC_V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

/// Initial packet protection keys of one side.
pub(crate) struct QuicKeys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
}

fn expand_label(hk: &Hkdf<Sha256>, label: &str, out: &mut [u8]) {
    let mut info = Vec::with_capacity(32);
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label.as_bytes());
    info.push(0);
    hk.expand(&info, out).expect("HKDF output length is small");
}

impl QuicKeys {
    /// QUIC v1 Initial keys for the client (`client`) or server side, from the client's
    /// first Destination Connection ID.
    pub(crate) fn initial(dcid: &[u8], client: bool) -> QuicKeys {
        let (_, hk) = Hkdf::<Sha256>::extract(Some(&QUIC_V1_SALT), dcid);
        let mut secret = [0u8; 32];
        expand_label(
            &hk,
            if client { "client in" } else { "server in" },
            &mut secret,
        );
        let hk = Hkdf::<Sha256>::from_prk(&secret).expect("32-byte PRK");
        let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
        expand_label(&hk, "quic key", &mut key);
        expand_label(&hk, "quic iv", &mut iv);
        expand_label(&hk, "quic hp", &mut hp);
        QuicKeys {
            aead: Aes128Gcm::new(GenericArray::from_slice(&key)),
            iv,
            hp: Aes128::new(GenericArray::from_slice(&hp)),
        }
    }
}

fn varint(v: &mut Vec<u8>, x: u64) {
    if x < 64 {
        v.push(x as u8);
    } else if x < 16384 {
        put_u16(v, 0x4000 | x as u16);
    } else {
        v.extend_from_slice(&(0x8000_0000 | x as u32).to_be_bytes());
    }
}

/// Appends a protected long-header packet (`ptype` 0 Initial, 2 Handshake) with packet
/// number `pn` (4 bytes) and plaintext `frames`, padded with PADDING frames to
/// `min_payload`; Handshake packets are "protected" with `keys` too (a stand-in for the
/// handshake keys nobody outside the endpoints can derive).
#[allow(clippy::too_many_arguments)]
pub(crate) fn quic_long(
    out: &mut Vec<u8>,
    keys: &QuicKeys,
    ptype: u8,
    dcid: &[u8],
    scid: &[u8],
    pn: u32,
    frames: &[u8],
    min_payload: usize,
) {
    let start = out.len();
    out.push(0xc0 | (ptype << 4) | 0x03);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(dcid.len() as u8);
    out.extend_from_slice(dcid);
    out.push(scid.len() as u8);
    out.extend_from_slice(scid);
    if ptype == 0 {
        varint(out, 0); // token length
    }
    let payload_len = frames.len().max(min_payload);
    let length = 4 + payload_len + 16;
    put_u16(out, 0x4000 | length as u16);
    let pn_off = out.len();
    out.extend_from_slice(&pn.to_be_bytes());
    let hdr_end = out.len();
    out.extend_from_slice(frames);
    out.resize(hdr_end + payload_len, 0);
    let mut nonce = keys.iv;
    for (i, b) in u64::from(pn).to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let (head, body) = out[start..].split_at_mut(hdr_end - start);
    let tag = keys
        .aead
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), head, body)
        .expect("AES-GCM encryption");
    out.extend_from_slice(&tag);
    let mut block = GenericArray::clone_from_slice(&out[pn_off + 4..pn_off + 20]);
    keys.hp.encrypt_block(&mut block);
    out[start] ^= block[0] & 0x0f;
    for i in 0..4 {
        out[pn_off + i] ^= block[1 + i];
    }
}

/// CRYPTO frame header (offset 0) for `len` bytes.
pub(crate) fn crypto_frame_header(v: &mut Vec<u8>, len: usize) {
    v.push(0x06);
    varint(v, 0);
    varint(v, len as u64);
}
