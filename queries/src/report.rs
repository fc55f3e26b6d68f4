//! Batch complaint report (SPEC §7, issue 8 item 5): the demarcation verdicts of a
//! complaints file as `report.csv` and a self-contained `report.html` (inline CSS and
//! SVG, no script, no external resource).
//!
//! For each complaint the HTML shows the user's overall (`all`) CEI per minute over the
//! demarcation window against the mean overall CEI of its access-element peers (the
//! element's other users, from `user_minute`) and the access element's poor share (from
//! `element_minute`); and, over the union of the windows, the poor share of every access
//! element (the complaints' elements first, then the worst others, at most
//! [`MAX_ELEMENT_LINES`] lines).

use crate::demarcate::{demarcate_many, Demarcation, DemarcationConfig, DemarcationRequest};
use crate::error::{QueryError, Result};
use crate::session::QuerySession;
use crate::util::{col_f64, col_str, col_ts_s, lit, rfc3339, window_predicate};
use cemflow_lakehouse::Table;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Most access elements drawn in the per-element comparison chart.
pub const MAX_ELEMENT_LINES: usize = 12;

/// A time series: `(window start epoch s, value)`, ascending.
pub type Series = Vec<(i64, f64)>;

/// One complaint of the report: its verdict and the series of its chart.
#[derive(Clone, Debug, PartialEq)]
pub struct ComplaintReport {
    /// Complaint time (epoch s).
    pub reported_at_s: i64,
    /// The demarcation verdict.
    pub demarcation: Demarcation,
    /// Window start and end (epoch s).
    pub window: (i64, i64),
    /// The user's access element (the verdict's evidence, else its most frequent one).
    pub access_element: Option<String>,
    /// The user's overall CEI per minute.
    pub user_cei: Series,
    /// Mean overall CEI of the access element's other users per minute.
    pub peers_cei: Series,
    /// The access element's poor share (0–1) per minute.
    pub element_poor_share: Series,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The lake it was made from.
    pub lake: String,
    /// Poor CEI threshold (drawn in the charts).
    pub poor_cei: f64,
    /// One entry per complaint, in the file's order.
    pub complaints: Vec<ComplaintReport>,
    /// Union of the windows (epoch s).
    pub span: Option<(i64, i64)>,
    /// Poor share per access element over the span (element id, series).
    pub elements: Vec<(String, Series)>,
}

/// The verdict names in report order.
pub const VERDICTS: [&str; 6] = [
    "no_fault_found",
    "home",
    "access",
    "core",
    "server",
    "inconclusive",
];

fn window_of(req: &DemarcationRequest, cfg: &DemarcationConfig) -> (i64, i64) {
    let w = req.window_s.unwrap_or(cfg.window_s).max(1);
    (req.at_s - w, req.at_s)
}

async fn series(s: &QuerySession, sql: &str, value: &str) -> Result<Series> {
    let mut out = Vec::new();
    for b in s.sql(sql).await? {
        let ws = col_ts_s(&b, "window_start")?;
        let v = col_f64(&b, value)?;
        for i in 0..b.num_rows() {
            if let (Some(w), Some(x)) = (ws[i], v[i]) {
                if x.is_finite() {
                    out.push((w, x));
                }
            }
        }
    }
    out.sort_by_key(|p| p.0);
    Ok(out)
}

/// Access-element poor share rows `(element, window start, share)` over `[from, to]`.
async fn element_rows(s: &QuerySession, from: i64, to: i64) -> Result<Vec<(String, i64, f64)>> {
    if !s.has_table(Table::ElementMinute) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT window_start, element_id, poor_users, users FROM element_minute \
         WHERE {} AND level = 'access' ORDER BY window_start",
        window_predicate(from, to)
    );
    let mut out = Vec::new();
    for b in s.sql(&sql).await? {
        let ws = col_ts_s(&b, "window_start")?;
        let id = col_str(&b, "element_id")?;
        let pu = col_f64(&b, "poor_users")?;
        let us = col_f64(&b, "users")?;
        for i in 0..b.num_rows() {
            if let (Some(w), Some(e), Some(u)) = (ws[i], id[i].clone(), us[i]) {
                if u > 0.0 {
                    out.push((e, w, pu[i].unwrap_or(0.0) / u));
                }
            }
        }
    }
    Ok(out)
}

