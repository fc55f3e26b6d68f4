//! Legacy pcap (libpcap) format: file header and record headers.

use pcap_parser::parse_pcap_header;

/// Size of the legacy pcap file header.
pub(super) const FILE_HEADER_LEN: usize = 24;

/// Magic numbers as they appear on disk (first four bytes), with their meaning.
const MAGICS: [([u8; 4], bool, bool, bool); 6] = [
    // bytes,                   big_endian, nanos, modified
    ([0xd4, 0xc3, 0xb2, 0xa1], false, false, false),
    ([0xa1, 0xb2, 0xc3, 0xd4], true, false, false),
    ([0x4d, 0x3c, 0xb2, 0xa1], false, true, false),
    ([0xa1, 0xb2, 0x3c, 0x4d], true, true, false),
    ([0x34, 0xcd, 0xb2, 0xa1], false, false, true),
    ([0xa1, 0xb2, 0xcd, 0x34], true, false, true),
];

/// True if `head` starts with one of the legacy pcap magic numbers.
pub(super) fn is_pcap_magic(head: &[u8]) -> bool {
    MAGICS.iter().any(|(m, ..)| head.starts_with(m))
}

/// Parameters of a legacy pcap file, from its header.
#[derive(Debug, Clone, Copy)]
pub(super) struct PcapHeaderInfo {
    pub big_endian: bool,
    pub nanos: bool,
    /// Record header length: 16, or 24 for the "modified" (Kuznetzov) format.
    pub record_header_len: usize,
    pub linktype: u32,
}

/// Parses the 24-byte file header. `None` if the magic number is not a pcap one.
pub(super) fn parse_file_header(bytes: &[u8]) -> Option<PcapHeaderInfo> {
    let (_, header) = parse_pcap_header(bytes).ok()?;
    let (_, big_endian, nanos, modified) = *MAGICS.iter().find(|(m, ..)| bytes.starts_with(m))?;
    Some(PcapHeaderInfo {
        big_endian,
        nanos,
        record_header_len: if modified { 24 } else { 16 },
        // The upper 16 bits carry FCS information, not the link type.
        linktype: (header.network.0 as u32) & 0xffff,
    })
}

/// A legacy record header.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordHeader {
    pub ts_ns: u64,
    pub caplen: u32,
    pub wire_len: u32,
}

#[inline]
fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Decodes a record header (`h` holds at least 16 bytes).
#[inline]
pub(super) fn parse_record_header(h: &[u8], info: &PcapHeaderInfo) -> RecordHeader {
    let be = info.big_endian;
    let sec = u64::from(u32_at(h, 0, be));
    let frac = u64::from(u32_at(h, 4, be));
    let frac_ns = if info.nanos { frac } else { frac * 1_000 };
    RecordHeader {
        ts_ns: (sec * 1_000_000_000).saturating_add(frac_ns),
        caplen: u32_at(h, 8, be),
        wire_len: u32_at(h, 12, be),
    }
}
