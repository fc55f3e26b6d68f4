//! Capture sources: pcap/pcapng files (optionally gzip/zstd compressed) and directories.
//!
//! * [`CaptureReader`] streams the packets of one capture (legacy pcap with µs or ns
//!   timestamps in either byte order, or pcapng with several sections and interfaces),
//!   decompressing gzip/zstd transparently. It never panics on bad input: damage stops the
//!   reading and is reported by [`CaptureReader::damage`].
//! * [`expand_inputs`] turns the command-line inputs (files and directories) into the list of
//!   capture files in first-packet timestamp order.
//! * [`PcapWriter`] and [`PcapNgWriter`] write captures (used by the traffic synthesizer and
//!   by tests).

mod buffer;
mod decompress;
mod directory;
mod error;
mod pcap_file;
mod pcapng;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use decompress::Compression;
pub use directory::expand_inputs;
pub use error::SourceError;
pub use reader::{CaptureFormat, CaptureReader};
pub use writer::{PcapNgWriter, PcapWriter, TsResolution};

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPacket<'a> {
    /// Timestamp in ns since the Unix epoch (pcapng: per-interface resolution and
    /// `if_tsoffset` applied; pcap: µs or ns according to the magic number).
    pub ts_ns: u64,
    /// DLT/LINKTYPE number of the frame's interface (1 Ethernet, 113 SLL, 276 SLL2, 101 RAW,
    /// 228 IPv4, 229 IPv6, 0 NULL, 108 LOOP, 9 PPP, ...).
    pub linktype: u32,
    /// Captured bytes (caplen).
    pub data: &'a [u8],
    /// Original length on the wire.
    pub wire_len: u32,
    /// pcapng interface index within its section (0 for pcap).
    pub interface: u32,
}

/// Why reading stopped early (a damaged or truncated input): records were processed up to
/// `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadDamage {
    /// Offset in the decompressed stream of the first record that could not be read.
    pub offset: u64,
    /// Human-readable cause (starts with `"truncated record"` for a cut file).
    pub reason: String,
}

impl std::fmt::Display for ReadDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.reason)
    }
}
