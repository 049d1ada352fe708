//! One invoke on the wire: the event sent over a pooled keep-alive connection to the
//! function endpoint (or a fresh one), the answer read back within the route's timeout.

use std::time::Instant;

use bytes::Buf;
use monoio::buf::IoBuf;
use monoio::io::AsyncWriteRentExt;
use tracing::debug;

use super::{lambda_response, Answer, Fail, LAMBDA_PAYLOAD, MAX_RESPONSE_HEAD, TIMED_OUT};
use crate::config::compile::LambdaIntegration;
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::Method;
use crate::http1::response::{parse_response, ResponseBody};
use crate::metrics::cells::bump;
use crate::runtime::workers::Generation;
use crate::server::conn::Conn;
use crate::server::conn_io::read_into;
use crate::tls::UpstreamIo;

/// Sends `wbuf[start..]` and reads the answer into `ubuf`, retrying once on a fresh
/// connection when a pooled one turns out to be closed.
pub(super) async fn call(
    gen: &Generation,
    c: &mut Conn,
    l: &LambdaIntegration,
    start: usize,
    deadline: Instant,
) -> Result<Answer, Fail> {
    let Some(mut lease) = gen.pools.checkout(l.upstream) else {
        return Err(Fail::Other("no pool for the function endpoint".into()));
    };
    // Answers carry bodies base64-encoded or escaped: allow twice the request limit, and
    // never less than what Lambda lets a function answer, so a small max_body_bytes does
    // not refuse answers a function may give.
    let limit = (gen.snap.server.limits.max_body_bytes.saturating_mul(2))
        .saturating_add(1 << 20)
        .max(LAMBDA_PAYLOAD);
    let mut retried = false;
    loop {
        let (stream, reused) = match lease.pooled.take() {
            Some(s) => {
                bump(&lease.cells().reused, 1);
                (s, true)
            }
            None => {
                let wait = deadline.saturating_duration_since(Instant::now());
                let connected =
                    monoio::time::timeout(wait, crate::integration::http::connect(&lease)).await;
                let failure = match connected {
                    Ok(Ok(s)) => {
                        bump(&lease.cells().new, 1);
                        Ok(s)
                    }
                    Ok(Err(e)) if e.kind == crate::error::Kind::UpstreamTimeout => Err((
                        &lease.cells().timeout,
                        Fail::TimedOut(e.detail.into_owned()),
                    )),
                    Ok(Err(e)) => Err((&lease.cells().error, Fail::Other(e.detail.into_owned()))),
                    Err(_) => Err((
                        &lease.cells().timeout,
                        Fail::TimedOut("timed out connecting".into()),
                    )),
                };
                match failure {
                    Ok(s) => (s, false),
                    Err((cell, why)) => {
                        bump(cell, 1);
                        lease.release(None);
                        return Err(why);
                    }
                }
            }
        };
        match exchange(c, stream, start, deadline, limit).await {
            Ok((answer, keep)) => {
                lease.release(keep);
                return Ok(answer);
            }
            Err(Fail::Stale(why)) if reused && !retried => {
                debug!(url = %l.url, why = %why, "pooled connection was stale; retrying on a new one");
                retried = true;
            }
            Err(f) => {
                lease.count_failure(matches!(&f, Fail::TimedOut(_)));
                lease.release(None);
                return Err(f);
            }
        }
    }
}

