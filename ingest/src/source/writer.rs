//! Capture writers: legacy pcap ([`PcapWriter`]) and pcapng ([`PcapNgWriter`]).
//!
//! Both buffer their output and do not allocate per packet. Call `finish` to flush and get
//! the inner writer back (dropping a writer also flushes, but silently ignores errors).

use std::io::{self, BufWriter, Write};

/// Output buffer size of the writers.
const BUF_SIZE: usize = 256 << 10;

const NS_PER_S: u64 = 1_000_000_000;

/// Timestamp resolution of a legacy pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// Microseconds (magic `a1b2c3d4`).
    Micro,
    /// Nanoseconds (magic `a1b23c4d`).
    Nano,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn finish_buf<W: Write>(out: BufWriter<W>) -> io::Result<W> {
    out.into_inner().map_err(|e| e.into_error())
}

/// Writes a little-endian legacy pcap file.
///
/// ```
/// use cemflow_ingest::source::{PcapWriter, TsResolution};
/// let mut w = PcapWriter::new(Vec::new(), 1, TsResolution::Nano)?;
/// w.write_packet(1_700_000_000_123_456_789, &[0u8; 60])?;
/// let bytes: Vec<u8> = w.finish()?;
/// assert_eq!(bytes.len(), 24 + 16 + 60);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: BufWriter<W>,
    resolution: TsResolution,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Snapshot length written in the header by [`PcapWriter::new`] (libpcap's default).
    pub const DEFAULT_SNAPLEN: u32 = 262_144;

    /// Starts a pcap file with the given link type (e.g. 1 for Ethernet) and timestamp
    /// resolution, with snapshot length [`PcapWriter::DEFAULT_SNAPLEN`]. Writes the header.
    pub fn new(inner: W, linktype: u32, resolution: TsResolution) -> io::Result<Self> {
        Self::with_snaplen(inner, linktype, resolution, Self::DEFAULT_SNAPLEN)
    }

    /// Same as [`PcapWriter::new`] with an explicit snapshot length (0 is treated as
    /// unlimited); longer packets are truncated to it.
    pub fn with_snaplen(
        inner: W,
        linktype: u32,
        resolution: TsResolution,
        snaplen: u32,
    ) -> io::Result<Self> {
        let snaplen = if snaplen == 0 { u32::MAX } else { snaplen };
        let magic: u32 = match resolution {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&linktype.to_le_bytes());
        let mut out = BufWriter::with_capacity(BUF_SIZE, inner);
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            resolution,
            snaplen,
        })
    }

    /// Writes one packet whose wire length equals its captured length.
    #[inline]
    pub fn write_packet(&mut self, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let wire_len = u32::try_from(data.len()).map_err(|_| invalid("packet too long"))?;
        self.write_packet_with_wire_len(ts_ns, data, wire_len)
    }

    /// Writes one packet of which `data` was captured out of `wire_len` bytes on the wire.
    ///
    /// Fails with `InvalidInput` if `wire_len < data.len()` or the timestamp is after 2106
    /// (the format's 32-bit seconds). Data longer than the snapshot length is truncated.
    pub fn write_packet_with_wire_len(
        &mut self,
        ts_ns: u64,
        data: &[u8],
        wire_len: u32,
    ) -> io::Result<()> {
        if (wire_len as usize) < data.len() {
            return Err(invalid("wire length shorter than captured data"));
        }
        let sec = u32::try_from(ts_ns / NS_PER_S)
            .map_err(|_| invalid("timestamp does not fit the pcap format"))?;
        let frac = (ts_ns % NS_PER_S) as u32;
        let frac = match self.resolution {
            TsResolution::Micro => frac / 1_000,
            TsResolution::Nano => frac,
        };
        let data = &data[..data.len().min(self.snaplen as usize)];
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&sec.to_le_bytes());
        rec[4..8].copy_from_slice(&frac.to_le_bytes());
        rec[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&wire_len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(data)
    }

    /// Flushes buffered output to the inner writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        finish_buf(self.out)
    }
}