/// Demarcates `reqs` and gathers the chart series (DataFusion SQL over `user_minute` and
/// `element_minute`). `lake` names the lake in the page.
pub async fn build_report(
    s: &QuerySession,
    reqs: &[DemarcationRequest],
    cfg: &DemarcationConfig,
    lake: &str,
) -> Result<Report> {
    s.require(Table::UserMinute)?;
    let verdicts = demarcate_many(s, reqs, cfg).await?;
    let span = reqs.iter().map(|r| window_of(r, cfg)).fold(None, |acc, w| {
        Some(match acc {
            None => w,
            Some((a, b)) => (w.0.min(a), w.1.max(b)),
        })
    });
    let erows = match span {
        Some((a, b)) => element_rows(s, a, b).await?,
        None => Vec::new(),
    };
    let mut complaints = Vec::with_capacity(reqs.len());
    for (req, d) in reqs.iter().zip(verdicts) {
        let (from, to) = window_of(req, cfg);
        let pred = window_predicate(from, to);
        let user_cei = series(
            s,
            &format!(
                "SELECT window_start, avg(cei) AS v FROM user_minute WHERE {pred} \
                 AND source = 'probe' AND category = 'all' AND user_key = {} GROUP BY window_start",
                lit(&req.user_key)
            ),
            "v",
        )
        .await?;
        let access = match d.evidence.get("access_element").and_then(Value::as_str) {
            Some(a) if !a.is_empty() => Some(a.to_string()),
            _ => {
                let sql = format!(
                    "SELECT access_element, count(*) AS n FROM user_minute WHERE {pred} \
                     AND source = 'probe' AND user_key = {} GROUP BY access_element ORDER BY n DESC, access_element \
                     LIMIT 1",
                    lit(&req.user_key)
                );
                let b = s.sql(&sql).await?;
                b.first()
                    .filter(|b| b.num_rows() > 0)
                    .map(|b| col_str(b, "access_element"))
                    .transpose()?
                    .and_then(|v| v.into_iter().next().flatten())
                    .filter(|a| !a.is_empty())
            }
        };
        let (peers_cei, element_poor_share) = match &access {
            Some(a) => (
                series(
                    s,
                    &format!(
                        "SELECT window_start, avg(cei) AS v FROM user_minute WHERE {pred} \
                         AND source = 'probe' AND category = 'all' AND access_element = {} \
                         AND user_key <> {} \
                         GROUP BY window_start",
                        lit(a),
                        lit(&req.user_key)
                    ),
                    "v",
                )
                .await?,
                erows
                    .iter()
                    .filter(|(e, w, _)| e == a && *w >= from && *w <= to)
                    .map(|(_, w, v)| (*w, *v))
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        complaints.push(ComplaintReport {
            reported_at_s: req.at_s,
            demarcation: d,
            window: (from, to),
            access_element: access,
            user_cei,
            peers_cei,
            element_poor_share,
        });
    }
    // Per-element chart: the complaints' elements first, then the worst others.
    let mut by_elem: BTreeMap<String, Series> = BTreeMap::new();
    for (e, w, v) in erows {
        by_elem.entry(e).or_default().push((w, v));
    }
    let wanted: BTreeSet<&str> = complaints
        .iter()
        .filter_map(|c| c.access_element.as_deref())
        .collect();
    let mean = |s: &Series| s.iter().map(|p| p.1).sum::<f64>() / s.len().max(1) as f64;
    let mut order: Vec<(&String, &Series)> = by_elem.iter().collect();
    order.sort_by(|a, b| {
        let wa = wanted.contains(a.0.as_str());
        let wb = wanted.contains(b.0.as_str());
        wb.cmp(&wa)
            .then(mean(b.1).total_cmp(&mean(a.1)))
            .then(a.0.cmp(b.0))
    });
    let mut elements: Vec<(String, Series)> = order
        .into_iter()
        .take(MAX_ELEMENT_LINES)
        .map(|(e, s)| (e.clone(), s.clone()))
        .collect();
    elements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Report {
        generated_at: rfc3339(chrono::Utc::now().timestamp()),
        lake: lake.to_string(),
        poor_cei: cfg.poor_cei,
        complaints,
        span,
        elements,
    })
}

/// The columns of `report.csv`.
pub const CSV_COLUMNS: [&str; 21] = [
    "complaint_id",
    "user",
    "reported_at",
    "verdict",
    "element",
    "confidence",
    "decided_by",
    "window_start",
    "window_end",
    "user_minutes",
    "poor_minutes",
    "cei_median",
    "access_element",
    "core_element",
    "step_users",
    "step_poor_users",
    "step_poor_rate",
    "step_lower",
    "peers_cei_mean",
    "element_poor_share_max",
    "evidence",
];

fn num(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn f3(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    format!("{r}")
}

/// The decided step's evidence object (`server`, `core`, `access`, `home`), if any.
fn step(d: &Demarcation) -> Option<&Value> {
    let by = d.evidence.get("decided_by")?.as_str()?;
    d.evidence.get(by).filter(|v| v.is_object())
}

/// One `report.csv` record (fields in [`CSV_COLUMNS`] order).
pub fn csv_record(c: &ComplaintReport) -> Vec<String> {
    let d = &c.demarcation;
    let ev = &d.evidence;
    let st = step(d);
    let peers = if c.peers_cei.is_empty() {
        String::new()
    } else {
        f3(c.peers_cei.iter().map(|p| p.1).sum::<f64>() / c.peers_cei.len() as f64)
    };
    let share = c
        .element_poor_share
        .iter()
        .map(|p| p.1)
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
        .map(f3)
        .unwrap_or_default();
    vec![
        d.complaint_id.clone().unwrap_or_default(),
        d.user.clone(),
        rfc3339(c.reported_at_s),
        d.verdict.as_str().to_string(),
        d.element.clone().unwrap_or_default(),
        f3(d.confidence),
        num(ev.get("decided_by")),
        d.window_start.clone(),
        d.window_end.clone(),
        num(ev.get("user_minutes")),
        num(ev.get("poor_minutes")),
        num(ev.get("cei_median")),
        c.access_element.clone().unwrap_or_default(),
        num(ev.get("core_element")),
        num(st.and_then(|s| s.get("n"))),
        num(st.and_then(|s| s.get("k"))),
        num(st.and_then(|s| s.get("poor_rate"))),
        num(st.and_then(|s| s.get("lower"))),
        peers,
        share,
        ev.to_string(),
    ]
}

/// Writes `report.csv` to `w`.
pub fn write_csv<W: std::io::Write>(report: &Report, w: W) -> Result<()> {
    let io = |e: csv::Error| QueryError::Io {
        context: "writing report.csv".into(),
        source: std::io::Error::other(e),
    };
    let mut out = csv::Writer::from_writer(w);
    out.write_record(CSV_COLUMNS).map_err(io)?;
    for c in &report.complaints {
        out.write_record(csv_record(c)).map_err(io)?;
    }
    out.flush().map_err(|source| QueryError::Io {
        context: "writing report.csv".into(),
        source,
    })
}

/// Writes `report.csv` and `report.html` into `dir` (created). Returns their paths.
pub fn write_report(report: &Report, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let io = |what: &Path, source| QueryError::Io {
        context: format!("writing {}", what.display()),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let csv_path = dir.join("report.csv");
    let f = std::fs::File::create(&csv_path).map_err(|e| io(&csv_path, e))?;
    write_csv(report, std::io::BufWriter::new(f))?;
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, render_html(report)).map_err(|e| io(&html_path, e))?;
    Ok((csv_path, html_path))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn hhmm(s: i64) -> String {
    let t = rfc3339(s);
    t.get(11..16).map(str::to_string).unwrap_or(t)
}

const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d2329;background:#fafbfc}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}\
h3{font-size:15px;margin:0 0 6px}.meta{color:#57606a;font-size:13px}\
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}\
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.v{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff}\
.v-no_fault_found{background:#2da44e}.v-home{background:#8250df}.v-access{background:#cf222e}\
.v-core{background:#bc4c00}.v-server{background:#0969da}.v-inconclusive{background:#6e7781}\
.complaint{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px;margin:12px 0}\
.ev{font-size:12px;color:#57606a;margin:4px 0 8px}svg{background:#fff}\
.legend{font-size:12px;color:#57606a}.legend span{margin-right:14px}\
.sw{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}\
";

const PALETTE: [&str; 12] = [
    "#cf222e", "#0969da", "#2da44e", "#bc4c00", "#8250df", "#1b7c83", "#bf3989", "#6e7781",
    "#9a6700", "#0550ae", "#116329", "#953800",
];

/// A line for [`svg_chart`].
struct Line<'a> {
    label: String,
    color: &'a str,
    dash: bool,
    /// Values on the right axis (share 0–1 drawn as 0–100 %).
    right: bool,
    points: &'a Series,
}

const W: f64 = 760.0;
const H: f64 = 240.0;
const ML: f64 = 44.0;
const MR: f64 = 48.0;
const MT: f64 = 12.0;
const MB: f64 = 28.0;

/// An SVG line chart over `[from, to]`: left axis 0–100 (CEI), right axis 0–100 % (share)
/// when `right_axis`. `marker` draws a vertical line (the complaint time); `threshold` a
/// dashed horizontal line on the left axis.
struct Chart<'a> {
    title: &'a str,
    range: (i64, i64),
    left_axis: Option<&'a str>,
    right_axis: Option<&'a str>,
    threshold: Option<f64>,
    marker: Option<i64>,
}

fn svg_chart(out: &mut String, c: &Chart<'_>, lines: &[Line<'_>]) {
    let Chart {
        title,
        range: (from, to),
        left_axis,
        right_axis,
        threshold,
        marker,
    } = *c;
    // Start the axis shortly before the first point when the data covers only the end of
    // the window (a caption notes it).
    let first = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .map(|p| p.0)
        .filter(|&t| t >= from && t <= to)
        .min();
    let from = match first {
        Some(f) if f - 120 > from => {
            let _ = write!(
                out,
                "<div class=\"meta\">no data from {} to {}: axis starts at {}</div>",
                hhmm(from),
                hhmm(f),
                hhmm(f - 60)
            );
            f - 60
        }
        _ => from,
    };
    let span = (to - from).max(1) as f64;
    let x = |t: i64| ML + (t - from) as f64 / span * (W - ML - MR);
    let y = |v: f64| MT + (1.0 - (v / 100.0).clamp(0.0, 1.0)) * (H - MT - MB);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = escape(title)
    );
    // grid and axes
    for g in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let yy = y(g);
        let _ = write!(
            out,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eaeef2\"/>",
            W - MR
        );
        if left_axis.is_some() {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#57606a\">{g}</text>",
                ML - 4.0,
                yy + 3.0
            );
        }
        if right_axis.is_some() {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" fill=\"#57606a\">{g}%</text>",
                W - MR + 4.0,
                yy + 3.0
            );
        }
    }
    if let Some(l) = left_axis {
        let _ = write!(
            out,
            "<text x=\"10\" y=\"{:.1}\" font-size=\"10\" fill=\"#57606a\" transform=\"rotate(-90 10 {:.1})\" text-anchor=\"middle\">{}</text>",
            H / 2.0,
            H / 2.0,
            escape(l)
        );
    }
    if let Some(r) = right_axis {
        let xr = W - 6.0;
        let _ = write!(
            out,
            "<text x=\"{xr}\" y=\"{:.1}\" font-size=\"10\" fill=\"#57606a\" transform=\"rotate(90 {xr} {:.1})\" text-anchor=\"middle\">{}</text>",
            H / 2.0,
            H / 2.0,
            escape(r)
        );
    }
    // x ticks: about 6
    let step_min = (((to - from) / 60) / 6).max(1) * 60;
    let mut t = from + (60 - from.rem_euclid(60)) % 60;
    while t <= to {
        let xx = x(t);
        let _ = write!(
            out,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#8c959f\"/>\
             <text x=\"{xx:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            H - MB,
            H - MB + 4.0,
            H - MB + 15.0,
            hhmm(t)
        );
        t += step_min;
    }
    let _ = write!(
        out,
        "<rect x=\"{ML}\" y=\"{MT}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#8c959f\"/>",
        W - ML - MR,
        H - MT - MB
    );
    if let Some(th) = threshold {
        let yy = y(th);
        let _ = write!(
            out,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#cf222e\" stroke-opacity=\"0.5\" stroke-dasharray=\"2 3\"><title>poor CEI threshold {th}</title></line>",
            W - MR
        );
    }
    if let Some(m) = marker {
        let xx = x(m);
        let _ = write!(
            out,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{MT}\" y2=\"{}\" stroke=\"#1d2329\" stroke-dasharray=\"4 3\"><title>complaint {}</title></line>",
            H - MB,
            rfc3339(m)
        );
    }
    for l in lines {
        let val = |v: f64| if l.right { v * 100.0 } else { v };
        // split at gaps longer than 1.5 minutes
        let mut segs: Vec<Vec<(i64, f64)>> = Vec::new();
        let mut last: Option<i64> = None;
        for &(t, v) in l.points.iter().filter(|p| p.0 >= from && p.0 <= to) {
            if last.is_none_or(|lt| t - lt > 90) {
                segs.push(Vec::new());
            }
            if let Some(s) = segs.last_mut() {
                s.push((t, val(v)));
            }
            last = Some(t);
        }
        let dash = if l.dash {
            " stroke-dasharray=\"6 3\""
        } else {
            ""
        };
        for s in &segs {
            let pts: Vec<String> = s
                .iter()
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect();
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                l.color,
                pts.join(" ")
            );
        }
        for s in &segs {
            for &(t, v) in s {
                let shown = if l.right {
                    format!("{:.1} %", v)
                } else {
                    format!("{v:.1}")
                };
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"><title>{} {}: {}</title></circle>",
                    x(t),
                    y(v),
                    l.color,
                    escape(&l.label),
                    hhmm(t),
                    shown
                );
            }
        }
    }
    out.push_str("</svg>");
}

