//! The `http` integration: proxy a request to an upstream target over a pooled
//! keep-alive connection and stream the response back.
//!
//! The upstream request head is written from the client's original bytes with the few
//! edits a proxy must make (request line, Host, X-Forwarded-*, hop-by-hop headers:
//! `request_head`), and goes out in the same write as the body bytes that arrived with the head. A request
//! sent on a pooled connection that the backend had already closed is sent once more on
//! a fresh connection when that is safe: the method is idempotent, the whole body was in
//! that first write, and not one byte of response came back. A connection that cannot be
//! made at all moves the request, whatever its method, to the upstream's next address.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::time::Instant;

use bytes::Buf;
use monoio::io::AsyncWriteRentExt;

use crate::tls::{peer_closed, UpstreamIo};
use tracing::{debug, warn};

pub(crate) use super::connect::connect;
use super::connect::connect_within;
use super::request_head::{encode_request_head, replace_host};
use super::tunnel::{check_switch, Offered};
use super::{relay, request_body};
use crate::config::compile::HttpIntegration;
use crate::error::{Error, Kind};
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::BodyKind;
use crate::http1::response::parse_response;
use crate::metrics::cells::bump;
use crate::metrics::log_limit;
use crate::pipeline::response::Edits;
use crate::router::Matched;
use crate::runtime::coarse_timer::{coarse_now, CoarseTimers, Deadline};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use crate::server::conn_io::read_into;