/// Writes a little-endian pcapng file: one section, interfaces added on demand, packets as
/// Enhanced Packet Blocks.
///
/// ```
/// use cemflow_ingest::source::PcapNgWriter;
/// let mut w = PcapNgWriter::new(Vec::new())?;
/// let eth = w.add_interface(1, true)?;
/// w.write_packet(eth, 1_700_000_000_123_456_789, &[0u8; 60])?;
/// let bytes: Vec<u8> = w.finish()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    out: BufWriter<W>,
    /// Per interface: timestamps in ns (`true`) or µs (`false`).
    interfaces: Vec<bool>,
}

const SHB_USERAPPL: &[u8] = b"cemflow";

impl<W: Write> PcapNgWriter<W> {
    /// Starts a pcapng file (writes the Section Header Block).
    pub fn new(inner: W) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(BUF_SIZE, inner);
        let opt_len = 4 + pad4(SHB_USERAPPL.len()) + 4; // shb_userappl + opt_endofopt
        let total = (28 + opt_len) as u32;
        out.write_all(&0x0a0d_0d0au32.to_le_bytes())?;
        out.write_all(&total.to_le_bytes())?;
        out.write_all(&0x1a2b_3c4du32.to_le_bytes())?;
        out.write_all(&1u16.to_le_bytes())?;
        out.write_all(&0u16.to_le_bytes())?;
        out.write_all(&(-1i64).to_le_bytes())?; // section length unknown
        write_option(&mut out, 4, SHB_USERAPPL)?;
        out.write_all(&[0u8; 4])?; // opt_endofopt
        out.write_all(&total.to_le_bytes())?;
        Ok(PcapNgWriter {
            out,
            interfaces: Vec::new(),
        })
    }

    /// Declares an interface with the given link type (≤ 65535) and timestamp resolution
    /// (nanoseconds if `tsresol_ns`, else microseconds). Returns its index for
    /// [`PcapNgWriter::write_packet`].
    pub fn add_interface(&mut self, linktype: u32, tsresol_ns: bool) -> io::Result<u32> {
        let linktype = u16::try_from(linktype).map_err(|_| invalid("link type above 65535"))?;
        let index =
            u32::try_from(self.interfaces.len()).map_err(|_| invalid("too many interfaces"))?;
        let opt_len = if tsresol_ns { 8 + 4 } else { 0 };
        let total = (20 + opt_len) as u32;
        self.out.write_all(&1u32.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        self.out.write_all(&linktype.to_le_bytes())?;
        self.out.write_all(&0u16.to_le_bytes())?;
        self.out.write_all(&0u32.to_le_bytes())?; // snaplen: unlimited
        if tsresol_ns {
            write_option(&mut self.out, 9, &[9])?; // if_tsresol = 10^-9
            self.out.write_all(&[0u8; 4])?;
        }
        self.out.write_all(&total.to_le_bytes())?;
        self.interfaces.push(tsresol_ns);
        Ok(index)
    }

    /// Writes one packet (wire length = captured length) on interface `iface`.
    #[inline]
    pub fn write_packet(&mut self, iface: u32, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let wire_len = u32::try_from(data.len()).map_err(|_| invalid("packet too long"))?;
        self.write_packet_with_wire_len(iface, ts_ns, data, wire_len)
    }

    /// Writes one packet of which `data` was captured out of `wire_len` bytes on the wire.
    ///
    /// Fails with `InvalidInput` for an undeclared interface, `wire_len < data.len()`, or
    /// data too long for a block.
    pub fn write_packet_with_wire_len(
        &mut self,
        iface: u32,
        ts_ns: u64,
        data: &[u8],
        wire_len: u32,
    ) -> io::Result<()> {
        let ns = *self
            .interfaces
            .get(iface as usize)
            .ok_or_else(|| invalid("undeclared interface"))?;
        if (wire_len as usize) < data.len() {
            return Err(invalid("wire length shorter than captured data"));
        }
        let padded = pad4(data.len());
        let total = u32::try_from(32 + padded).map_err(|_| invalid("packet too long"))?;
        let units = if ns { ts_ns } else { ts_ns / 1_000 };
        let mut hdr = [0u8; 28];
        hdr[0..4].copy_from_slice(&6u32.to_le_bytes());
        hdr[4..8].copy_from_slice(&total.to_le_bytes());
        hdr[8..12].copy_from_slice(&iface.to_le_bytes());
        hdr[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
        hdr[16..20].copy_from_slice(&(units as u32).to_le_bytes());
        hdr[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        hdr[24..28].copy_from_slice(&wire_len.to_le_bytes());
        self.out.write_all(&hdr)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..padded - data.len()])?;
        self.out.write_all(&total.to_le_bytes())
    }

    /// Flushes buffered output to the inner writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        finish_buf(self.out)
    }
}

