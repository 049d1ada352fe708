//! Whether Redis is what answers on its port, before redis-rs is handed a connection:
//! one `PING` on a plain socket, reading a few bytes. redis-rs 0.32 has no bound on the
//! size of an answer and no knob for one: an announced `$9999999999` is buffered as it
//! arrives (hundreds of MB within one timeout on loopback; the async connection until
//! its timeout, the blocking one for as long as bytes keep coming). So whatever else is
//! on the port (an HTTP server, garbage, a flood) is turned away here for 64 bytes, and
//! the log says what answered. A server that answers `PING` like Redis and only then
//! misbehaves is not caught (nothing short of a size limit in redis-rs would).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Redis answers `+PONG` or, wanting a password first, `-NOAUTH …`: any `+` or `-`
/// line passes (redis-rs then says why it fails, if it does).
fn judge(answer: &[u8]) -> Result<(), String> {
    match answer.first() {
        Some(b'+' | b'-') => Ok(()),
        None => Err("closed without answering PING".into()),
        Some(_) => Err(format!(
            "not Redis: answered PING with {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(24)])
        )),
    }
}

/// For the side thread: the probe within `timeout × 2` (a connect and one answer).
pub async fn probe(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let talk = async {
        let mut s = tokio::net::TcpStream::connect((host, port)).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await?;
        Ok::<_, std::io::Error>(buf[..n].to_vec())
    };
    match tokio::time::timeout(timeout * 2, talk).await {
        Ok(Ok(answer)) => judge(&answer),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err(format!(
            "cannot connect: no answer within {:?}",
            timeout * 2
        )),
    }
}

/// For the admin thread (blocking), `timeout` on the connect and on the answer.
pub fn probe_blocking(host: &str, port: u16, timeout: Duration) -> redis::RedisResult<()> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.write_all(b"PING\r\n")?;
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf)?;
                return judge(&buf[..n]).map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::ParseError, "no Redis", e))
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrNotAvailable))
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passes_and_anything_else_is_named() {
        assert!(judge(b"+PONG\r\n").is_ok());
        assert!(judge(b"-NOAUTH Authentication required.\r\n").is_ok());
        let e = judge(b"HTTP/1.1 400 Bad\r\n\r\n\x00\xff garbage").unwrap_err();
        assert!(
            e.starts_with("not Redis: answered PING with \"HTTP/1.1 400"),
            "{e}"
        );
        assert!(judge(b"$9999999999\r\nAAAA").is_err());
        assert!(judge(b"").is_err());
    }
}
