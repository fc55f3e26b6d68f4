//! Loading the dimension tables: `subscribers` from a topology CSV and `complaints` from a
//! complaints CSV (`cemflow lake load-topology`, `cemflow lake load-complaints`).
//!
//! Both loaders are row-tolerant: a bad row is reported as a [`RowError`] naming its line
//! and skipped; the good rows are loaded. Raw subscriber identities (IP, IMSI, MSISDN,
//! home id) never reach the lake: every subscriber is stored as the pseudonym of its
//! subscriber id, by the dataflow's rule (`home_id` when the topology gives one, else the
//! canonical IP / IMSI / MSISDN / id), with the dataflow's [`Pseudonymizer`].
//!
//! * `subscribers` is replaced as a whole on every topology load (one overwrite commit).
//! * `complaints` is appended; complaint ids already in the table (or repeated in the
//!   file) are skipped, so loading the same file twice adds nothing.

use crate::convert::{complaints_batch, parse_rfc3339_us, subscribers_batch};
use crate::error::LakeError;
use crate::lake::Lake;
use crate::rows::{ComplaintRow, SubscriberRow};
use crate::schema::Table;
use arrow::array::{Array, StringArray};
use cemflow_dataflow::topology::parse_rows;
use cemflow_dataflow::{Pseudonymizer, Topology};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

/// A rejected input row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line of the file.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Outcome of a load.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadReport {
    /// Input file.
    pub path: String,
    /// Rows written to the table.
    pub loaded: usize,
    /// Valid rows not written because already present (same complaint id, or a second
    /// topology row of the same subscriber).
    pub duplicates: usize,
    /// Rejected rows.
    pub errors: Vec<RowError>,
    /// Delta version written, `None` when nothing was written.
    pub version: Option<i64>,
}

/// Kind of a topology `user` value: `ip`, `prefix`, `imsi` (14–15 digits), `msisdn`
/// (`+` and digits, or 7–13 digits) or `id`.
pub fn user_kind(user: &str) -> &'static str {
    let u = user.trim();
    if u.parse::<IpAddr>().is_ok() {
        return "ip";
    }
    if let Some((a, l)) = u.split_once('/') {
        if a.parse::<IpAddr>().is_ok() && l.parse::<u8>().is_ok() {
            return "prefix";
        }
    }
    let digits = u.strip_prefix('+').unwrap_or(u);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if u.starts_with('+') {
            return "msisdn";
        }
        return match digits.len() {
            14 | 15 => "imsi",
            7..=13 => "msisdn",
            _ => "id",
        };
    }
    "id"
}

/// Parses topology CSV text (`user,home_id,access_element,core_element[,region,plan_mbps,
/// valid_from,valid_to]`, header optional and naming the columns when present, `#`
/// comments and blank lines ignored; rows parsed by the dataflow's
/// [`TopologyLayout`](cemflow_dataflow::topology::TopologyLayout)) into pseudonymised
/// subscriber rows, one per subscriber and validity interval. A prefix row without
/// `home_id` is rejected: its addresses are separate users keyed per address (dataflow
/// rule), not one subscriber. A row of an already kept subscriber (same pseudonym) whose
/// validity overlaps the kept row's counts as a duplicate (first row wins), so an
/// unversioned topology keeps one row per subscriber and a subscriber moved to another
/// port keeps one row per placement.
pub fn parse_topology(
    text: &str,
    pseudo: &Pseudonymizer,
) -> (Vec<SubscriberRow>, usize, Vec<RowError>) {
    let mut rows: Vec<SubscriberRow> = Vec::new();
    let mut errors = Vec::new();
    let mut kept: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    let mut dups = 0;
    for (line, row) in parse_rows(text) {
        let line = line as u64;
        let e = match row {
            Ok(e) => e,
            Err(reason) => {
                errors.push(RowError { line, reason });
                continue;
            }
        };
        let kind = user_kind(&e.user);
        if e.user.contains('/') && kind != "prefix" {
            errors.push(RowError {
                line,
                reason: format!("invalid prefix `{}`", e.user),
            });
            continue;
        }
        let subscriber_id = if !e.home_id.is_empty() {
            e.home_id.clone()
        } else if kind == "prefix" {
            errors.push(RowError {
                line,
                reason: format!(
                    "prefix `{}` without home_id: its addresses are separate users, not one subscriber",
                    e.user
                ),
            });
            continue;
        } else if kind == "ip" {
            match e.user.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                    Some(v4) => v4.to_string(),
                    None => v6.to_string(),
                },
                Ok(ip) => ip.to_string(),
                Err(_) => e.user.clone(),
            }
        } else {
            e.user.clone()
        };
        let user_key = pseudo.user_key(&subscriber_id);
        let span = (
            e.valid_from_s.unwrap_or(i64::MIN),
            e.valid_to_s.unwrap_or(i64::MAX),
        );
        let spans = kept.entry(user_key.clone()).or_default();
        if spans.iter().any(|&(f, t)| f < span.1 && span.0 < t) {
            dups += 1;
            continue;
        }
        spans.push(span);
        rows.push(SubscriberRow {
            user_key,
            user_kind: kind.to_string(),
            access_element: e.access_element,
            core_element: e.core_element,
            region: e.region,
            plan_mbps: e.plan_mbps,
            valid_from_s: e.valid_from_s,
            valid_to_s: e.valid_to_s,
        });
    }
    (rows, dups, errors)
}

