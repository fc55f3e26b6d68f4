//! Transparent decompression of capture inputs, chosen by magic bytes.

use std::io::{self, Cursor, Read};

/// Compression of a capture input, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain (uncompressed) capture data.
    None,
    /// gzip (`1f 8b`); concatenated members are read as one stream.
    Gzip,
    /// Zstandard (`28 b5 2f fd`); concatenated frames are read as one stream.
    Zstd,
}

impl Compression {
    /// Lower-case name used in messages (`"none"`, `"gzip"`, `"zstd"`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// True when `head` starts with a gzip or zstd magic number.
pub(super) fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC) || head.starts_with(&ZSTD_MAGIC)
}

/// Reads up to `buf.len()` bytes, stopping early only at end of input.
pub(super) fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Sniffs the first bytes of `r` and wraps it in the matching decompressor.
///
/// The sniffed bytes are put back in front of the stream, so the returned reader yields the
/// whole (decompressed) input. Errors are raw I/O errors from reading the prefix.
pub(super) fn wrap(mut r: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, Compression)> {
    let mut prefix = [0u8; 4];
    let n = read_up_to(&mut *r, &mut prefix)?;
    let head = &prefix[..n];
    let chained = Cursor::new(head.to_vec()).chain(r);
    if head.starts_with(&GZIP_MAGIC) {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(chained)),
            Compression::Gzip,
        ))
    } else if head == ZSTD_MAGIC {
        let decoder = zstd::stream::read::Decoder::new(chained)?;
        Ok((Box::new(decoder), Compression::Zstd))
    } else {
        Ok((Box::new(chained), Compression::None))
    }
}
