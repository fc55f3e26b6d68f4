//! Which flow-record endpoints are subscribers, and the `flow_telemetry` row of a record
//! with those endpoints replaced by their pseudonyms.
//!
//! An endpoint is a subscriber when a topology row matches it (exact IP or prefix, any
//! validity period) **or** it lies in one of the subscriber prefixes. The prefixes are
//! `--subscriber-prefix` when given, else the ranges operators number subscriber lines
//! from: RFC 1918 (10/8, 172.16/12, 192.168/16), CGNAT shared space (100.64/10) and IPv6
//! ULA (fc00::/7). 198.18.0.0/15 (benchmarking) is *not* a default: cemflow's synthesizer
//! puts its content servers there. Misclassifying a private server as a subscriber only
//! hides its address; the opposite would leak a subscriber's, so the default errs on the
//! side of pseudonymising.

use cemflow_dataflow::{Pseudonymizer, Topology};
use cemflow_ingest::telemetry::FlowTelemetry;
use cemflow_lakehouse::FlowTelemetryRow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The default subscriber prefixes (see the module docs).
pub const DEFAULT_SUBSCRIBER_PREFIXES: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// Most pseudonyms cached before the cache is cleared.
const CACHE_MAX: usize = 1 << 20;

/// An IP prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    net: IpAddr,
    len: u8,
}

impl Prefix {
    /// Parses `a.b.c.d/len`, `x::/len` or a bare address (full length).
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let s = s.trim();
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let net: IpAddr = a
            .parse()
            .map_err(|_| format!("bad prefix {s:?}: not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("bad prefix {s:?}: length must be 0–{max}"))?,
            None => max,
        };
        Ok(Prefix { net, len })
    }

    /// True when `ip` is inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len))
                };
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len))
                };
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// Decides which endpoints are subscribers and pseudonymises them.
pub struct SubscriberPolicy {
    topology: Arc<Topology>,
    prefixes: Vec<Prefix>,
    pseudo: Pseudonymizer,
    /// ip → pseudonym, when the topology is not versioned (the id then does not depend
    /// on time).
    cache: HashMap<IpAddr, String>,
}

impl SubscriberPolicy {
    /// A policy over `topology` and `prefixes`.
    pub fn new(topology: Arc<Topology>, prefixes: Vec<Prefix>, pseudo: Pseudonymizer) -> Self {
        SubscriberPolicy {
            topology,
            prefixes,
            pseudo,
            cache: HashMap::new(),
        }
    }

    /// True when `ip` is a subscriber endpoint.
    pub fn is_subscriber(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.prefixes.iter().any(|p| p.contains(ip)) || self.topology.lookup_entry(ip).is_some()
    }

    /// The pseudonym of subscriber `ip` at `t_s` (same rule as the `flows` table:
    /// topology `home_id` when given, else the address).
    fn user_key(&mut self, ip: IpAddr, t_s: i64) -> String {
        if self.topology.is_versioned() {
            return self
                .pseudo
                .user_key(&self.topology.place_at(ip, t_s).0.subscriber_id);
        }
        if let Some(k) = self.cache.get(&ip) {
            return k.clone();
        }
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        let k = self.pseudo.user_key(&self.topology.place(ip).subscriber_id);
        self.cache.insert(ip, k.clone());
        k
    }

    /// (address, pseudonym) of an endpoint: exactly one is set for a known address.
    fn endpoint(&mut self, ip: Option<IpAddr>, t_s: i64) -> (Option<String>, Option<String>) {
        match ip {
            Some(ip) if self.is_subscriber(ip) => (None, Some(self.user_key(ip, t_s))),
            Some(ip) => (Some(ip.to_string()), None),
            None => (None, None),
        }
    }

    /// The lake row of a decoded record, subscriber endpoints pseudonymised.
    pub fn row(&mut self, r: &FlowTelemetry) -> FlowTelemetryRow {
        let f = &r.fields;
        let t_s = f
            .flow_start_ms
            .map(|ms| ms.div_euclid(1000))
            .unwrap_or(r.export_ts_s);
        let (src_addr, src_user_key) = self.endpoint(f.src, t_s);
        let (dst_addr, dst_user_key) = self.endpoint(f.dst, t_s);
        FlowTelemetryRow {
            exporter: r.exporter.ip().to_string(),
            domain: r.domain,
            version: r.version,
            export_ts_s: r.export_ts_s,
            flow_start_ms: f.flow_start_ms,
            flow_end_ms: f.flow_end_ms,
            src_addr,
            src_user_key,
            dst_addr,
            dst_user_key,
            src_port: f.src_port,
            dst_port: f.dst_port,
            l4: f.l4,
            bytes: f.bytes,
            packets: f.packets,
            tcp_flags: f.tcp_flags,
            tos: f.tos,
            input_if: f.input_if,
            output_if: f.output_if,
            vlan: f.vlan,
            src_as: f.src_as,
            dst_as: f.dst_as,
            direction: f.direction,
            enterprise: f.enterprise.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cemflow_dataflow::PlacementConfig;
    use cemflow_ingest::telemetry::FlowFields;

    fn policy(prefixes: &[&str], topo: &str) -> SubscriberPolicy {
        let t = Topology::parse("<t>", topo, PlacementConfig::default()).unwrap();
        SubscriberPolicy::new(
            Arc::new(t),
            prefixes.iter().map(|p| Prefix::parse(p).unwrap()).collect(),
            Pseudonymizer::new(b"k").unwrap(),
        )
    }

    #[test]
    fn prefixes_parse_and_match() {
        let p = Prefix::parse("100.64.0.0/10").unwrap();
        assert!(p.contains("100.127.1.1".parse().unwrap()));
        assert!(!p.contains("100.128.0.1".parse().unwrap()));
        assert!(Prefix::parse("fc00::/7")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(Prefix::parse("10.0.0.0/33").is_err());
        assert!(Prefix::parse("nope/8").is_err());
        assert!(Prefix::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn subscriber_endpoints_are_pseudonymised() {
        let mut p = policy(
            &DEFAULT_SUBSCRIBER_PREFIXES,
            "203.0.113.0/24,line9,olt1,bng1\n",
        );
        let rec = |src: &str, dst: &str| FlowTelemetry {
            exporter: "192.0.2.1:9995".parse().unwrap(),
            domain: 0,
            version: 10,
            export_ts_s: 1_700_000_000,
            fields: FlowFields {
                src: Some(src.parse().unwrap()),
                dst: Some(dst.parse().unwrap()),
                ..Default::default()
            },
        };
        let r = p.row(&rec("10.1.2.3", "198.18.0.10"));
        assert_eq!(r.src_addr, None);
        assert_eq!(r.src_user_key.as_deref().map(str::len), Some(16));
        assert_eq!(r.dst_addr.as_deref(), Some("198.18.0.10"));
        assert_eq!(r.exporter, "192.0.2.1");
        // Topology match: pseudonym of the line id, the same for every address of it.
        let a = p.row(&rec("8.8.8.8", "203.0.113.5"));
        let b = p.row(&rec("203.0.113.77", "8.8.4.4"));
        assert_eq!(a.dst_addr, None);
        assert_eq!(a.dst_user_key, b.src_user_key);
        assert_eq!(
            a.dst_user_key,
            Some(Pseudonymizer::new(b"k").unwrap().user_key("line9"))
        );
        // No prefixes, no topology row: kept.
        let mut none = policy(&[], "");
        assert_eq!(
            none.row(&rec("10.1.2.3", "8.8.8.8")).src_addr.as_deref(),
            Some("10.1.2.3")
        );
    }
}
