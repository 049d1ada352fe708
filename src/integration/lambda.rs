//! The `lambda` integration: POST the API Gateway proxy event to the function url and turn
//! the handler's answer into the HTTP response. The url is any HTTP endpoint with the
//! contract of the AWS Lambda Runtime Interface Emulator (event in, handler result out,
//! `X-Amz-Function-Error` on failure), so real Lambda handlers run behind Portico as they are.
//!
//! Flow of one request: the whole body is read (content-length bodies stay in the
//! connection buffer behind the head; chunked ones are decoded once); the event is written
//! into the write buffer behind room left for the request head, so head and event go out
//! in one write without copying the event; the answer is read over a pooled keep-alive
//! connection (the function endpoint is an entry of the worker's upstream pools) within
//! the route's timeout. A function error (`X-Amz-Function-Error`, or a runtime's error
//! object: see `lambda_response`), a refused connection, or an answer that is not JSON of
//! the right shape is a 502 `{"message":"Internal server error"}` (a 500 when the Invoke
//! API refuses the call: `Fail`); no answer within the route's timeout is a 504 `{"message":"Endpoint request timed out"}`, as API Gateway
//! answers when it gives up on a function before the function does. Both are logged at
//! warn with the reason (at most `LOG_PER_SECOND` lines a second per worker, the next
//! line counting those left out); a stack trace is never sent nor logged.

use std::ops::Range;
use std::time::Instant;

use bytes::Buf;
use tracing::warn;

use super::lambda_event;
use super::lambda_response::{self, Reply};
use crate::config::compile::LambdaIntegration;
use crate::http1::parse::Method;
use crate::http1::{encode, hop};
use crate::pipeline::compress;
use crate::pipeline::context::request_view;
use crate::pipeline::response::Edits;
use crate::pipeline::trace;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

mod exchange;
use exchange::call;

/// Largest response head accepted from a function endpoint.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// "content-length: " + 20 digits + CRLF + the final CRLF.
const LENGTH_ROOM: usize = 16 + 20 + 4;
/// Lambda's limit on a synchronous invoke's answer ("6 MB"; its error message gives
/// the exact bytes).
const LAMBDA_PAYLOAD: u64 = 6_291_556;
const TIMED_OUT: &str = "no answer within the integration timeout";
/// Lambda's limit on a synchronous invoke's event ("Request must be smaller than
/// 6291456 bytes for the InvokeFunction operation").
const LAMBDA_EVENT: usize = 6_291_456;

/// The largest body, as the JSON string in the event, a function is sent: what Lambda
/// takes, or a `max_body_bytes` body in base64, whichever is more. Any event Lambda
/// takes is sent; past the cap only text that escapes to more than base64's 4/3 (control
/// characters are 6 bytes each, `\u0001`), which Lambda would refuse as well.
/// The `X-Amzn-Trace-Id` value of this request's calls (authorizer and integration alike).
pub(crate) fn hop_trace(c: &Conn) -> Vec<u8> {
    let mut trace_id = Vec::with_capacity(64);
    trace::amzn_trace_value(
        &mut trace_id,
        c.head.continued(&c.rbuf, "x-amzn-trace-id"),
        &c.request_id,
        crate::http1::encode::unix_secs(),
    );
    trace_id
}

fn event_body_cap(max_body_bytes: u64) -> usize {
    let max = usize::try_from(max_body_bytes).unwrap_or(usize::MAX);
    LAMBDA_EVENT.max(max.div_ceil(3).saturating_mul(4).saturating_add(2))
}

