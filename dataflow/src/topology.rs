//! Network topology: which home, access element and core element a user sits behind, and
//! since when.
//!
//! File format (CSV, `#` comments and blank lines ignored):
//! `user,home_id,access_element,core_element[,region,plan_mbps,valid_from,valid_to]` where
//! `user` is an IP address, a CIDR prefix (e.g. `10.1.2.0/24`, `2001:db8:12:3400::/56`),
//! an IMSI or an MSISDN (any other token is taken as a subscriber id). A header line
//! is optional; with one, the columns are found by name and may come
//! in any order (only these names are accepted), without one they are positional. A line
//! is a header when its first column is `user`, or when all its columns are column names
//! and one is `user`.
//!
//! **Validity (versioned topology).** `valid_from` (inclusive) and `valid_to` (exclusive)
//! are instants, RFC 3339 (`2024-05-01T10:00:00Z`, offsets allowed), a date
//! (`2024-05-01`, midnight UTC) or epoch seconds; empty means unbounded. A user moved to
//! another port is two rows of the same `user`: the old placement with `valid_to = T`
//! and the new one with `valid_from = T`. Rows of one `user` must not overlap in time.
//! A lookup at time `t` ([`Topology::place_at`]) uses the rows valid at `t`; a lookup
//! without a time ([`Topology::place`]) uses each `user`'s latest row (largest
//! `valid_from`).
//!
//! Lookups of a client IP try the exact IP first, then the longest matching prefix (rows
//! not valid at the lookup time are skipped). Without a match (or without a topology),
//! the user is placed by default: access element = client /24 (IPv4) or /56 (IPv6) prefix,
//! core element = `core0` (lengths and name configurable).
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
    /// Start of the row's validity (inclusive), epoch seconds; `None` = since ever.
    pub valid_from_s: Option<i64>,
    /// End of the row's validity (exclusive), epoch seconds; `None` = until further notice.
    pub valid_to_s: Option<i64>,
}

impl TopologyEntry {
    /// True when the row applies at `t_s` (epoch seconds).
    pub fn valid_at(&self, t_s: i64) -> bool {
        self.valid_from_s.is_none_or(|f| f <= t_s) && self.valid_to_s.is_none_or(|e| t_s < e)
    }

    /// True when the validity intervals of `self` and `other` share an instant.
    fn overlaps(&self, other: &TopologyEntry) -> bool {
        let from = |e: &TopologyEntry| e.valid_from_s.unwrap_or(i64::MIN);
        let to = |e: &TopologyEntry| e.valid_to_s.unwrap_or(i64::MAX);
        from(self) < to(other) && from(other) < to(self)
    }

    /// True without validity bounds.
    fn is_unbounded(&self) -> bool {
        self.valid_from_s.is_none() && self.valid_to_s.is_none()
    }
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

/// The time span `[from_s, to_s)` (epoch seconds) over which a lookup's answer stays the
/// same: no row relevant to the looked-up address starts or ends inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First second of the span (`i64::MIN` = unbounded).
    pub from_s: i64,
    /// First second after the span (`i64::MAX` = unbounded).
    pub to_s: i64,
}

impl Span {
    /// The whole time line.
    pub const ALL: Span = Span {
        from_s: i64::MIN,
        to_s: i64::MAX,
    };

    /// True when `t_s` is inside the span.
    pub fn contains(&self, t_s: i64) -> bool {
        self.from_s <= t_s && t_s < self.to_s
    }

    /// Narrows the span around `t_s` by a row's validity bounds.
    fn narrow(&mut self, e: &TopologyEntry, t_s: i64) {
        for b in [e.valid_from_s, e.valid_to_s].into_iter().flatten() {
            if b <= t_s {
                self.from_s = self.from_s.max(b);
            } else {
                self.to_s = self.to_s.min(b);
            }
        }
    }
}

/// The columns of a topology file, in their positional order (a file without a header).
pub const TOPOLOGY_COLUMNS: [&str; 8] = [
    "user",
    "home_id",
    "access_element",
    "core_element",
    "region",
    "plan_mbps",
    "valid_from",
    "valid_to",
];

const REQUIRED_COLUMNS: usize = 4;

/// Where each of [`TOPOLOGY_COLUMNS`] is in a line: from the file's header, else
/// positional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyLayout {
    index: [Option<usize>; 8],
    /// Columns of the header (`None`: positional layout, 4 to 8 columns).
    header_width: Option<usize>,
}

