//! A backend's answer while its request body is still going out (plain upstreams only:
//! TLS records can't be peeked).
//!
//! As nginx does, the body keeps going to a backend that keeps reading it: a backend
//! that answers at once and streams its answer while it reads the upload (full-duplex
//! HTTP/1.1) gets the whole body, and its answer is relayed after, as any other. The
//! body stops, and the answer is relayed with `Connection: close`, when
//! - the answer is whole in what the backend has sent (a 413 or 401 refusing an upload,
//!   a 202 for one it will drop): nothing more is waited for, and a backend that has
//!   stopped reading is not waited on (`answer_whole`, before each body part and while
//!   the client pauses);
//! - or the backend stops taking the body (a write that moves no byte to it for
//!   `LOOK_EVERY`, or that fails) with any final answer begun (`answer_begun`);
//! - or the backend closed.

use std::os::fd::RawFd;
use std::time::Duration;

use bytes::BytesMut;

use crate::error::{Error, Kind};
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::Method;
use crate::http1::response::{parse_response, ResponseBody, ResponseHead};
use crate::runtime::socket_now::peek;
use crate::tls::answered_early;

/// How often a plain backend is looked at while a body write to it waits, or while the
/// client pauses its upload.
pub(super) const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How much of what a backend sent is looked at for a whole answer: an early answer is
/// short (a refusal); a longer one is relayed once the body is in, or when the backend
/// stops reading it.
const PEEK_BYTES: usize = 32 * 1024;

