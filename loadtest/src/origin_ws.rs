//! `portico-load origin --websocket`: the origin's WebSocket echo. A request with
//! `Upgrade: websocket` and a `Sec-WebSocket-Key` gets a 101 (with the RFC 6455 accept
//! value, so a client that checks it is satisfied) and the connection then echoes every
//! data frame unmasked with its opcode and FIN bit, answers pings with pongs and echoes a
//! close before closing. Whole frames that arrived together are answered in one write.

use std::io;

use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use crate::http;
use crate::stream::Stream;

/// The accept GUID of RFC 6455, section 1.3.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// An upgraded connection's buffer: a 128-byte echo needs little, larger frames grow it.
const WS_BUF: usize = 4 * 1024;

/// The key of a WebSocket handshake request (`Upgrade: websocket` and a
/// `Sec-WebSocket-Key`), or None for any other request.
pub fn handshake_key(headers: &[httparse::Header<'_>]) -> Option<Vec<u8>> {
    let mut upgrade = false;
    let mut key = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = h.value.trim_ascii().eq_ignore_ascii_case(b"websocket");
        } else if h.name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(h.value.trim_ascii().to_vec());
        }
    }
    key.filter(|_| upgrade)
}

/// The 101 answering a handshake with `key`.
pub fn switching_protocols(key: &[u8]) -> Vec<u8> {
    let mut input = key.to_vec();
    input.extend_from_slice(GUID);
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        base64(&sha1(&input))
    )
    .into_bytes()
}

/// Echoes frames until the client closes or breaks the protocol; `pending` is what came
/// after the handshake.
pub async fn echo(mut s: TcpStream, pending: Vec<u8>) {
    let mut buf = pending;
    buf.reserve(WS_BUF);
    let mut out = Vec::with_capacity(WS_BUF);
    loop {
        let mut done = 0;
        let mut closing = false;
        while let Some(frame) = parse(&buf[done..]) {
            let Ok((total, b0, head, len)) = frame else {
                return; // unmasked or oversized: not a client we serve
            };
            let key = [
                buf[done + head - 4],
                buf[done + head - 3],
                buf[done + head - 2],
                buf[done + head - 1],
            ];
            let payload = &buf[done + head..done + head + len];
            let b0 = match b0 & 0x0f {
                0x9 => 0x8a, // ping: a pong with its payload
                0xa => 0,    // pong: nothing to answer
                0x8 => {
                    closing = true;
                    0x88
                }
                _ => b0,
            };
            if b0 != 0 {
                out.push(b0);
                match len {
                    0..=125 => out.push(len as u8),
                    126..=0xffff => {
                        out.push(126);
                        out.extend_from_slice(&(len as u16).to_be_bytes());
                    }
                    _ => {
                        out.push(127);
                        out.extend_from_slice(&(len as u64).to_be_bytes());
                    }
                }
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            done += total;
            if closing {
                break;
            }
        }
        buf.drain(..done);
        if !out.is_empty() {
            let (res, o) = s.write_all(out).await;
            out = o;
            out.clear();
            if res.is_err() {
                return;
            }
        }
        if closing {
            return;
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let (res, b) = s.read_append(buf).await;
        buf = b;
        match res {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// The client frame at the start of `buf`: None until it is all in; then its whole
/// length, first byte, header length (mask key included) and payload length.
type Frame = io::Result<(usize, u8, usize, usize)>;

fn parse(buf: &[u8]) -> Option<Frame> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    if b1 & 0x80 == 0 {
        return Some(Err(http::invalid("an unmasked client frame")));
    }
    let (len, head) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as u64, 8),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 14),
        n => (n as u64, 6),
    };
    if len > 16 << 20 {
        return Some(Err(http::invalid("a frame over 16 MiB")));
    }
    let total = head + len as usize;
    (buf.len() >= total).then_some(Ok((total, b0, head, len as usize)))
}

/// SHA-1 for the accept value only (`ring`, which rustls brings along).
fn sha1(data: &[u8]) -> [u8; 20] {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_value() {
        // RFC 6455, section 1.3's example.
        let r = switching_protocols(b"dGhlIHNhbXBsZSBub25jZQ==");
        let r = String::from_utf8(r).unwrap();
        assert!(
            r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{r}"
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn frames() {
        // A masked "Hi" and a partial one.
        let f = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
        assert_eq!(parse(&f).unwrap().unwrap(), (8, 0x81, 6, 2));
        assert!(parse(&f[..7]).is_none());
        assert!(parse(&[0x81, 0x02, b'H', b'i']).unwrap().is_err());
        let mut long = vec![0x82, 0xfe, 0x01, 0x00, 0, 0, 0, 0];
        long.resize(8 + 256, 0);
        assert_eq!(parse(&long).unwrap().unwrap(), (264, 0x82, 8, 256));
    }
}
