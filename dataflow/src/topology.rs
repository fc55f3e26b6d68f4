//! Network topology: which home, access element and core element a user sits behind.
//!
//! File format (CSV, header optional, `#` comments and blank lines ignored):
//! `user,home_id,access_element,core_element[,region,plan_mbps]` where `user` is an IP
//! address, a CIDR prefix (e.g. `10.1.2.0/24`, `2001:db8:12:3400::/56`), an IMSI or an
//! MSISDN (any other token is taken as a subscriber id).
//!
//! Lookups of a client IP try the exact IP first, then the longest matching prefix. Without
//! a match (or without a topology), the user is placed by default: access element = client
//! /24 (IPv4) or /56 (IPv6) prefix, core element = `core0` (lengths and name configurable).
//!
//! **User identity.** A matched row with a non-empty `home_id` makes the subscriber id
//! `home_id` (so every address of one line is one user); otherwise the subscriber id is
//! the client IP in canonical text form. The pseudonym (`user_key`) is computed from that
//! id; queries resolving a complaint's `user` must apply the same rule
//! ([`Topology::subscriber_id`]).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Errors loading a topology file. Row errors name the line (1-based).
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("{path}: cannot read topology: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A row is invalid.
    #[error("{file}:{line}: {reason}")]
    Row {
        /// File name (or `<topology>` for in-memory text).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Prefix lengths and names used when no topology row matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementConfig {
    /// Default access element of an IPv4 client: its prefix of this length.
    pub access_prefix_v4: u8,
    /// Default access element of an IPv6 client: its prefix of this length.
    pub access_prefix_v6: u8,
    /// Server element prefix length, IPv4.
    pub server_prefix_v4: u8,
    /// Server element prefix length, IPv6.
    pub server_prefix_v6: u8,
    /// Default core element name.
    pub default_core: String,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            access_prefix_v4: 24,
            access_prefix_v6: 56,
            server_prefix_v4: 24,
            server_prefix_v6: 48,
            default_core: "core0".into(),
        }
    }
}

/// One topology row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopologyEntry {
    /// The `user` column as written (IP, prefix, IMSI or MSISDN).
    pub user: String,
    /// Home / subscriber line id (may be empty).
    pub home_id: String,
    /// Access element (OLT/PON port, cell, DSLAM).
    pub access_element: String,
    /// Core element (BNG, UPF, aggregation router).
    pub core_element: String,
    /// Region, when given.
    pub region: Option<String>,
    /// Subscribed downstream rate, Mbit/s, when given.
    pub plan_mbps: Option<f64>,
}

/// Where a user sits: the result of a lookup.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Subscriber id the pseudonym is computed from (`home_id`, else the client IP).
    pub subscriber_id: String,
    /// Home id (empty when unknown).
    pub home_id: String,
    /// Access element.
    pub access_element: String,
    /// Core element.
    pub core_element: String,
    /// Region, when known.
    pub region: Option<String>,
    /// Subscribed downstream rate, Mbit/s, when known.
    pub plan_mbps: Option<f64>,
    /// True when a topology row matched (false: default placement).
    pub matched: bool,
}

/// A loaded topology (possibly empty).
#[derive(Clone, Debug, Default)]
pub struct Topology {
    entries: Vec<TopologyEntry>,
    exact: HashMap<IpAddr, usize>,
    /// (prefix length, network as u32) → entry, per length present, longest first.
    v4: Vec<(u8, HashMap<u32, usize>)>,
    v6: Vec<(u8, HashMap<u128, usize>)>,
    ids: HashMap<String, usize>,
    config: PlacementConfig,
}

/// Masks `a` to its first `len` bits.
pub fn mask_v4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - len.min(32) as u32))
    }
}

/// Masks `a` to its first `len` bits.
pub fn mask_v6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len.min(128) as u32))
    }
}

/// The prefix of `ip` with the given length for IPv4 / IPv6, as `addr/len` text.
pub fn prefix_label(ip: IpAddr, len_v4: u8, len_v6: u8) -> String {
    match ip {
        IpAddr::V4(a) => {
            let len = len_v4.min(32);
            let n = std::net::Ipv4Addr::from(mask_v4(u32::from(a), len));
            format!("{n}/{len}")
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return prefix_label(IpAddr::V4(v4), len_v4, len_v6);
            }
            let len = len_v6.min(128);
            let n = std::net::Ipv6Addr::from(mask_v6(u128::from(a), len));
            format!("{n}/{len}")
        }
    }
}

impl Topology {
    /// An empty topology: every user placed by default.
    pub fn empty(config: PlacementConfig) -> Topology {
        Topology {
            config,
            ..Topology::default()
        }
    }

