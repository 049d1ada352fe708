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
//! Plain sockets only: a TLS connection writes as before (its records can't be read
//! apart from its writes here). An answer with no body still to come writes as before.

use std::time::Duration;

use bytes::Bytes;
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};

use super::conn::{Conn, DISCARD_MAX, READ_BUF};
use crate::http1::parse::BodyKind;
use crate::runtime::workers::Generation;
use crate::tls::Io;

/// How long neither direction may move before the answer is given up on (a
/// `send_timeout` of 0 leaves it to the kernel elsewhere; here it is this).
const NO_PROGRESS: Duration = Duration::from_secs(60);

impl Conn {
    /// Writes `wbuf`, then `tail`, whole (the answer's rest); `keep`: the connection goes
    /// on after it (its FIN goes with the answer otherwise, as `flush_response` sends it).
    pub(crate) async fn send_answer(
        &mut self,
        gen: &Generation,
        keep: bool,
        tail: Option<Bytes>,
    ) -> std::io::Result<()> {
        if !self.body_may_come() {
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

    /// Whether body bytes of the request may still be on their way (not all in `rbuf`),
    /// on a plain connection.
    fn body_may_come(&self) -> bool {
        let arrived = self.rbuf.len().saturating_sub(self.head.head_len) as u64;
        let more = match self.head.body {
            BodyKind::Empty => false,
            BodyKind::Length(n) => arrived < n,
            BodyKind::Chunked => true,
        };
        more && matches!(self.stream, Io::Plain(_))
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