fn legend(out: &mut String, items: &[(&str, &str, bool)]) {
    out.push_str("<div class=\"legend\">");
    for (label, color, dash) in items {
        let style = if *dash {
            format!("background:repeating-linear-gradient(90deg,{color} 0 6px,transparent 6px 9px)")
        } else {
            format!("background:{color}")
        };
        let _ = write!(
            out,
            "<span><i class=\"sw\" style=\"{style}\"></i>{}</span>",
            escape(label)
        );
    }
    out.push_str("</div>");
}

fn badge(v: &str) -> String {
    format!("<span class=\"v v-{v}\">{v}</span>", v = escape(v))
}

/// Renders the self-contained `report.html`.
pub fn render_html(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    o.push_str(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>cemflow complaint report</title><style>",
    );
    o.push_str(CSS);
    o.push_str("</style></head><body><h1>cemflow complaint report</h1>");
    let _ = write!(
        o,
        "<div class=\"meta\">lake {} · generated {} · {} complaint(s)",
        escape(&r.lake),
        escape(&r.generated_at),
        r.complaints.len()
    );
    if let Some((a, b)) = r.span {
        let _ = write!(o, " · windows {} – {}", rfc3339(a), rfc3339(b));
    }
    o.push_str("</div>");

    // Summary of verdict counts.
    o.push_str("<h2>Verdicts</h2><table id=\"summary\"><tr><th>verdict</th><th>complaints</th><th>share</th></tr>");
    let total = r.complaints.len().max(1) as f64;
    for v in VERDICTS {
        let n = r
            .complaints
            .iter()
            .filter(|c| c.demarcation.verdict.as_str() == v)
            .count();
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{:.0} %</td></tr>",
            badge(v),
            n as f64 / total * 100.0
        );
    }
    let _ = write!(
        o,
        "<tr><th>total</th><th class=\"num\">{}</th><th></th></tr></table>",
        r.complaints.len()
    );

    // All complaints.
    o.push_str(
        "<h2>Complaints</h2><table id=\"complaints\"><tr><th>complaint</th><th>user</th>\
         <th>reported at</th><th>verdict</th><th>element</th><th>confidence</th>\
         <th>poor min</th><th>median CEI</th><th>decided by</th></tr>",
    );
    for (i, c) in r.complaints.iter().enumerate() {
        let d = &c.demarcation;
        let _ = write!(
            o,
            "<tr class=\"verdict-row\" data-verdict=\"{v}\"><td><a href=\"#c{i}\">{id}</a></td>\
             <td>{u}</td><td>{at}</td><td>{b}</td><td>{el}</td><td class=\"num\">{conf:.2}</td>\
             <td class=\"num\">{pm}</td><td class=\"num\">{cm}</td><td>{by}</td></tr>",
            v = escape(d.verdict.as_str()),
            id = escape(d.complaint_id.as_deref().unwrap_or("")),
            u = escape(&d.user),
            at = escape(&rfc3339(c.reported_at_s)),
            b = badge(d.verdict.as_str()),
            el = escape(d.element.as_deref().unwrap_or("–")),
            conf = d.confidence,
            pm = escape(&num(d.evidence.get("poor_minutes"))),
            cm = escape(&num(d.evidence.get("cei_median"))),
            by = escape(&num(d.evidence.get("decided_by"))),
        );
    }
    o.push_str("</table>");

    // Per-element comparison.
    o.push_str("<h2>Access elements: poor share</h2>");
    match r.span {
        Some(span) if !r.elements.is_empty() => {
            let lines: Vec<Line<'_>> = r
                .elements
                .iter()
                .enumerate()
                .map(|(i, (e, s))| Line {
                    label: e.clone(),
                    color: PALETTE[i % PALETTE.len()],
                    dash: false,
                    right: true,
                    points: s,
                })
                .collect();
            let chart = Chart {
                title: "poor share per access element",
                range: span,
                left_axis: None,
                right_axis: Some("poor share"),
                threshold: None,
                marker: None,
            };
            svg_chart(&mut o, &chart, &lines);
            let items: Vec<(&str, &str, bool)> = lines
                .iter()
                .map(|l| (l.label.as_str(), l.color, false))
                .collect();
            legend(&mut o, &items);
        }
        _ => o.push_str("<p class=\"meta\">no element_minute rows in the windows</p>"),
    }

    // Per complaint.
    o.push_str("<h2>Per complaint</h2>");
    for (i, c) in r.complaints.iter().enumerate() {
        let d = &c.demarcation;
        let _ = write!(
            o,
            "<section class=\"complaint\" id=\"c{i}\"><h3>{id} · {u} · {b}",
            id = escape(d.complaint_id.as_deref().unwrap_or("")),
            u = escape(&d.user),
            b = badge(d.verdict.as_str()),
        );
        if let Some(e) = &d.element {
            let _ = write!(o, " {}", escape(e));
        }
        let _ = write!(o, " (confidence {:.2})</h3>", d.confidence);
        let _ = write!(
            o,
            "<div class=\"ev\">window {} – {} · access element {} · poor minutes {} of {} · median CEI {}",
            escape(&d.window_start),
            escape(&d.window_end),
            escape(c.access_element.as_deref().unwrap_or("–")),
            escape(&num(d.evidence.get("poor_minutes"))),
            escape(&num(d.evidence.get("user_minutes"))),
            escape(&num(d.evidence.get("cei_median"))),
        );
        if let Some(st) = step(d) {
            let _ = write!(
                o,
                " · {} step: users {} poor users {} poor rate {} lower bound {}",
                escape(&num(d.evidence.get("decided_by"))),
                escape(&num(st.get("n"))),
                escape(&num(st.get("k"))),
                escape(&num(st.get("poor_rate"))),
                escape(&num(st.get("lower"))),
            );
        }
        o.push_str("</div>");
        if c.user_cei.is_empty() && c.peers_cei.is_empty() && c.element_poor_share.is_empty() {
            o.push_str("<p class=\"meta\">no data for the user in the window</p></section>");
            continue;
        }
        let acc = c.access_element.as_deref().unwrap_or("access element");
        let lines = [
            Line {
                label: format!("user CEI ({})", d.user),
                color: "#0969da",
                dash: false,
                right: false,
                points: &c.user_cei,
            },
            Line {
                label: format!("peers' mean CEI ({acc})"),
                color: "#6e7781",
                dash: true,
                right: false,
                points: &c.peers_cei,
            },
            Line {
                label: format!("poor share of {acc}"),
                color: "#cf222e",
                dash: false,
                right: true,
                points: &c.element_poor_share,
            },
        ];
        let title = format!(
            "complaint {}: CEI timeline",
            d.complaint_id.as_deref().unwrap_or("")
        );
        let chart = Chart {
            title: &title,
            range: c.window,
            left_axis: Some("CEI"),
            right_axis: Some("poor share"),
            threshold: Some(r.poor_cei),
            marker: Some(c.reported_at_s),
        };
        svg_chart(&mut o, &chart, &lines);
        let items: Vec<(&str, &str, bool)> = lines
            .iter()
            .map(|l| (l.label.as_str(), l.color, l.dash))
            .collect();
        legend(&mut o, &items);
        o.push_str("</section>");
    }
    o.push_str("<p class=\"meta\">CEI 0–100 (left axis; dotted line: poor threshold); poor share 0–100 % (right axis); dashed vertical line: complaint time.</p></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demarcate::Verdict;
    use serde_json::json;

    fn sample() -> Report {
        let d = Demarcation {
            complaint_id: Some("c<1>&\"x\"".into()),
            user: "198.18.1.2".into(),
            user_key: "abc".into(),
            window_start: rfc3339(1000 * 60),
            window_end: rfc3339(1030 * 60),
            verdict: Verdict::Access,
            element: Some("olt<2>".into()),
            confidence: 0.91,
            evidence: json!({"decided_by": "access", "poor_minutes": 5, "user_minutes": 6,
                "cei_median": 41.5, "access_element": "olt<2>",
                "access": {"n": 6.0, "k": 5, "poor_rate": 0.8, "lower": 0.44}}),
        };
        let pts: Series = (1020..1030)
            .map(|m| (m * 60, 40.0 + m as f64 % 7.0))
            .collect();
        Report {
            generated_at: "now".into(),
            lake: "/lake".into(),
            poor_cei: 60.0,
            complaints: vec![ComplaintReport {
                reported_at_s: 1030 * 60,
                demarcation: d,
                window: (1000 * 60, 1030 * 60),
                access_element: Some("olt<2>".into()),
                user_cei: pts.clone(),
                peers_cei: pts.iter().map(|p| (p.0, p.1 + 10.0)).collect(),
                element_poor_share: pts.iter().map(|p| (p.0, 0.7)).collect(),
            }],
            span: Some((1000 * 60, 1030 * 60)),
            elements: vec![("olt<2>".into(), pts.iter().map(|p| (p.0, 0.7)).collect())],
        }
    }

    #[test]
    fn html_is_escaped_and_self_contained() {
        let h = render_html(&sample());
        assert!(h.contains("c&lt;1&gt;&amp;&quot;x&quot;"));
        assert!(!h.contains("c<1>"));
        assert!(!h.contains("olt<2>"));
        assert!(h.contains("<svg"));
        assert!(h.contains("data-verdict=\"access\""));
        for bad in ["http://", "https://", "<script", "<link", "src="] {
            let n = h.matches(bad).count();
            // the only URL is the SVG namespace
            let allowed = if bad == "http://" {
                h.matches("http://www.w3.org/2000/svg").count()
            } else {
                0
            };
            assert_eq!(n, allowed, "{bad}");
        }
    }

    #[test]
    fn csv_has_the_key_numbers() {
        let mut buf = Vec::new();
        write_csv(&sample(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(&r[3], "access");
        assert_eq!(&r[4], "olt<2>");
        assert_eq!(&r[6], "access");
        assert_eq!(&r[10], "5");
        assert_eq!(&r[17], "0.44");
        assert_eq!(&r[19], "0.7");
    }
}
