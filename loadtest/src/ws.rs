//! `--websocket SIZE`: message round trips instead of HTTP requests. Each connection does
//! its WebSocket handshake once, before the clock starts (or when it reconnects), then
//! each turn sends one masked text message of SIZE bytes (`{"action":"echo","p":"…"}`, so
//! a WebSocket API's `echo` route or any echo server answers it) and reads one whole
//! message back; a turn's latency is the round trip.

use std::io;

use crate::http;
use crate::stream::Stream;

/// The handshake request (fixed key: the server's accept value is not checked).
pub fn handshake_request(authority: &str, path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// One client text frame (FIN, masked) whose payload is a JSON echo message of `size`
/// bytes (at least the bare message's length).
pub fn message_frame(size: usize) -> Vec<u8> {
    let bare = r#"{"action":"echo","p":""}"#;
    let pad = size.saturating_sub(bare.len());
    let payload = format!(r#"{{"action":"echo","p":"{}"}}"#, "x".repeat(pad));
    let len = payload.len();
    let mut f = Vec::with_capacity(len + 14);
    f.push(0x81);
    match len {
        0..=125 => f.push(0x80 | len as u8),
        126..=0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    f.extend_from_slice(&key);
    f.extend(payload.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// Sends the handshake and reads the server's answer: Ok when it is a 101 (bytes behind
/// it are kept in the returned buffer).
pub async fn handshake<S: Stream>(
    s: &mut S,
    mut buf: Vec<u8>,
    request: &'static [u8],
) -> (io::Result<()>, Vec<u8>) {
    buf.clear();
    if let Err(e) = s.write_all_static(request).await {
        return (Err(e), buf);
    }
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let ok = buf.starts_with(b"HTTP/1.1 101");
            buf.drain(..end + 4);
            let res = if ok {
                Ok(())
            } else {
                Err(http::invalid("the handshake was refused"))
            };
            return (res, buf);
        }
        let (res, b) = http::read_more(s, buf).await;
        buf = b;
        match res {
            Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
            Ok(_) => {}
            Err(e) => return (Err(e), buf),
        }
    }
}

/// Sends `frame` and reads one whole data message (a control frame, e.g. a close, is an
/// error: the load wants echoes). Bytes of a following frame stay in the buffer.
pub async fn round_trip<S: Stream>(
    s: &mut S,
    mut buf: Vec<u8>,
    frame: &'static [u8],
) -> (io::Result<()>, Vec<u8>) {
    if let Err(e) = s.write_all_static(frame).await {
        return (Err(e), buf);
    }
    loop {
        match frame_len(&buf) {
            Some(Ok((total, fin))) if buf.len() >= total => {
                buf.drain(..total);
                if fin {
                    return (Ok(()), buf);
                }
                continue;
            }
            Some(Err(e)) => return (Err(e), buf),
            _ => {}
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let (res, b) = s.read_append(buf).await;
        buf = b;
        match res {
            Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
            Ok(_) => {}
            Err(e) => return (Err(e), buf),
        }
    }
}

/// The whole length of the server frame at the start of `buf` and its FIN bit (None: the
/// header is not all in yet).
fn frame_len(buf: &[u8]) -> Option<io::Result<(usize, bool)>> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    if b0 & 0x08 != 0 {
        return Some(Err(http::invalid("a control frame instead of the echo")));
    }
    let (len, head) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let b: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    Some(Ok((head + len, b0 & 0x80 != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let f = message_frame(200);
        assert_eq!((f[0], f[1] & 0x7f), (0x81, 126));
        assert_eq!(u16::from_be_bytes([f[2], f[3]]), 200);
        assert_eq!(f.len(), 4 + 4 + 200);
        let key = [f[4], f[5], f[6], f[7]];
        let text: Vec<u8> = f[8..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert!(text.starts_with(br#"{"action":"echo","p":"xx"#));
        assert_eq!(message_frame(10).len(), 2 + 4 + 24);
        // Server frames: unmasked, 7-bit and 16-bit lengths, partial headers.
        assert_eq!(frame_len(&[0x81, 5]).unwrap().unwrap(), (7, true));
        assert_eq!(
            frame_len(&[0x01, 126, 1, 0]).unwrap().unwrap(),
            (260, false)
        );
        assert!(frame_len(&[0x81]).is_none());
        assert!(frame_len(&[0x88, 2]).unwrap().is_err());
    }
}
