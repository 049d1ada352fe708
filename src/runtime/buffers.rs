//! A worker's spare connection buffers. A keep-alive connection that has gone quiet gives
//! its read, write and upstream buffers and its header tables back here and waits for
//! readability holding none of them; the next request on any connection takes them
//! again. So memory follows requests in flight, not open connections: 10,000 idle
//! connections hold no buffer. Single-threaded (one per worker), so a `RefCell` and
//! `Vec` push/pop; bounded, so a burst of connections doesn't keep its peak memory.

use bytes::BytesMut;

use crate::http1::HeaderSpan;

/// Spares kept per kind; past this, returned buffers are freed.
const KEEP: usize = 256;

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
        if buf.capacity() > 0 && self.bytes.len() < KEEP {
            self.bytes.push(buf);
        }
    }

    pub fn put_vec(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if buf.capacity() > 0 && self.vecs.len() < KEEP {
            self.vecs.push(buf);
        }
    }

    pub fn put_headers(&mut self, mut buf: Vec<HeaderSpan>) {
        buf.clear();
        if buf.capacity() > 0 && self.headers.len() < KEEP {
            self.headers.push(buf);
        }
    }
}
