//! Driving the flow table from capture files: open every input first (so a file that is
//! no capture fails before any output), then stream their packets in order.

use crate::decode::LinkType;
use crate::flow::{FlowSink, FlowTable};
use crate::source::{expand_inputs, CaptureReader, ReadDamage, SourceError};
use std::path::{Path, PathBuf};

/// What reading one capture file gave.
#[derive(Clone, Debug)]
pub struct FileSummary {
    /// The file.
    pub path: PathBuf,
    /// Packets read from it.
    pub packets: u64,
    /// Where and why reading stopped early, if it did.
    pub damage: Option<ReadDamage>,
    /// Records the reader skipped but could continue after, by reason.
    pub reader_skipped: Vec<(&'static str, u64)>,
}

/// Progress of a capture run, reported every [`PROGRESS_EVERY`] packets and per file.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// File being read.
    pub path: &'a Path,
    /// Packets read so far in all files.
    pub packets: u64,
    /// Timestamp of the latest packet (ns since the epoch).
    pub capture_ts_ns: u64,
    /// Decompressed bytes read so far of the current file.
    pub file_offset: u64,
}

/// Packets between two progress callbacks.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// Expands `inputs` (files and directories), checks that every one is a capture, and
/// opens them in time order.
pub fn open_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let files = expand_inputs(inputs)?;
    for f in &files {
        CaptureReader::open(f)?;
    }
    Ok(files)
}

/// Feeds every packet of `files` to `table`, records going to `sink`. Does not call
/// [`FlowTable::finish`]: the caller decides when the input ends.
pub fn read_files<S: FlowSink>(
    files: &[PathBuf],
    table: &mut FlowTable,
    sink: &mut S,
    mut progress: impl FnMut(&Progress<'_>),
) -> Result<Vec<FileSummary>, SourceError> {
    let mut summaries = Vec::with_capacity(files.len());
    let mut total = 0u64;
    for path in files {
        let mut reader = CaptureReader::open(path)?;
        let mut packets = 0u64;
        let mut last_ts = 0u64;
        while let Some(p) = reader.next_packet() {
            packets += 1;
            last_ts = p.ts_ns;
            table.process(
                p.ts_ns,
                LinkType::from_linktype(p.linktype),
                p.data,
                p.wire_len,
                sink,
            );
            if packets.is_multiple_of(PROGRESS_EVERY) {
                let offset = reader.offset();
                progress(&Progress {
                    path,
                    packets: total + packets,
                    capture_ts_ns: last_ts,
                    file_offset: offset,
                });
            }
        }
        total += packets;
        progress(&Progress {
            path,
            packets: total,
            capture_ts_ns: last_ts,
            file_offset: reader.offset(),
        });
        summaries.push(FileSummary {
            path: path.clone(),
            packets,
            damage: reader.damage().cloned(),
            reader_skipped: reader.skipped().to_vec(),
        });
    }
    Ok(summaries)
}