/// Largest upstream response head we accept.
pub(super) const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Serves one request through the integration; returns whether the client connection
/// can carry another request.
pub async fn proxy(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    h: &HttpIntegration,
    m: &Matched,
) -> bool {
    let buffer = gen.snap.server.limits.request_buffer_bytes;
    if buffer > 0 && c.head.body != BodyKind::Empty {
        if let Err((status, message)) = c.buffer_body(gen, buffer).await {
            c.head.keep_alive = false;
            return c.answer(ctx, gen, status, message, &[]).await;
        }
    }
    let Some(mut lease) = gen.pools.checkout(h.upstream) else {
        let name = &gen.snap.upstreams[h.upstream].name;
        if let Some(held_back) = log_limit::allow(name) {
            warn!(upstream = %name, status = 502, held_back, "upstream has no target to send to");
        }
        return c.answer(ctx, gen, 502, "Bad Gateway", &[]).await;
    };
    // From the clock, not the coarse one: as of the last tick (up to one old) the timeout
    // would fire early, and a backend answering in time would get a 504. The same reading
    // starts the integration's time (writing the head, before the send, takes well under
    // a microsecond: not worth a second clock read per request).
    let sending = Instant::now();
    let deadline = Deadline {
        timers: &ctx.timers,
        at: sending + h.timeout,
    };

    // Body bytes that came with the head go out in the same write.
    let head_len = c.head.head_len;
    let max_body = gen.snap.server.limits.max_body_bytes;
    let mut chunked = ChunkedDecoder::new(max_body);
    let mut payload = 0u64;
    let (initial, body_done) = match c.head.body {
        BodyKind::Empty => (0, true),
        BodyKind::Length(n) => {
            let k = n.min((c.rbuf.len() - head_len) as u64) as usize;
            (k, k as u64 == n)
        }
        BodyKind::Chunked => {
            match chunked.relay_scan(&c.rbuf[head_len..], |r| payload += r.len() as u64) {
                Ok(scan) if scan.done => (scan.consumed, true),
                // An unfinished size line or final section stays in `rbuf` (`Relay`).
                Ok(scan) => (scan.send, false),
                Err(e) => {
                    lease.release(None);
                    let (status, msg) = request_body::body_error_status(e);
                    c.head.keep_alive = false;
                    return c.answer(ctx, gen, status, msg, &[]).await;
                }
            }
        }
    };
    // A chunked body in hand whole goes with its length, as nginx's buffered bodies do: a
    // backend that speaks only HTTP/1.0 (or no chunked requests: some WSGI servers) would
    // read the chunk lines as its next request (RFC 9112 §6.1: send Transfer-Encoding
    // only to a server known to read it). A longer one streams chunked.
    let dechunked = (c.head.body == BodyKind::Chunked && body_done).then_some(payload);
    c.wbuf.clear();
    let Some((upgrading, mut host_at)) = encode_request_head(ctx, gen, c, h, m, &lease, dechunked)
    else {
        lease.release(None);
        if c.head.body != BodyKind::Empty {
            c.head.keep_alive = false;
        }
        return c.answer(ctx, gen, 400, "Bad Request", &[]).await;
    };
    let body = &c.rbuf[head_len..head_len + initial];
    if dechunked.is_some() {
        let wbuf = &mut c.wbuf;
        let _ = ChunkedDecoder::new(max_body).scan(body, |r| wbuf.extend_from_slice(&body[r]));
    } else {
        c.wbuf.extend_from_slice(body);
    }
    let body_left = match c.head.body {
        BodyKind::Length(n) => n - initial as u64,
        _ => 0,
    };
    let api = &gen.snap.apis[c.req.api as usize];
    if Edits::route_maps_responses(&gen.snap, &c.req)
        || api.gateway_responses.is_some()
        || api.cors.is_some()
    {
        // Response mappings, gateway responses to a failed integration and CORS headers
        // (an echoed Origin) read the request after the body has gone: keep the head
        // (split off, not copied). Read from `rbuf` after it moved on, they took the
        // next request's bytes.
        c.req.saved_head = Some(c.rbuf.split_to(head_len));
        c.rbuf.advance(initial);
    } else {
        c.rbuf.advance(head_len + initial);
    }
    let replayable = body_done && c.head.method.is_idempotent();

    let mut retried = false;
    let mut answered_early = false;
    // Failover: the address first picked, and how many slots after it were passed.
    let (first, mut step) = (lease.slot(), 0);
    let mut fresh = false;
    let (mut upstream, result) = loop {
        let (mut stream, reused) = match lease.pooled.take() {
            Some(s) => {
                bump(&lease.cells().reused, 1);
                (s, true)
            }
            None => match connect_within(&lease, deadline).await {
                Ok(s) => {
                    bump(&lease.cells().new, 1);
                    (s, false)
                }
                Err(e) => {
                    // Nothing was sent: any method may go to another target (nginx's
                    // `proxy_next_upstream error timeout` for a connection never made).
                    if e.kind != Kind::ClientGone && coarse_now() < deadline.at {
                        if let Some(next) = gen.pools.failover(h.upstream, &lease, first, &mut step)
                        {
                            bump(&lease.cells().error, 1);
                            if let Some(held_back) = log_limit::allow(lease.addr) {
                                let upstream = &gen.snap.upstreams[h.upstream].name;
                                warn!(upstream = %upstream, target = %lease.addr, cause = %e.detail, held_back, next = %next.addr, "upstream failed; trying another target");
                            }
                            if next.target != lease.target {
                                host_at = replace_host(&mut c.wbuf, host_at, &next);
                            }
                            lease = next;
                            continue;
                        }
                    }
                    if e.kind != Kind::ClientGone {
                        // Passed over for a while as `failover` would have (a connect cut
                        // by the integration timeout, or with no other target to try):
                        // unmarked, a blackholed target kept its whole share of 504s.
                        gen.pools.mark_failed(h.upstream, &lease);
                    }
                    break (None, Err(e));
                }
            },
        };
        fresh = !reused;
        let sent = send_request(
            gen,
            c,
            &mut stream,
            body_done,
            body_left,
            &mut chunked,
            deadline,
        )
        .await;
        let result = match sent {
            Ok(()) => read_response_head(c, &h.upgrade, &mut stream, deadline, upgrading).await,
            Err(e) if e.while_sending_body => {
                answered_early = early_answer(c, &mut stream, deadline.timers).await;
                if answered_early {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e.retry_safe && reused && replayable && !retried => {
                debug!(target = %lease.addr, error = %e, "pooled connection was stale; retrying on a new one");
                retried = true;
                continue;
            }
            r => break (Some(stream), r),
        }
    };
    c.out.integration_time = Some(sending.elapsed());
    if let Err(e) = result {
        if e.kind == Kind::ClientGone {
            lease.release(None);
            let (status, message) = e.status_and_message();
            (c.out.status, c.out.error_message) = (status, message);
            debug!(target = %lease.addr, "{}", e.detail);
            return false;
        }
        // A client that stalls or breaks its body is no failure of the backend's.
        if e.side != crate::error::Side::Client {
            lease.count_failure(e.kind == Kind::UpstreamTimeout);
        }
        if fresh && e.kind == Kind::UpstreamClosed {
            // A new connection closed or reset unanswered: passed over as if refused.
            gen.pools.mark_failed(h.upstream, &lease);
        }
        lease.release(None);
        let _ = write!(c.out.texts().integration, "{}", e.detail);
        let (status, message) = e.status_and_message();
        if e.side == crate::error::Side::Client {
            debug!(target = %lease.addr, error = %e, "request failed on the client side");
        } else if let Some(held_back) = log_limit::allow(lease.addr) {
            // `held_back`: failures of this target not logged since the last line.
            let upstream = &gen.snap.upstreams[h.upstream].name;
            warn!(upstream = %upstream, target = %lease.addr, status, cause = %e.detail, held_back, "upstream failed");
        }
        // Part of the client's body may still be unread: the connection can't go on, and
        // it closes lingering (the body kind, which `answer_consumed` empties, is what
        // tells the connection loop), or the reset of a close with the upload's bytes
        // unread could reach the client before the 502/504 and stand in for it.
        let body_unread =
            (e.side == crate::error::Side::Client || !body_done).then_some(c.head.body);
        if body_unread.is_some() {
            c.head.keep_alive = false;
        }
        let keep = c.answer_consumed(ctx, gen, status, message).await;
        if let Some(body) = body_unread {
            c.head.body = body;
        }
        return keep;
    }
    let stream = upstream.take().expect("a response implies a stream");
    if c.rhead.status == 101 {
        // The connection loop runs the tunnel once this request's future is dropped.
        c.tunnel = Some(Box::new(super::tunnel::Accepted {
            upstream: stream,
            lease,
            idle: h.tunnel_idle,
        }));
        return false;
    }
    if answered_early {
        // The rest of the client's body is unread and the upstream has a partial one.
        c.head.keep_alive = false;
    }
    let outcome = relay::response(ctx, gen, c, stream, h.timeout).await;
    if let Some(e) = &outcome.failed {
        super::body_error::report(gen, c, &lease, h.upstream, e);
    }
    lease.release(outcome.reusable.filter(|_| !answered_early));
    outcome.client_keep_alive
}

/// Writes `wbuf` (head plus the first body bytes) and relays the rest of the body.
async fn send_request(
    gen: &Generation,
    c: &mut Conn,
    stream: &mut UpstreamIo,
    body_done: bool,
    body_left: u64,
    chunked: &mut ChunkedDecoder,
    deadline: Deadline<'_>,
) -> Result<(), Error> {
    let write = stream.write_all(std::mem::take(&mut c.wbuf));
    let (res, buf) = match deadline.bound(write).await {
        Ok(r) => r,
        Err(_) => {
            return Err(Error::new(
                Kind::UpstreamTimeout,
                "writing the request timed out",
            ))
        }
    };
    // The buffer keeps the request so a retry can send it again.
    c.wbuf = buf;
    if let Err(e) = res {
        return Err(Error::new(Kind::UpstreamClosed, format!("write: {e}")).retry_safe());
    }
    if body_done {
        return Ok(());
    }
    if c.head.expect_continue {
        let (res, _) = c
            .stream
            .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
            .await;
        res.map_err(|e| Error::new(Kind::ClientBody, format!("100-continue: {e}")))?;
    }
    let read_wait = gen
        .snap
        .server
        .limits
        .header_timeout
        .max(deadline.at.saturating_duration_since(coarse_now()));
    let timers = deadline.timers;
    match c.head.body {
        BodyKind::Length(_) => {
            request_body::request_length(c, stream, body_left, timers, read_wait).await
        }
        _ => request_body::request_chunked(c, stream, chunked, timers, read_wait).await,
    }
}

/// After the request body could not all be sent: whether the upstream's final answer is
/// in (parsed into `c.rhead`). It was sent before the failure, so it is read at once or
/// not at all; a 101 is no answer to a half-sent request.
async fn early_answer(c: &mut Conn, stream: &mut UpstreamIo, timers: &CoarseTimers) -> bool {
    let deadline = Deadline {
        timers,
        at: coarse_now() + EARLY_ANSWER_WAIT,
    };
    let read = read_response_head(c, &[], stream, deadline, Offered::default()).await;
    read.is_ok() && c.rhead.status >= 200
}

/// How long an answer that was already sent may take to be read.
const EARLY_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The upstream buffer's free space before a response head is read. Held only while the
/// request is in flight (buffers go back to the worker's spares between requests).
const UPSTREAM_READ_BUF: usize = 32 * 1024;

/// Reads until a final (non-1xx) response head is in `ubuf`, parsed into `c.rhead`; a 101
/// is final for an upgrade offer (`upgrading`, of `allowed`) that names an offered
/// protocol (the tunnel follows).
async fn read_response_head(
    c: &mut Conn,
    allowed: &[Box<[u8]>],
    stream: &mut UpstreamIo,
    deadline: Deadline<'_>,
    upgrading: Offered,
) -> Result<(), Error> {
    c.ubuf.clear();
    // Room for a head and a 16 KiB body in one read (and then one write to the client):
    // with the connection buffers' 16 KiB, such a response took two of each.
    c.ubuf.reserve(UPSTREAM_READ_BUF);
    let client = c.stream.tcp().as_raw_fd();
    // An interim response came: the backend has the request, so a failure after it is
    // not one a retry may repeat.
    let mut interim = false;
    loop {
        if !c.ubuf.is_empty() {
            // Part of a head came: ask for the rest now.
            super::connect::ack_now(stream);
        }
        let read = read_into(stream, std::mem::take(&mut c.ubuf));
        let (res, buf) = unless_client_left(deadline, client, read).await?;
        c.ubuf = buf;
        match res {
            Ok(0) if c.ubuf.is_empty() && !interim => {
                return Err(
                    Error::new(Kind::UpstreamClosed, "closed before responding").retry_safe()
                )
            }
            Ok(0) if c.ubuf.is_empty() => {
                return Err(Error::new(
                    Kind::UpstreamClosed,
                    "closed after an interim response",
                ))
            }
            Ok(0) => {
                return Err(Error::new(
                    Kind::UpstreamGarbage,
                    "closed in the middle of the response head",
                ))
            }
            Err(e) if c.ubuf.is_empty() && !interim => {
                return Err(Error::new(Kind::UpstreamClosed, format!("read: {e}")).retry_safe())
            }
            Err(e) => return Err(Error::new(Kind::UpstreamClosed, format!("read: {e}"))),
            Ok(_) => {}
        }
        loop {
            match parse_response(&c.ubuf, c.head.method, MAX_RESPONSE_HEAD, &mut c.rhead) {
                Ok(true) if c.rhead.status == 101 && upgrading.any() => {
                    return check_switch(allowed, upgrading, &c.rhead, &c.ubuf)
                        .map_err(|why| Error::new(Kind::UpstreamGarbage, why));
                }
                Ok(true) if c.rhead.status == 101 => {
                    return Err(Error::new(
                        Kind::UpstreamGarbage,
                        "101 Switching Protocols is not supported here",
                    ))
                }
                Ok(true) if c.rhead.status < 200 => {
                    // Interim responses (100 Continue, 103 Early Hints) are not relayed.
                    interim = true;
                    c.ubuf.advance(c.rhead.head_len);
                    if c.ubuf.is_empty() {
                        break;
                    }
                }
                Ok(true) => return Ok(()),
                Ok(false) => break,
                Err(e) => {
                    return Err(Error::new(
                        Kind::UpstreamGarbage,
                        format!("bad response head: {e:?}"),
                    ))
                }
            }
        }
    }
}

/// `fut` (a read of the upstream's answer) within the deadline, unless the client has
/// gone: a backend that thinks for seconds is then let go at once (its connection is
/// dropped, not pooled) instead of being held until the integration timeout, as nginx
/// does. The client is looked at only when the answer takes more than `CLIENT_LOOK_EVERY`,
/// so a quick exchange pays nothing for it.
async fn unless_client_left<F: std::future::Future>(
    deadline: Deadline<'_>,
    client: std::os::fd::RawFd,
    fut: F,
) -> Result<F::Output, Error> {
    let mut fut = std::pin::pin!(fut);
    loop {
        let look = deadline.at.min(coarse_now() + CLIENT_LOOK_EVERY);
        match deadline.timers.within(look, fut.as_mut()).await {
            Ok(out) => return Ok(out),
            Err(_) if coarse_now() >= deadline.at => {
                return Err(Error::new(
                    Kind::UpstreamTimeout,
                    "no response within the integration timeout",
                ))
            }
            Err(_) if peer_closed(client) => {
                return Err(Error::new(
                    Kind::ClientGone,
                    "the client closed its connection while the upstream was answering",
                ))
            }
            Err(_) => {}
        }
    }
}

pub(super) const CLIENT_LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
