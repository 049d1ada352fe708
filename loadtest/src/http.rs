//! HTTP/1.1 pieces shared by the load generator and the origin: message framing from the
//! head, and reading past a body without keeping it. Each connection owns one buffer for
//! its whole life; body bytes are read over it and dropped.

use std::io;

use crate::chunked::ChunkedDecoder;
use crate::stream::Stream;

/// Per-connection read buffer: large enough for any head we expect and a 16 KiB body in
/// few reads.
pub const BUF_CAP: usize = 64 * 1024;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Responses only: the body runs until the server closes.
    UntilClose,
}

/// What a head says about its body and the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadInfo {
    pub framing: Framing,
    pub close: bool,
    pub expect_continue: bool,
}

/// Reads `content-length`, `transfer-encoding`, `connection` and `expect`.
/// `default_framing` applies when neither length header is present.
pub fn head_info(
    headers: &[httparse::Header<'_>],
    http10: bool,
    default_framing: Framing,
) -> Result<HeadInfo, io::Error> {
    let mut framing = None;
    let mut chunked = false;
    let mut close = http10;
    let mut expect_continue = false;
    for h in headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| invalid("bad content-length"))?;
            if framing.is_some_and(|f| f != Framing::Length(n)) {
                return Err(invalid("conflicting content-length"));
            }
            framing = Some(Framing::Length(n));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = has_token(h.value, b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(h.value, b"close") {
                close = true;
            } else if has_token(h.value, b"keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = has_token(h.value, b"100-continue");
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        framing.unwrap_or(default_framing)
    };
    Ok(HeadInfo {
        framing,
        close: close || framing == Framing::UntilClose,
        expect_continue,
    })
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

pub fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed mid-message",
    )
}

/// Appends what the socket has to `buf` (up to its capacity); returns the byte count, 0 on
/// a clean close.
pub async fn read_more<S: Stream>(s: &mut S, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    if buf.len() == buf.capacity() {
        return (Err(invalid("message head too large")), buf);
    }
    s.read_append(buf).await
}

/// Overwrites `buf` from its start with what the socket has; the old content is done with.
async fn read_over<S: Stream>(s: &mut S, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    buf.clear();
    s.read_append(buf).await
}

/// Skips the body that starts at `buf[pos..]` (more of it may still be in the socket).
/// Returns `buf` holding only the bytes that follow the body (a pipelined next message).
/// With `Framing::UntilClose` it reads to the end of the stream.
pub async fn skip_body<S: Stream>(
    s: &mut S,
    mut buf: Vec<u8>,
    mut pos: usize,
    framing: Framing,
) -> (io::Result<()>, Vec<u8>) {
    match framing {
        Framing::Length(n) => {
            let mut remaining = n;
            loop {
                let have = (buf.len() - pos) as u64;
                if have >= remaining {
                    pos += remaining as usize;
                    break;
                }
                remaining -= have;
                let (res, b) = read_over(s, buf).await;
                buf = b;
                match res {
                    Ok(0) => return (Err(closed()), buf),
                    Ok(_) => pos = 0,
                    Err(e) => return (Err(e), buf),
                }
            }
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            loop {
                match decoder.feed(&buf[pos..]) {
                    Ok(n) => pos += n,
                    Err(_) => return (Err(invalid("malformed chunked body")), buf),
                }
                if decoder.is_done() {
                    break;
                }
                let (res, b) = read_over(s, buf).await;
                buf = b;
                match res {
                    Ok(0) => return (Err(closed()), buf),
                    Ok(_) => pos = 0,
                    Err(e) => return (Err(e), buf),
                }
            }
        }
        Framing::UntilClose => loop {
            let (res, b) = read_over(s, buf).await;
            buf = b;
            match res {
                Ok(0) => return (Ok(()), buf),
                Ok(_) => {}
                Err(e) => return (Err(e), buf),
            }
        },
    }
    // Keep whatever follows the body at the front for the next parse.
    let rest = buf.len() - pos;
    buf.copy_within(pos.., 0);
    buf.truncate(rest);
    (Ok(()), buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(raw: &[(&'static str, &'static [u8])], http10: bool) -> io::Result<HeadInfo> {
        let headers: Vec<httparse::Header<'_>> = raw
            .iter()
            .map(|(name, value)| httparse::Header { name, value })
            .collect();
        head_info(&headers, http10, Framing::UntilClose)
    }

    #[test]
    fn framing_from_headers() {
        let i = info(&[("Content-Length", b" 12 ")], false).unwrap();
        assert_eq!((i.framing, i.close), (Framing::Length(12), false));

        let i = info(
            &[
                ("transfer-encoding", b"gzip, Chunked"),
                ("content-length", b"3"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(i.framing, Framing::Chunked);

        let i = info(&[], false).unwrap();
        assert_eq!((i.framing, i.close), (Framing::UntilClose, true));

        let i = info(&[("content-length", b"0"), ("Connection", b"Close")], false).unwrap();
        assert!(i.close);

        let i = info(&[("content-length", b"0")], true).unwrap();
        assert!(i.close);
        let i = info(
            &[("content-length", b"0"), ("connection", b"keep-alive")],
            true,
        )
        .unwrap();
        assert!(!i.close);

        let i = info(
            &[("content-length", b"0"), ("expect", b"100-continue")],
            false,
        )
        .unwrap();
        assert!(i.expect_continue);

        assert!(info(&[("content-length", b"x")], false).is_err());
        assert!(info(&[("content-length", b"1"), ("content-length", b"2")], false).is_err());
    }
}
