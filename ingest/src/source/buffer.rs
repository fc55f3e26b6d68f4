//! The reader's growable input window (refill/consume pattern).

use std::io::{self, Read};

/// Largest record (pcap record or pcapng block, headers included) the reader accepts.
/// Anything announcing a larger size is treated as damage.
pub(super) const MAX_RECORD_LEN: usize = 16 << 20;

/// Initial buffer size; grown on demand up to [`MAX_RECORD_LEN`].
const INITIAL_CAPACITY: usize = 256 << 10;

/// Where the bytes come from.
enum Backing {
    /// A (possibly decompressing) reader, read in large chunks into one reusable buffer.
    Stream {
        input: Box<dyn Read + Send>,
        buf: Vec<u8>,
    },
    /// A plain capture file mapped into memory: packets are borrowed from the page cache
    /// directly, with no copy into a buffer.
    Mapped(memmap2::Mmap),
}

/// A window over a byte stream: parsers look at [`InputBuffer::data`] and
/// [`InputBuffer::consume`] what they used. Streams are read in large chunks into one
/// reusable buffer; mapped files are windows over the mapping.
pub(super) struct InputBuffer {
    backing: Backing,
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
            backing: Backing::Stream {
                input,
                buf: vec![0; INITIAL_CAPACITY],
            },
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }

    /// Serves the bytes of a mapped file.
    pub(super) fn mapped(map: memmap2::Mmap) -> Self {
        let end = map.len();
        InputBuffer {
            backing: Backing::Mapped(map),
            start: 0,
            end,
            eof: true,
            offset: 0,
        }
    }

    /// Unconsumed bytes currently buffered.
    #[inline]
    pub(super) fn data(&self) -> &[u8] {
        match &self.backing {
            Backing::Stream { buf, .. } => &buf[self.start..self.end],
            Backing::Mapped(map) => &map[self.start..self.end],
        }
    }

    /// Hints the CPU to load the cache lines at `at` bytes into [`InputBuffer::data`]
    /// (the next record's header and the start of its frame): on a mapped file they are
    /// cold, and the load then overlaps with the current packet's processing.
    #[inline]
    pub(super) fn prefetch(&self, at: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(next) = self.data().get(at..) {
            let p = next.as_ptr().cast::<i8>();
            // SAFETY: a prefetch is a hint: it never faults and has no visible effect;
            // `p` points into the buffer (and `p + 64` at most one line past it).
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
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
        let Backing::Stream { input, buf } = &mut self.backing else {
            return Ok(false); // a mapped file has everything in view already
        };
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            // Move the partial record to the front: copies fewer than `n` bytes.
            if self.start > 0 {
                buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if buf.len() < n {
                let grown = buf.len().saturating_mul(2).clamp(n, MAX_RECORD_LEN.max(n));
                buf.resize(grown, 0);
            }
            // end - start < n <= buf.len(), so the destination is never empty.
            let got = loop {
                match input.read(&mut buf[self.end..]) {
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
        if self.start == self.end && matches!(self.backing, Backing::Stream { .. }) {
            self.start = 0;
            self.end = 0;
        }
    }
}
