//! Request bodies the connection reads itself: whole, for the features that need them
//! (Lambda events, validation), or read and dropped after the gateway answered.

use std::time::{Duration, Instant};

use bytes::Buf;
use monoio::io::AsyncWriteRentExt;

use super::body_budget::Held;
use super::conn::{Conn, DISCARD_MAX, LINGER_TOTAL, READ_BUF};
use super::conn_io::within;
use crate::config::compile::Snapshot;
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::BodyKind;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::websocket::connections;

/// A 413's message (API Gateway's, and nginx's reason phrase of old).
const TOO_LARGE: &str = "Request Entity Too Large";

impl Conn {
    /// Whether the request declares a body longer than `max_body_bytes` (a chunked one is
    /// judged as it comes).
    pub(super) fn body_over_limit(&self, gen: &Generation) -> bool {
        matches!(self.head.body, BodyKind::Length(n) if n > gen.snap.server.limits.max_body_bytes)
    }

    /// Whether the request matches an HTTP API's route (which answers its 413 as its
    /// other refusals: CORS headers, gateway responses).
    pub(super) fn routed(&mut self, snap: &Snapshot) -> bool {
        let (h, raw) = (&self.head, &self.rbuf[..]);
        let host = h.host.map(|s| s.get(raw));
        (snap
            .router
            .route(raw, host, h.method, h.path, &mut self.params))
        .is_some()
    }

    /// The 413 for a declared length past `max_body_bytes` (the management API's own, on
    /// a POST to `@connections`); the connection closes after it without reading the
    /// body (as nginx's).
    pub(super) async fn refuse_too_large(&mut self, ctx: &WorkerCtx, gen: &Generation) -> bool {
        self.head.keep_alive = false;
        let (message, extra) = connections::head_refusal(413, TOO_LARGE, &self.rbuf);
        self.answer(ctx, gen, 413, message, extra).await
    }

    /// Reads the whole request body into `rbuf`, for features that need it whole (Lambda
    /// events, validation): `Expect: 100-continue` is answered once first. A chunked body
    /// is decoded in place as it comes, and the head then says `Length` of its payload:
    /// kept as sent until its end, its framing cost up to six bytes per payload byte (a
    /// body of one-byte chunks held 7–9 × `max_body_bytes` per connection), beside a
    /// decoded copy. Returns where the request ends in `rbuf`; the body stays there,
    /// behind the head, so a later step (the integration) finds it again.
    pub async fn read_whole_body(
        &mut self,
        gen: &Generation,
    ) -> Result<usize, (u16, &'static str)> {
        let max = gen.snap.server.limits.max_body_bytes;
        self.read_whole_body_within(gen, max).await
    }

    /// `read_whole_body` with a smaller limit than `max_body_bytes` for a chunked body
    /// (413 past it); a Content-Length one was judged when the request was routed.
    pub async fn read_whole_body_within(
        &mut self,
        gen: &Generation,
        max: u64,
    ) -> Result<usize, (u16, &'static str)> {
        let limits = &gen.snap.server.limits;
        let wait = limits.header_timeout;
        let head_len = self.head.head_len;
        // What an earlier read of this body kept moves back into the guard: kept again
        // at the end, or given back by it on an error.
        let kept = std::mem::take(&mut self.body_held_kib);
        let mut held = Held::resume(limits.max_buffered_bodies_bytes, kept);
        let read = match self.head.body {
            BodyKind::Empty => return Ok(head_len),
            // Refused when the request was routed; checked again here, as what is read
            // is held whole.
            BodyKind::Length(n) if n > limits.max_body_bytes => return Err((413, TOO_LARGE)),
            BodyKind::Length(n) => self.read_held(head_len + n as usize, wait, &mut held).await,
            BodyKind::Chunked => {
                let read = self.dechunk_in_place(max, wait, &mut held).await;
                // Part decoded in place, the buffer no longer holds the body as sent: no
                // later read of it (a discard to keep the connection) may take the
                // client's payload for framing, and a request hidden in it for the next.
                if read.is_err() {
                    self.head.keep_alive = false;
                }
                read
            }
        };
        if matches!(read, Err((503, _))) {
            // The body's rest is still coming: nothing after it can be read as a request.
            self.head.keep_alive = false;
        }
        // Held until the request is done (`serve_requests`): read fast, a body stayed
        // uncounted while its integration ran.
        if read.is_ok() {
            // A body that came with its head, or in few reads, grew no buffer here.
            if !held.grow_to(self.rbuf.capacity() as u64) {
                self.head.keep_alive = false;
                return Err((503, "Service Unavailable"));
            }
            self.body_held_kib = held.keep();
        }
        read
    }

    /// `read_to` for a body read whole, its buffer counted in `held`.
    async fn read_held(
        &mut self,
        end: usize,
        wait: Duration,
        held: &mut Held,
    ) -> Result<usize, (u16, &'static str)> {
        while self.rbuf.len() < end {
            self.more_body_held(wait, held).await?;
        }
        Ok(end)
    }

