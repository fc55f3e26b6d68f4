//! The reader's growable input window (refill/consume pattern).

use std::io::{self, Read};

/// Largest record (pcap record or pcapng block, headers included) the reader accepts.
/// Anything announcing a larger size is treated as damage.
pub(super) const MAX_RECORD_LEN: usize = 16 << 20;

/// Initial buffer size; grown on demand up to [`MAX_RECORD_LEN`].
const INITIAL_CAPACITY: usize = 256 << 10;

/// A window over a byte stream: data is read in large chunks into one reusable buffer,
/// parsers look at [`InputBuffer::data`] and [`InputBuffer::consume`] what they used.
pub(super) struct InputBuffer {
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[start]`.
    offset: u64,
}

impl InputBuffer {
    /// Wraps a (possibly decompressing) reader.
    pub(super) fn new(input: Box<dyn Read + Send>) -> Self {
        InputBuffer {
            input,
            buf: vec![0; INITIAL_CAPACITY],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }

    /// Unconsumed bytes currently buffered.
    #[inline]
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Stream offset of the first unconsumed byte.
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes at least `n` bytes available (`n` ≤ [`MAX_RECORD_LEN`]).
    ///
    /// Returns `Ok(false)` if the input ended before `n` bytes could be buffered
    /// ([`InputBuffer::data`] then holds whatever was left).
    #[inline]
    pub(super) fn ensure(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill(n.min(MAX_RECORD_LEN))
    }

    #[cold]
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            // Move the partial record to the front: copies fewer than `n` bytes.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < n {
                let grown = self
                    .buf
                    .len()
                    .saturating_mul(2)
                    .clamp(n, MAX_RECORD_LEN.max(n));
                self.buf.resize(grown, 0);
            }
            // end - start < n <= buf.len(), so the destination is never empty.
            let got = loop {
                match self.input.read(&mut self.buf[self.end..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if got == 0 {
                self.eof = true;
            } else {
                self.end += got;
            }
        }
        Ok(true)
    }

    /// Marks `n` bytes as processed.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}