impl Default for TopologyLayout {
    fn default() -> Self {
        TopologyLayout {
            index: [0, 1, 2, 3, 4, 5, 6, 7].map(Some),
            header_width: None,
        }
    }
}

impl TopologyLayout {
    /// The layout a header line declares. Every name must be one of
    /// [`TOPOLOGY_COLUMNS`], at most once; the first four are required.
    pub fn from_header(cols: &[&str]) -> Result<TopologyLayout, String> {
        let mut index = [None; 8];
        for (i, c) in cols.iter().enumerate() {
            let name = c.trim().to_ascii_lowercase();
            let Some(k) = TOPOLOGY_COLUMNS.iter().position(|n| *n == name) else {
                return Err(format!(
                    "unknown column `{c}` in header (known: {})",
                    TOPOLOGY_COLUMNS.join(", ")
                ));
            };
            if index[k].replace(i).is_some() {
                return Err(format!("column `{name}` twice in header"));
            }
        }
        if let Some(k) = (0..REQUIRED_COLUMNS).find(|&k| index[k].is_none()) {
            return Err(format!(
                "header lacks the required column `{}`",
                TOPOLOGY_COLUMNS[k]
            ));
        }
        Ok(TopologyLayout {
            index,
            header_width: Some(cols.len()),
        })
    }

    /// Parses one data line (already split into trimmed columns) into a row.
    pub fn parse_row(&self, cols: &[&str]) -> Result<TopologyEntry, String> {
        match self.header_width {
            Some(w) if cols.len() > w => {
                return Err(format!(
                    "{} columns but the header names {w}",
                    cols.len()
                ))
            }
            Some(_) => {}
            None if !(REQUIRED_COLUMNS..=TOPOLOGY_COLUMNS.len()).contains(&cols.len()) => {
                return Err(format!(
                    "expected 4 to 8 columns `user,home_id,access_element,core_element[,region,plan_mbps,valid_from,valid_to]`, got {}",
                    cols.len()
                ))
            }
            None => {}
        }
        let get = |k: usize| -> &str {
            self.index[k]
                .and_then(|i| cols.get(i).copied())
                .unwrap_or("")
        };
        let user = get(0);
        if user.is_empty() {
            return Err("empty `user`".into());
        }
        if get(2).is_empty() {
            return Err("empty `access_element`".into());
        }
        if get(3).is_empty() {
            return Err("empty `core_element`".into());
        }
        if let Some((addr, len)) = user.split_once('/') {
            parse_prefix(addr, len)?;
        }
        let plan_mbps = match get(5) {
            "" => None,
            s => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                _ => return Err(format!("`plan_mbps` must be a positive number, got `{s}`")),
            },
        };
        let instant = |k: usize| -> Result<Option<i64>, String> {
            match get(k) {
                "" => Ok(None),
                s => parse_instant(s).map(Some).ok_or_else(|| {
                    format!(
                        "`{}` must be RFC 3339, a date or epoch seconds, got `{s}`",
                        TOPOLOGY_COLUMNS[k]
                    )
                }),
            }
        };
        let (valid_from_s, valid_to_s) = (instant(6)?, instant(7)?);
        if let (Some(f), Some(t)) = (valid_from_s, valid_to_s) {
            if f >= t {
                return Err(format!(
                    "`valid_from` ({f}) must be before `valid_to` ({t})"
                ));
            }
        }
        Ok(TopologyEntry {
            user: user.to_string(),
            home_id: get(1).to_string(),
            access_element: get(2).to_string(),
            core_element: get(3).to_string(),
            region: Some(get(4)).filter(|s| !s.is_empty()).map(str::to_string),
            plan_mbps,
            valid_from_s,
            valid_to_s,
        })
    }
}

/// Parses a prefix `addr/len`, checking the length against the address family.
fn parse_prefix(addr: &str, len: &str) -> Result<(IpAddr, u8), String> {
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid prefix address `{addr}`"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("invalid prefix length `{len}`"))?;
    match ip {
        IpAddr::V4(_) if len > 32 => Err(format!("IPv4 prefix length {len} > 32")),
        IpAddr::V6(_) if len > 128 => Err(format!("IPv6 prefix length {len} > 128")),
        _ => Ok((ip, len)),
    }
}

