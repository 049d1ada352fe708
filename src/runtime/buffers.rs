//! A worker's spare connection buffers. A keep-alive connection that has gone quiet gives
//! its read, write and upstream buffers and its header tables back here and waits for
//! readability holding none of them; the next request on any connection takes them
//! again. So memory follows requests in flight, not open connections: 10,000 idle
//! connections hold no buffer. Single-threaded (one per worker), so a `RefCell` and
//! `Vec` push/pop; bounded, so a burst of connections doesn't keep its peak memory.

use bytes::BytesMut;

use crate::http1::HeaderSpan;

/// Spares kept per kind; past this, returned buffers are freed. They serve connections
/// coming back from parking and new connections; busy keep-alive connections keep their
/// own buffers, so a handful per worker is enough, and each one kept is 16-36 KiB.
const KEEP: usize = 64;
/// A buffer grown past this (a large body went through it) is freed, not kept: spares
/// are for the common request, and 256 of them must not pin a burst's peak memory.
const MAX_SPARE_BYTES: usize = 64 * 1024;

#[derive(Default)]
pub struct Spares {
    bytes: Vec<BytesMut>,
    vecs: Vec<Vec<u8>>,
    headers: Vec<Vec<HeaderSpan>>,
}

impl Spares {
    /// An empty byte buffer with whatever capacity a previous connection left it.
    pub fn bytes(&mut self) -> BytesMut {
        self.bytes.pop().unwrap_or_default()
    }

    pub fn vec(&mut self) -> Vec<u8> {
        self.vecs.pop().unwrap_or_default()
    }

    pub fn headers(&mut self) -> Vec<HeaderSpan> {
        self.headers.pop().unwrap_or_default()
    }

    /// Takes `buf` back; whatever it still holds is dropped.
    pub fn put_bytes(&mut self, mut buf: BytesMut) {
        buf.clear();
        if (1..=MAX_SPARE_BYTES).contains(&buf.capacity()) && self.bytes.len() < KEEP {
            self.bytes.push(buf);
        }
    }

    pub fn put_vec(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if (1..=MAX_SPARE_BYTES).contains(&buf.capacity()) && self.vecs.len() < KEEP {
            self.vecs.push(buf);
        }
    }

    pub fn put_headers(&mut self, mut buf: Vec<HeaderSpan>) {
        buf.clear();
        if (1..=256).contains(&buf.capacity()) && self.headers.len() < KEEP {
            self.headers.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grown_buffers_are_freed_and_the_rest_kept_up_to_a_bound() {
        let mut spares = Spares::default();
        spares.put_bytes(BytesMut::with_capacity(16 * 1024));
        spares.put_bytes(BytesMut::with_capacity(10 << 20));
        spares.put_vec(Vec::with_capacity(10 << 20));
        spares.put_vec(Vec::new());
        assert_eq!(spares.bytes.len(), 1);
        assert!(spares.vecs.is_empty());
        assert!(spares.bytes().capacity() >= 16 * 1024);
        assert_eq!(
            spares.bytes().capacity(),
            0,
            "empty pool: a new, empty buffer"
        );
        for _ in 0..KEEP + 10 {
            spares.put_vec(Vec::with_capacity(4096));
        }
        assert_eq!(spares.vecs.len(), KEEP);
    }
}