/// `http://host[:port][/path]` → (host as written for the Host header, port, path).
/// `check` and the compiler read urls through it (each stage's, once its variables are
/// put in), so what it refuses never reaches a request line: the path goes there byte for
/// byte after `POST `.
pub fn parse_url(url: &str) -> Result<(&str, u16, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} must start with http://"))?;
    // The authority ends where the path, the query or the fragment starts.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = (&rest[..end], &rest[end..]);
    if let Some(at) = authority.rfind('@') {
        // Not "no host": the url names one. The userinfo stays out of the message, which
        // is logged.
        let host = &authority[at + 1..];
        return Err(format!(
            "\"http://…@{host}{path}\" has user:password@ in it: function urls take no credentials"
        ));
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let digits = &authority[i + 1..];
            // u16's parser takes a `+`; a url's port is digits only (and 0 is no port).
            let port = digits
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0 && digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("{url:?} has a bad port"))?;
            (&authority[..i], port)
        }
        _ => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    // A name or an IPv4 address, or an IPv6 one in brackets: `{id}` or `${x}` names no
    // host (the url is not a template but for `${stageVariables.NAME}`).
    let name = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
    let ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        }
        None => host.bytes().all(name),
    };
    if !ok {
        return Err(format!("{url:?} has a bad host {host:?}"));
    }
    // A query is the Invoke API's (`…/invocations?Qualifier=live` picks an alias), sent
    // as written; the client's query travels in the event. It needs a path before it.
    if path.starts_with('?') {
        return Err(format!(
            "{url:?} has a query but no path: write the path before the ? (…/invocations?Qualifier=…)"
        ));
    }
    if path.contains('#') {
        return Err(format!("{url:?} has a #: a fragment is never sent"));
    }
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "{url:?} has a space, control or non-ASCII character in its path: percent-encode it (%20, %C3%A9)"
        ));
    }
    if path.contains(['{', '}']) {
        return Err(format!(
            "{url:?} has {{ or }} in its path: a function url is no template (only ${{stageVariables.NAME}} is replaced); percent-encode them (%7B, %7D)"
        ));
    }
    let before_query = path.split('?').next().unwrap_or_default();
    if crate::http1::has_dot_segment(before_query.as_bytes()) {
        return Err(format!(
            "{url:?} has a . or .. segment, which the function endpoint would resolve to another path"
        ));
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok((host, port, path))
}

/// Why a call failed; `Stale` means a pooled connection refused the event as it was
/// written (the endpoint had closed it), so sending again on a new connection is safe;
/// `TimedOut`, that the route's timeout (or the endpoint's `connect_timeout`) passed
/// first; `Rejected`, that the Invoke API answered a non-2xx status without a function
/// error (throttled 429, 413, 404, 5xx): the function did not run.
enum Fail {
    Stale(String),
    TimedOut(String),
    Rejected(String),
    Other(String),
}

impl Fail {
    /// The status and message the client gets: API Gateway answers 500 when the Lambda
    /// API rejects the invocation, 502 when the function fails or answers in the wrong
    /// shape, both with the same message.
    fn answer(&self) -> (u16, &'static str) {
        match self {
            Fail::TimedOut(_) => (504, "Endpoint request timed out"),
            Fail::Rejected(_) => (500, "Internal server error"),
            Fail::Stale(_) | Fail::Other(_) => (502, "Internal server error"),
        }
    }

    fn reason(self) -> String {
        match self {
            Fail::Stale(s) | Fail::TimedOut(s) | Fail::Rejected(s) | Fail::Other(s) => s,
        }
    }
}

/// Where the answer's body is: in `ubuf`, or decoded from chunks.
enum Answer {
    InBuf(Range<usize>),
    Decoded(Vec<u8>),
}

/// Serves one request through the function; returns whether the client connection can
/// carry another request.
pub async fn invoke(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    l: &LambdaIntegration,
) -> bool {
    let keep = serve(ctx, gen, c, l).await;
    // Whatever the outcome: a refused or failed call grew the buffers as much.
    shrink(c);
    keep
}

