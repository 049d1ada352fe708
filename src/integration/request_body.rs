//! Request bodies, client → upstream, in the chunks they arrive in: a content-length
//! body as it comes, a chunked one validated as it passes and relayed as sent but for
//! its end (`relay::with_last_chunk`). Each step that makes no progress is bounded, and
//! a backend that answers before the body is in has that answer relayed (`early`).

use std::time::Duration;

use crate::tls::{answered_early, UpstreamIo};

use super::early::{answer_begun, answer_whole, bytes_acked, early_answer, LOOK_EVERY};
use super::relay::{with_last_chunk, write_prefix};
use bytes::BytesMut;

use crate::error::{Error, Kind};
use crate::http1::body::{BodyError, ChunkedDecoder};
use crate::runtime::coarse_timer::{coarse_now, CoarseTimers};
use crate::server::conn::Conn;
use crate::server::conn_io::read_into;

pub fn body_error_status(e: BodyError) -> (u16, &'static str) {
    match e {
        BodyError::TooLarge => (413, "Request Entity Too Large"),
        BodyError::BadChunk(_) => (400, "Bad Request"),
    }
}
/// Reads more of the request body within `wait`. While the client pauses, a plain
/// upstream is looked at every `LOOK_EVERY`, as while a write to it waits: a backend
/// whose whole answer is in (a 413, a 401), or that closed, has its answer relayed now,
/// not a 408 for the client's pause (the read is abandoned with the rest of the body).
async fn read_client_more(
    c: &mut Conn,
    up: &UpstreamIo,
    timers: &CoarseTimers,
    wait: Duration,
) -> Result<(), Error> {
    let give_up = coarse_now() + wait;
    let fd = up.plain_fd();
    let method = c.head.method;
    // The read holds `rbuf` and the stream only: the look below peeks into `ubuf`.
    let mut read = std::pin::pin!(read_into(&mut c.stream, std::mem::take(&mut c.rbuf)));
    let read = loop {
        let look = match fd {
            Some(_) => give_up.min(coarse_now() + LOOK_EVERY),
            None => give_up,
        };
        match timers.within(look, read.as_mut()).await {
            Ok((res, buf)) => {
                c.rbuf = buf;
                break res;
            }
            // The client paused past the wait with the backend's answer begun: that answer,
            // not a 408 for the pause.
            Err(_) if coarse_now() >= give_up && fd.is_some_and(answered_early) => {
                return Err(early_answer())
            }
            Err(_) if coarse_now() >= give_up => break Err(std::io::ErrorKind::TimedOut.into()),
            Err(_) if fd.is_some_and(|fd| answer_whole(fd, &mut c.ubuf, &mut c.rhead, method)) => {
                return Err(early_answer())
            }
            Err(_) => {}
        }
    };
    match read {
        Ok(0) => Err(Error::new(
            Kind::ClientBody,
            "client closed during the request body",
        )),
        Ok(_) => Ok(()),
        // A client that stops sending its body gets 408, as from nginx's
        // client_body_timeout: a 400 told it its request was malformed.
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(Error::new(
            Kind::ClientTimeout,
            "no byte of the request body within the wait",
        )),
        Err(e) => Err(Error::new(
            Kind::ClientBody,
            format!("reading the request body: {e}"),
        )),
    }
}

/// Writes the first `n` bytes of the client's buffer to the upstream within `wait`: an
/// upstream that stops reading the body is a 504 then, not a request that never ends.
/// While a write to a plain upstream waits, the socket is looked at every
/// `LOOK_EVERY`: a backend that answered and stopped reading has its answer relayed now,
/// not after `wait` (the write is abandoned with the rest of the body; `answer_begun`).
async fn write_body_part(
    up: &mut UpstreamIo,
    rbuf: &mut BytesMut,
    n: usize,
    timers: &CoarseTimers,
    wait: Duration,
) -> Result<(), Error> {
    let give_up = coarse_now() + wait;
    let fd = up.plain_fd();
    let mut acked = fd.and_then(bytes_acked);
    let mut write = std::pin::pin!(write_prefix(up, rbuf, n));
    loop {
        let look = match fd {
            Some(_) => give_up.min(coarse_now() + LOOK_EVERY),
            None => give_up,
        };
        match timers.within(look, write.as_mut()).await {
            Ok(res) => return res.map_err(upstream_write_error),
            Err(_) if coarse_now() >= give_up => {
                return Err(Error::new(
                    Kind::UpstreamTimeout,
                    "the upstream took no request body bytes in time",
                )
                .while_sending_body())
            }
            Err(_) if fd.is_some_and(|fd| answer_begun(fd, &mut acked)) => {
                return Err(early_answer())
            }
            Err(_) => {}
        }
    }
}

/// A backend that refuses an upload (413, 401) answers before reading the body, and may
/// then stop reading or close: its answer is what the client gets, as from nginx, not a
/// 502 for the write that fails or a wait for the integration timeout. An answer not yet
/// whole (a duplex backend streaming its answer as it reads) lets the body go on. One
/// peek before each body part written after the head's write, plain upstreams only.
fn stop_if_answered(c: &mut Conn, up: &UpstreamIo) -> Result<(), Error> {
    match up.plain_fd() {
        Some(fd) if answer_whole(fd, &mut c.ubuf, &mut c.rhead, c.head.method) => {
            Err(early_answer())
        }
        _ => Ok(()),
    }
}

fn upstream_write_error(e: std::io::Error) -> Error {
    Error::new(
        Kind::UpstreamClosed,
        format!("writing the request body: {e}"),
    )
    .while_sending_body()
}

/// Streams the rest of a request body to the upstream. `wait` bounds each step that
/// makes no progress: a read from the client, a write to the upstream.
pub async fn request_length(
    c: &mut Conn,
    up: &mut UpstreamIo,
    mut left: u64,
    timers: &CoarseTimers,
    wait: Duration,
) -> Result<(), Error> {
    while left > 0 {
        if c.rbuf.is_empty() {
            read_client_more(c, up, timers, wait).await?;
        }
        let k = left.min(c.rbuf.len() as u64) as usize;
        stop_if_answered(c, up)?;
        write_body_part(up, &mut c.rbuf, k, timers, wait).await?;
        left -= k as u64;
    }
    Ok(())
}

/// As `request_length`, for a chunked body (validated as it passes).
pub async fn request_chunked(
    c: &mut Conn,
    up: &mut UpstreamIo,
    dec: &mut ChunkedDecoder,
    timers: &CoarseTimers,
    wait: Duration,
) -> Result<(), Error> {
    loop {
        read_client_more(c, up, timers, wait).await?;
        // `rbuf` starts with what the last scan held back (`Relay`).
        let scan = dec.relay_scan(&c.rbuf, |_| {}).map_err(|e| match e {
            BodyError::TooLarge => {
                Error::new(Kind::ClientBodyTooLarge, "chunked body over max_body_bytes")
            }
            BodyError::BadChunk(why) => Error::new(Kind::ClientBody, why),
        })?;
        stop_if_answered(c, up)?;
        let n = with_last_chunk(&mut c.rbuf, scan);
        write_body_part(up, &mut c.rbuf, n, timers, wait).await?;
        if scan.done {
            return Ok(());
        }
    }
}
