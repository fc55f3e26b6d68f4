//! [`CaptureReader`]: streaming pcap/pcapng reader over files or any byte stream.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::buffer::{InputBuffer, MAX_RECORD_LEN};
use super::decompress::{self, Compression};
use super::pcap_file::{self, PcapHeaderInfo, FILE_HEADER_LEN};
use super::pcapng::{self, Interface};
use super::{RawPacket, ReadDamage, SourceError};

/// Container format of an opened capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// The input was empty: no packets, not an error.
    Empty,
    /// Legacy pcap.
    Pcap {
        /// Timestamps have nanosecond (rather than microsecond) resolution.
        nanos: bool,
        /// The file is big-endian.
        big_endian: bool,
    },
    /// pcapng (byte order may change per section).
    PcapNg,
}

/// Per-format parsing state.
enum State {
    Empty,
    Pcap(PcapHeaderInfo),
    PcapNg(NgState),
}

/// pcapng state: current section's byte order and interfaces.
struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Timestamp of the last timestamped packet, used for Simple Packet Blocks.
    last_ts_ns: u64,
}

/// Where a packet lies in the buffered data, and its metadata.
struct PacketLoc {
    data_start: usize,
    caplen: usize,
    record_len: usize,
    ts_ns: u64,
    linktype: u32,
    wire_len: u32,
    interface: u32,
}

/// Outcome of processing one record.
enum Step {
    Packet(PacketLoc),
    /// A non-packet or skipped record was consumed.
    Continue,
    /// Clean end of input.
    End,
    /// Unrecoverable damage at the current offset.
    Damage(String),
}