async fn serve(ctx: &WorkerCtx, gen: &Generation, c: &mut Conn, l: &LambdaIntegration) -> bool {
    // The request time is the arrival, not the end of the upload.
    c.req.time_ms();
    let consumed = match c.read_whole_body(gen).await {
        Ok(n) => n,
        Err((status, message)) => {
            c.head.keep_alive = false;
            return c.answer(ctx, gen, status, message, &[]).await;
        }
    };
    let head_len = c.head.head_len;
    // Read whole, a chunked body was decoded in place.
    let body = lambda_event::Body::new(
        c.head.header(&c.rbuf, "content-type"),
        &c.rbuf[head_len..consumed],
    );
    let cap = event_body_cap(gen.snap.server.limits.max_body_bytes);
    let json_len = body.json_len(cap);
    if let Some(n) = json_len.filter(|&n| n > cap) {
        // Lambda would refuse such an event (RequestEntityTooLargeException) and API
        // Gateway answers the client 413; unrefused, a body of control characters made
        // a 63 MB event of a 10 MiB body, per request.
        let reason = format!(
            "the body is {n} bytes as a JSON string in the event, over {cap} (the larger of Lambda's invoke limit and max_body_bytes in base64)"
        );
        if let Some(suppressed) = log_budget() {
            let id = String::from_utf8_lossy(&c.request_id).into_owned();
            warn!(url = %l.url, request_id = %id, reason = %reason, suppressed, "lambda event too large");
        }
        c.out.texts().integration.push_str(&reason);
        return answer_after_body(ctx, gen, c, consumed, 413, "Request Entity Too Large").await;
    }

    // Room for the request head first; the head is filled in once the event's length is
    // known, and the write starts where the head does.
    let room = l.head.len() + LENGTH_ROOM;
    c.wbuf.clear();
    // Enough for the head, the request head as JSON and the body: one allocation (text
    // that was not counted is at most `cap`; most of it is plain, base64's size is a guess).
    let body_room = json_len.unwrap_or((consumed - head_len) / 3 * 4);
    c.wbuf.reserve(room + 2 * head_len + body_room + 1024);
    c.wbuf.resize(room, 0);
    let trace_id = hop_trace(c);
    let added = lambda_event::Added {
        port: c.stream.local_port(),
        trace_id: &trace_id,
    };
    let view = request_view!(c, &gen.snap, &c.rbuf);
    lambda_event::write_event(&mut c.wbuf, &view, l.format, &body, &added);
    let start = fill_head(&mut c.wbuf, room, &l.head);

    // The timeout is the call's: counted once the event is ready, not during a slow
    // upload (which `body_timeout` bounds), so a function is never invoked with no time
    // left to hear its answer.
    let sending = Instant::now();
    let deadline = sending + l.timeout;
    let called = call(gen, c, l, start, deadline).await;
    c.out.integration_time = Some(sending.elapsed());
    let reply = match called {
        Ok(answer) => {
            let raw = match &answer {
                Answer::InBuf(r) => &c.ubuf[r.clone()],
                Answer::Decoded(v) => &v[..],
            };
            lambda_response::parse(l.format, raw)
                .map_err(|r| ((502, "Internal server error"), r.into_reason()))
        }
        Err(f) => Err((f.answer(), f.reason())),
    };
    let mut reply = match reply {
        Ok(reply) => reply,
        Err(((status, message), reason)) => {
            if let Some(suppressed) = log_budget() {
                let id = String::from_utf8_lossy(&c.request_id).into_owned();
                warn!(url = %l.url, request_id = %id, reason = %reason, suppressed, "lambda function failed");
            }
            c.out.texts().integration.push_str(&reason);
            return answer_after_body(ctx, gen, c, consumed, status, message).await;
        }
    };
    // `$context.integration.status`: what the function code returned.
    c.out.function_status = Some(reply.status);
    reply.default_content_type(l.format);
    let keep = c.head.keep_alive && !c.closing(ctx);
    write_reply(gen, c, &reply, keep);
    c.rbuf.advance(consumed);
    if c.flush_response(keep).await.is_err() {
        return false;
    }
    keep
}

/// Calls a function with a ready JSON event (a Lambda authorizer's) over the same
/// client, pools and error handling as the integration; returns the answer body, or why
/// the call failed. Leaves the request (`rbuf`) untouched and `integration_status` as it was.
pub(crate) async fn call_json(
    gen: &Generation,
    c: &mut Conn,
    l: &LambdaIntegration,
    event: &[u8],
) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + l.timeout;
    let room = l.head.len() + LENGTH_ROOM;
    c.wbuf.clear();
    c.wbuf.resize(room, 0);
    c.wbuf.extend_from_slice(event);
    let start = fill_head(&mut c.wbuf, room, &l.head);
    let status = c.out.integration_status;
    let called = call(gen, c, l, start, deadline).await;
    c.out.integration_status = status;
    c.wbuf.clear();
    match called {
        Ok(Answer::InBuf(r)) => Ok(c.ubuf[r].to_vec()),
        Ok(Answer::Decoded(v)) => Ok(v),
        Err(f) => Err(f.reason()),
    }
}

/// Failure log lines a worker writes per second; a failing function under load would
/// otherwise write one line per request.
const LOG_PER_SECOND: u32 = 20;

thread_local! {
    /// (the second, lines written in it, lines left out since the last one written).
    static LOG_BUDGET: std::cell::Cell<(u64, u32, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
}

/// `Some(lines left out before this one)` when a failure may be logged now.
fn log_budget() -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LOG_BUDGET.with(|b| {
        let (second, written, left_out) = b.get();
        let (written, left_out) = if second == now {
            (written, left_out)
        } else {
            (0, left_out)
        };
        if written >= LOG_PER_SECOND {
            b.set((now, written, left_out + 1));
            return None;
        }
        b.set((now, written + 1, 0));
        Some(left_out)
    })
}

