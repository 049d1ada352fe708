//! Calls a WebSocket route's integration with one event and returns its whole answer.
//! Unlike an HTTP route, nothing streams: the event is a message (at most the message
//! limit) or a handshake, and the answer is read whole (at most `MAX_ANSWER`) because it
//! decides the handshake's status or becomes one message to the client.
//!
//! - `mock`: its status, headers and body; a body of exactly `$request.body` is the
//!   message itself (an echo route needs no backend).
//! - `lambda`: POST of the event (`event.rs`) to the function url; the handler's result
//!   is read as a payload-1.0 response (`{statusCode, headers, body, isBase64Encoded}`);
//!   `X-Amz-Function-Error` or a runtime error object is a failure, and so is a non-2xx
//!   without it (the Invoke API refused the call: `Failed`).
//! - `http`: POST of the message (empty on `$connect`/`$disconnect`) to the integration's
//!   path, with `x-amzn-connection-id`, `x-amzn-route-key` and `x-amzn-event-type`, so a
//!   backend knows which connection to push to through `@connections`; on `$connect` also
//!   the client's query string and end-to-end headers, so it can authenticate the caller
//!   or choose a subprotocol.

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use monoio::io::AsyncWriteRentExt;

use crate::config::compile::{IntegrationRt, PathPart};
use crate::config::model::PayloadFormat;
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::Method;
use crate::http1::response::{parse_response, ResponseBody, ResponseHead};
use crate::integration::connect::{ack_now, connect_by};
use crate::integration::lambda_response;
use crate::runtime::workers::Generation;
use crate::server::conn_io::read_into;
use crate::tls::UpstreamIo;

/// Largest integration answer read (a Lambda result wraps a message of up to 128 KiB,
/// possibly base64-encoded, in JSON).
const MAX_ANSWER: usize = 1024 * 1024;
const MAX_HEAD: usize = 64 * 1024;

/// What an integration answered.
#[derive(Debug, Default)]
pub struct Answer {
    pub status: u16,
    /// As sent: a backend's bytes are not rewritten (a value need not be UTF-8).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    /// A mock's answer is sent even when empty (an echo of an empty message is one).
    pub from_mock: bool,
    /// A function's: the status its endpoint answered (`status` is the one its code
    /// returned).
    pub endpoint_status: Option<u16>,
}

impl Answer {
    /// `$context.integrationStatus` and `$context.integration.status` (for a function:
    /// its endpoint's, 200 for an invocation it ran, and its code's `statusCode`), as on
    /// HTTP routes.
    pub fn logged_statuses(&self) -> (Option<u16>, Option<u16>) {
        match self.endpoint_status {
            Some(endpoint) => (Some(endpoint), Some(self.status)),
            None => (Some(self.status), None),
        }
    }
}

/// One event for an integration.
pub struct Call<'a> {
    pub route_key: &'a str,
    /// CONNECT, MESSAGE or DISCONNECT.
    pub event_type: &'a str,
    pub connection_id: &'a str,
    /// The message (MESSAGE only).
    pub message: &'a [u8],
    /// The Lambda event, built by the caller for lambda integrations only.
    pub lambda_event: Option<&'a [u8]>,
    /// `http` on `$connect`: the client's query string (as sent, after `?`) and its
    /// headers as `name: value\r\n` lines (`handshake::http_connect_headers`).
    pub handshake: Option<(Option<&'a [u8]>, &'a [u8])>,
}

/// Why a call failed: `reason` for the logs, and `status` and `message`, what a
/// handshake answers and a message route's client is told (`{"message":…}`): 500 when a
/// Lambda Invoke API refused the call (a non-2xx without `X-Amz-Function-Error`, e.g. a
/// throttled 429: the function did not run), 504 "Endpoint request timed out" when no
/// answer came within the integration's timeout, 502 for everything else, as an HTTP
/// route's integration answers; "Internal server error" but for the timeout, as API
/// Gateway tells a WebSocket client.
#[derive(Debug, Clone)]
pub struct Failed {
    pub status: u16,
    pub message: &'static str,
    pub reason: String,
}