    /// Reads a topology file.
    pub fn from_file(path: &Path, config: PlacementConfig) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Topology::parse(&path.display().to_string(), &text, config)
    }

    /// Parses topology CSV text; `file` names it in errors.
    pub fn parse(
        file: &str,
        text: &str,
        config: PlacementConfig,
    ) -> Result<Topology, TopologyError> {
        let mut t = Topology::empty(config);
        let mut v4: HashMap<u8, HashMap<u32, usize>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, usize>> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |reason: String| TopologyError::Row {
                file: file.to_string(),
                line,
                reason,
            };
            let l = raw.trim().trim_start_matches('\u{feff}');
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let cols: Vec<String> = l
                .split(',')
                .map(|c| c.trim().trim_matches('"').trim().to_string())
                .collect();
            if cols[0].eq_ignore_ascii_case("user") {
                continue; // header
            }
            if cols.len() < 4 || cols.len() > 6 {
                return Err(err(format!(
                    "expected 4 to 6 columns `user,home_id,access_element,core_element[,region,plan_mbps]`, got {}",
                    cols.len()
                )));
            }
            let user = cols[0].clone();
            if user.is_empty() {
                return Err(err("empty `user`".into()));
            }
            if cols[2].is_empty() {
                return Err(err("empty `access_element`".into()));
            }
            if cols[3].is_empty() {
                return Err(err("empty `core_element`".into()));
            }
            let region = cols.get(4).filter(|s| !s.is_empty()).cloned();
            let plan_mbps = match cols.get(5).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                    _ => {
                        return Err(err(format!(
                            "`plan_mbps` must be a positive number, got `{s}`"
                        )))
                    }
                },
            };
            let idx = t.entries.len();
            if let Some((addr, len)) = user.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| err(format!("invalid prefix address `{addr}`")))?;
                let len: u8 = len
                    .parse()
                    .map_err(|_| err(format!("invalid prefix length `{len}`")))?;
                let dup = match ip {
                    IpAddr::V4(a) => {
                        if len > 32 {
                            return Err(err(format!("IPv4 prefix length {len} > 32")));
                        }
                        v4.entry(len)
                            .or_default()
                            .insert(mask_v4(u32::from(a), len), idx)
                            .is_some()
                    }
                    IpAddr::V6(a) => {
                        if len > 128 {
                            return Err(err(format!("IPv6 prefix length {len} > 128")));
                        }
                        v6.entry(len)
                            .or_default()
                            .insert(mask_v6(u128::from(a), len), idx)
                            .is_some()
                    }
                };
                if dup {
                    return Err(err(format!("duplicate prefix `{user}`")));
                }
            } else if let Ok(ip) = user.parse::<IpAddr>() {
                if t.exact.insert(ip, idx).is_some() {
                    return Err(err(format!("duplicate address `{user}`")));
                }
            } else if t.ids.insert(user.clone(), idx).is_some() {
                return Err(err(format!("duplicate subscriber id `{user}`")));
            }
            t.entries.push(TopologyEntry {
                user,
                home_id: cols[1].clone(),
                access_element: cols[2].clone(),
                core_element: cols[3].clone(),
                region,
                plan_mbps,
            });
        }
        t.v4 = v4.into_iter().collect();
        t.v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        t.v6 = v6.into_iter().collect();
        t.v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(t)
    }

    /// Placement configuration (default prefix lengths and core name).
    pub fn config(&self) -> &PlacementConfig {
        &self.config
    }

    /// All rows, in file order.
    pub fn entries(&self) -> &[TopologyEntry] {
        &self.entries
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The row matching `ip`: exact address first, then the longest prefix.
    pub fn lookup_entry(&self, ip: IpAddr) -> Option<&TopologyEntry> {
        let ip = canonical(ip);
        if let Some(&i) = self.exact.get(&ip) {
            return Some(&self.entries[i]);
        }
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask_v4(a, *len)))
                    .map(|&i| &self.entries[i])
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask_v6(a, *len)))
                    .map(|&i| &self.entries[i])
            }
        }
    }

    /// The row of a subscriber id (IMSI, MSISDN or other non-address token).
    pub fn lookup_id(&self, id: &str) -> Option<&TopologyEntry> {
        self.ids.get(id.trim()).map(|&i| &self.entries[i])
    }

    /// Where the client `ip` sits (topology row, else default placement).
    pub fn place(&self, ip: IpAddr) -> Placement {
        let ip = canonical(ip);
        match self.lookup_entry(ip) {
            Some(e) => Placement {
                subscriber_id: if e.home_id.is_empty() {
                    ip.to_string()
                } else {
                    e.home_id.clone()
                },
                home_id: e.home_id.clone(),
                access_element: e.access_element.clone(),
                core_element: e.core_element.clone(),
                region: e.region.clone(),
                plan_mbps: e.plan_mbps,
                matched: true,
            },
            None => Placement {
                subscriber_id: ip.to_string(),
                home_id: String::new(),
                access_element: prefix_label(
                    ip,
                    self.config.access_prefix_v4,
                    self.config.access_prefix_v6,
                ),
                core_element: self.config.default_core.clone(),
                region: None,
                plan_mbps: None,
                matched: false,
            },
        }
    }

    /// The subscriber id a raw user token (IP, IMSI, MSISDN, home id) is pseudonymised
    /// from, by the same rule as [`Topology::place`].
    pub fn subscriber_id(&self, user: &str) -> String {
        let user = user.trim();
        if let Ok(ip) = user.parse::<IpAddr>() {
            return self.place(ip).subscriber_id;
        }
        match self.lookup_id(user) {
            Some(e) if !e.home_id.is_empty() => e.home_id.clone(),
            _ => user.to_string(),
        }
    }

    /// The server element prefix of `ip` (`/24` IPv4, `/48` IPv6 by default).
    pub fn server_prefix(&self, ip: IpAddr) -> String {
        prefix_label(
            ip,
            self.config.server_prefix_v4,
            self.config.server_prefix_v6,
        )
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "user,home_id,access_element,core_element,region,plan_mbps\n\
        # comment\n\
        10.0.0.5,home-5,olt1/pon1,bng1,north,100\n\
        10.0.0.0/24,,olt1/pon2,bng1\n\
        10.0.0.0/16,,olt9,bng2,,\n\
        2001:db8:1:200::/56,home-v6,cell7,upf1,south,300\n\
        460001234567890,home-imsi,cell8,upf1\n";

    fn topo() -> Topology {
        Topology::parse("t.csv", CSV, PlacementConfig::default()).unwrap()
    }

    #[test]
    fn exact_then_longest_prefix() {
        let t = topo();
        assert_eq!(t.len(), 5);
        let p = t.place("10.0.0.5".parse().unwrap());
        assert_eq!(p.access_element, "olt1/pon1");
        assert_eq!(p.subscriber_id, "home-5");
        assert_eq!(p.plan_mbps, Some(100.0));
        assert_eq!(p.region.as_deref(), Some("north"));
        let p = t.place("10.0.0.6".parse().unwrap());
        assert_eq!(p.access_element, "olt1/pon2");
        assert_eq!(p.subscriber_id, "10.0.0.6");
        let p = t.place("10.0.7.6".parse().unwrap());
        assert_eq!(
            (p.access_element.as_str(), p.core_element.as_str()),
            ("olt9", "bng2")
        );
        let p = t.place("2001:db8:1:2ff::1".parse().unwrap());
        assert_eq!(p.access_element, "cell7");
        assert_eq!(p.subscriber_id, "home-v6");
        assert_eq!(
            t.lookup_id("460001234567890").unwrap().access_element,
            "cell8"
        );
        assert_eq!(t.subscriber_id("460001234567890"), "home-imsi");
        assert_eq!(t.subscriber_id("10.0.0.5"), "home-5");
        assert_eq!(t.subscriber_id("10.9.9.9"), "10.9.9.9");
    }

    #[test]
    fn default_placement() {
        let t = Topology::empty(PlacementConfig::default());
        let p = t.place("192.168.7.9".parse().unwrap());
        assert_eq!(p.access_element, "192.168.7.0/24");
        assert_eq!(p.core_element, "core0");
        assert!(!p.matched);
        let p = t.place("2001:db8:aa:bbcc::1".parse().unwrap());
        assert_eq!(p.access_element, "2001:db8:aa:bb00::/56");
        assert_eq!(
            t.server_prefix("2001:db8:aa:bbcc::1".parse().unwrap()),
            "2001:db8:aa::/48"
        );
        assert_eq!(
            t.server_prefix("::ffff:1.2.3.4".parse().unwrap()),
            "1.2.3.0/24"
        );
        let t = Topology::empty(PlacementConfig {
            access_prefix_v4: 16,
            ..PlacementConfig::default()
        });
        assert_eq!(
            t.place("192.168.7.9".parse().unwrap()).access_element,
            "192.168.0.0/16"
        );
    }

    #[test]
    fn row_errors_name_the_line() {
        let bad = "user,home_id,access_element,core_element\n10.0.0.1,h,a,c\n10.0.0.300,h,a,c\n";
        // `10.0.0.300` is not an IP: taken as a subscriber id, which is allowed.
        assert!(Topology::parse("x.csv", bad, PlacementConfig::default()).is_ok());
        for (text, needle) in [
            ("10.0.0.1,h,a\n", "x.csv:1: expected 4 to 6 columns"),
            ("\n10.0.0.0/33,h,a,c\n", "x.csv:2: IPv4 prefix length 33"),
            (
                "10.0.0.1,h,a,c\n10.0.0.1,h,a,c\n",
                "x.csv:2: duplicate address",
            ),
            ("10.0.0.1,h,a,c,r,fast\n", "x.csv:1: `plan_mbps`"),
            ("10.0.0.1,h,,c\n", "x.csv:1: empty `access_element`"),
            ("zz::/x,h,a,c\n", "x.csv:1: invalid prefix address"),
        ] {
            let e = Topology::parse("x.csv", text, PlacementConfig::default()).unwrap_err();
            assert!(e.to_string().starts_with(needle), "{e} !~ {needle}");
        }
    }
}