/// Whether a plain backend has sent its whole final answer, or closed. `scratch` (the
/// upstream read buffer, unused while the body goes out: left empty) holds a peek of what
/// it sent, parsed into `rhead` (which the response reader fills anew). One
/// `recv(MSG_PEEK)` of a byte when the backend has sent nothing, the usual case. An
/// answer longer than the peek is whole when it has a length and the socket holds all of
/// it (a long refusal); a streamed one (chunked, or until the close) that fills the peek
/// is not known to be: the body goes on (a full-duplex echo of 32 KiB or more, counted
/// whole while the client paused, had its body stopped and hung to the timeout).
pub(super) fn answer_whole(
    fd: RawFd,
    scratch: &mut BytesMut,
    rhead: &mut ResponseHead,
    method: Method,
) -> bool {
    match peek(fd, &mut [0u8; 1]) {
        Ok(0) => return true,
        Ok(_) => {}
        Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
    }
    scratch.clear();
    scratch.resize(PEEK_BYTES, 0);
    let whole = match peek(fd, &mut scratch[..]) {
        Ok(n) => match is_whole(&scratch[..n], method, rhead) {
            Whole::Yes => true,
            Whole::No => false,
            Whole::At(total) => n == PEEK_BYTES && queued(fd) >= total,
        },
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    scratch.clear();
    // A close-delimited answer is whole at the close; and a backend that closed (its FIN
    // behind the bytes a peek returns) reads no more of the body either.
    whole || shut_down(fd)
}

/// What the start of a backend's answer says of its end.
#[derive(Debug, PartialEq)]
enum Whole {
    Yes,
    No,
    /// A final answer with a length, whole once this many bytes have come.
    At(usize),
}

/// Whether `bytes` (the start of what a backend sent) hold a whole final answer: its head
/// past any interim ones, and its body by its framing. A head that is no HTTP counts: the
/// response reader then answers 502, and nothing more is worth sending.
fn is_whole(all: &[u8], method: Method, rhead: &mut ResponseHead) -> Whole {
    let mut at = 0;
    loop {
        let bytes = &all[at..];
        match parse_response(bytes, method, super::http::MAX_RESPONSE_HEAD, rhead) {
            Ok(true) if rhead.status < 200 => at += rhead.head_len,
            Ok(true) => {
                let body = &bytes[rhead.head_len..];
                return match rhead.body {
                    ResponseBody::None => Whole::Yes,
                    ResponseBody::Length(n) if body.len() as u64 >= n => Whole::Yes,
                    ResponseBody::Length(n) => {
                        let total = (at + rhead.head_len) as u64 + n;
                        Whole::At(usize::try_from(total).unwrap_or(usize::MAX))
                    }
                    ResponseBody::Chunked => match ChunkedDecoder::for_response()
                        .scan(body, |_| {})
                        .map_or(true, |s| s.done)
                    {
                        true => Whole::Yes,
                        false => Whole::No,
                    },
                    ResponseBody::UntilClose => Whole::No,
                };
            }
            Ok(false) => return Whole::No,
            Err(_) => return Whole::Yes,
        }
    }
}

/// Bytes waiting in the socket's receive queue (`FIONREAD`); 0 when it can't be told.
fn queued(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the valid pointer given.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

/// Whether the peer has shut its sending side (or reset), even with bytes still waiting:
/// `poll` with `POLLRDHUP`, which a peek can't tell behind data.
fn shut_down(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call; a zero timeout never blocks.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// A body write to a plain backend has waited `LOOK_EVERY` (again): whether to stop it
/// for the backend's answer. Only when a final answer has begun (or the backend closed)
/// and the backend took no byte of the body since the last look (`acked`, TCP's count of
/// bytes it acknowledged, moves while it reads): a backend that reads slowly while it
/// streams its answer is not cut off.
pub(super) fn answer_begun(fd: RawFd, acked: &mut Option<u64>) -> bool {
    let now = bytes_acked(fd);
    let moved = now.is_some() && now != *acked;
    *acked = now;
    !moved && answered_early(fd)
}

/// TCP's count of bytes the peer acknowledged (`tcpi_bytes_acked`); None when the socket
/// can't say.
pub(super) fn bytes_acked(fd: RawFd) -> Option<u64> {
    tcp_info(fd).map(|info| info.tcpi_bytes_acked)
}

/// The socket's `TCP_INFO`; None when it can't say.
pub(crate) fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is plain data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of their sizes for the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(info)
}

pub(super) fn early_answer() -> Error {
    Error::new(
        Kind::UpstreamClosed,
        "the upstream answered (or closed) before the whole request body was sent",
    )
    .while_sending_body()
}

#[cfg(test)]
mod tests {
    use super::{is_whole, Whole};
    use crate::http1::parse::Method;
    use crate::http1::response::ResponseHead;

    fn judged(b: &[u8], method: Method) -> Whole {
        is_whole(b, method, &mut ResponseHead::new())
    }

    #[test]
    fn an_answer_is_whole_when_its_body_is_in() {
        let whole = |b: &[u8]| judged(b, Method::Post) == Whole::Yes;
        assert!(whole(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\n\r\ntoo big"
        ));
        assert!(!whole(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\n\r\ntoo"
        ));
        assert!(whole(b"HTTP/1.1 204 No Content\r\n\r\n"));
        assert!(whole(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"));
        // A duplex backend's answer: the head at once, the body as it reads the upload.
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(!whole(chunked));
        assert!(!whole(&[&chunked[..], b"5\r\nhello\r\n"].concat()));
        assert!(!whole(&[&chunked[..], b"5\r\nhello\r\n0\r\n"].concat()));
        assert!(whole(&[&chunked[..], b"5\r\nhello\r\n0\r\n\r\n"].concat()));
        // Close-delimited: whole only at the close (not seen here).
        assert!(!whole(b"HTTP/1.1 200 OK\r\n\r\nsome"));
        // Interim heads are passed over; a head not yet whole is no answer yet.
        assert!(!whole(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(whole(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!whole(b"HTTP/1.1 401 Unauthorized\r\nContent-Le"));
        // Garbage is worth no more of the body (the reader answers 502).
        assert!(whole(b"SMTP ready\r\n\r\n"));
        // A HEAD request's answer has no body.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(judged(head, Method::Head), Whole::Yes);
        // A final head with a length, its body not all in: whole once the bytes up to
        // its end have come (counted from the first byte, interim heads included).
        let partial = b"HTTP/1.1 413 Too Big\r\nContent-Length: 9\r\n\r\ntoo";
        assert_eq!(judged(partial, Method::Post), Whole::At(partial.len() + 6));
        let behind = [&b"HTTP/1.1 100 Continue\r\n\r\n"[..], partial].concat();
        assert_eq!(judged(&behind, Method::Post), Whole::At(behind.len() + 6));
    }
}