impl From<String> for Failed {
    fn from(reason: String) -> Self {
        Failed {
            status: 502,
            message: "Internal server error",
            reason,
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

pub async fn call(
    gen: &Generation,
    integration: &IntegrationRt,
    ev: &Call<'_>,
) -> Result<Answer, Failed> {
    match integration {
        IntegrationRt::Mock(m) => Ok(Answer {
            status: m.status,
            headers: (m.headers.iter())
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect(),
            body: if &*m.body == b"$request.body" {
                ev.message.to_vec()
            } else {
                m.body.to_vec()
            },
            from_mock: true,
            endpoint_status: None,
        }),
        IntegrationRt::Lambda(l) => {
            let event = ev.lambda_event.unwrap_or_default();
            let mut head = l.head.to_vec();
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(event.len().to_string().as_bytes());
            head.extend_from_slice(b"\r\n\r\n");
            head.extend_from_slice(event);
            let (status, headers, body) = exchange(gen, l.upstream, head, l.timeout).await?;
            if headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(b"x-amz-function-error"))
            {
                return Err(String::from("the function failed").into());
            }
            if !(200..300).contains(&status) {
                // The Invoke API's reason (TooManyRequestsException, …) goes in the log.
                let kind = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b"x-amzn-errortype"))
                    .map_or(&b""[..], |(_, v)| &v[..v.len().min(100)]);
                let kind = String::from_utf8_lossy(kind);
                let sep = if kind.is_empty() { "" } else { " " };
                return Err(Failed {
                    status: 500,
                    message: "Internal server error",
                    reason: format!("the function endpoint answered {status}{sep}{kind}"),
                });
            }
            let reply =
                lambda_response::parse(PayloadFormat::V1, &body).map_err(|r| r.into_reason())?;
            // The function's answer is the gateway's: Portico writes its own current
            // Date and its Server, as on HTTP routes (integration::lambda).
            let headers = (reply.headers.into_iter())
                .filter(|(n, _)| {
                    !n.eq_ignore_ascii_case("date") && !n.eq_ignore_ascii_case("server")
                })
                .map(|(n, v)| (n.into_bytes(), v.into_bytes()))
                .collect();
            Ok(Answer {
                status: reply.status,
                headers,
                body: reply.body,
                from_mock: false,
                endpoint_status: Some(status),
            })
        }
        IntegrationRt::Http(h) => {
            let mut head = b"POST ".to_vec();
            match &h.path {
                None => head.push(b'/'),
                Some(parts) => {
                    for part in parts {
                        if let PathPart::Literal(b) = part {
                            head.extend_from_slice(b);
                        }
                    }
                }
            }
            if let Some((Some(query), _)) = ev.handshake {
                head.push(b'?');
                head.extend_from_slice(query);
            }
            head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
            // The target's host is written by `exchange` once a lease is taken.
            head.extend_from_slice(b"{HOST}");
            for (name, value) in [
                ("x-amzn-connection-id", ev.connection_id),
                ("x-amzn-route-key", ev.route_key),
                ("x-amzn-event-type", ev.event_type),
            ] {
                head.extend_from_slice(b"\r\n");
                head.extend_from_slice(name.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(value.as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            if let Some((_, lines)) = ev.handshake {
                head.extend_from_slice(lines);
            }
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(ev.message.len().to_string().as_bytes());
            head.extend_from_slice(b"\r\n\r\n");
            head.extend_from_slice(ev.message);
            let (status, headers, body) = exchange(gen, h.upstream, head, h.timeout).await?;
            Ok(Answer {
                status,
                headers,
                body,
                from_mock: false,
                endpoint_status: None,
            })
        }
        IntegrationRt::Misconfigured(why) => {
            Err(format!("integration misconfigured: {why}").into())
        }
    }
}

type Raw = (u16, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

/// Sends `request` to `upstream` over a pooled connection (a stale pooled one is
/// replaced once) and reads the whole answer within `timeout`.
async fn exchange(
    gen: &Generation,
    upstream: usize,
    mut request: Vec<u8>,
    timeout: Duration,
) -> Result<Raw, Failed> {
    let Some(mut lease) = gen.pools.checkout(upstream) else {
        return Err(String::from("no target to call").into());
    };
    // The placeholder is the host line's value, the first line after the request line;
    // a client's query on `$connect` may hold `{HOST}` too, but never a line break.
    const PLACEHOLDER: &[u8] = b"\r\nhost: {HOST}";
    let mut host_at = request
        .windows(PLACEHOLDER.len())
        .position(|w| w == PLACEHOLDER)
        .map(|at| at + PLACEHOLDER.len() - 6..at + PLACEHOLDER.len());
    if let Some(at) = &mut host_at {
        let mut host = Vec::new();
        lease.host(&mut host);
        *at = at.start..at.start + host.len();
        request.splice(at.start..at.start + 6, host);
    }
    let deadline = Instant::now() + timeout;
    let mut retried = false;
    // Failover, as for requests (integration::http): the address first picked, and how
    // many slots after it were passed.
    let (first, mut step) = (lease.slot(), 0);
    loop {
        let (mut stream, reused) = match lease.pooled.take() {
            Some(s) => (s, true),
            None => match connect_by(&lease, deadline)
                .await
                .map_err(|e| e.detail.to_string())
            {
                Ok(s) => (s, false),
                Err(e) => {
                    // Nothing was sent: the call may go to the next address.
                    if Instant::now() < deadline {
                        if let Some(next) = gen.pools.failover(upstream, &lease, first, &mut step) {
                            tracing::debug!(target = %lease.addr, error = %e, next = %next.addr, "upstream failed; trying another target");
                            if let Some(at) = &mut host_at {
                                let mut host = Vec::new();
                                next.host(&mut host);
                                let end = at.start + host.len();
                                request.splice(at.clone(), host);
                                *at = at.start..end;
                            }
                            lease = next;
                            continue;
                        }
                    }
                    lease.release(None);
                    return Err(e.into());
                }
            },
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(wait, round_trip(&mut stream, request.clone())).await {
            Ok(Ok((raw, reusable))) => {
                lease.release(reusable.then_some(stream));
                return Ok(raw);
            }
            Ok(Err((e, nothing_back))) if nothing_back && reused && !retried => {
                tracing::debug!(error = %e, "pooled connection was stale; retrying");
                retried = true;
            }
            Ok(Err((e, nothing_back))) => {
                if nothing_back && !reused {
                    // Closed unanswered on a new connection: passed over as if refused.
                    gen.pools.mark_failed(upstream, &lease);
                }
                lease.release(None);
                return Err(e.into());
            }
            Err(_) => {
                lease.release(None);
                return Err(Failed {
                    status: 504,
                    message: "Endpoint request timed out",
                    reason: "no answer within the integration timeout".into(),
                });
            }
        }
    }
}

/// Err carries whether no byte of answer came back (a retry is then safe).
async fn round_trip(
    stream: &mut UpstreamIo,
    request: Vec<u8>,
) -> Result<(Raw, bool), (String, bool)> {
    let (res, _) = stream.write_all(request).await;
    res.map_err(|e| (format!("write: {e}"), true))?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut head = ResponseHead::new();
    loop {
        // What is left after an interim answer (100 Continue, 103 Early Hints) is parsed
        // before reading more: the final answer often came in the same packet, and a
        // read would wait for bytes that never come.
        if !buf.is_empty() {
            match parse_response(&buf, Method::Post, MAX_HEAD, &mut head) {
                Ok(true) if head.status == 101 => {
                    return Err((
                        "answered 101 to a call that asked for no upgrade".into(),
                        false,
                    ))
                }
                Ok(true) if head.status < 200 => {
                    buf.advance(head.head_len);
                    continue;
                }
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err((format!("bad answer head: {e:?}"), false)),
            }
        }
        if !buf.is_empty() {
            // Part of a head came: ask for the rest now.
            ack_now(stream);
        }
        let (res, back) = read_into(stream, buf).await;
        buf = back;
        match res {
            Ok(0) => return Err(("closed before answering".into(), buf.is_empty())),
            Err(e) => return Err((format!("read: {e}"), buf.is_empty())),
            Ok(_) => {}
        }
    }
    let headers: Vec<(Vec<u8>, Vec<u8>)> = (head.headers.iter())
        .map(|h| (h.name.get(&buf).to_vec(), h.value.get(&buf).to_vec()))
        .collect();
    buf.advance(head.head_len);
    let mut body = Vec::new();
    let complete = match head.body {
        ResponseBody::None => true,
        ResponseBody::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_ANSWER {
                return Err(("answer too large".into(), false));
            }
            while buf.len() < n {
                ack_now(stream);
                let (res, back) = read_into(stream, buf).await;
                buf = back;
                if !matches!(res, Ok(k) if k > 0) {
                    return Err(("closed mid-answer".into(), false));
                }
            }
            body.extend_from_slice(&buf[..n]);
            buf.advance(n);
            true
        }
        ResponseBody::Chunked => {
            let mut dec = ChunkedDecoder::new(MAX_ANSWER as u64);
            loop {
                let scan = dec
                    .scan(&buf, |r| body.extend_from_slice(&buf[r]))
                    .map_err(|_| ("bad chunked answer".to_string(), false))?;
                buf.advance(scan.consumed);
                if scan.done {
                    break true;
                }
                ack_now(stream);
                let (res, back) = read_into(stream, buf).await;
                buf = back;
                if !matches!(res, Ok(k) if k > 0) {
                    return Err(("closed mid-answer".into(), false));
                }
            }
        }
        ResponseBody::UntilClose => {
            loop {
                body.extend_from_slice(&buf);
                buf.clear();
                if body.len() > MAX_ANSWER {
                    return Err(("answer too large".into(), false));
                }
                ack_now(stream);
                let (res, back) = read_into(stream, buf).await;
                buf = back;
                match res {
                    // Without close_notify a close-delimited answer may be cut short
                    // (RFC 9112 §9.8): it is not sent as a whole message.
                    Ok(0) if stream.truncated() => {
                        return Err(("TLS closed without close_notify mid-answer".into(), false))
                    }
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err((format!("read: {e}"), false)),
                }
            }
            false
        }
    };
    let reusable = complete && head.keep_alive && buf.is_empty();
    Ok(((head.status, headers, body), reusable))
}
