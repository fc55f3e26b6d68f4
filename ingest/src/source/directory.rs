//! Expansion of input paths (files and directories) into an ordered list of captures.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use super::{CaptureReader, SourceError};

/// Expands the inputs: files are kept as given; directories are replaced by the capture files
/// they directly contain (not recursive; hidden files and files that are not pcap/pcapng,
/// possibly compressed, are left out). The whole list is sorted by each file's first packet
/// timestamp; files whose first packet can't be read (empty, damaged, unreadable) go last, in
/// name order.
///
/// Errors if a given path does not exist or a directory cannot be listed.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    let mut candidates: Vec<(PathBuf, bool)> = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(io_err(path))?;
        if !meta.is_dir() {
            candidates.push((path.clone(), false));
            continue;
        }
        for entry in fs::read_dir(path).map_err(io_err(path))? {
            let entry = entry.map_err(io_err(path))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let file = entry.path();
            // Follow symlinks; skip subdirectories and anything vanished meanwhile.
            if fs::metadata(&file).map(|m| m.is_file()).unwrap_or(false) {
                candidates.push((file, true));
            }
        }
    }

    let mut keyed: Vec<(Option<u64>, PathBuf)> = Vec::with_capacity(candidates.len());
    for (path, from_dir) in candidates {
        match CaptureReader::open(&path) {
            Ok(mut reader) => {
                let first = reader.next_packet().map(|p| p.ts_ns);
                keyed.push((first, path));
            }
            Err(e) if from_dir => {
                tracing::debug!(error = %e, "ignoring non-capture file in input directory");
            }
            Err(_) => keyed.push((None, path)),
        }
    }
    keyed.sort_by(|(ta, pa), (tb, pb)| match (ta, tb) {
        (Some(a), Some(b)) => a.cmp(b).then_with(|| pa.cmp(pb)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => pa.cmp(pb),
    });
    Ok(keyed.into_iter().map(|(_, p)| p).collect())
}