/// Parses an instant: RFC 3339, a `YYYY-MM-DD` date (midnight UTC) or integer epoch
/// seconds. Returns epoch seconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// A header line: its first column is `user`, or every column is a known column name and
/// one of them is `user`.
fn is_header(cols: &[&str]) -> bool {
    let known = |c: &&str| TOPOLOGY_COLUMNS.iter().any(|n| c.eq_ignore_ascii_case(n));
    cols.first().is_some_and(|c| c.eq_ignore_ascii_case("user"))
        || (cols.iter().all(known) && cols.iter().any(|c| c.eq_ignore_ascii_case("user")))
}

/// Parses every data line of topology CSV text: `(1-based line, row or reason)`, in file
/// order. Comments, blank lines and header lines (see `is_header`; they set the layout of
/// the lines after them) yield nothing.
pub fn parse_rows(text: &str) -> Vec<(usize, Result<TopologyEntry, String>)> {
    let mut layout = TopologyLayout::default();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim().trim_start_matches('\u{feff}');
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = l
            .split(',')
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        if is_header(&cols) {
            match TopologyLayout::from_header(&cols) {
                Ok(h) => layout = h,
                Err(reason) => out.push((line, Err(reason))),
            }
            continue;
        }
        out.push((line, layout.parse_row(&cols)));
    }
    out
}

/// A loaded topology (possibly empty).
#[derive(Clone, Debug, Default)]
pub struct Topology {
    entries: Vec<TopologyEntry>,
    /// 1-based file line of each entry.
    lines: Vec<usize>,
    /// Address → its rows (versions), by `valid_from`.
    exact: HashMap<IpAddr, Vec<usize>>,
    /// (prefix length, network as u32) → rows, per length present, longest first.
    v4: Vec<(u8, HashMap<u32, Vec<usize>>)>,
    v6: Vec<(u8, HashMap<u128, Vec<usize>>)>,
    ids: HashMap<String, Vec<usize>>,
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

    /// Parses topology CSV text; `file` names it in errors. The first invalid row fails
    /// the whole file (a topology is configuration).
    pub fn parse(
        file: &str,
        text: &str,
        config: PlacementConfig,
    ) -> Result<Topology, TopologyError> {
        let mut t = Topology::empty(config);
        let mut v4: HashMap<u8, HashMap<u32, Vec<usize>>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, Vec<usize>>> = HashMap::new();
        for (line, row) in parse_rows(text) {
            let err = |reason: String| TopologyError::Row {
                file: file.to_string(),
                line,
                reason,
            };
            let e = row.map_err(err)?;
            let idx = t.entries.len();
            let (what, versions) = if let Some((addr, len)) = e.user.split_once('/') {
                let (ip, len) = parse_prefix(addr, len).map_err(err)?;
                let v = match ip {
                    IpAddr::V4(a) => v4
                        .entry(len)
                        .or_default()
                        .entry(mask_v4(u32::from(a), len))
                        .or_default(),
                    IpAddr::V6(a) => v6
                        .entry(len)
                        .or_default()
                        .entry(mask_v6(u128::from(a), len))
                        .or_default(),
                };
                ("prefix", v)
            } else if let Ok(ip) = e.user.parse::<IpAddr>() {
                ("address", t.exact.entry(canonical(ip)).or_default())
            } else {
                ("subscriber id", t.ids.entry(e.user.clone()).or_default())
            };
            if let Some(&o) = versions.iter().find(|&&o| t.entries[o].overlaps(&e)) {
                let other = &t.entries[o];
                return Err(err(if other.is_unbounded() && e.is_unbounded() {
                    format!("duplicate {what} `{}`", e.user)
                } else {
                    format!(
                        "duplicate {what} `{}`: its validity overlaps line {}",
                        e.user, t.lines[o]
                    )
                }));
            }
            versions.push(idx);
            let entries = &t.entries;
            versions.sort_by_key(|&i| {
                entries
                    .get(i)
                    .map_or(e.valid_from_s, |x| x.valid_from_s)
                    .unwrap_or(i64::MIN)
            });
            t.entries.push(e);
            t.lines.push(line);
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

    /// All rows (every version), in file order.
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

    /// True when some row has a validity bound (the topology changes over time).
    pub fn is_versioned(&self) -> bool {
        self.entries.iter().any(|e| !e.is_unbounded())
    }

    /// The version of `versions` valid at `t_s`, or the latest (largest `valid_from`)
    /// when `t_s` is `None`.
    fn pick(&self, versions: &[usize], t_s: Option<i64>) -> Option<usize> {
        match t_s {
            None => versions.last().copied(),
            Some(t) => versions
                .iter()
                .copied()
                .find(|&i| self.entries[i].valid_at(t)),
        }
    }

    /// Every version list that can answer a lookup of `ip`, most specific first: the
    /// exact address, then its prefixes, longest first.
    fn candidates(&self, ip: IpAddr) -> Vec<&[usize]> {
        let mut out: Vec<&[usize]> = Vec::new();
        if let Some(v) = self.exact.get(&ip) {
            out.push(v);
        }
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                out.extend(
                    self.v4
                        .iter()
                        .filter_map(|(len, m)| m.get(&mask_v4(a, *len)).map(Vec::as_slice)),
                );
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                out.extend(
                    self.v6
                        .iter()
                        .filter_map(|(len, m)| m.get(&mask_v6(a, *len)).map(Vec::as_slice)),
                );
            }
        }
        out
    }