/// Streaming reader of one capture (pcap or pcapng, optionally gzip/zstd compressed).
///
/// Packets are returned one at a time, borrowed from an internal buffer that is reused, so
/// reading does not allocate per packet. Reading stops at the end of input or at the first
/// unrecoverable damage, which [`CaptureReader::damage`] then describes; recoverable oddities
/// (e.g. a packet referencing an undeclared interface) are skipped and counted in
/// [`CaptureReader::skipped`].
pub struct CaptureReader {
    name: String,
    compression: Compression,
    format: CaptureFormat,
    buf: InputBuffer,
    state: State,
    /// Bytes of the last returned packet's record, consumed on the next call.
    pending: usize,
    done: bool,
    damage: Option<ReadDamage>,
    skipped: Vec<(&'static str, u64)>,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("compression", &self.compression)
            .field("format", &self.format)
            .field("offset", &self.buf.offset())
            .field("damage", &self.damage)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl CaptureReader {
    /// Opens a pcap/pcapng file, transparently decompressing gzip (`1f 8b`) or zstd
    /// (`28 b5 2f fd`) by magic bytes.
    ///
    /// A file that is not a capture gives [`SourceError::NotACapture`] naming the path and
    /// what was expected. An empty file, or one holding only a header, is a valid capture
    /// with no packets.
    ///
    /// A plain (uncompressed) regular file is memory-mapped: packets are borrowed from the
    /// page cache without a copy. Compressed files, pipes and files that can't be mapped
    /// are read as streams.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.display().to_string();
        match map_plain_file(&file) {
            Some(map) => Self::from_buffer(&name, InputBuffer::mapped(map), Compression::None),
            None => Self::from_reader(&name, Box::new(file)),
        }
    }

    /// Same as [`CaptureReader::open`] from any reader (tests, stdin); `name` is used in
    /// errors and returned by [`CaptureReader::path`].
    pub fn from_reader(name: &str, r: Box<dyn Read + Send>) -> Result<Self, SourceError> {
        let (input, compression) = decompress::wrap(r).map_err(|source| SourceError::Io {
            path: PathBuf::from(name),
            source,
        })?;
        Self::from_buffer(name, InputBuffer::new(input), compression)
    }

    /// Detects the container format at the start of `buf` and prepares to read packets.
    fn from_buffer(
        name: &str,
        mut buf: InputBuffer,
        compression: Compression,
    ) -> Result<Self, SourceError> {
        let path = || PathBuf::from(name);
        let read_err = |source: std::io::Error| match compression {
            Compression::None => SourceError::Io {
                path: path(),
                source,
            },
            c => SourceError::Decompress {
                path: path(),
                codec: c.name(),
                source,
            },
        };
        buf.ensure(4).map_err(read_err)?;
        let mut magic = [0u8; 4];
        let head_len = buf.data().len().min(4);
        magic[..head_len].copy_from_slice(&buf.data()[..head_len]);
        let head = &magic[..head_len];
        let after = match compression {
            Compression::None => String::new(),
            c => format!(" (after {} decompression)", c.name()),
        };
        let mut reader = CaptureReader {
            name: name.to_owned(),
            compression,
            format: CaptureFormat::Empty,
            buf,
            state: State::Empty,
            pending: 0,
            done: false,
            damage: None,
            skipped: Vec::new(),
        };
        if head.is_empty() {
            reader.done = true;
        } else if head.len() < 4 {
            return Err(SourceError::NotACapture {
                path: path(),
                detail: format!(
                    "only {} byte(s){after}, too short for a pcap or pcapng header",
                    head.len()
                ),
            });
        } else if pcap_file::is_pcap_magic(head) {
            reader.init_pcap().map_err(read_err)?;
        } else if head.starts_with(&pcapng::SHB_TYPE) {
            reader.format = CaptureFormat::PcapNg;
            reader.state = State::PcapNg(NgState {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts_ns: 0,
            });
        } else {
            return Err(SourceError::NotACapture {
                path: path(),
                detail: format!(
                    "expected a pcap magic number (a1b2c3d4 or a1b23c4d, either byte order) or a \
                     pcapng section header (0a0d0d0a){after}, found {:02x} {:02x} {:02x} {:02x}",
                    head[0], head[1], head[2], head[3]
                ),
            });
        }
        Ok(reader)
    }

    fn init_pcap(&mut self) -> std::io::Result<()> {
        if !self.buf.ensure(FILE_HEADER_LEN)? {
            let got = self.buf.data().len();
            self.stop(format!(
                "truncated pcap file header ({got} of {FILE_HEADER_LEN} bytes)"
            ));
            self.format = CaptureFormat::Pcap {
                nanos: false,
                big_endian: false,
            };
            return Ok(());
        }
        match pcap_file::parse_file_header(self.buf.data()) {
            Some(info) => {
                self.format = CaptureFormat::Pcap {
                    nanos: info.nanos,
                    big_endian: info.big_endian,
                };
                self.state = State::Pcap(info);
                self.buf.consume(FILE_HEADER_LEN);
            }
            None => self.stop("unreadable pcap file header".to_owned()),
        }
        Ok(())
    }

    /// Next packet, or `None` at end of input or at the first unrecoverable damage (then
    /// [`CaptureReader::damage`] says where and why).
    ///
    /// Does not allocate in steady state: the packet borrows the reader's reusable buffer.
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        if self.pending > 0 {
            self.buf.consume(self.pending);
            self.pending = 0;
        }
        let loc = loop {
            if self.done {
                return None;
            }
            let step = match &mut self.state {
                State::Empty => Step::End,
                State::Pcap(info) => pcap_step(&mut self.buf, info),
                State::PcapNg(ng) => ng_step(&mut self.buf, ng, &mut self.skipped),
            };
            match step {
                Step::Packet(loc) => break loc,
                Step::Continue => {}
                Step::End => self.done = true,
                Step::Damage(reason) => self.stop(reason),
            }
        };
        self.pending = loc.record_len;
        self.buf.prefetch(loc.record_len);
        let data = self
            .buf
            .data()
            .get(loc.data_start..loc.data_start + loc.caplen)?;
        Some(RawPacket {
            ts_ns: loc.ts_ns,
            linktype: loc.linktype,
            data,
            wire_len: loc.wire_len,
            interface: loc.interface,
        })
    }

    fn stop(&mut self, reason: String) {
        let offset = self.buf.offset();
        tracing::warn!(file = %self.name, offset, %reason, "capture damaged; stopped reading");
        self.damage = Some(ReadDamage { offset, reason });
        self.done = true;
    }

    /// Why reading stopped early, if it did (a damaged or truncated input).
    pub fn damage(&self) -> Option<&ReadDamage> {
        self.damage.as_ref()
    }

