//! Reading a request head: the `header_timeout` (counted from the connection's opening on
//! a new one, from the first byte on a kept-alive one), the parse and its limits, the
//! unreserved escapes decoded before routing, and a new connection's silence (a slowloris,
//! or one cut short by a drain).

use std::time::Instant;

use super::conn::{Conn, FRESH_GRACE};
use crate::http1::decode_unreserved;
use crate::http1::parse::{parse_request, ParseLimits};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;

pub(super) enum HeadOutcome {
    Ready,
    /// Nothing of a request came: closed without a word, a line or a count (nginx's
    /// way with preconnects and idle keep-alive connections).
    Close,
    Fail(u16, &'static str),
    /// Part of a head came and then the client closed: logged as a 400 (as nginx does),
    /// with nothing written to a client that is gone.
    Abandoned,
}

impl Conn {
    pub(super) async fn read_head(
        &mut self,
        ctx: &WorkerCtx,
        gen: &Generation,
        fresh: bool,
    ) -> HeadOutcome {
        let limits = &gen.snap.server.limits;
        // A bool, not `gen` held across the reads: an idle connection's task stays within
        // its budget (`server::idle`).
        let logging = gen.snap.access_log.is_some();
        let parse_limits = ParseLimits {
            max_header_bytes: limits.max_header_bytes,
            max_request_line: limits.max_header_bytes.min(8192),
            // Judged once the request is routed (`conn::body_over_limit`), so that its
            // 413 is the API's answer: its CORS headers, gateway response and log line.
            max_body_bytes: u64::MAX,
            max_headers: 100,
        };
        // A new connection's head must be whole `header_timeout` after it opened (as
        // nginx's client_header_timeout), not after its first byte (or, on TLS, after
        // its handshake): a client sending that byte late held the connection nearly
        // twice as long. A kept-alive one's starts at its next request's first byte
        // (idle until then).
        let mut deadline =
            fresh.then(|| self.since.unwrap_or_else(Instant::now) + limits.header_timeout);
        if !fresh {
            self.since = Some(crate::runtime::coarse_timer::coarse_now());
        }
        loop {
            // Blank lines before a request are no request (RFC 9112 §2.2): dropped, so a
            // kept-alive connection that sent only those is still idle (closed silently
            // at `idle_timeout`), not a head half sent (answered 408).
            let blank = self.rbuf.iter().take_while(|&&b| b == b'\r' || b == b'\n');
            let blank = blank.count();
            if blank > 0 {
                bytes::Buf::advance(&mut self.rbuf, blank);
            }
            if !self.rbuf.is_empty() {
                let d = *deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
                match parse_request(&self.rbuf, &parse_limits, &mut self.head) {
                    Ok(true) => {
                        // Route (and forward) `/%61dmin` as the `/admin` it is.
                        if let Some(p) = self.raw_path.as_mut() {
                            p.clear();
                        }
                        let raw_path = &mut self.raw_path;
                        decode_unreserved(&mut self.rbuf, &mut self.head, |sent| {
                            raw_path
                                .get_or_insert_with(Default::default)
                                .extend_from_slice(sent)
                        });
                        // `idle_timeout: 0s` is nginx's `keepalive_timeout 0`: the
                        // answer says `connection: close`, rather than promising a
                        // connection that closes before the client's next request.
                        if limits.idle_timeout.is_zero() {
                            self.head.keep_alive = false;
                        }
                        return HeadOutcome::Ready;
                    }
                    // Not whole yet. A 408 would lose `rbuf` with the read it cuts
                    // short (monoio owns the buffer while it reads): its line's method,
                    // path and protocol are kept now, when the request line is whole.
                    // Only a head that comes in parts gets here.
                    Ok(false) if logging => self.capture_request_line(),
                    Ok(false) => {}
                    Err(e) => return HeadOutcome::Fail(e.status(), e.message()),
                }
                // Coarse timers (runtime::coarse_timer): a connection's task is as large
                // as its largest await, and a monoio sleep would add 640 bytes to each.
                let read = monoio::select! {
                    r = self.read_client() => Some(r),
                    _ = ctx.timers.sleep_until(d) => None,
                };
                match read {
                    // Part of a head came (blank lines before one were dropped above).
                    Some(Ok(0)) | Some(Err(_)) => return HeadOutcome::Abandoned,
                    Some(Ok(_)) => continue,
                    None => return HeadOutcome::Fail(408, "Request Timeout"),
                }
            }
            if fresh {
                // A new connection that sends nothing is a slowloris too. Once a drain
                // begins it has `FRESH_GRACE` left: its client connected before the stop
                // and its request may be a round trip away; cut, it would look like a
                // request taken and lost. A silent one then closes without a word.
                let draining = ctx.drain.closing();
                let mut until = deadline.unwrap_or_else(Instant::now);
                if draining {
                    until = until.min(Instant::now() + FRESH_GRACE);
                }
                let read = monoio::select! {
                    r = self.read_client() => Some(r),
                    _ = ctx.timers.sleep_until(until) => None,
                    _ = ctx.drain.wait(), if !draining => continue,
                };
                match read {
                    Some(Ok(0)) | Some(Err(_)) => return HeadOutcome::Close,
                    Some(Ok(_)) => continue,
                    // Nothing came in `header_timeout`: closed silently, as nginx does.
                    // A 408 here inflated the 408s with every preconnect and scanner.
                    None => return HeadOutcome::Close,
                }
            }
            if !self.wait_for_next_request(ctx, limits.idle_timeout).await {
                return HeadOutcome::Close;
            }
        }
    }
}
