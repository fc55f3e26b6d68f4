//! Resolving the user a caller names (a raw subscriber IP, IMSI, MSISDN, home id, or a
//! pseudonym) to the lake's `user_key`, and back for display.
//!
//! The pseudonym is computed exactly as ingest does: the subscriber id is the topology's
//! `home_id` of the matching row when there is one, else the value itself
//! ([`Topology::subscriber_id`]); `user_key = HMAC-SHA256(key, subscriber id)[..16 hex]`
//! ([`Pseudonymizer`]). The key is passed in by the caller (config or
//! `CEMFLOW_PSEUDO_KEY`); it is never stored.

use crate::error::{QueryError, Result};
use cemflow_dataflow::{Pseudonymizer, Topology};
use std::collections::HashMap;

/// Maps user tokens to pseudonyms (and pseudonyms of topology rows back to their token).
#[derive(Clone, Debug, Default)]
pub struct UserResolver {
    pseudo: Option<Pseudonymizer>,
    topology: Option<Topology>,
    /// `user_key → (topology user value, home id)`.
    reverse: HashMap<String, (String, String)>,
}

/// True for a 16-lowercase-hex pseudonym.
pub fn looks_like_key(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl UserResolver {
    /// A resolver with the pseudonymisation key (as a [`Pseudonymizer`]) and an optional
    /// topology. Without a pseudonymizer only pseudonyms are accepted.
    pub fn new(pseudo: Option<Pseudonymizer>, topology: Option<Topology>) -> UserResolver {
        let mut reverse = HashMap::new();
        if let (Some(p), Some(t)) = (&pseudo, &topology) {
            for e in t.entries() {
                if e.user.contains('/') && e.home_id.is_empty() {
                    continue; // a prefix of default-placed users: no single user
                }
                let sid = if e.home_id.is_empty() {
                    e.user.clone()
                } else {
                    e.home_id.clone()
                };
                reverse
                    .entry(p.user_key(&sid))
                    .or_insert_with(|| (e.user.clone(), e.home_id.clone()));
            }
        }
        UserResolver {
            pseudo,
            topology,
            reverse,
        }
    }

    /// True when raw users can be pseudonymised.
    pub fn has_key(&self) -> bool {
        self.pseudo.is_some()
    }

    /// The `user_key` of `user`: a 16-hex pseudonym is taken as is (unless the topology
    /// names it as a subscriber id); anything else is pseudonymised (by the topology's
    /// latest rows; see [`UserResolver::user_key_at`]).
    pub fn user_key(&self, user: &str) -> Result<String> {
        self.user_key_opt(user, None)
    }

    /// The `user_key` of `user` at `at_s` (epoch s): with a topology versioned by validity
    /// time, the subscriber id is taken from the rows valid then (an address may have
    /// belonged to another line before).
    pub fn user_key_at(&self, user: &str, at_s: i64) -> Result<String> {
        self.user_key_opt(user, Some(at_s))
    }

    fn user_key_opt(&self, user: &str, at_s: Option<i64>) -> Result<String> {
        let u = user.trim();
        if u.is_empty() {
            return Err(QueryError::Input("empty user".into()));
        }
        let known_id = self
            .topology
            .as_ref()
            .is_some_and(|t| t.lookup_id(u).is_some());
        if looks_like_key(u) && !known_id {
            return Ok(u.to_string());
        }
        let Some(p) = &self.pseudo else {
            return Err(QueryError::Input(format!(
                "user `{u}` is not a pseudonym (16 hex chars) and no pseudonymisation key is \
                 configured: set {} (or privacy.key) to look up raw users",
                cemflow_dataflow::PSEUDO_KEY_ENV
            )));
        };
        let sid = match (&self.topology, at_s) {
            (Some(t), Some(at)) => t.subscriber_id_at(u, at),
            (Some(t), None) => t.subscriber_id(u),
            (None, _) => match u.parse::<std::net::IpAddr>() {
                // Canonical text form (as ingest keys users).
                Ok(std::net::IpAddr::V6(a)) => a
                    .to_ipv4_mapped()
                    .map(|v4| v4.to_string())
                    .unwrap_or_else(|| a.to_string()),
                Ok(ip) => ip.to_string(),
                Err(_) => u.to_string(),
            },
        };
        Ok(p.user_key(&sid))
    }

    /// How to show `user_key`: the topology's `user` value when the key is known (the
    /// caller passed the pseudonymisation key and a topology), else the pseudonym.
    pub fn display(&self, user_key: &str) -> String {
        self.reverse
            .get(user_key)
            .map(|r| r.0.clone())
            .unwrap_or_else(|| user_key.to_string())
    }

    /// The topology's home id of `user` (a raw user or a pseudonym), when known.
    pub fn home_id(&self, user: &str) -> Option<String> {
        let key = self.user_key(user).ok()?;
        self.reverse
            .get(&key)
            .map(|r| r.1.clone())
            .filter(|h| !h.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cemflow_dataflow::PlacementConfig;

    #[test]
    fn resolves_raw_and_keys() {
        let p = Pseudonymizer::new(b"k").unwrap();
        let t = Topology::parse(
            "t",
            "10.0.0.5,home-5,olt1,bng1\n10.0.1.0/24,,olt2,bng1\n",
            PlacementConfig::default(),
        )
        .unwrap();
        let r = UserResolver::new(Some(p.clone()), Some(t));
        assert_eq!(r.user_key("10.0.0.5").unwrap(), p.user_key("home-5"));
        assert_eq!(r.user_key("10.0.1.7").unwrap(), p.user_key("10.0.1.7"));
        let k = p.user_key("home-5");
        assert_eq!(r.user_key(&k).unwrap(), k);
        assert_eq!(r.display(&k), "10.0.0.5");
        assert_eq!(r.home_id("10.0.0.5").as_deref(), Some("home-5"));
        assert_eq!(r.home_id(&k).as_deref(), Some("home-5"));
        assert_eq!(r.home_id("10.0.1.7"), None);
        let bare = UserResolver::new(None, None);
        assert!(bare.user_key("10.0.0.5").is_err());
        assert_eq!(bare.user_key(&k).unwrap(), k);
    }

    #[test]
    fn resolves_by_validity_time() {
        let p = Pseudonymizer::new(b"k").unwrap();
        // 10.0.0.5 was home-a's address until T, home-b's from T.
        let t = Topology::parse(
            "t",
            "10.0.0.5,home-a,olt1,bng1,,,,1714557600\n10.0.0.5,home-b,olt2,bng1,,,1714557600,\n",
            PlacementConfig::default(),
        )
        .unwrap();
        let r = UserResolver::new(Some(p.clone()), Some(t));
        assert_eq!(
            r.user_key_at("10.0.0.5", 1_714_557_599).unwrap(),
            p.user_key("home-a")
        );
        assert_eq!(
            r.user_key_at("10.0.0.5", 1_714_557_600).unwrap(),
            p.user_key("home-b")
        );
        assert_eq!(r.user_key("10.0.0.5").unwrap(), p.user_key("home-b"));
        assert_eq!(r.display(&p.user_key("home-a")), "10.0.0.5");
    }
}
