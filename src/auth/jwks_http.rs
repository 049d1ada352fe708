//! The JWKS fetch threads' HTTP client: one blocking GET (plain or TLS, verified against the
//! system's roots) bounded in time and size, redirects not followed. Kept apart from the
//! key sources (`jwks`) it serves; nothing here runs on a worker.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::jwks::{FETCH_TIMEOUT, MAX_RESPONSE};

/// A blocking GET bounded by `FETCH_TIMEOUT` in total and `MAX_RESPONSE` body bytes.
/// Redirects are not followed (a key set must come from the configured place).
pub fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("not an http(s) URL".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (
            h,
            p.parse::<u16>().map_err(|_| format!("bad port in {url}"))?,
        ),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} ms", FETCH_TIMEOUT.as_millis()))
    };
    let tcp = TcpStream::connect_timeout(&addr, left()?).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\naccept: application/json\r\nuser-agent: portico\r\nconnection: close\r\n\r\n"
    );
    // Every socket read and write is bounded by what is left: rustls reads the socket in
    // a loop of its own (a handshake, a record), so a TLS issuer sending a byte every
    // 100 ms held a fetch thread for minutes when only our own reads were bounded.
    let tcp = Bounded { tcp, deadline };
    if tls {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|_| format!("{bare:?} is not a TLS server name"))?;
        let conn = rustls::ClientConnection::new(tls_config(), name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        exchange(&mut s, request.as_bytes(), &left)
    } else {
        let mut s = tcp;
        exchange(&mut s, request.as_bytes(), &left)
    }
}

/// A socket whose every read and write ends by `deadline` (TimedOut past it).
struct Bounded {
    tcp: TcpStream,
    deadline: Instant,
}

impl Bounded {
    fn left(&self) -> std::io::Result<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| std::io::ErrorKind::TimedOut.into())
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

fn exchange<S: Read + Write>(
    s: &mut S,
    request: &[u8],
    left: &dyn Fn() -> Result<Duration, String>,
) -> Result<Vec<u8>, String> {
    left()?;
    s.write_all(request).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {} ms", FETCH_TIMEOUT.as_millis())
        }
        _ => e.to_string(),
    })?;
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let mut head: Option<(usize, Option<usize>, bool)> = None;
    loop {
        if let Some((start, Some(len), _)) = head {
            if buf.len() - start >= len {
                buf.truncate(start + len);
                return Ok(buf.split_off(start));
            }
        }
        left()?;
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer within {} ms", FETCH_TIMEOUT.as_millis()))
            }
            // A TLS peer that closes without close_notify still ends a close-delimited body.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            let Some((start, len, chunked)) = head else {
                return Err("connection closed before a response".into());
            };
            if len.is_some() {
                return Err("connection closed mid-body".into());
            }
            let body = buf.split_off(start);
            return if chunked { dechunk(&body) } else { Ok(body) };
        }
        buf.extend_from_slice(&chunk[..n]);
        // Interim answers (a CDN's 103 Early Hints) come before the real one, and a
        // client reads past them (RFC 9110 §15.2): one made every fetch fail.
        while head.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            let parsed = match resp.parse(&buf) {
                Ok(httparse::Status::Complete(at)) => {
                    let find = |name: &str| {
                        resp.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                    };
                    let code = resp.code.unwrap_or(0);
                    (at, code, find("transfer-encoding"), find("content-length"))
                }
                Ok(httparse::Status::Partial) if buf.len() > 64 * 1024 => {
                    return Err("response head too large".into())
                }
                Ok(httparse::Status::Partial) => break,
                Err(e) => return Err(format!("bad response: {e}")),
            };
            let (at, code, coding, length) = parsed;
            if (100..200).contains(&code) && code != 101 {
                buf.drain(..at);
                continue;
            }
            if code != 200 {
                return Err(format!("status {code}"));
            }
            let chunked = coding.is_some_and(|v| v.contains("chunked"));
            let len = match (chunked, length) {
                (false, Some(v)) => Some(v.parse::<usize>().map_err(|_| "bad content-length")?),
                _ => None,
            };
            if len.is_some_and(|l| l > MAX_RESPONSE) {
                return Err(format!("response larger than {MAX_RESPONSE} bytes"));
            }
            head = Some((at, len, chunked));
        }
        if let Some((start, _, chunked)) = head {
            // Chunk framing adds a little; the cap is on what the issuer sends.
            let cap = if chunked {
                MAX_RESPONSE + 16 * 1024
            } else {
                MAX_RESPONSE
            };
            if buf.len() - start > cap {
                return Err(format!("response larger than {MAX_RESPONSE} bytes"));
            }
        }
    }
}

pub(super) fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = std::str::from_utf8(&b[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        b = &b[line_end + 2..];
        if size == 0 {
            break;
        }
        // An IdP's size near usize::MAX wrapped `size + 2` past the check, and the slice
        // below panicked the fetch thread.
        if size > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
        if b.len() < size + 2 {
            return Err("truncated chunked body".into());
        }
        out.extend_from_slice(&b[..size]);
        if out.len() > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
        b = &b[size + 2..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on 127.0.0.1 that writes `answer` in pieces of `piece` bytes, `gap` apart.
    fn server(answer: &'static [u8], piece: usize, gap: Duration) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            for part in answer.chunks(piece) {
                if s.write_all(part).is_err() {
                    return;
                }
                std::thread::sleep(gap);
            }
        });
        format!("http://{addr}/jwks")
    }

    #[test]
    fn interim_answers_before_the_real_one_are_read_past() {
        let url = server(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            1 << 20,
            Duration::ZERO,
        );
        assert_eq!(http_get(&url).unwrap(), b"{}");
    }

    /// Each socket read is bounded by what is left of the whole: a loop of reads (as
    /// rustls makes for a record) ends at the deadline, however often bytes come.
    #[test]
    fn a_loop_of_reads_ends_at_the_deadline() {
        let url = server(&[b'x'; 4096], 1, Duration::from_millis(20));
        let addr = url.trim_start_matches("http://").trim_end_matches("/jwks");
        let tcp = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        let mut b = Bounded {
            tcp,
            deadline: started + Duration::from_millis(300),
        };
        b.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut all = [0u8; 4096];
        let e = b.read_exact(&mut all).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            "{e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
