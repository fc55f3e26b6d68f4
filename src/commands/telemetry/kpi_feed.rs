//! Element KPI files → `telemetry`: loads files (and the files of directories), and
//! watches directories for new files while the collector runs.
//!
//! Each file is its own source (`kpi-<name>-<hash of its path>`), committed as one set of
//! minute windows: loading a file again skips what is already in the lake (exactly once),
//! and a file that grew adds only its new minutes.

use super::source_hash;
use super::writer::{Job, Writer};
use anyhow::Context;
use cemflow_ingest::telemetry::kpi::{is_kpi_file, read_kpi_file, KpiFile};
use cemflow_lakehouse::{TableBatches, TelemetryRow};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A directory file with its size and modification time.
type DirFile = (PathBuf, (u64, Option<SystemTime>));

/// Bad lines printed per file (all are counted).
const BAD_LINES_SHOWN: usize = 10;

/// Totals over the loaded files.
#[derive(Debug, Default)]
pub struct KpiTotals {
    /// Files loaded.
    pub files: usize,
    /// Lines accepted.
    pub good_lines: usize,
    /// Minute samples queued for the lake.
    pub samples: usize,
    /// Lines rejected.
    pub bad_lines: usize,
}

/// KPI inputs: files to load once and directories to load and watch.
pub struct KpiFeed {
    dirs: Vec<PathBuf>,
    /// Directory files seen: (size, mtime) at the last poll, and whether loaded.
    seen: HashMap<PathBuf, (u64, Option<SystemTime>, bool)>,
    /// Totals.
    pub totals: KpiTotals,
}

impl KpiFeed {
    /// Loads every given file and every KPI file already in the given directories.
    pub fn load_initial(inputs: &[PathBuf], writer: &Writer) -> anyhow::Result<KpiFeed> {
        let mut feed = KpiFeed {
            dirs: Vec::new(),
            seen: HashMap::new(),
            totals: KpiTotals::default(),
        };
        for p in inputs {
            if p.is_dir() {
                feed.dirs.push(p.clone());
            } else {
                feed.load(p, writer)?;
            }
        }
        for (path, meta) in feed.dir_files()? {
            feed.load(&path, writer)?;
            feed.seen.insert(path, (meta.0, meta.1, true));
        }
        Ok(feed)
    }

    /// True when directories are watched.
    pub fn watches(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// Loads the directories' new files whose size and mtime did not change since the
    /// previous poll (so a file still being written is not read half-way).
    pub fn poll(&mut self, writer: &Writer) -> anyhow::Result<()> {
        for (path, (size, mtime)) in self.dir_files()? {
            match self.seen.get(&path) {
                Some((_, _, true)) => {}
                Some((s, m, false)) if *s == size && *m == mtime => {
                    self.load(&path, writer)?;
                    self.seen.insert(path, (size, mtime, true));
                }
                _ => {
                    self.seen.insert(path, (size, mtime, false));
                }
            }
        }
        Ok(())
    }

    /// KPI files in the watched directories with (size, mtime), sorted by name.
    fn dir_files(&self) -> anyhow::Result<Vec<DirFile>> {
        let mut out = Vec::new();
        for d in &self.dirs {
            let rd = std::fs::read_dir(d)
                .with_context(|| format!("reading KPI directory {}", d.display()))?;
            for e in rd.flatten() {
                let p = e.path();
                if !is_kpi_file(&p) {
                    continue;
                }
                if let Ok(m) = e.metadata() {
                    if m.is_file() {
                        out.push((p, (m.len(), m.modified().ok())));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads one file, reports its bad lines, and queues its minutes for the lake.
    fn load(&mut self, path: &Path, writer: &Writer) -> anyhow::Result<()> {
        let f = read_kpi_file(path).map_err(|e| crate::InputError(e.to_string()))?;
        report_bad_lines(path, &f);
        self.totals.files += 1;
        self.totals.good_lines += f.good_lines;
        self.totals.bad_lines += f.bad.len();
        self.totals.samples += f.samples.len();
        let mut by_minute: BTreeMap<i64, Vec<TelemetryRow>> = BTreeMap::new();
        for s in f.samples {
            by_minute.entry(s.minute_s).or_default().push(TelemetryRow {
                ts_ms: s.minute_s * 1000,
                element_id: s.element_id,
                metric: s.metric,
                value: s.value,
            });
        }
        if by_minute.is_empty() {
            return Ok(());
        }
        let mut windows = Vec::with_capacity(by_minute.len());
        for (minute, rows) in by_minute {
            let mut b = TableBatches::new();
            b.add_telemetry(&rows)?;
            windows.push((minute, b));
        }
        writer.send(Job {
            source_id: kpi_source_id(path),
            windows,
        })
    }
}

fn report_bad_lines(path: &Path, f: &KpiFile) {
    for b in f.bad.iter().take(BAD_LINES_SHOWN) {
        eprintln!("{}:{}: skipped: {}", path.display(), b.line, b.reason);
    }
    if f.bad.len() > BAD_LINES_SHOWN {
        eprintln!(
            "{}: {} more bad lines skipped",
            path.display(),
            f.bad.len() - BAD_LINES_SHOWN
        );
    }
}

/// `kpi-<file stem>-<hash of the canonical path>`.
fn kpi_source_id(path: &Path) -> String {
    format!(
        "kpi-{}",
        source_hash(std::slice::from_ref(&path.to_path_buf()))
    )
}
