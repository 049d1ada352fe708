//! Request bodies the connection reads itself: whole, for the features that need them
//! (Lambda events, validation), or read and dropped after the gateway answered.

use std::time::Duration;

use bytes::Buf;
use monoio::io::AsyncWriteRentExt;

use super::conn::{within, Conn, DISCARD_MAX};
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::BodyKind;
use crate::runtime::workers::Generation;

impl Conn {
    /// Reads the whole request body into `rbuf`, for features that need it whole (Lambda
    /// events, validation): `Expect: 100-continue` is answered once first, chunked bodies
    /// are also decoded into `decoded`. Returns where the request ends in `rbuf`; the
    /// bytes stay there, so a later step finds the body again.
    pub async fn read_whole_body(
        &mut self,
        gen: &Generation,
        decoded: &mut Vec<u8>,
    ) -> Result<usize, (u16, &'static str)> {
        let wait = gen.snap.server.limits.header_timeout;
        let head_len = self.head.head_len;
        match self.head.body {
            BodyKind::Empty => Ok(head_len),
            // The parser refused lengths over max_body_bytes.
            BodyKind::Length(n) => self.read_to(head_len + n as usize, wait).await,
            BodyKind::Chunked => {
                let max = gen.snap.server.limits.max_body_bytes;
                let end = self
                    .read_chunked(max, u64::MAX, wait, Some(decoded))
                    .await?;
                Ok(end.expect("no limit but max_body_bytes"))
            }
        }
    }

    /// Reads the rest of a request body of at most `limit` bytes (as sent, chunk framing
    /// included) into `rbuf`, after the head, so that an integration has it whole before
    /// it takes a backend connection: a slow upload then holds a connection to the
    /// client only (nginx's `proxy_request_buffering`). A longer body is left to stream
    /// (`Ok` all the same); a stalled or malformed one is the error to answer.
    pub async fn buffer_body(
        &mut self,
        gen: &Generation,
        limit: u64,
    ) -> Result<(), (u16, &'static str)> {
        let wait = gen.snap.server.limits.header_timeout;
        let head_len = self.head.head_len;
        match self.head.body {
            BodyKind::Empty => Ok(()),
            BodyKind::Length(n) if n > limit => Ok(()),
            BodyKind::Length(n) => self.read_to(head_len + n as usize, wait).await.map(drop),
            BodyKind::Chunked => {
                let max = gen.snap.server.limits.max_body_bytes;
                self.read_chunked(max, limit, wait, None).await.map(drop)
            }
        }
    }

    /// Reads a chunked body into `rbuf` (decoding it into `decoded` if given) until its
    /// end, `Some(where it ends)`, or until more than `limit` bytes of it are in, `None`.
    async fn read_chunked(
        &mut self,
        max_body: u64,
        limit: u64,
        wait: Duration,
        mut decoded: Option<&mut Vec<u8>>,
    ) -> Result<Option<usize>, (u16, &'static str)> {
        let head_len = self.head.head_len;
        let mut dec = ChunkedDecoder::new(max_body);
        let mut pos = head_len;
        loop {
            let buf = &self.rbuf[pos..];
            let scan = dec
                .scan(buf, |r| {
                    if let Some(out) = decoded.as_deref_mut() {
                        out.extend_from_slice(&buf[r]);
                    }
                })
                .map_err(crate::integration::relay::body_error_status)?;
            pos += scan.consumed;
            if scan.done {
                return Ok(Some(pos));
            }
            if (pos - head_len) as u64 > limit {
                return Ok(None);
            }
            self.more_body(wait).await?;
        }
    }

    /// Reads until `rbuf` holds `end` bytes; returns `end`. The buffer grows as bytes
    /// come (`read_into`, doubling), not to the announced length up front: a head that
    /// announces a body and sends none would otherwise hold that memory for nothing.
    async fn read_to(&mut self, end: usize, wait: Duration) -> Result<usize, (u16, &'static str)> {
        while self.rbuf.len() < end {
            self.more_body(wait).await?;
        }
        Ok(end)
    }

    async fn more_body(&mut self, wait: Duration) -> Result<(), (u16, &'static str)> {
        if self.head.expect_continue {
            // Once: nothing after this may send it again.
            self.head.expect_continue = false;
            let (res, _) = self
                .stream
                .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
                .await;
            res.map_err(|_| (400, "Bad Request"))?;
        }
        match within(wait, self.read_client()).await {
            Ok(n) if n > 0 => Ok(()),
            // Stalled, not malformed: 408 as nginx's client_body_timeout answers.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err((408, "Request Timeout")),
            _ => Err((400, "Bad Request")),
        }
    }

    /// Consumes the current request (head and body) from `rbuf` without using the body.
    pub(crate) async fn discard_body(&mut self, gen: &Generation) -> bool {
        self.rbuf.advance(self.head.head_len);
        let wait = gen.snap.server.limits.header_timeout;
        match self.head.body {
            BodyKind::Empty => true,
            BodyKind::Length(n) => {
                let mut left = n;
                loop {
                    let k = left.min(self.rbuf.len() as u64);
                    self.rbuf.advance(k as usize);
                    left -= k;
                    if left == 0 {
                        return true;
                    }
                    if !matches!(monoio::time::timeout(wait, self.read_client()).await, Ok(Ok(n)) if n > 0)
                    {
                        return false;
                    }
                }
            }
            BodyKind::Chunked => {
                // No more than a body the route could have taken (a Content-Length past
                // `max_body_bytes` was 413 before any answer).
                let limit = gen.snap.server.limits.max_body_bytes.min(DISCARD_MAX);
                let mut dec = ChunkedDecoder::new(limit);
                loop {
                    match dec.scan(&self.rbuf, |_| {}) {
                        Ok(scan) => {
                            self.rbuf.advance(scan.consumed);
                            if scan.done {
                                return true;
                            }
                        }
                        Err(_) => return false,
                    }
                    if !matches!(monoio::time::timeout(wait, self.read_client()).await, Ok(Ok(n)) if n > 0)
                    {
                        return false;
                    }
                }
            }
        }
    }
}