    /// Records skipped but recoverable so far, as `(reason, count)` in order of first
    /// occurrence (e.g. an EPB referencing an undeclared interface).
    pub fn skipped(&self) -> &[(&'static str, u64)] {
        &self.skipped
    }

    /// The path (or name) this reader was opened with.
    pub fn path(&self) -> &str {
        &self.name
    }

    /// Container format detected at open.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Compression detected at open.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Offset in the (decompressed) stream up to which records have been processed.
    pub fn offset(&self) -> u64 {
        self.buf.offset() + self.pending as u64
    }
}

/// Maps `file` when it is a non-empty regular file that is not gzip/zstd compressed.
///
/// The mapping is read-only and private to this reader; as with any mapped file, a file
/// truncated by another process while it is being read ends the process with SIGBUS
/// (capture files are appended to, not truncated, by capture tools).
fn map_plain_file(file: &File) -> Option<memmap2::Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() < 4 {
        return None;
    }
    // SAFETY: the mapping is read-only and only ever read through bounds-checked slices;
    // see the note above on files truncated concurrently.
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    if decompress::is_compressed(&map) {
        return None;
    }
    Some(map)
}

fn bump(skipped: &mut Vec<(&'static str, u64)>, reason: &'static str) {
    match skipped.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, n)) => *n += 1,
        None => {
            tracing::debug!(%reason, "skipping capture record");
            skipped.push((reason, 1));
        }
    }
}

/// Maps a failed `ensure` to the step to take: clean end when nothing at all is left.
fn short_input(buf: &InputBuffer, what: &str, needed: usize) -> Step {
    let have = buf.data().len();
    if have == 0 {
        Step::End
    } else {
        Step::Damage(format!(
            "truncated record: {what} needs {needed} bytes, only {have} present before end of input"
        ))
    }
}

fn read_error(e: std::io::Error) -> Step {
    Step::Damage(format!("read error: {e}"))
}

fn pcap_step(buf: &mut InputBuffer, info: &PcapHeaderInfo) -> Step {
    let hlen = info.record_header_len;
    match buf.ensure(hlen) {
        Ok(true) => {}
        Ok(false) => return short_input(buf, "record header", hlen),
        Err(e) => return read_error(e),
    }
    let rec = pcap_file::parse_record_header(buf.data(), info);
    let caplen = rec.caplen as usize;
    if caplen > MAX_RECORD_LEN - hlen {
        return Step::Damage(format!(
            "implausible record length {caplen} (limit {} bytes): corrupt data",
            MAX_RECORD_LEN - hlen
        ));
    }
    let total = hlen + caplen;
    match buf.ensure(total) {
        Ok(true) => {}
        Ok(false) => {
            let have = buf.data().len();
            return Step::Damage(format!(
                "truncated record: {caplen}-byte packet, only {} bytes present before end of input",
                have.saturating_sub(hlen)
            ));
        }
        Err(e) => return read_error(e),
    }
    Step::Packet(PacketLoc {
        data_start: hlen,
        caplen,
        record_len: total,
        ts_ns: rec.ts_ns,
        linktype: info.linktype,
        wire_len: rec.wire_len,
        interface: 0,
    })
}

