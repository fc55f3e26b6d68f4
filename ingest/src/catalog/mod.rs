//! Application catalog: SNI/host/DNS names, server prefixes and ports → app and category.
//!
//! A catalog is a TOML file (format in `docs/catalog.md`) with one `[[app]]` table per
//! application. The built-in catalog ([`Catalog::builtin`], compiled from `builtin.toml`)
//! covers the largest global and Chinese services; a user file can be merged over it with
//! [`Catalog::load_merged`] (an app with the same name replaces the built-in entry, new apps
//! are added, and on conflicting suffixes/prefixes/ports the user file wins).
//!
//! Lookups are allocation-free and meant to be called once per flow:
//! * names: a hash table of suffixes, probed once per label from the left, so the first hit
//!   is the longest suffix that ends at a label boundary;
//! * IP prefixes: per address family, a sorted table of flattened non-overlapping intervals
//!   (binary search; the most specific prefix wins);
//! * ports: the same interval table per transport (narrowest range wins).

mod tables;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use tables::{IntervalTable, NameKind, NameTable};

/// The built-in catalog source, compiled in.
pub const BUILTIN_TOML: &str = include_str!("builtin.toml");

/// File name used for the built-in catalog in error messages.
pub const BUILTIN_NAME: &str = "<builtin>/catalog/builtin.toml";

/// Default bitrate (Mbit/s) a video service needs for good quality when the catalog gives none.
pub const DEFAULT_REQUIRED_MBPS: f64 = 5.0;

/// Service category, as operators report them (SPEC §1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// On-demand streaming (video, and music streaming which is rated the same way).
    Video,
    /// Live streaming and video calls / conferencing.
    Live,
    /// Online games, game platforms' real-time traffic.
    Gaming,
    /// VoIP / RTP, messaging apps' voice calls.
    Voice,
    /// Browsing, social networks, messaging, e-mail, DNS.
    Web,
    /// App stores, cloud storage, software updates, bulk transfers.
    Download,
    /// Anything else (network control, unknown).
    #[default]
    Other,
}

impl Category {
    /// All categories, the six reported ones first.
    pub const ALL: [Category; 7] = [
        Category::Video,
        Category::Live,
        Category::Gaming,
        Category::Voice,
        Category::Web,
        Category::Download,
        Category::Other,
    ];

    /// Lower-case name, as used in TOML, tables and output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Video => "video",
            Category::Live => "live",
            Category::Gaming => "gaming",
            Category::Voice => "voice",
            Category::Web => "web",
            Category::Download => "download",
            Category::Other => "other",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing an unknown category name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown category {0:?} (expected one of video, live, gaming, voice, web, download, other)"
)]
pub struct ParseCategoryError(pub String);

impl FromStr for Category {
    type Err = ParseCategoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseCategoryError(s.to_string()))
    }
}

/// Result of a catalog lookup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppMatch<'c> {
    /// Application name (nDPI's name where nDPI has one).
    pub app: &'c str,
    /// Service category.
    pub category: Category,
    /// Bitrate needed for good quality (video/live entries; `None` when not given).
    pub required_mbps: Option<f64>,
}

impl AppMatch<'_> {
    /// Required bitrate, falling back to [`DEFAULT_REQUIRED_MBPS`].
    pub fn required_mbps_or_default(&self) -> f64 {
        self.required_mbps.unwrap_or(DEFAULT_REQUIRED_MBPS)
    }
}