    /// `more_body` for a body read whole: its buffer, as the read may grow it, counted
    /// first (`body_budget`).
    async fn more_body_held(
        &mut self,
        wait: Duration,
        held: &mut Held,
    ) -> Result<(), (u16, &'static str)> {
        // What `read_into` may make of the buffer: it reserves a read's worth when less
        // than a quarter of one is free, and a reserve may double the capacity.
        let (len, cap) = (self.rbuf.len(), self.rbuf.capacity());
        let may_grow_to = if cap - len < READ_BUF / 4 {
            (cap * 2).max(len + READ_BUF)
        } else {
            cap
        };
        if !held.grow_to(may_grow_to as u64) {
            return Err((503, "Service Unavailable"));
        }
        self.more_body(wait).await
    }

    /// Decodes a chunked body in `rbuf` as it arrives: each read's payload is moved down
    /// behind what was decoded before, its framing dropped, so `rbuf` holds the head,
    /// the payload so far and one read. At the end the head says `Length` of the payload,
    /// and what followed the body (a pipelined request) follows it still.
    async fn dechunk_in_place(
        &mut self,
        max_body: u64,
        wait: Duration,
        held: &mut Held,
    ) -> Result<usize, (u16, &'static str)> {
        let head_len = self.head.head_len;
        let mut dec = ChunkedDecoder::new(max_body);
        // `rbuf[head_len..payload_end]` is decoded; `rbuf[payload_end..]` is not scanned.
        let mut payload_end = head_len;
        let mut ranges = Vec::new();
        loop {
            ranges.clear();
            let scan = dec
                .scan(&self.rbuf[payload_end..], |r| ranges.push(r))
                .map_err(crate::integration::request_body::body_error_status)?;
            let scanned_to = payload_end + scan.consumed;
            let mut w = payload_end;
            for r in &ranges {
                let (from, to) = (payload_end + r.start, payload_end + r.end);
                self.rbuf.copy_within(from..to, w);
                w += to - from;
            }
            let rest = self.rbuf.len() - scanned_to;
            self.rbuf.copy_within(scanned_to.., w);
            self.rbuf.truncate(w + rest);
            payload_end = w;
            if scan.done {
                self.head.body = match payload_end - head_len {
                    0 => BodyKind::Empty,
                    n => BodyKind::Length(n as u64),
                };
                return Ok(payload_end);
            }
            self.more_body_held(wait, held).await?;
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
                self.read_chunked(max, limit, wait).await
            }
        }
    }

    /// Reads a chunked body into `rbuf`, as sent, until its end or until more than
    /// `limit` bytes of it are in (then it streams).
    async fn read_chunked(
        &mut self,
        max_body: u64,
        limit: u64,
        wait: Duration,
    ) -> Result<(), (u16, &'static str)> {
        let head_len = self.head.head_len;
        let mut dec = ChunkedDecoder::new(max_body);
        let mut pos = head_len;
        loop {
            let scan = dec
                .scan(&self.rbuf[pos..], |_| {})
                .map_err(crate::integration::request_body::body_error_status)?;
            pos += scan.consumed;
            if scan.done || (pos - head_len) as u64 > limit {
                return Ok(());
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

    /// Reads more of a body being dropped: false when nothing came within `wait`, the
    /// client closed, or `LINGER_TOTAL` has passed since the first such read (`until`,
    /// set then: a body that came whole with its head costs no clock reading).
    async fn read_dropped(&mut self, wait: Duration, until: &mut Option<Instant>) -> bool {
        let until = *until.get_or_insert_with(|| Instant::now() + LINGER_TOTAL);
        let left = until.saturating_duration_since(Instant::now());
        let read = match left.is_zero() {
            true => None,
            false => monoio::time::timeout(wait.min(left), self.read_client())
                .await
                .ok(),
        };
        if matches!(read, Some(Ok(n)) if n > 0) {
            return true;
        }
        // Out of time in all (not a quiet client's `wait`, not a close): as nginx's
        // `lingering_time`, this was the whole of it, with no lingering close after.
        if read.is_none() && left <= wait {
            self.out.linger_spent = true;
        }
        false
    }

    /// Consumes the current request (head and body) from `rbuf` without using the body:
    /// false (close the connection) when the body did not come whole within
    /// `header_timeout` a read and `LINGER_TOTAL` in all, nginx's `lingering_time`: a
    /// body sent a byte every few seconds otherwise kept the connection for as long as
    /// the client liked.
    pub(crate) async fn discard_body(&mut self, gen: &Generation) -> bool {
        self.rbuf.advance(self.head.head_len);
        let wait = gen.snap.server.limits.header_timeout;
        let mut until = None;
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
                    if !self.read_dropped(wait, &mut until).await {
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
                    if !self.read_dropped(wait, &mut until).await {
                        return false;
                    }
                }
            }
        }
    }
}
