//! The bytes a sitemap scanner reads: capped at `max_sitemap_bytes`
//! (inflated bytes included) and served one at a time from a fixed buffer.

use std::io::Read;

/// A reader that gives at most `left` bytes and then notes whether there
/// was more (`cut`), so inflating stops at the limit (one byte past it, to
/// tell).
pub(super) struct Capped<R> {
    inner: R,
    left: u64,
    /// Whether there was more past the limit, or the caller cut the input.
    pub(super) cut: bool,
}

impl<R: Read> Capped<R> {
    pub(super) fn new(inner: R, limit: u64) -> Self {
        Capped {
            inner,
            left: limit,
            cut: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            if !self.cut {
                let mut probe = [0u8; 1];
                self.cut = self.inner.read(&mut probe)? > 0;
            }
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A byte at a time from a reader, through a fixed buffer. A read error
/// (a corrupt or cut gzip stream) ends the input and is noted.
pub(super) struct Bytes<R> {
    pub(super) source: R,
    buf: Box<[u8; 8192]>,
    /// The next byte's place in `buf`; the scanners step over bytes they
    /// peeked by moving it.
    pub(super) pos: usize,
    len: usize,
    pub(super) broken: bool,
}

impl<R: Read> Bytes<R> {
    pub(super) fn new(source: R) -> Self {
        Bytes {
            source,
            buf: Box::new([0; 8192]),
            pos: 0,
            len: 0,
            broken: false,
        }
    }

    pub(super) fn peek(&mut self) -> Option<u8> {
        if self.pos == self.len {
            if self.broken {
                return None;
            }
            loop {
                match self.source.read(&mut self.buf[..]) {
                    Ok(n) => {
                        self.pos = 0;
                        self.len = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.broken = true;
                        return None;
                    }
                }
            }
            if self.len == 0 {
                return None;
            }
        }
        Some(self.buf[self.pos])
    }

    pub(super) fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `word` if the input goes on with it; otherwise consumes
    /// the bytes that matched (harmless where it is used: inside `<!`).
    pub(super) fn eat(&mut self, word: &[u8]) -> bool {
        for &w in word {
            if self.peek() != Some(w) {
                return false;
            }
            self.pos += 1;
        }
        true
    }

    /// Skips a BOM and white space; whether what follows looks like XML.
    pub(super) fn sniff_xml(&mut self) -> bool {
        if self.peek() == Some(0xEF) {
            self.eat(&[0xEF, 0xBB, 0xBF]);
        }
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        self.peek() == Some(b'<')
    }

    /// Skips past the next `end` (2 or 3 bytes), feeding the bytes before
    /// it to `keep`.
    pub(super) fn until(&mut self, end: &[u8], mut keep: impl FnMut(u8)) {
        let mut window: Vec<u8> = Vec::with_capacity(end.len());
        while let Some(b) = self.next() {
            if window.len() == end.len() {
                keep(window.remove(0));
            }
            window.push(b);
            if window == end {
                return;
            }
        }
    }
}