/// Errors loading a catalog. Every variant names the file; validation errors also name the
/// app entry and the key.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("{file}: cannot read catalog: {source}")]
    Io {
        /// File name.
        file: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key, wrong type or unknown category (the message carries the
    /// line, column and key).
    #[error("{file}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// Parser message.
        message: String,
    },
    /// A value that parsed but is not valid (bad suffix, CIDR, port spec, duplicate app…).
    #[error("{file}: app #{index} {app:?}: key `{key}`: {message}")]
    Invalid {
        /// File name.
        file: String,
        /// 1-based position of the `[[app]]` table in the file.
        index: usize,
        /// App name of the entry (may be empty when that is the problem).
        app: String,
        /// Offending key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Transport protocol numbers.
const L4_TCP: u8 = 6;
const L4_UDP: u8 = 17;
const L4_SCTP: u8 = 132;

/// One validated catalog entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AppSpec {
    /// Application name.
    pub app: String,
    /// Category.
    pub category: Category,
    /// Required bitrate (Mbit/s) for good quality.
    pub required_mbps: Option<f64>,
    /// Normalized (lower-case, no leading/trailing dot) suffixes for SNI, Host and DNS names.
    pub sni_suffixes: Vec<String>,
    /// Normalized suffixes matched for DNS query names only.
    pub dns_suffixes: Vec<String>,
    /// Server prefixes.
    pub server_prefixes: Vec<IpPrefix>,
    /// Server ports: (l4 protocol number, first, last).
    pub ports: Vec<(u8, u16, u16)>,
    /// Which file the entry came from.
    pub source: Arc<str>,
}

/// An IP prefix (network address with host bits clear, and length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl IpPrefix {
    fn range_v4(self) -> Option<(u32, u32)> {
        match self.addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                let host = u32::MAX.checked_shr(self.len as u32).unwrap_or(0);
                Some((a, a | host))
            }
            IpAddr::V6(_) => None,
        }
    }
    fn range_v6(self) -> Option<(u128, u128)> {
        match self.addr {
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let host = u128::MAX.checked_shr(self.len as u32).unwrap_or(0);
                Some((a, a | host))
            }
            IpAddr::V4(_) => None,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid address in prefix {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = match len {
            Some(l) => l
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("invalid prefix length in {s:?} (0..={max})"))?,
            None => max,
        };
        let p = IpPrefix { addr, len };
        let host_bits_clear = match addr {
            IpAddr::V4(a) => (u32::from(a) & u32::MAX.checked_shr(len as u32).unwrap_or(0)) == 0,
            IpAddr::V6(a) => (u128::from(a) & u128::MAX.checked_shr(len as u32).unwrap_or(0)) == 0,
        };
        if !host_bits_clear {
            return Err(format!("prefix {s:?} has host bits set"));
        }
        Ok(p)
    }
}

// ---- TOML schema ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<u32>,
    #[serde(default)]
    app: Vec<RawApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    app: String,
    category: Category,
    #[serde(default)]
    required_mbps: Option<f64>,
    #[serde(default)]
    sni_suffixes: Vec<String>,
    #[serde(default)]
    dns_suffixes: Vec<String>,
    #[serde(default)]
    server_prefixes: Vec<String>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// Normalize a suffix: lower-case, strip a leading `*.` / `.` and a trailing `.`; validate.
fn normalize_suffix(s: &str) -> Result<String, String> {
    let t = s.trim();
    let t = t.strip_prefix("*.").unwrap_or(t);
    let t = t.strip_prefix('.').unwrap_or(t);
    let t = t.strip_suffix('.').unwrap_or(t);
    let t = t.to_ascii_lowercase();
    if t.is_empty() || t.len() > tables::MAX_NAME {
        return Err(format!("invalid suffix {s:?}: empty or too long"));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(format!(
            "invalid suffix {s:?}: only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    if t.split('.').any(str::is_empty) {
        return Err(format!("invalid suffix {s:?}: empty label"));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "invalid suffix {s:?}: looks like an IP address (use server_prefixes)"
        ));
    }
    Ok(t)
}

/// Parse a port spec: `tcp:443`, `udp:3478-3481`, `any:5060` (tcp and udp), `sctp:2905`.
fn parse_port_spec(s: &str) -> Result<Vec<(u8, u16, u16)>, String> {
    let (proto, range) = s
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("invalid port spec {s:?}: expected PROTO:PORT[-PORT]"))?;
    let protos: &[u8] = match proto.trim().to_ascii_lowercase().as_str() {
        "tcp" => &[L4_TCP],
        "udp" => &[L4_UDP],
        "sctp" => &[L4_SCTP],
        "any" | "tcpudp" | "tcp+udp" => &[L4_TCP, L4_UDP],
        _ => {
            return Err(format!(
                "invalid port spec {s:?}: protocol must be tcp, udp, sctp or any"
            ))
        }
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (range.trim(), range.trim()),
    };
    let lo: u16 = lo
        .parse()
        .map_err(|_| format!("invalid port spec {s:?}: bad port {lo:?}"))?;
    let hi: u16 = hi
        .parse()
        .map_err(|_| format!("invalid port spec {s:?}: bad port {hi:?}"))?;
    if lo > hi {
        return Err(format!("invalid port spec {s:?}: empty range"));
    }
    Ok(protos.iter().map(|&p| (p, lo, hi)).collect())
}

