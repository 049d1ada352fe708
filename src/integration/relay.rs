//! Streaming response bodies through the proxy without holding them whole (request
//! bodies: `request_body`, which shares `write_prefix` and `with_last_chunk`).
//!
//! Response bodies go upstream → client in the chunks they arrive in: content-length and chunked bodies pass through as
//! they are; a close-delimited body is re-framed as chunked for HTTP/1.1 clients so their
//! connection can stay open; HTTP/1.0 clients get chunked bodies de-chunked, and then the
//! connection closes.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::tls::UpstreamIo;

pub(crate) use super::body_error::{bad_chunked_body, cut_short, truncated};
use super::body_error::{nothing_sent, on_upstream_side};
use bytes::{Buf, BytesMut};
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};

use crate::http1::body::{ChunkedDecoder, Relay, LAST_CHUNK};
use crate::http1::encode;
use crate::http1::hop::{is_framing, write_transfer_encoding, HopByHop};
use crate::http1::parse::Method;
use crate::http1::response::{ResponseBody, ResponseHead};
use crate::pipeline::compress;
use crate::pipeline::context::request_view;
use crate::pipeline::response::Edits;
use crate::runtime::coarse_timer::CoarseTimers;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use crate::server::conn_io::read_into;

/// Sends the first `n` bytes of `buf` (all of it when n ≥ len) without copying.
pub(super) async fn write_prefix<S: AsyncWriteRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<()> {
    if n == 0 {
        return Ok(());
    }
    if n >= buf.len() {
        let (res, mut back) = stream.write_all(std::mem::take(buf)).await;
        back.clear();
        *buf = back;
        res.map(|_| ())
    } else {
        let part = buf.split_to(n);
        stream.write_all(part).await.0.map(|_| ())
    }
}

/// How the response body reaches the client.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    /// Chunked from the upstream, relayed as is.
    Chunked,
    /// Chunked from the upstream, payload only (HTTP/1.0 client).
    Dechunk,
    /// Close-delimited from the upstream, framed as chunks for the client.
    Enchunk,
    /// Close-delimited both ways.
    UntilClose,
}

pub struct Outcome {
    /// The upstream connection, if it can carry another request.
    pub reusable: Option<UpstreamIo>,
    pub client_keep_alive: bool,
    /// The body broke on the upstream's side (body_error::report says so).
    pub failed: Option<std::io::Error>,
}

/// Writes the response head from `c.rhead`/`c.ubuf` and relays the body.
pub async fn response(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    mut up: UpstreamIo,
    read_wait: Duration,
) -> Outcome {
    let http11 = c.head.minor_version == 1;
    // Judged while `ubuf` still holds the head.
    let late_body = late_body_possible(c);
    let framing = match c.rhead.body {
        _ if c.head.method == Method::Head => Framing::None,
        ResponseBody::None => Framing::None,
        ResponseBody::Length(n) => Framing::Length(n),
        ResponseBody::Chunked if http11 => Framing::Chunked,
        ResponseBody::Chunked => Framing::Dechunk,
        ResponseBody::UntilClose if http11 => Framing::Enchunk,
        ResponseBody::UntilClose => Framing::UntilClose,
    };
    // Response compression (pipeline/compress.rs) re-frames the body it encodes.
    let encoded = compress::decide(gen, c);
    let framing = match framing {
        _ if encoded && http11 => Framing::Enchunk,
        _ if encoded => Framing::UntilClose,
        f => f,
    };
    let keep = c.head.keep_alive
        && !c.closing(ctx)
        && !matches!(framing, Framing::Dechunk | Framing::UntilClose);
    c.out.integration_status = Some(c.rhead.status);
    if let Some(cap) = &mut c.capture {
        cap.start(&c.rhead, &c.ubuf, &c.compress); // response cache: store this one?
    }
    write_response_head(gen, c, framing, keep);
    let head_len = c.rhead.head_len;
    c.ubuf.advance(head_len);

    let done = match framing {
        _ if encoded => compress::relay(c, &mut up, &ctx.timers, read_wait).await,
        Framing::None => c.flush_response(keep).await.map(|()| true),
        Framing::Length(n) => relay_length(c, &mut up, n, keep, &ctx.timers, read_wait).await,
        Framing::Chunked | Framing::Dechunk => {
            relay_chunked(
                c,
                &mut up,
                framing == Framing::Dechunk,
                &ctx.timers,
                read_wait,
            )
            .await
        }
        Framing::Enchunk | Framing::UntilClose => relay_until_close(
            c,
            &mut up,
            framing == Framing::Enchunk,
            &ctx.timers,
            read_wait,
        )
        .await
        .map(|()| false),
    };
    if let (Ok(true), Some(cap)) = (&done, &mut c.capture) {
        cap.complete();
    }
    if matches!(&done, Err(e) if nothing_sent(e)) {
        // The body broke before any byte reached the client: it gets a 502 in place of
        // a head it never saw, not a bare close.
        let keep = c.answer_consumed(ctx, gen, 502, "Bad Gateway").await;
        return Outcome {
            reusable: None,
            client_keep_alive: keep,
            failed: done.err(),
        };
    }
    match done {
        Ok(complete) => {
            // Leftover bytes after a complete body mean the upstream is out of step.
            let reusable = complete && c.rhead.keep_alive && c.ubuf.is_empty() && !late_body;
            Outcome {
                reusable: reusable.then_some(up),
                client_keep_alive: keep,
                failed: None,
            }
        }
        Err(e) => {
            c.out.cut_short = true;
            Outcome {
                reusable: None,
                client_keep_alive: false,
                failed: on_upstream_side(&e).then_some(e),
            }
        }
    }
}