/// Large bodies grow the connection's buffers; a keep-alive connection should not hold
/// megabytes between requests, nor a worker after them: the allocator is asked to
/// return what was freed (it kept it: 8 requests of 10 MiB left a worker 160 MB above
/// its base for good).
fn shrink(c: &mut Conn) {
    const KEEP: usize = 1 << 20;
    let mut freed = false;
    if c.wbuf.capacity() > KEEP {
        c.wbuf = Vec::with_capacity(4096);
        freed = true;
    }
    if c.ubuf.capacity() > KEEP {
        c.ubuf = bytes::BytesMut::new();
        freed = true;
    }
    if c.rbuf.capacity() > KEEP && c.rbuf.len() < KEEP / 16 {
        let mut fresh = bytes::BytesMut::with_capacity(16 * 1024);
        fresh.extend_from_slice(&c.rbuf);
        c.rbuf = fresh;
        freed = true;
    }
    if freed {
        // SAFETY: mi_collect only frees pages mimalloc no longer uses.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}

/// Writes the request head right-aligned into `buf[..room]`; returns where it starts.
fn fill_head(buf: &mut [u8], room: usize, head: &[u8]) -> usize {
    let mut line = Vec::with_capacity(LENGTH_ROOM);
    line.extend_from_slice(b"content-length: ");
    encode::decimal(&mut line, (buf.len() - room) as u64);
    line.extend_from_slice(b"\r\n\r\n");
    let start = room - line.len() - head.len();
    buf[start..start + head.len()].copy_from_slice(head);
    buf[start + head.len()..room].copy_from_slice(&line);
    start
}

/// Hop-by-hop and framing headers are the gateway's to write, as are its request ids.
/// The hop-by-hop list is the relay's (`HTTP2-Settings` among them), kept in one place.
fn skip_reply_header(name: &str) -> bool {
    let name = name.as_bytes();
    // The gateway's answer: its own current Date (a function's may be stale or not a
    // date at all) and Server, as the README says of every answer it makes.
    hop::is_always(name)
        || hop::is_framing(name)
        || name.eq_ignore_ascii_case(b"date")
        || name.eq_ignore_ascii_case(b"server")
        || encode::is_request_id(name)
}

fn write_reply(gen: &Generation, c: &mut Conn, reply: &Reply, keep: bool) {
    let snap = &*gen.snap;
    let plan = compress::decide_whole(gen, c, reply);
    let compresses = compress::setting(gen, c).is_some();
    let edits = Edits::find(snap, &c.req, reply.status);
    let view = request_view!(c, snap, &c.rbuf);
    let resp = |name: &[u8], out: &mut Vec<u8>| reply.joined(name, out);
    let compressed = plan
        .coding
        .map(|coding| compress::compress_whole(coding, &reply.body));
    let body = compressed.as_deref().unwrap_or(&reply.body);
    let out = &mut c.wbuf;
    out.clear();
    let status = match &edits {
        Some(e) => e.status(reply.status, &view, &resp, out),
        None => reply.status,
    };
    encode::status_line(out, status);
    for (name, value) in &reply.headers {
        if skip_reply_header(name)
            || edits.as_ref().is_some_and(|e| e.drops(name.as_bytes()))
            || plan.drops(name.as_bytes())
        {
            continue;
        }
        encode::header(out, name.as_bytes(), value.as_bytes());
    }
    if let Some(e) = &edits {
        e.write_headers(&view, &resp, out);
    }
    let etag = reply
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("etag"))
        // A mapped (or removed) ETag is not joined by the function's, weakened.
        .filter(|_| !edits.as_ref().is_some_and(|e| e.drops(b"etag")));
    plan.write_headers(etag.map(|(_, v)| v.as_bytes()), out);
    compress::restore_vary(
        compresses,
        edits.as_ref().is_some_and(|e| e.drops(b"vary")),
        (reply.headers.iter()).map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        out,
    );
    c.out.status = status;
    // A 205 has no content (RFC 9110 §15.3.6); unlike a 204 it is framed, with length 0.
    let body: &[u8] = if status == 205 { &[] } else { body };
    let bodiless = matches!(status, 204 | 304);
    if !bodiless {
        out.extend_from_slice(b"content-length: ");
        encode::decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    encode::own_head_end(out, &c.request_id, keep, c.head.minor_version == 0);
    if !bodiless && c.head.method != Method::Head {
        out.extend_from_slice(body);
        c.out.body_sent = body.len() as u64;
    }
}

/// A gateway answer once the whole request (`consumed` bytes of `rbuf`) has been read.
async fn answer_after_body(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    consumed: usize,
    status: u16,
    message: &'static str,
) -> bool {
    // The answer (a gateway response's `$context` values, CORS's Origin) reads the head:
    // kept apart (split off, not copied), as after a proxied body.
    c.req.saved_head = Some(c.rbuf.split_to(c.head.head_len));
    c.rbuf.advance(consumed - c.head.head_len);
    c.answer_consumed(ctx, gen, status, message).await
}

#[cfg(test)]
#[path = "lambda_tests.rs"]
mod tests;