/// Parses `reported_at`: RFC 3339 or epoch seconds (integer or decimal). Returns epoch s.
pub fn parse_reported_at(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() && v.abs() < 1e15 {
            return Some(v.floor() as i64);
        }
        return None;
    }
    parse_rfc3339_us(s).map(|us| us.div_euclid(1_000_000))
}

/// Parses a complaints CSV (`complaint_id,user,reported_at[,service,text]`, header
/// required, fields may be quoted) into pseudonymised rows. The user's subscriber id
/// follows `topology` at the complaint's `reported_at` (empty topology: the canonical IP or
/// the id as given).
pub fn parse_complaints(
    data: &[u8],
    pseudo: &Pseudonymizer,
    topology: &Topology,
) -> Result<(Vec<ComplaintRow>, usize, Vec<RowError>), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = rdr
        .headers()
        .map_err(|e| format!("cannot read header: {e}"))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (Some(c_id), Some(c_user), Some(c_at)) =
        (col("complaint_id"), col("user"), col("reported_at"))
    else {
        return Err(format!(
            "header must start `complaint_id,user,reported_at[,service,text]`, got `{}`",
            headers.iter().collect::<Vec<_>>().join(",")
        ));
    };
    let (c_service, c_text) = (col("service"), col("text"));
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut dups = 0;
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: usize| rec.get(i).unwrap_or("");
        let opt = |i: Option<usize>| i.map(get).filter(|s| !s.is_empty()).map(str::to_string);
        let id = get(c_id);
        let user = get(c_user);
        let at = get(c_at);
        if id.is_empty() {
            errors.push(RowError {
                line,
                reason: "empty `complaint_id`".into(),
            });
            continue;
        }
        if user.is_empty() {
            errors.push(RowError {
                line,
                reason: format!("complaint {id}: empty `user`"),
            });
            continue;
        }
        let Some(reported_at_s) = parse_reported_at(at) else {
            errors.push(RowError {
                line,
                reason: format!(
                    "complaint {id}: `reported_at` {at:?} is neither RFC 3339 nor epoch seconds"
                ),
            });
            continue;
        };
        if !seen.insert(id.to_string()) {
            dups += 1;
            continue;
        }
        rows.push(ComplaintRow {
            complaint_id: id.to_string(),
            user_key: pseudo.user_key(&topology.subscriber_id_at(user, reported_at_s)),
            reported_at_s,
            service: opt(c_service),
            text: opt(c_text),
        });
    }
    Ok((rows, dups, errors))
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Lake {
    /// Replaces `subscribers` with the topology file's subscribers (pseudonymised).
    /// Nothing is written when no row is valid.
    pub fn load_topology(
        &self,
        path: &Path,
        pseudo: &Pseudonymizer,
    ) -> Result<LoadReport, LakeError> {
        let text = std::fs::read_to_string(path).map_err(|e| LakeError::Input {
            path: path.display().to_string(),
            reason: format!("cannot read topology: {e}"),
        })?;
        let (rows, duplicates, errors) = parse_topology(&text, pseudo);
        let mut report = LoadReport {
            path: path.display().to_string(),
            loaded: rows.len(),
            duplicates,
            errors,
            version: None,
        };
        if !rows.is_empty() {
            let batch = subscribers_batch(&rows, now_s())?;
            report.version = Some(self.overwrite(Table::Subscribers, vec![batch])?);
        }
        Ok(report)
    }

    /// Appends the complaints file's complaints (pseudonymised with `pseudo` and the
    /// `topology`'s subscriber-id rule), skipping complaint ids already in the table.
    pub fn load_complaints(
        &self,
        path: &Path,
        pseudo: &Pseudonymizer,
        topology: &Topology,
    ) -> Result<LoadReport, LakeError> {
        let data = std::fs::read(path).map_err(|e| LakeError::Input {
            path: path.display().to_string(),
            reason: format!("cannot read complaints: {e}"),
        })?;
        let (rows, mut duplicates, errors) =
            parse_complaints(&data, pseudo, topology).map_err(|reason| LakeError::Input {
                path: path.display().to_string(),
                reason,
            })?;
        let existing = self.existing_complaint_ids()?;
        let before = rows.len();
        let rows: Vec<ComplaintRow> = rows
            .into_iter()
            .filter(|r| !existing.contains(&r.complaint_id))
            .collect();
        duplicates += before - rows.len();
        let mut report = LoadReport {
            path: path.display().to_string(),
            loaded: rows.len(),
            duplicates,
            errors,
            version: None,
        };
        if !rows.is_empty() {
            let batch = complaints_batch(&rows, now_s())?;
            report.version = self.append(Table::Complaints, vec![batch])?;
        }
        Ok(report)
    }

    fn existing_complaint_ids(&self) -> Result<HashSet<String>, LakeError> {
        let mut ids = HashSet::new();
        for b in self.read_table(Table::Complaints, Some(&["complaint_id"]))? {
            let Some(col) = b.column(0).as_any().downcast_ref::<StringArray>() else {
                continue;
            };
            for i in 0..col.len() {
                if col.is_valid(i) {
                    ids.insert(col.value(i).to_string());
                }
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo() -> Pseudonymizer {
        Pseudonymizer::new(b"test-key").unwrap()
    }

    #[test]
    fn kinds() {
        assert_eq!(user_kind("10.0.0.1"), "ip");
        assert_eq!(user_kind("2001:db8::1"), "ip");
        assert_eq!(user_kind("10.1.0.0/16"), "prefix");
        assert_eq!(user_kind("460001234567890"), "imsi");
        assert_eq!(user_kind("+8613800138000"), "msisdn");
        assert_eq!(user_kind("13800138000"), "msisdn");
        assert_eq!(user_kind("home-42"), "id");
    }

    #[test]
    fn topology_rows_keep_good_and_name_bad_lines() {
        let p = pseudo();
        let text = "user,home_id,access_element,core_element,region,plan_mbps\n\
                    10.0.0.1,,olt1/pon1,bng1,north,300\n\
                    10.0.0.2,home-2,olt1/pon1,bng1\n\
                    10.0.1.0/24,,olt1/pon2,bng1\n\
                    bad line\n\
                    10.0.0.3,home-2,olt1/pon1,bng1\n\
                    460001234567890,,cell-7,upf1,,abc\n\
                    # comment\n\
                    460001234567891,,cell-7,upf1\n";
        let (rows, dups, errs) = parse_topology(text, &p);
        assert_eq!(rows.len(), 3);
        assert_eq!(dups, 1);
        assert_eq!(
            errs.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![4, 5, 7]
        );
        assert_eq!(rows[0].user_key, p.user_key("10.0.0.1"));
        assert_eq!(rows[0].plan_mbps, Some(300.0));
        assert_eq!(rows[1].user_key, p.user_key("home-2"));
        assert_eq!(rows[2].user_kind, "imsi");
        // Same rule as the dataflow's topology.
        let topo =
            Topology::parse("t", "10.0.0.2,home-2,olt1/pon1,bng1\n", Default::default()).unwrap();
        assert_eq!(
            p.user_key(&topo.subscriber_id("10.0.0.2")),
            rows[1].user_key
        );
    }

    #[test]
    fn complaints_parse_with_row_errors() {
        let p = pseudo();
        let csv = "complaint_id,user,reported_at,service,text\n\
                   c1,10.0.0.1,2024-03-05T10:00:00Z,video,\"buffering, again\"\n\
                   c2,10.0.0.2,1709632800\n\
                   c3,10.0.0.3,yesterday,web,slow\n\
                   ,10.0.0.4,1709632800\n\
                   c1,10.0.0.1,1709632800\n\
                   c5,10.0.0.5,1709632800.5,,\n";
        let (rows, dups, errs) =
            parse_complaints(csv.as_bytes(), &p, &Topology::default()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(dups, 1);
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![4, 5]);
        assert!(errs[0].reason.contains("c3"));
        assert_eq!(rows[0].reported_at_s, 1_709_632_800);
        assert_eq!(rows[0].text.as_deref(), Some("buffering, again"));
        assert_eq!(rows[0].user_key, p.user_key("10.0.0.1"));
        assert_eq!(rows[1].service, None);
        assert_eq!(rows[2].reported_at_s, 1_709_632_800);
        assert!(parse_complaints(b"a,b\n1,2\n", &p, &Topology::default()).is_err());
    }

    #[test]
    fn versioned_topology_keeps_one_row_per_placement() {
        let p = pseudo();
        let text = "user,home_id,access_element,core_element,valid_from,valid_to\n\
                    10.0.0.2,home-2,olt1/pon1,bng1,,2024-05-01T10:00:00Z\n\
                    10.0.0.2,home-2,olt1/pon2,bng1,2024-05-01T10:00:00Z,\n\
                    10.0.0.3,home-2,olt1/pon2,bng1,2024-05-01T12:00:00Z,\n\
                    10.0.0.4,home-4,olt1/pon2,bng1,tomorrow,\n";
        let (rows, dups, errs) = parse_topology(text, &p);
        assert_eq!(rows.len(), 2);
        assert_eq!(dups, 1, "overlaps the kept row of home-2");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 5);
        assert!(errs[0].reason.contains("valid_from"), "{}", errs[0].reason);
        assert_eq!(rows[0].valid_to_s, Some(1_714_557_600));
        assert_eq!(rows[0].valid_from_s, None);
        assert_eq!(rows[1].valid_from_s, Some(1_714_557_600));
        assert_eq!(rows[1].access_element, "olt1/pon2");
        assert_eq!(rows[0].user_key, rows[1].user_key);
        let b = subscribers_batch(&rows, 1_714_560_000).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.column_by_name("valid_from").unwrap().null_count(), 1);
    }
}
