//! QUIC Initial packet protection (RFC 9001 §5, RFC 9369 for v2).

use aes::cipher::{generic_array::GenericArray, BlockEncrypt};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_D29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
const SALT_D23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];

/// Version-specific parameters of Initial packet protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VersionParams {
    pub salt: &'static [u8; 20],
    /// QUIC v2 (RFC 9369): "quicv2 " labels and Initial long-header type 1.
    pub v2: bool,
}

impl VersionParams {
    /// Long-header packet type value of Initial packets.
    pub fn initial_type(&self) -> u8 {
        if self.v2 {
            1
        } else {
            0
        }
    }
}

/// Parameters for the IETF QUIC versions we can decrypt, None for others.
pub(crate) fn version_params(version: u32) -> Option<VersionParams> {
    let (salt, v2) = match version {
        0x0000_0001 => (&SALT_V1, false),
        0x6b33_43cf => (&SALT_V2, true),
        0xff00_0021 | 0xff00_0022 => (&SALT_V1, false), // drafts 33–34
        0xff00_001d..=0xff00_0020 => (&SALT_D29, false), // drafts 29–32
        0xff00_0017..=0xff00_001c => (&SALT_D23, false), // drafts 23–28
        0xface_b002 => (&SALT_D23, false),              // mvfst (draft-27 based)
        _ => return None,
    };
    Some(VersionParams { salt, v2 })
}

/// Client Initial keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

fn expand_label(hk: &Hkdf<Sha256>, label: &str, out: &mut [u8]) -> Option<()> {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(&full);
    info.push(0);
    hk.expand(&info, out).ok()
}

/// Derives the Initial keys of one side (`client` true: "client in") from the client's
/// first Destination Connection ID.
pub(crate) fn initial_keys(params: VersionParams, dcid: &[u8], client: bool) -> Option<Keys> {
    let (_, hk) = Hkdf::<Sha256>::extract(Some(params.salt), dcid);
    let mut secret = [0u8; 32];
    expand_label(
        &hk,
        if client { "client in" } else { "server in" },
        &mut secret,
    )?;
    let hk = Hkdf::<Sha256>::from_prk(&secret).ok()?;
    let (lk, li, lh) = if params.v2 {
        ("quicv2 key", "quicv2 iv", "quicv2 hp")
    } else {
        ("quic key", "quic iv", "quic hp")
    };
    let mut k = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&hk, lk, &mut k.key)?;
    expand_label(&hk, li, &mut k.iv)?;
    expand_label(&hk, lh, &mut k.hp)?;
    Some(k)
}

/// Header-protection mask: AES-128-ECB of the 16-byte sample.
pub(crate) fn hp_mask(hp: &[u8; 16], sample: &[u8]) -> Option<[u8; 16]> {
    let sample: [u8; 16] = sample.get(..16)?.try_into().ok()?;
    let cipher = Aes128::new(GenericArray::from_slice(hp));
    let mut block = GenericArray::from(sample);
    cipher.encrypt_block(&mut block);
    Some(block.into())
}

/// Removes header protection and decrypts one long-header packet.
///
/// `packet` spans from the first header byte to the end of this packet (its Length field),
/// `pn_offset` is the offset of the packet number. Returns the plaintext frames.
pub(crate) fn decrypt_packet(keys: &Keys, packet: &[u8], pn_offset: usize) -> Option<Vec<u8>> {
    let sample = packet.get(pn_offset.checked_add(4)?..pn_offset.checked_add(20)?)?;
    let mask = hp_mask(&keys.hp, sample)?;
    let first = packet.first()? ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 0x03) + 1;
    let hdr_end = pn_offset + pn_len;
    let mut buf = packet.to_vec();
    buf[0] = first;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        let b = buf.get_mut(pn_offset + i)?;
        *b ^= mask[1 + i];
        pn = (pn << 8) | u64::from(*b);
    }
    if buf.len() < hdr_end + 16 {
        return None;
    }
    let mut nonce = keys.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let (aad, rest) = buf.split_at_mut(hdr_end);
    let tag_at = rest.len() - 16;
    let (msg, tag) = rest.split_at_mut(tag_at);
    let cipher = Aes128Gcm::new_from_slice(&keys.key).ok()?;
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(&nonce), aad, msg, Tag::from_slice(tag))
        .ok()?;
    let plain = msg.to_vec();
    Some(plain)
}

/// Encrypts and protects a long-header packet (test helper, mirror of [`decrypt_packet`]).
#[cfg(test)]
pub(crate) fn encrypt_packet(
    keys: &Keys,
    header: &[u8],
    pn_offset: usize,
    pn: u64,
    payload: &[u8],
) -> Vec<u8> {
    let pn_len = usize::from(header[0] & 0x03) + 1;
    let mut nonce = keys.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let mut msg = payload.to_vec();
    let cipher = Aes128Gcm::new_from_slice(&keys.key).unwrap();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), header, &mut msg)
        .unwrap();
    let mut out = header.to_vec();
    out.extend_from_slice(&msg);
    out.extend_from_slice(&tag);
    let mask = hp_mask(&keys.hp, &out[pn_offset + 4..pn_offset + 20]).unwrap();
    out[0] ^= mask[0] & 0x0f;
    for i in 0..pn_len {
        out[pn_offset + i] ^= mask[1 + i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9001 Appendix A.1 / A.2.
    #[test]
    fn rfc9001_vectors() {
        let dcid = hex("8394c8f03e515708");
        let k = initial_keys(version_params(1).unwrap(), &dcid, true).unwrap();
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let s = initial_keys(version_params(1).unwrap(), &dcid, false).unwrap();
        assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(s.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(s.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
        // A.2: header protection sample
        let mask = hp_mask(&k.hp, &hex("d1b1c98dd7689fb8ec11d242b123dc9b")).unwrap();
        assert_eq!(mask[..5].to_vec(), hex("437b9aec36"));
    }

    /// RFC 9369 Appendix A.1 (QUIC v2).
    #[test]
    fn rfc9369_vectors() {
        let dcid = hex("8394c8f03e515708");
        let k = initial_keys(version_params(0x6b3343cf).unwrap(), &dcid, true).unwrap();
        assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    /// RFC 9001 A.2: the protected first bytes of the client Initial.
    #[test]
    fn rfc9001_header_protection() {
        let dcid = hex("8394c8f03e515708");
        let k = initial_keys(version_params(1).unwrap(), &dcid, true).unwrap();
        // unprotected header: c300000001088394c8f03e5157080000449e00000002, pn = 2
        let header = hex("c300000001088394c8f03e5157080000449e00000002");
        let pn_offset = header.len() - 4;
        // payload: a CRYPTO frame + padding to 1162 bytes (as in the RFC)
        let mut payload = hex("060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d0017001800100007000504616c706e000500050100000000003300260024001d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c00024001003900320408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff");
        payload.resize(1162, 0);
        let pkt = encrypt_packet(&k, &header, pn_offset, 2, &payload);
        // RFC: protected header c000000001088394c8f03e5157080000449e7b9aec34, payload starts d1b1c98d
        assert_eq!(
            pkt[..22].to_vec(),
            hex("c000000001088394c8f03e5157080000449e7b9aec34")
        );
        assert_eq!(pkt[22..26].to_vec(), hex("d1b1c98d"));
        let plain = decrypt_packet(&k, &pkt, pn_offset).unwrap();
        assert_eq!(plain, payload);
        // tampering breaks authentication
        let mut bad = pkt.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decrypt_packet(&k, &bad, pn_offset).is_none());
    }
}