#[inline]
fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Writes one pcapng option (code, length, value, padding); `value` is at most a few bytes.
fn write_option<W: Write>(out: &mut W, code: u16, value: &[u8]) -> io::Result<()> {
    let len = u16::try_from(value.len()).map_err(|_| invalid("option too long"))?;
    out.write_all(&code.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(value)?;
    out.write_all(&[0u8; 3][..pad4(value.len()) - value.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CaptureReader;

    #[test]
    fn pcap_writer_layout_micro() {
        let mut w = PcapWriter::new(Vec::new(), 113, TsResolution::Micro).unwrap();
        w.write_packet_with_wire_len(1_500_000_001_999_999_999, &[1, 2, 3], 70)
            .unwrap();
        let b = w.finish().unwrap();
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 113);
        assert_eq!(
            u32::from_le_bytes(b[24..28].try_into().unwrap()),
            1_500_000_001
        );
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 999_999);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 70);
        assert_eq!(&b[40..], &[1, 2, 3]);
    }

    #[test]
    fn pcap_writer_rejects_bad_input() {
        let mut w = PcapWriter::new(Vec::new(), 1, TsResolution::Nano).unwrap();
        assert!(w.write_packet_with_wire_len(0, &[0; 10], 9).is_err());
        assert!(w.write_packet(u64::MAX, &[0; 10]).is_err());
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        assert!(w.write_packet(0, 0, &[0; 4]).is_err());
        assert!(w.add_interface(70_000, true).is_err());
    }

    #[test]
    fn pcap_writer_truncates_to_snaplen() {
        let mut w = PcapWriter::with_snaplen(Vec::new(), 1, TsResolution::Nano, 8).unwrap();
        w.write_packet(5, &[7; 20]).unwrap();
        let b = w.finish().unwrap();
        let mut r = CaptureReader::from_reader("t", Box::new(std::io::Cursor::new(b))).unwrap();
        let p = r.next_packet().unwrap();
        assert_eq!((p.data, p.wire_len, p.ts_ns), (&[7u8; 8][..], 20, 5));
        assert!(r.next_packet().is_none());
    }

    #[test]
    fn pcapng_writer_roundtrip_padding() {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let a = w.add_interface(1, true).unwrap();
        let b = w.add_interface(101, false).unwrap();
        assert_eq!((a, b), (0, 1));
        for len in 0..9usize {
            let data: Vec<u8> = (0..len as u8).collect();
            w.write_packet(a, 1_000 + len as u64, &data).unwrap();
            w.write_packet_with_wire_len(b, 2_000_000 * len as u64 + 999, &data, 100)
                .unwrap();
        }
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let mut r = CaptureReader::from_reader("t", Box::new(std::io::Cursor::new(bytes))).unwrap();
        for len in 0..9usize {
            let data: Vec<u8> = (0..len as u8).collect();
            let p = r.next_packet().unwrap();
            assert_eq!(
                (p.interface, p.linktype, p.ts_ns),
                (0, 1, 1_000 + len as u64)
            );
            assert_eq!((p.data, p.wire_len), (&data[..], len as u32));
            let p = r.next_packet().unwrap();
            // µs interface: the sub-µs part is dropped
            assert_eq!((p.interface, p.linktype), (1, 101));
            assert_eq!(p.ts_ns, 2_000_000 * len as u64);
            assert_eq!((p.data, p.wire_len), (&data[..], 100));
        }
        assert!(r.next_packet().is_none());
        assert!(r.damage().is_none());
        assert!(r.skipped().is_empty());
    }
}