/// Parse and validate a catalog file into entries (no lookup tables yet).
fn parse_specs(name: &str, s: &str) -> Result<Vec<AppSpec>, CatalogError> {
    let raw: RawFile = toml::from_str(s).map_err(|e| CatalogError::Parse {
        file: name.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let source: Arc<str> = Arc::from(name);
    let mut out = Vec::with_capacity(raw.app.len());
    let mut seen_apps: HashMap<String, usize> = HashMap::new();
    // suffix → entry index: a suffix may appear only once per file
    let mut seen_suffix: HashMap<String, usize> = HashMap::new();
    for (i, r) in raw.app.into_iter().enumerate() {
        let index = i + 1;
        let invalid = |key: &'static str, message: String| CatalogError::Invalid {
            file: name.to_string(),
            index,
            app: r.app.clone(),
            key,
            message,
        };
        let app = r.app.trim().to_string();
        if app.is_empty() || app.chars().any(char::is_control) {
            return Err(invalid("app", "app name must be non-empty text".into()));
        }
        if let Some(prev) = seen_apps.insert(app.clone(), index) {
            return Err(invalid(
                "app",
                format!("duplicate app name (already defined by app #{prev})"),
            ));
        }
        if let Some(m) = r.required_mbps {
            if !(m.is_finite() && m > 0.0) {
                return Err(invalid(
                    "required_mbps",
                    format!("must be a positive number, got {m}"),
                ));
            }
        }
        let mut spec = AppSpec {
            app,
            category: r.category,
            required_mbps: r.required_mbps,
            sni_suffixes: Vec::with_capacity(r.sni_suffixes.len()),
            dns_suffixes: Vec::with_capacity(r.dns_suffixes.len()),
            server_prefixes: Vec::with_capacity(r.server_prefixes.len()),
            ports: Vec::with_capacity(r.ports.len()),
            source: source.clone(),
        };
        for (key, list, dns_only) in [
            ("sni_suffixes", &r.sni_suffixes, false),
            ("dns_suffixes", &r.dns_suffixes, true),
        ] {
            for s in list {
                let n = normalize_suffix(s).map_err(|m| invalid(key, m))?;
                if let Some(prev) = seen_suffix.insert(n.clone(), index) {
                    return Err(invalid(
                        key,
                        format!("suffix {n:?} already listed by app #{prev}"),
                    ));
                }
                if dns_only {
                    spec.dns_suffixes.push(n);
                } else {
                    spec.sni_suffixes.push(n);
                }
            }
        }
        for p in &r.server_prefixes {
            let p: IpPrefix = p.parse().map_err(|m| invalid("server_prefixes", m))?;
            spec.server_prefixes.push(p);
        }
        for p in &r.ports {
            spec.ports
                .extend(parse_port_spec(p).map_err(|m| invalid("ports", m))?);
        }
        out.push(spec);
    }
    Ok(out)
}

// ---- catalog --------------------------------------------------------------------------------

struct AppInfo {
    name: Box<str>,
    category: Category,
    required_mbps: Option<f64>,
}

struct Inner {
    specs: Vec<AppSpec>,
    apps: Vec<AppInfo>,
    by_name: HashMap<String, u32>,
    names: NameTable,
    v4: IntervalTable<u32>,
    v6: IntervalTable<u128>,
    tcp: IntervalTable<u16>,
    udp: IntervalTable<u16>,
    sctp: IntervalTable<u16>,
}

/// An application catalog with its lookup tables. Cloning is cheap (shared, immutable).
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("apps", &self.inner.apps.len())
            .field("suffixes", &self.inner.names.len())
            .field("v4_intervals", &self.inner.v4.len())
            .field("v6_intervals", &self.inner.v6.len())
            .finish()
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::builtin()
    }
}

impl Catalog {
    /// The built-in catalog (parsed once, then shared).
    pub fn builtin() -> Catalog {
        Catalog::builtin_ref().clone()
    }