    fn lookup_index(&self, ip: IpAddr, t_s: Option<i64>) -> Option<usize> {
        self.candidates(canonical(ip))
            .into_iter()
            .find_map(|v| self.pick(v, t_s))
    }

    /// The row matching `ip`: exact address first, then the longest prefix (each
    /// `user`'s latest row).
    pub fn lookup_entry(&self, ip: IpAddr) -> Option<&TopologyEntry> {
        self.lookup_index(ip, None).map(|i| &self.entries[i])
    }

    /// The row matching `ip` at `t_s` (epoch s): exact address first, then the longest
    /// prefix, among the rows valid at `t_s`.
    pub fn lookup_entry_at(&self, ip: IpAddr, t_s: i64) -> Option<&TopologyEntry> {
        self.lookup_index(ip, Some(t_s)).map(|i| &self.entries[i])
    }

    /// The row of a subscriber id (IMSI, MSISDN or other non-address token); its latest
    /// row when it has several.
    pub fn lookup_id(&self, id: &str) -> Option<&TopologyEntry> {
        self.lookup_id_opt(id, None)
    }

    /// The row of a subscriber id valid at `t_s`.
    pub fn lookup_id_at(&self, id: &str, t_s: i64) -> Option<&TopologyEntry> {
        self.lookup_id_opt(id, Some(t_s))
    }

    fn lookup_id_opt(&self, id: &str, t_s: Option<i64>) -> Option<&TopologyEntry> {
        let v = self.ids.get(id.trim())?;
        self.pick(v, t_s).map(|i| &self.entries[i])
    }

