//! Errors raised while opening capture inputs.

use std::io;
use std::path::PathBuf;

/// An error that prevents a capture input from being used at all.
///
/// Damage found *while reading* an opened capture (truncation, garbage) is not an error: the
/// reader returns the packets before it and reports the damage through
/// [`CaptureReader::damage`](super::CaptureReader::damage).
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum SourceError {
    /// The file or directory could not be opened, listed or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The input does not start like a pcap or pcapng capture.
    #[error("{}: not a capture file: {detail}", path.display())]
    NotACapture {
        /// The file concerned (or the name given to [`CaptureReader::from_reader`](super::CaptureReader::from_reader)).
        path: PathBuf,
        /// What was expected and what was found instead.
        detail: String,
    },
    /// The input is gzip or zstd compressed but its first bytes cannot be decompressed.
    #[error("{}: cannot decompress {codec} data: {source}", path.display())]
    Decompress {
        /// The file concerned.
        path: PathBuf,
        /// `"gzip"` or `"zstd"`.
        codec: &'static str,
        /// The decompressor's error.
        #[source]
        source: io::Error,
    },
}