    /// The shared built-in catalog.
    pub fn builtin_ref() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Catalog::from_toml_str(BUILTIN_NAME, BUILTIN_TOML)
                .expect("built-in catalog is valid (checked by unit tests)")
        })
    }

    /// An empty catalog (matches nothing).
    pub fn empty() -> Catalog {
        Catalog::from_specs(Vec::new())
    }

    /// Parse a catalog from TOML text; `name` (usually the file path) is used in errors.
    pub fn from_toml_str(name: &str, s: &str) -> Result<Catalog, CatalogError> {
        Ok(Catalog::from_specs(parse_specs(name, s)?))
    }

    /// Read and parse a catalog file on its own (without the built-in entries).
    pub fn from_file(path: &Path) -> Result<Catalog, CatalogError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            file: name.clone(),
            source,
        })?;
        Catalog::from_toml_str(&name, &text)
    }

    /// The built-in catalog with `user_file` (if any) merged over it: an app with the same
    /// name replaces the built-in entry, new apps are added, and on conflicting suffixes,
    /// prefixes or ports the user entry wins.
    pub fn load_merged(user_file: Option<&Path>) -> Result<Catalog, CatalogError> {
        let builtin = Catalog::builtin();
        let Some(path) = user_file else {
            return Ok(builtin);
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            file: name.clone(),
            source,
        })?;
        let user = parse_specs(&name, &text)?;
        tracing::info!(file = %name, apps = user.len(), "loaded user app catalog");
        Ok(builtin.merged_with(user))
    }

    /// A new catalog with `self`'s entries and `other`'s merged over them.
    pub fn merge(&self, other: &Catalog) -> Catalog {
        self.merged_with(other.inner.specs.clone())
    }

    fn merged_with(&self, user: Vec<AppSpec>) -> Catalog {
        let user_names: HashMap<&str, ()> = user.iter().map(|s| (s.app.as_str(), ())).collect();
        let mut specs: Vec<AppSpec> = self
            .inner
            .specs
            .iter()
            .filter(|s| !user_names.contains_key(s.app.as_str()))
            .cloned()
            .collect();
        specs.extend(user);
        Catalog::from_specs(specs)
    }

    /// Build lookup tables; on conflicts the later entry wins.
    fn from_specs(specs: Vec<AppSpec>) -> Catalog {
        let mut apps = Vec::with_capacity(specs.len());
        let mut by_name = HashMap::with_capacity(specs.len());
        let mut names = NameTable::default();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let (mut tcp, mut udp, mut sctp) = (Vec::new(), Vec::new(), Vec::new());
        for (i, s) in specs.iter().enumerate() {
            let idx = i as u32;
            apps.push(AppInfo {
                name: s.app.clone().into_boxed_str(),
                category: s.category,
                required_mbps: s.required_mbps,
            });
            by_name.insert(s.app.to_ascii_lowercase(), idx);
            for suf in &s.sni_suffixes {
                names.insert(suf, idx, true, true);
            }
            for suf in &s.dns_suffixes {
                names.insert(suf, idx, false, true);
            }
            for p in &s.server_prefixes {
                if let Some((a, b)) = p.range_v4() {
                    v4.push((a, b, idx));
                }
                if let Some((a, b)) = p.range_v6() {
                    v6.push((a, b, idx));
                }
            }
            for &(l4, lo, hi) in &s.ports {
                match l4 {
                    L4_TCP => tcp.push((lo, hi, idx)),
                    L4_UDP => udp.push((lo, hi, idx)),
                    _ => sctp.push((lo, hi, idx)),
                }
            }
        }
        Catalog {
            inner: Arc::new(Inner {
                specs,
                apps,
                by_name,
                names,
                v4: tables::flatten_nested(v4),
                v6: tables::flatten_nested(v6),
                tcp: tables::flatten_any(tcp),
                udp: tables::flatten_any(udp),
                sctp: tables::flatten_any(sctp),
            }),
        }
    }

    #[inline]
    fn hit(&self, idx: u32) -> AppMatch<'_> {
        let a = &self.inner.apps[idx as usize];
        AppMatch {
            app: &a.name,
            category: a.category,
            required_mbps: a.required_mbps,
        }
    }

    /// Number of apps.
    pub fn len(&self) -> usize {
        self.inner.apps.len()
    }

    /// True when the catalog has no apps.
    pub fn is_empty(&self) -> bool {
        self.inner.apps.is_empty()
    }

    /// All entries, in table order (built-in first, then user entries).
    pub fn entries(&self) -> &[AppSpec] {
        &self.inner.specs
    }

    /// Look an app up by name (case-insensitive).
    pub fn app(&self, name: &str) -> Option<AppMatch<'_>> {
        let mut buf = [0u8; 64];
        let idx = if name.len() <= buf.len() && name.is_ascii() {
            let b = &mut buf[..name.len()];
            b.copy_from_slice(name.as_bytes());
            b.make_ascii_lowercase();
            // ASCII lower-casing keeps the bytes valid UTF-8
            let key = std::str::from_utf8(b).ok()?;
            self.inner.by_name.get(key)
        } else {
            self.inner.by_name.get(&name.to_ascii_lowercase())
        };
        idx.map(|&i| self.hit(i))
    }

    /// Match an SNI, HTTP Host or DNS name: the longest catalog suffix ending at a label
    /// boundary wins. Case-insensitive; a trailing dot and an HTTP `:port` are ignored; IP
    /// literals never match.
    pub fn match_name(&self, name: &str) -> Option<AppMatch<'_>> {
        self.inner
            .names
            .lookup(name, NameKind::Any)
            .map(|i| self.hit(i))
    }

    /// Like [`Catalog::match_name`] but only `sni_suffixes` (TLS/QUIC SNI, HTTP Host).
    pub fn match_sni(&self, name: &str) -> Option<AppMatch<'_>> {
        self.inner
            .names
            .lookup(name, NameKind::Sni)
            .map(|i| self.hit(i))
    }

    /// Like [`Catalog::match_name`] for DNS query names (`sni_suffixes` and `dns_suffixes`).
    pub fn match_dns(&self, name: &str) -> Option<AppMatch<'_>> {
        self.inner
            .names
            .lookup(name, NameKind::Dns)
            .map(|i| self.hit(i))
    }

    /// Longest-prefix match of a server address. IPv4-mapped IPv6 addresses are looked up as
    /// IPv4.
    pub fn match_ip(&self, ip: IpAddr) -> Option<AppMatch<'_>> {
        let idx = match ip {
            IpAddr::V4(a) => self.match_v4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.match_v4(v4),
                None => self.match_v6(a),
            },
        };
        idx.map(|i| self.hit(i))
    }

    #[inline]
    fn match_v4(&self, a: Ipv4Addr) -> Option<u32> {
        self.inner.v4.lookup(u32::from(a))
    }

    #[inline]
    fn match_v6(&self, a: Ipv6Addr) -> Option<u32> {
        self.inner.v6.lookup(u128::from(a))
    }

    /// Match a server port for transport `l4` (6 = TCP, 17 = UDP, 132 = SCTP); the narrowest
    /// matching range wins.
    pub fn match_port(&self, l4: u8, port: u16) -> Option<AppMatch<'_>> {
        let t = match l4 {
            L4_TCP => &self.inner.tcp,
            L4_UDP => &self.inner.udp,
            L4_SCTP => &self.inner.sctp,
            _ => return None,
        };
        t.lookup(port).map(|i| self.hit(i))
    }

    /// Classify a flow: by name (SNI/Host/DNS) first, then server prefix, then server port.
    pub fn classify(
        &self,
        sni_or_host: Option<&str>,
        server_ip: IpAddr,
        l4: u8,
        server_port: u16,
    ) -> Option<AppMatch<'_>> {
        sni_or_host
            .and_then(|n| self.match_name(n))
            .or_else(|| self.match_ip(server_ip))
            .or_else(|| self.match_port(l4, server_port))
    }
}

