//! Writing an answer the gateway gives without reading the request body (a mock, a cache
//! hit, an error), while that body may still be coming.
//!
//! A client that writes its whole request before it reads (Python's `requests`, curl
//! without `Expect`) and a gateway that writes its whole answer before it reads the body
//! wait on each other once both directions' socket buffers are full: a 14 MiB mock answer
//! to a GET carrying 9 MiB hung until the kernel gave up. As nginx reads a body it drops
//! while it writes, the answer here goes out as the socket takes it, and whatever the
//! client sends meanwhile is taken: kept in `rbuf` when the connection is to go on (the
//! body, bounded by what `discard_body` drops, and then read past as always), dropped
//! when it closes after the answer.
//!
//! A TLS connection's write waits until the socket takes each record whole, so there the
//! body of a request answered at length (more than the socket buffers hold) is taken
//! first, then the answer written. An answer with no body still to come writes as before.

use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};

use super::conn::{Conn, DISCARD_MAX, LINGER_TOTAL, READ_BUF};
use super::conn_io::within;
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::BodyKind;
use crate::runtime::workers::Generation;
use crate::tls::Io;

/// How long neither direction may move before the answer is given up on (a
/// `send_timeout` of 0 leaves it to the kernel elsewhere; here it is this).
const NO_PROGRESS: Duration = Duration::from_secs(60);

/// An answer longer than this, on TLS, waits for the body: shorter ones fit the socket
/// buffers of both ends whatever the client does.
const TLS_TAKE_BODY_ABOVE: usize = 64 * 1024;

/// How long a read of that body waits: a client that pushes its body while it does not
/// read (the one that would wait on the answer) sends more at once; one that pauses is
/// not pressing on a full buffer, and gets its answer now, not after `header_timeout`.
const TLS_BODY_PAUSE: Duration = Duration::from_millis(200);

impl Conn {
    /// Writes `wbuf`, then `tail`, whole (the answer's rest); `keep`: the connection goes
    /// on after it (its FIN goes with the answer otherwise, as `flush_response` sends it).
    pub(crate) async fn send_answer(
        &mut self,
        gen: &Generation,
        keep: bool,
        tail: Option<Bytes>,
    ) -> std::io::Result<()> {
        let tls = matches!(self.stream, Io::Tls(_));
        let long = self.wbuf.len() + tail.as_ref().map_or(0, Bytes::len) > TLS_TAKE_BODY_ABOVE;
        let may_come = self.body_may_come();
        // An `Expect: 100-continue` client sends nothing before a 100 that never comes.
        if tls && may_come && long && !self.head.expect_continue {
            self.take_body_first(gen, keep).await;
        }
        if !may_come || tls {
            let Some(tail) = tail else {
                return self.flush_response(keep).await;
            };
            self.flush_wbuf().await?;
            return self.stream.write_all(tail).await.0.map(|_| ());
        }
        let limit = match gen.snap.server.limits.send_timeout {
            Duration::ZERO => NO_PROGRESS,
            t => t,
        };
        let head = Bytes::from(std::mem::take(&mut self.wbuf));
        let mut taking = true;
        for part in [Some(head), tail].into_iter().flatten() {
            let mut sent = 0;
            while sent < part.len() {
                if !self
                    .wait_writable_taking_input(keep, &mut taking, limit)
                    .await?
                {
                    continue;
                }
                match self.stream.write(part.slice(sent..)).await.0? {
                    0 => return Err(std::io::ErrorKind::WriteZero.into()),
                    n => sent += n,
                }
            }
        }
        Ok(())
    }

    /// Whether body bytes of the request may still be on their way (not all in `rbuf`).
    fn body_may_come(&self) -> bool {
        let arrived = self.rbuf.len().saturating_sub(self.head.head_len) as u64;
        match self.head.body {
            BodyKind::Empty => false,
            BodyKind::Length(n) => arrived < n,
            BodyKind::Chunked => true,
        }
    }

    /// Reads the request body before a long answer on TLS: into `rbuf` when the
    /// connection goes on (up to what `discard_body` drops; it reads past it after the
    /// answer), dropped as it comes when it closes (up to `max_body_bytes`). A read
    /// waits `TLS_BODY_PAUSE`, all of it `LINGER_TOTAL`; what is not taken by then is
    /// read after the answer, as before.
    async fn take_body_first(&mut self, gen: &Generation, keep: bool) {
        let limits = &gen.snap.server.limits;
        let (head, wait) = (
            self.head.head_len,
            TLS_BODY_PAUSE.min(limits.header_timeout),
        );
        let most = limits.max_body_bytes.max(DISCARD_MAX);
        let until = Instant::now() + LINGER_TOTAL;
        let mut chunked = (self.head.body == BodyKind::Chunked).then(|| ChunkedDecoder::new(most));
        // Bytes before `scanned` are the body's as far as it is known; `dropped`, how
        // many of them have been let go.
        let (mut scanned, mut dropped) = (head, 0u64);
        loop {
            let done = match (&mut chunked, self.head.body) {
                (Some(dec), _) => match dec.scan(&self.rbuf[scanned..], |_| {}) {
                    Ok(scan) => {
                        scanned += scan.consumed;
                        scan.done
                    }
                    // Malformed: `discard_body` refuses it after the answer.
                    Err(_) => true,
                },
                (None, BodyKind::Length(n)) => {
                    scanned = self.rbuf.len();
                    dropped + (scanned.saturating_sub(head)) as u64 >= n
                }
                _ => true,
            };
            if done {
                return;
            }
            if !keep {
                dropped += (scanned - head) as u64;
                self.rbuf.copy_within(scanned.., head);
                let rest = self.rbuf.len() - scanned;
                self.rbuf.truncate(head + rest);
                scanned = head;
            }
            let full = keep && self.rbuf.len() >= head + DISCARD_MAX as usize + READ_BUF;
            let left = until.saturating_duration_since(Instant::now());
            if full || dropped > most || left.is_zero() {
                return;
            }
            match within(wait.min(left), self.read_client()).await {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
    }

    /// Waits until the socket takes more (true), or takes what the client sent (false:
    /// wait again). `taking`: the client's bytes are still read (not once it has closed
    /// its side, or `rbuf` holds as much as a kept connection may drop).
    async fn wait_writable_taking_input(
        &mut self,
        keep: bool,
        taking: &mut bool,
        limit: Duration,
    ) -> std::io::Result<bool> {
        let Io::Plain(tcp) = &self.stream else {
            return Ok(true);
        };
        let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
        let readable = monoio::select! {
            r = tcp.writable(false) => { r?; false }
            r = tcp.readable(false), if *taking => { r?; true }
            _ = monoio::time::sleep(limit) => return Err(timed_out()),
        };
        if !readable {
            return Ok(true);
        }
        let mark = self.rbuf.len();
        let n = self.read_client().await.unwrap_or(0);
        if !keep {
            // Closing after the answer: nothing of it is needed (the head stays, for the
            // access log).
            self.rbuf.truncate(mark);
        } else if self.rbuf.len() >= self.head.head_len + DISCARD_MAX as usize + READ_BUF {
            // More than `discard_body` drops: it closes the connection; until then the
            // answer goes out as the client reads it.
            *taking = false;
        }
        if n == 0 {
            *taking = false;
        }
        Ok(false)
    }
}