    fn placement(&self, ip: IpAddr, e: Option<&TopologyEntry>) -> Placement {
        match e {
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

    /// Where the client `ip` sits (each `user`'s latest row, else default placement).
    pub fn place(&self, ip: IpAddr) -> Placement {
        let ip = canonical(ip);
        self.placement(ip, self.lookup_entry(ip))
    }

    /// Where the client `ip` sits at `t_s` (epoch s), and the span around `t_s` over
    /// which that answer holds (callers may cache it for that span).
    pub fn place_at(&self, ip: IpAddr, t_s: i64) -> (Placement, Span) {
        let ip = canonical(ip);
        let mut span = Span::ALL;
        for v in self.candidates(ip) {
            for &i in v {
                span.narrow(&self.entries[i], t_s);
            }
        }
        (self.placement(ip, self.lookup_entry_at(ip, t_s)), span)
    }

    /// The subscriber id a raw user token (IP, IMSI, MSISDN, home id) is pseudonymised
    /// from, by the same rule as [`Topology::place`] (latest rows).
    pub fn subscriber_id(&self, user: &str) -> String {
        self.subscriber_id_opt(user, None)
    }

    /// The subscriber id of a raw user token at `t_s`, by the rule of
    /// [`Topology::place_at`].
    pub fn subscriber_id_at(&self, user: &str, t_s: i64) -> String {
        self.subscriber_id_opt(user, Some(t_s))
    }

    fn subscriber_id_opt(&self, user: &str, t_s: Option<i64>) -> String {
        let user = user.trim();
        if let Ok(ip) = user.parse::<IpAddr>() {
            return match t_s {
                Some(t) => self.place_at(ip, t).0.subscriber_id,
                None => self.place(ip).subscriber_id,
            };
        }
        match self.lookup_id_opt(user, t_s) {
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
            ("10.0.0.1,h,a\n", "x.csv:1: expected 4 to 8 columns"),
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

    #[test]
    fn header_names_columns_in_any_order() {
        let t = Topology::parse(
            "h.csv",
            "core_element,user,access_element,home_id\nbng1,10.0.0.5,olt1,home-5\n",
            PlacementConfig::default(),
        )
        .unwrap();
        let p = t.place("10.0.0.5".parse().unwrap());
        assert_eq!(
            (p.access_element.as_str(), p.core_element.as_str()),
            ("olt1", "bng1")
        );
        assert_eq!(p.subscriber_id, "home-5");
        for (text, needle) in [
            (
                "user,home_id,access_element\n",
                "h.csv:1: header lacks the required column `core_element`",
            ),
            (
                "user,home_id,access_element,core_element,colour\n",
                "h.csv:1: unknown column `colour`",
            ),
            (
                "user,home_id,access_element,core_element\n1.2.3.4,h,a,c,x\n",
                "h.csv:2: 5 columns but the header names 4",
            ),
            (
                "1.2.3.4,h,a,c,,,2024-05-02,2024-05-01\n",
                "h.csv:1: `valid_from`",
            ),
            (
                "1.2.3.4,h,a,c,,,soon\n",
                "h.csv:1: `valid_from` must be RFC 3339",
            ),
        ] {
            let e = Topology::parse("h.csv", text, PlacementConfig::default()).unwrap_err();
            assert!(e.to_string().starts_with(needle), "{e} !~ {needle}");
        }
    }

    /// A user moved from olt1 to olt2 at T: placed on olt1 before T, olt2 from T on.
    #[test]
    fn versioned_rows_resolve_by_time() {
        const T: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z
        let csv = "user,home_id,access_element,core_element,region,plan_mbps,valid_from,valid_to\n\
            10.0.0.5,home-5,olt1,bng1,,,,2024-05-01T10:00:00Z\n\
            10.0.0.5,home-5,olt2,bng1,,,1714557600,\n\
            10.0.0.0/24,,olt9,bng2,,,2024-05-01,\n\
            imsi-1,home-i,cell1,upf1,,,,1714557600\n\
            imsi-1,home-i,cell2,upf1,,,1714557600,\n";
        let t = Topology::parse("v.csv", csv, PlacementConfig::default()).unwrap();
        assert!(t.is_versioned());
        let ip = "10.0.0.5".parse().unwrap();
        let (before, span) = t.place_at(ip, T - 60);
        assert_eq!(before.access_element, "olt1");
        assert_eq!(before.subscriber_id, "home-5");
        assert_eq!(span.to_s, T);
        assert_eq!(span.from_s, T - 36_000); // the /24 row starts at midnight
        let (after, span) = t.place_at(ip, T);
        assert_eq!(after.access_element, "olt2");
        assert_eq!(
            span,
            Span {
                from_s: T,
                to_s: i64::MAX
            }
        );
        // Without a time: the latest row.
        assert_eq!(t.place(ip).access_element, "olt2");
        // The prefix row applies only from its start; before it, default placement.
        let other = "10.0.0.6".parse().unwrap();
        assert_eq!(t.place_at(other, T).0.access_element, "olt9");
        let (p, span) = t.place_at(other, T - 86_400);
        assert_eq!(p.access_element, "10.0.0.0/24");
        assert!(!p.matched);
        assert_eq!(span.to_s, T - 36_000);
        assert_eq!(
            t.lookup_id_at("imsi-1", T - 1).unwrap().access_element,
            "cell1"
        );
        assert_eq!(t.lookup_id_at("imsi-1", T).unwrap().access_element, "cell2");
        assert_eq!(t.lookup_id("imsi-1").unwrap().access_element, "cell2");
        assert_eq!(t.subscriber_id_at("imsi-1", T - 1), "home-i");
        assert_eq!(t.subscriber_id_at("10.0.0.7", T), "10.0.0.7");
        // Overlapping versions of one user are refused, naming the other line.
        let bad = "10.0.0.5,h,olt1,bng1,,,,2024-05-01T10:00:00Z\n\
                   10.0.0.5,h,olt2,bng1,,,2024-05-01T09:59:00Z,\n";
        let e = Topology::parse("o.csv", bad, PlacementConfig::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "o.csv:2: duplicate address `10.0.0.5`: its validity overlaps line 1"
        );
        // Unversioned topologies keep one answer for all time.
        let (_, span) = topo().place_at(ip, T);
        assert_eq!(span, Span::ALL);
        assert!(!topo().is_versioned());
    }
}