/// Default category for an L7 protocol name (nDPI protocol names, case-insensitive), for flows
/// the catalog does not place: RTP/SIP → voice, DNS/TLS/HTTP → web, BitTorrent/FTP → download,
/// etc. Names of apps in the built-in catalog (e.g. "Steam", "NetFlix") map to their category.
/// Returns `None` for unknown names.
pub fn category_of_l7(l7_proto: &str) -> Option<Category> {
    use Category::*;
    const TABLE: &[(&str, Category)] = &[
        // voice: VoIP signalling and media, messaging apps' calls
        ("RTP", Voice),
        ("RTCP", Voice),
        ("SRTP", Voice),
        ("SIP", Voice),
        ("IAX", Voice),
        ("MGCP", Voice),
        ("H323", Voice),
        ("Megaco", Voice),
        ("CiscoSkinny", Voice),
        ("NOE", Voice),
        ("VHUA", Voice),
        ("TruPhone", Voice),
        ("IMO", Voice),
        ("STUN", Voice),
        ("TeamSpeak", Voice),
        ("Mumble", Voice),
        ("Skype_TeamsCall", Voice),
        ("WhatsAppCall", Voice),
        ("FacebookVoip", Voice),
        ("SignalVoip", Voice),
        ("TelegramVoip", Voice),
        ("ViberVoip", Voice),
        ("LineCall", Voice),
        ("GoogleCall", Voice),
        ("SnapchatCall", Voice),
        ("KakaoTalk_Voice", Voice),
        ("Skype_Teams", Voice),
        // live: live streaming protocols and conferencing
        ("RTMP", Live),
        ("RTSP", Live),
        ("MPEG_TS", Live),
        ("BFCP", Live),
        ("SD-RTN", Live),
        ("Zoom", Live),
        ("Webex", Live),
        ("GoogleMeet", Live),
        ("Teams", Live),
        // video: adaptive streaming over HTTP
        ("HLS", Video),
        ("MpegDash", Video),
        ("IceCast", Video),
        // gaming
        ("SteamDatagramRelay", Gaming),
        ("Source_Engine", Gaming),
        ("HalfLife2", Gaming),
        ("RakNet", Gaming),
        ("Yojimbo", Gaming),
        ("AmongUs", Gaming),
        ("i3D", Gaming),
        ("CryNetwork", Gaming),
        ("Warcraft3", Gaming),
        ("Starcraft", Gaming),
        ("Heroes_of_the_Storm", Gaming),
        ("WorldOfWarcraft", Gaming),
        ("MapleStory", Gaming),
        ("Dofus", Gaming),
        ("Guildwars", Gaming),
        ("Armagetron", Gaming),
        ("WorldOfKungFu", Gaming),
        ("TocaBoca", Gaming),
        ("Xbox", Gaming),
        ("Playstation", Gaming),
        ("Nintendo", Gaming),
        // download: bulk and file transfer
        ("FTP_DATA", Download),
        ("FTP_CONTROL", Download),
        ("FTPS", Download),
        ("TFTP", Download),
        ("RSYNC", Download),
        ("BitTorrent", Download),
        ("eDonkey", Download),
        ("Gnutella", Download),
        ("UFTP", Download),
        ("FLUTE", Download),
        ("Syncthing", Download),
        ("WhatsAppFiles", Download),
        // web: browsing, transport-level web protocols, mail, DNS, messaging
        ("HTTP", Web),
        ("HTTP2", Web),
        ("HTTP_Proxy", Web),
        ("HTTP_Connect", Web),
        ("TLS", Web),
        ("QUIC", Web),
        ("WebSocket", Web),
        ("SOCKS", Web),
        ("AJP", Web),
        ("DNS", Web),
        ("DoH_DoT", Web),
        ("DNScrypt", Web),
        ("POP3", Web),
        ("POPS", Web),
        ("IMAP", Web),
        ("IMAPS", Web),
        ("SMTP", Web),
        ("SMTPS", Web),
        ("IRC", Web),
        ("Jabber", Web),
        ("Threema", Web),
        ("OICQ", Web),
        ("Usenet", Web),
        // other: network control, LAN services, tunnels, management
        ("MDNS", Other),
        ("LLMNR", Other),
        ("SSDP", Other),
        ("DHCP", Other),
        ("DHCPV6", Other),
        ("NetBIOS", Other),
        ("SMBv1", Other),
        ("SMBv23", Other),
        ("ICMP", Other),
        ("ICMPV6", Other),
        ("IGMP", Other),
        ("NTP", Other),
        ("SNMP", Other),
        ("Syslog", Other),
        ("Teredo", Other),
        ("GRE", Other),
        ("IPSec", Other),
        ("IP_in_IP", Other),
        ("GTP", Other),
        ("GTP_U", Other),
        ("GTP_C", Other),
        ("VXLAN", Other),
        ("BGP", Other),
        ("OSPF", Other),
        ("SSH", Other),
        ("Telnet", Other),
        ("RDP", Other),
        ("VNC", Other),
        ("OpenVPN", Other),
        ("WireGuard", Other),
        ("Tor", Other),
        ("Unknown", Other),
    ];
    // DPI's names are spelled as in the table: one hash lookup (this runs per flow slice).
    static EXACT: OnceLock<HashMap<&'static str, Category>> = OnceLock::new();
    let exact = EXACT.get_or_init(|| {
        let mut m = HashMap::with_capacity(TABLE.len());
        for &(n, c) in TABLE.iter().rev() {
            m.insert(n, c); // the first entry of a name wins, as in the scan below
        }
        m
    });
    if let Some(c) = exact.get(l7_proto) {
        return Some(*c);
    }
    let name = l7_proto.trim();
    if let Some((_, c)) = TABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(*c);
    }
    Catalog::builtin_ref().app(name).map(|m| m.category)
}
