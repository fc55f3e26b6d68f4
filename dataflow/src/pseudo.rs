//! Keyed pseudonyms of subscribers (SPEC §1): `user_key = hex(HMAC-SHA256(key, user id))`
//! truncated to 16 hex characters (64 bits).
//!
//! The key comes from configuration or the `CEMFLOW_PSEUDO_KEY` environment variable (the
//! CLI passes it in); there is no built-in key. The same key and user id always give the
//! same pseudonym, so tables written by different probes join; without the key a pseudonym
//! cannot be linked back to a subscriber.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Environment variable the CLI reads the pseudonymisation key from.
pub const PSEUDO_KEY_ENV: &str = "CEMFLOW_PSEUDO_KEY";

/// Errors creating a [`Pseudonymizer`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PseudoError {
    /// The key is empty: pseudonyms would be a plain (reversible by dictionary) hash.
    #[error("pseudonymisation key is empty: set `privacy.key` in the config or {PSEUDO_KEY_ENV}")]
    EmptyKey,
}

/// Computes user pseudonyms with a secret key.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer { key: <redacted> }")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer keyed with `key` (any length but not empty).
    pub fn new(key: &[u8]) -> Result<Pseudonymizer, PseudoError> {
        if key.is_empty() {
            return Err(PseudoError::EmptyKey);
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| PseudoError::EmptyKey)?;
        Ok(Pseudonymizer { mac })
    }

    /// The pseudonym as a 64-bit number (the first 8 bytes of the HMAC, big-endian).
    pub fn user_key_u64(&self, user: &str) -> u64 {
        let mut mac = self.mac.clone();
        mac.update(user.as_bytes());
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("HMAC-SHA256 has 32 bytes"))
    }

    /// The pseudonym of `user` (an IP in canonical text form, or a subscriber id): 16
    /// lowercase hex characters.
    pub fn user_key(&self, user: &str) -> String {
        key_hex(self.user_key_u64(user))
    }
}

/// Formats a 64-bit pseudonym as 16 lowercase hex characters (what tables store).
pub fn key_hex(k: u64) -> String {
    hex::encode(k.to_be_bytes())
}

/// Parses a 16-hex-character pseudonym back to its 64-bit form.
pub fn parse_key_hex(s: &str) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_key_dependent() {
        let a = Pseudonymizer::new(b"secret-a").unwrap();
        let b = Pseudonymizer::new(b"secret-b").unwrap();
        let k1 = a.user_key("10.0.0.1");
        assert_eq!(k1.len(), 16);
        assert!(k1
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(k1, a.user_key("10.0.0.1"));
        assert_eq!(
            k1,
            Pseudonymizer::new(b"secret-a")
                .unwrap()
                .user_key("10.0.0.1")
        );
        assert_ne!(k1, a.user_key("10.0.0.2"));
        assert_ne!(k1, b.user_key("10.0.0.1"));
        assert_eq!(parse_key_hex(&k1), Some(a.user_key_u64("10.0.0.1")));
    }

    #[test]
    fn matches_rfc4231_prefix() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let p = Pseudonymizer::new(b"Jefe").unwrap();
        assert_eq!(
            p.user_key("what do ya want for nothing?"),
            "5bdcc146bf60754e"
        );
    }

    #[test]
    fn empty_key_refused() {
        assert_eq!(Pseudonymizer::new(b"").unwrap_err(), PseudoError::EmptyKey);
        assert!(format!("{:?}", Pseudonymizer::new(b"k").unwrap()).contains("redacted"));
    }
}