fn ng_step(
    buf: &mut InputBuffer,
    ng: &mut NgState,
    skipped: &mut Vec<(&'static str, u64)>,
) -> Step {
    match buf.ensure(12) {
        Ok(true) => {}
        Ok(false) => return short_input(buf, "block header", 12),
        Err(e) => return read_error(e),
    }
    let head = buf.data();
    let is_shb = head.starts_with(&pcapng::SHB_TYPE);
    let mut be = ng.big_endian;
    if is_shb {
        be = match head.get(8..12) {
            Some(b) if b == pcapng::BOM_BE => true,
            Some(b) if b == pcapng::BOM_LE => false,
            _ => return Step::Damage("section header with invalid byte-order magic".to_owned()),
        };
    }
    let btype = pcapng::u32_at(head, 0, be);
    let len32 = pcapng::u32_at(head, 4, be);
    let len = len32 as usize;
    if !(12..=MAX_RECORD_LEN).contains(&len) {
        return Step::Damage(format!(
            "invalid block length {len32} (block type {btype:#010x}): corrupt data"
        ));
    }
    if !len.is_multiple_of(4) {
        return Step::Damage(format!(
            "block length {len} is not a multiple of 4 (block type {btype:#010x}): corrupt data"
        ));
    }
    match buf.ensure(len) {
        Ok(true) => {}
        Ok(false) => {
            let have = buf.data().len();
            return Step::Damage(format!(
                "truncated record: block type {btype:#010x} of {len} bytes, only {have} present \
                 before end of input"
            ));
        }
        Err(e) => return read_error(e),
    }
    let block = match buf.data().get(..len) {
        Some(b) => b,
        None => return Step::Damage("internal buffer error".to_owned()),
    };
    let trailer = pcapng::u32_at(block, len - 4, be);
    if trailer != len32 {
        return Step::Damage(format!(
            "block length mismatch (header {len}, trailer {trailer}, block type {btype:#010x}): \
             corrupt data"
        ));
    }
    let body = &block[8..len - 4];
    let mut loc = None;
    if is_shb {
        let major = pcapng::u16_at(body, 4, be);
        let minor = pcapng::u16_at(body, 6, be);
        if body.len() < 16 || major != 1 {
            return Step::Damage(format!(
                "unsupported pcapng section header (version {major}.{minor}, {len} bytes)"
            ));
        }
        ng.big_endian = be;
        ng.interfaces.clear();
    } else {
        match btype {
            pcapng::IDB => match pcapng::parse_idb(block, be) {
                Ok(iface) => {
                    if iface.scale.is_none() {
                        bump(skipped, "interface with unsupported if_tsresol");
                    }
                    ng.interfaces.push(iface);
                }
                Err(reason) => {
                    bump(skipped, reason);
                    ng.interfaces.push(Interface {
                        linktype: 0,
                        snaplen: 0,
                        scale: None,
                        offset_s: 0,
                    });
                }
            },
            pcapng::EPB | pcapng::PB => {
                loc = ng_packet(body, btype, len, be, ng, skipped);
            }
            pcapng::SPB => loc = ng_simple_packet(body, len, be, ng, skipped),
            _ => {}
        }
    }
    match loc {
        Some(loc) => Step::Packet(loc),
        None => {
            buf.consume(len);
            Step::Continue
        }
    }
}

/// Enhanced Packet Block or obsolete Packet Block.
fn ng_packet(
    body: &[u8],
    btype: u32,
    len: usize,
    be: bool,
    ng: &mut NgState,
    skipped: &mut Vec<(&'static str, u64)>,
) -> Option<PacketLoc> {
    if body.len() < 20 {
        bump(skipped, "packet block too short");
        return None;
    }
    let if_id = if btype == pcapng::EPB {
        pcapng::u32_at(body, 0, be)
    } else {
        u32::from(pcapng::u16_at(body, 0, be))
    };
    let ts_high = pcapng::u32_at(body, 4, be);
    let ts_low = pcapng::u32_at(body, 8, be);
    let caplen = pcapng::u32_at(body, 12, be) as usize;
    let wire_len = pcapng::u32_at(body, 16, be);
    if caplen > body.len() - 20 {
        bump(skipped, "packet block captured length exceeds block");
        return None;
    }
    let Some(iface) = ng.interfaces.get(if_id as usize) else {
        bump(skipped, "packet block references an undeclared interface");
        return None;
    };
    let Some(scale) = iface.scale else {
        bump(
            skipped,
            "packet on an interface with an unusable description",
        );
        return None;
    };
    let ts_ns = iface.ts_ns(scale, ts_high, ts_low);
    ng.last_ts_ns = ts_ns;
    Some(PacketLoc {
        data_start: 28,
        caplen,
        record_len: len,
        ts_ns,
        linktype: iface.linktype,
        wire_len,
        interface: if_id,
    })
}

/// Simple Packet Block: interface 0, no timestamp (the last seen one is used).
fn ng_simple_packet(
    body: &[u8],
    len: usize,
    be: bool,
    ng: &mut NgState,
    skipped: &mut Vec<(&'static str, u64)>,
) -> Option<PacketLoc> {
    if body.len() < 4 {
        bump(skipped, "packet block too short");
        return None;
    }
    let Some(iface) = ng.interfaces.first() else {
        bump(skipped, "simple packet block without interface 0");
        return None;
    };
    if iface.scale.is_none() {
        bump(
            skipped,
            "packet on an interface with an unusable description",
        );
        return None;
    }
    let wire_len = pcapng::u32_at(body, 0, be);
    let mut caplen = (wire_len as usize).min(body.len() - 4);
    if iface.snaplen != 0 {
        caplen = caplen.min(iface.snaplen as usize);
    }
    Some(PacketLoc {
        data_start: 12,
        caplen,
        record_len: len,
        ts_ns: ng.last_ts_ns,
        linktype: iface.linktype,
        wire_len,
        interface: 0,
    })
}