/// Whether a backend may still be writing a body this exchange has none of: the body it
/// would send a GET, after its HEAD answer (some frameworks write it, in a write of its
/// own), or after a 204 or 304 that announced one (a length above 0, or chunked: a
/// handler that sets the length and writes the body anyway, as `http.server` ones do).
/// The checkout's peek cannot see bytes not there yet, and the next request on the
/// connection would read them as its answer (another client's): such a connection is
/// closed, not pooled. HEAD is rare, and a 304 usually announces nothing. `c.ubuf` must
/// still hold the response head.
fn late_body_possible(c: &Conn) -> bool {
    c.head.method == Method::Head
        || (matches!(c.rhead.status, 204 | 304)
            && (c.rhead.content_length.is_some_and(|n| n > 0)
                || c.rhead.headers.iter().any(|h| {
                    h.name
                        .get(&c.ubuf)
                        .eq_ignore_ascii_case(b"transfer-encoding")
                })))
}

/// Also writes the heads of cache hits on routes with response edits (from the stored
/// head, parsed into `c.rhead`/`c.ubuf`), so a hit's head is what a miss's would be.
pub(crate) fn write_response_head(gen: &Generation, c: &mut Conn, framing: Framing, keep: bool) {
    let compresses = compress::setting(gen, c).is_some();
    let buf = &c.ubuf[..];
    let out = &mut c.wbuf;
    out.clear();
    // Response mapping and CORS; None (nothing to change) for most routes.
    let edits = Edits::find(&gen.snap, &c.req, c.rhead.status);
    // The head where it is: kept apart after a proxied request, still in `rbuf` on a
    // cache hit (an empty view gave an `https://*` API's hit an empty echoed origin).
    let view = request_view!(c, &gen.snap, c.req.saved_head.as_deref().unwrap_or(&c.rbuf));
    let rhead = &c.rhead;
    let resp = |name: &[u8], out: &mut Vec<u8>| upstream_header(rhead, buf, name, out);
    let status = match &edits {
        Some(e) => e.status(c.rhead.status, &view, &resp, out),
        None => c.rhead.status,
    };
    c.out.status = status;
    out.extend_from_slice(b"HTTP/1.1 ");
    encode::decimal(out, u64::from(status));
    out.push(b' ');
    if status == c.rhead.status {
        out.extend_from_slice(c.rhead.reason.get(buf));
    } else {
        out.extend_from_slice(encode::reason_phrase(status).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let hop = HopByHop::new(&c.rhead.headers, buf, c.rhead.connection_names);
    for hs in &c.rhead.headers {
        let name = hs.name.get(buf);
        // Framing is written below for the body this relay sends, never copied; so are
        // the request ids (`own_head_end`).
        if is_framing(name)
            || encode::is_request_id(name)
            || hop.drops_response(c.rhead.status, name)
            || edits.as_ref().is_some_and(|e| e.drops(name))
            || c.compress.drops(name)
        {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(hs.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    if let Some(e) = &edits {
        e.write_headers(&view, &resp, out);
    }
    // A mapping that removes or overwrites the ETag has the last word: the backend's,
    // weakened, is not written back beside it.
    let etag = c.rhead.header(buf, "etag");
    let etag = etag.filter(|_| !edits.as_ref().is_some_and(|e| e.drops(b"etag")));
    c.compress.write_headers(etag, out);
    compress::restore_vary(
        compresses,
        edits.as_ref().is_some_and(|e| e.drops(b"vary")),
        (c.rhead.headers.iter()).map(|h| (h.name.get(buf), h.value.get(buf))),
        out,
    );
    match framing {
        Framing::Length(n) => content_length(out, n),
        // No body follows, but a HEAD answer and a 304 keep the representation's length
        // (RFC 9110 §8.6); 1xx and 204 never carry one, nor a HEAD answer compression
        // decided to compress: its GET's length is unknown until the body is encoded.
        Framing::None
            if !matches!(c.rhead.status, 100..=199 | 204) && c.compress.coding.is_none() =>
        {
            if let Some(n) = c.rhead.content_length {
                content_length(out, n);
            }
        }
        Framing::Chunked => {
            // Relayed raw; chunked is the only coding a response may have (response.rs).
            write_transfer_encoding(&c.rhead.headers, buf, out);
        }
        Framing::Enchunk => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // Close-delimited for the client: `keep` is false, so the head says close.
        Framing::None | Framing::Dechunk | Framing::UntilClose => {}
    }
    encode::own_head_end(out, &c.request_id, keep, c.head.minor_version == 0);
}

fn content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    encode::decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Every value of an upstream response header, joined with commas.
fn upstream_header(rhead: &ResponseHead, buf: &[u8], name: &[u8], out: &mut Vec<u8>) {
    let mut first = true;
    for hs in rhead.headers.iter() {
        if hs.name.get(buf).eq_ignore_ascii_case(name) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(hs.value.get(buf));
        }
    }
}

/// Reads more of the upstream's response into `ubuf`, for at most `wait` (coarse). A
/// read that waits past `CLIENT_LOOK_EVERY` looks at the client: one that has gone lets
/// the backend go at once, as before the head (`http::unless_client_left`) and as nginx
/// does; a quiet stream (events seconds apart, a body that comes late) held its backend
/// connection until the backend's next byte or the integration timeout.
pub(crate) async fn read_upstream(
    c: &mut Conn,
    up: &mut UpstreamIo,
    timers: &CoarseTimers,
    wait: Duration,
) -> std::io::Result<usize> {
    // More of the body is wanted: ask for it now.
    super::connect::ack_now(up);
    let client = std::os::fd::AsRawFd::as_raw_fd(c.stream.tcp());
    let mut read = std::pin::pin!(read_into(up, std::mem::take(&mut c.ubuf)));
    // The clock, not the coarse one (see `http::proxy`'s deadline): never early.
    // One clock reading per read that does not wait long, as before the look was added.
    let mut now = Instant::now();
    let give_up = now + wait;
    let (res, buf) = loop {
        let look = give_up.min(now + super::http::CLIENT_LOOK_EVERY);
        let waited = timers.within(look, read.as_mut()).await;
        now = Instant::now();
        match waited {
            Ok(r) => break r,
            Err(_) if now >= give_up => {
                let why = "the upstream sent no more of the body within the integration timeout";
                return Err(super::body_error::upstream(
                    std::io::ErrorKind::TimedOut,
                    why,
                ));
            }
            Err(_) if crate::tls::peer_closed(client) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the client closed its connection while the answer streamed",
                ));
            }
            Err(_) => {}
        }
    };
    c.ubuf = buf;
    res.map_err(|e| super::body_error::upstream(e.kind(), format!("reading the body: {e}")))
}

/// Returns Ok(true) when the whole body went through.
async fn relay_length(
    c: &mut Conn,
    up: &mut UpstreamIo,
    n: u64,
    keep: bool,
    timers: &CoarseTimers,
    wait: Duration,
) -> std::io::Result<bool> {
    // The first body bytes ride with the head in one write.
    let k = n.min(c.ubuf.len() as u64) as usize;
    if let Some(cap) = &mut c.capture {
        cap.body(&c.ubuf[..k]);
    }
    c.out.body_sent = k as u64;
    if k as u64 == n {
        // The whole response at once: a closing connection's FIN goes with it.
        c.finish_with_upstream_bytes(k, keep).await?;
    } else {
        c.write_wbuf_and_upstream_bytes(k).await?;
    }
    let mut left = n - k as u64;
    while left > 0 {
        if read_upstream(c, up, timers, wait).await? == 0 {
            return Err(cut_short());
        }
        let k = left.min(c.ubuf.len() as u64) as usize;
        if let Some(cap) = &mut c.capture {
            cap.body(&c.ubuf[..k]);
        }
        write_prefix(&mut c.stream, &mut c.ubuf, k).await?;
        left -= k as u64;
        c.out.body_sent += k as u64;
    }
    Ok(true)
}

async fn relay_chunked(
    c: &mut Conn,
    up: &mut UpstreamIo,
    dechunk: bool,
    timers: &CoarseTimers,
    wait: Duration,
) -> std::io::Result<bool> {
    let mut dec = ChunkedDecoder::for_response();
    // Nothing has gone to the client yet: the head still waits in `wbuf`.
    let mut first = true;
    loop {
        // `ubuf` starts with what the last scan held back (`Relay`).
        let scan = {
            let (ubuf, wbuf, capture) = (&c.ubuf, &mut c.wbuf, &mut c.capture);
            dec.relay_scan(ubuf, |r| {
                if let Some(cap) = capture {
                    cap.body(&ubuf[r.clone()]);
                }
                if dechunk {
                    wbuf.extend_from_slice(&ubuf[r]);
                }
            })
            .map_err(|_| bad_chunked_body(!first))?
        };
        if dechunk {
            // The payload is in `wbuf`; the framing goes nowhere (held bytes stay).
            c.ubuf
                .advance(if scan.done { scan.consumed } else { scan.send });
            first = false;
            c.flush_wbuf().await?;
        } else {
            let n = with_last_chunk(&mut c.ubuf, scan);
            if first {
                first = false;
                c.write_wbuf_and_upstream_bytes(n).await?;
            } else {
                write_prefix(&mut c.stream, &mut c.ubuf, n).await?;
            }
        }
        c.out.body_sent = dec.payload_len();
        if scan.done {
            return Ok(true);
        }
        if read_upstream(c, up, timers, wait).await? == 0 {
            return Err(cut_short());
        }
    }
}

/// How many bytes of `buf` a chunked relay sends now (`Relay`): when the body ended, its
/// final section is first replaced in place by `LAST_CHUNK` (what follows moves up), so
/// the client or backend gets a last chunk only once the whole body is in.
pub(super) fn with_last_chunk(buf: &mut BytesMut, scan: Relay) -> usize {
    if !scan.done {
        return scan.send;
    }
    let end = scan.send + LAST_CHUNK.len();
    // `0\r\n` and the empty line at least: never shorter than what replaces it.
    debug_assert!(scan.consumed >= end);
    buf[scan.send..end].copy_from_slice(LAST_CHUNK);
    let len = buf.len();
    buf.copy_within(scan.consumed.., end);
    buf.truncate(len - (scan.consumed - end));
    end
}

async fn relay_until_close(
    c: &mut Conn,
    up: &mut UpstreamIo,
    enchunk: bool,
    timers: &CoarseTimers,
    wait: Duration,
) -> std::io::Result<()> {
    loop {
        if !c.ubuf.is_empty() {
            if enchunk {
                let n = c.ubuf.len();
                c.out.body_sent += n as u64;
                let _ = write!(c.wbuf, "{n:x}\r\n");
                c.wbuf.extend_from_slice(&c.ubuf);
                c.wbuf.extend_from_slice(b"\r\n");
                c.ubuf.clear();
            } else {
                c.out.body_sent += c.ubuf.len() as u64;
                c.wbuf.extend_from_slice(&c.ubuf);
                c.ubuf.clear();
            }
        }
        if !c.wbuf.is_empty() {
            c.flush_wbuf().await?;
        }
        if read_upstream(c, up, timers, wait).await? == 0 {
            // A TLS upstream that ends the body without close_notify may have been cut
            // by a forged FIN (RFC 9112 §9.8): no last chunk, so the client sees it too.
            if up.truncated() {
                return Err(truncated());
            }
            if enchunk {
                c.wbuf.extend_from_slice(b"0\r\n\r\n");
                c.flush_wbuf().await?;
            }
            return Ok(());
        }
    }
}