/// One request/answer on one connection; also returns the connection if it can be reused.
async fn exchange(
    c: &mut Conn,
    mut stream: UpstreamIo,
    start: usize,
    deadline: Instant,
    limit: u64,
) -> Result<(Answer, Option<UpstreamIo>), Fail> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let timed_out = || Fail::TimedOut(TIMED_OUT.into());
    let buf = std::mem::take(&mut c.wbuf);
    let sent = monoio::time::timeout(left(), stream.write_all(buf.slice(start..))).await;
    let (res, slice) = sent.map_err(|_| timed_out())?;
    // The buffer keeps the request so a retry can send it again.
    c.wbuf = slice.into_inner();
    // A write that fails may have met an early answer: an Invoke API that refuses a large
    // event (413) answers after its head and closes. That answer is read as any other
    // (a refusal is a 500); with none there, the connection was stale.
    let write_failed = res.err();

    c.ubuf.clear();
    // The event was written whole to a connection that had passed the pool's check. A
    // plain close now, before any byte of the answer, may come after the function ran
    // (an endpoint that read the event, then died): an invoke is not idempotent, so
    // that is a 502, never a second invoke (nginx does not resend a POST either). A
    // reset is different: the kernel resets a connection closed with unread bytes, so
    // the endpoint had not read the whole event (it closed the idle connection as the
    // event arrived): that is a stale connection, sent again on a new one. So is a
    // close that a reset follows (`reset_follows`): the endpoint closed the idle
    // connection (FIN) just after the pool's check, and the event then reached a closed
    // socket.
    let mut received = false;
    loop {
        if !c.ubuf.is_empty() {
            match parse_response(&c.ubuf, Method::Post, MAX_RESPONSE_HEAD, &mut c.rhead) {
                // What follows a 101 is not HTTP: never read it as the answer.
                Ok(true) if c.rhead.status == 101 => {
                    return Err(Fail::Other(
                        "the function endpoint switched protocols".into(),
                    ))
                }
                Ok(true) if c.rhead.status < 200 => {
                    c.ubuf.advance(c.rhead.head_len);
                    continue;
                }
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(Fail::Other(format!("bad answer head: {e:?}"))),
            }
        }
        let read = monoio::time::timeout(left(), read_more(c, &mut stream)).await;
        let read = read.map_err(|_| timed_out())?;
        if let (Some(e), false, Ok(0) | Err(_)) = (&write_failed, received, &read) {
            return Err(Fail::Stale(format!("write: {e}")));
        }
        match read {
            Ok(0) if !received => {
                return Err(match reset_follows(&stream, left()).await {
                    Some(e) => Fail::Stale(format!("closed, then {e}: the event was not read")),
                    None => Fail::Other("closed before answering".into()),
                })
            }
            Ok(0) => {
                return Err(Fail::Other(
                    "closed in the middle of the answer head".into(),
                ))
            }
            Err(e) if !received && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Fail::Stale(format!("read: {e}")))
            }
            Err(e) => return Err(Fail::Other(format!("read: {e}"))),
            Ok(_) => received = true,
        }
    }
    let head_len = c.rhead.head_len;
    let end;
    let answer = match c.rhead.body {
        ResponseBody::None => {
            end = head_len;
            Answer::InBuf(head_len..head_len)
        }
        ResponseBody::Length(n) if n > limit => {
            return Err(Fail::Other(format!("answer of {n} bytes is too large")))
        }
        ResponseBody::Length(n) => {
            end = head_len + n as usize;
            while c.ubuf.len() < end {
                let read = monoio::time::timeout(left(), read_more(c, &mut stream)).await;
                match read.map_err(|_| timed_out())? {
                    Ok(k) if k > 0 => {}
                    _ => return Err(Fail::Other("closed in the middle of the answer".into())),
                }
            }
            Answer::InBuf(head_len..end)
        }
        ResponseBody::Chunked => {
            let mut dec = ChunkedDecoder::new(limit);
            let mut body = Vec::new();
            let mut pos = head_len;
            loop {
                let buf = &c.ubuf[pos..];
                let scan = dec
                    .scan(buf, |r| body.extend_from_slice(&buf[r]))
                    .map_err(|e| Fail::Other(format!("answer body: {e}")))?;
                pos += scan.consumed;
                if scan.done {
                    break;
                }
                let read = monoio::time::timeout(left(), read_more(c, &mut stream)).await;
                match read.map_err(|_| timed_out())? {
                    Ok(k) if k > 0 => {}
                    _ => return Err(Fail::Other("closed in the middle of the answer".into())),
                }
            }
            end = pos;
            Answer::Decoded(body)
        }
        ResponseBody::UntilClose => {
            loop {
                let read = monoio::time::timeout(left(), read_more(c, &mut stream)).await;
                match read.map_err(|_| timed_out())? {
                    Ok(0) => break,
                    Ok(_) if (c.ubuf.len() - head_len) as u64 > limit => {
                        return Err(Fail::Other("answer is too large".into()))
                    }
                    Ok(_) => {}
                    Err(e) if !received && e.kind() == std::io::ErrorKind::ConnectionReset => {
                        return Err(Fail::Stale(format!("read: {e}")))
                    }
                    Err(e) => return Err(Fail::Other(format!("read: {e}"))),
                }
            }
            end = c.ubuf.len();
            Answer::InBuf(head_len..end)
        }
    };
    // The Lambda service's status (`$context.integrationStatus`): 200 for an invocation
    // it ran, even one whose code failed, as AWS logs it.
    c.out.integration_status = Some(c.rhead.status);
    if let Some(kind) = c.rhead.header(&c.ubuf, "x-amz-function-error") {
        let kind = String::from_utf8_lossy(kind).into_owned();
        let body = match &answer {
            Answer::InBuf(r) => &c.ubuf[r.clone()],
            Answer::Decoded(v) => &v[..],
        };
        // The error's type and message, never its stack trace.
        let error = serde_json::from_slice(body)
            .ok()
            .and_then(|v: serde_json::Value| lambda_response::function_error(v.as_object()?));
        return Err(Fail::Other(match error {
            Some(error) => format!("{error} [X-Amz-Function-Error: {kind}]"),
            None => format!("function error ({kind})"),
        }));
    }
    if !(200..300).contains(&c.rhead.status) {
        let kind = c
            .rhead
            .header(&c.ubuf, "x-amzn-errortype")
            .unwrap_or_default();
        let kind = String::from_utf8_lossy(&kind[..kind.len().min(100)]).into_owned();
        return Err(Fail::Rejected(format!(
            "the function endpoint answered {}{}{}",
            c.rhead.status,
            if kind.is_empty() { "" } else { " " },
            kind
        )));
    }
    // Bytes past the answer mean the endpoint is out of step: don't reuse it.
    let reusable = c.rhead.keep_alive && end == c.ubuf.len() && write_failed.is_none();
    Ok((answer, reusable.then_some(stream)))
}

async fn read_more(c: &mut Conn, stream: &mut UpstreamIo) -> std::io::Result<usize> {
    if !c.ubuf.is_empty() {
        // Part of the answer came: ask for the rest now.
        crate::integration::connect::ack_now(stream);
    }
    let (res, buf) = read_into(stream, std::mem::take(&mut c.ubuf)).await;
    c.ubuf = buf;
    res
}

/// How long a close before any answer waits for the reset that says the endpoint never
/// read the event: over loopback it is there at once; over a network it follows the
/// FIN by a round trip. A close with no reset (the endpoint read the event, then died)
/// is a 502 this much later.
const RESET_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// After the end of the stream, before any answer: the reset that follows within
/// [`RESET_GRACE`] (or `left`), if one does.
async fn reset_follows(stream: &UpstreamIo, left: std::time::Duration) -> Option<std::io::Error> {
    use std::os::fd::AsRawFd;
    let fd = stream.tcp().as_raw_fd();
    let until = Instant::now() + RESET_GRACE.min(left);
    loop {
        if let Some(e) = crate::tls::take_socket_error(fd) {
            return Some(e);
        }
        if Instant::now() >= until {
            return None;
        }
        monoio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
