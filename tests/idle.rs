//! Idle keep-alive connections give their buffers back to the worker (after a short
//! grace period, or at once when many are idle) and wait for readability without them.
//! Whichever way a connection waited, its next request is served whole, under both drivers.
//! `idle_timeout: 0s` turns keep-alive off.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;

fn config(origin: std::net::SocketAddr) -> String {
    proxy_config(origin, 1).replace("idle_timeout: 5s", "idle_timeout: 20s")
}

fn request(s: &mut TcpStream, path: &str) -> Response {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut BufReader::new(s.try_clone().unwrap()), false).unwrap()
}

/// A connection silent past the grace period (it has parked its buffers) serves its next
/// request, a pipelined pair, and a large body in both directions.
#[test]
fn a_parked_connection_serves_its_next_requests() {
    let origin = Origin::echo();
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let mut s = p.connect();
        assert_eq!(request(&mut s, "/first").status, 200, "{driver}");
        thread::sleep(Duration::from_millis(900));
        assert_eq!(request(&mut s, "/after-park").status, 200, "{driver}");
        thread::sleep(Duration::from_millis(900));
        // Two requests in one write after parking: both answered, in order.
        s.write_all(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\naPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nb")
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert_eq!(read_response(&mut r, false).unwrap().body, b"a", "{driver}");
        assert_eq!(read_response(&mut r, false).unwrap().body, b"b", "{driver}");
        thread::sleep(Duration::from_millis(900));
        let big = vec![b'x'; 300_000];
        let mut req = format!(
            "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            big.len()
        )
        .into_bytes();
        req.extend_from_slice(&big);
        s.write_all(&req).unwrap();
        let got = read_response(&mut r, false).unwrap();
        assert!(got.body == big, "{driver}: the body came back different");
    }
}

/// More idle connections than may keep a buffer: the rest park at once, and every one of
/// them is still served.
#[test]
fn hundreds_of_idle_connections_are_all_served_again() {
    let origin = Origin::fixed(b"ok");
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let mut conns: Vec<TcpStream> = (0..400).map(|_| p.connect()).collect();
        for (i, s) in conns.iter_mut().enumerate() {
            assert_eq!(request(s, &format!("/one/{i}")).status, 200, "{driver}");
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let r = request(s, &format!("/two/{i}"));
            assert_eq!((r.status, r.text()), (200, "ok".into()), "{driver} #{i}");
        }
        // A drain ends parked connections at once (drain_timeout is 5 s: waiting it out
        // would mean the parked waits missed the drain).
        let started = std::time::Instant::now();
        assert!(p.stop().success(), "{driver}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{driver}: stopping took {:?}",
            started.elapsed()
        );
    }
}

/// `idle_timeout: 0s` is nginx's `keepalive_timeout 0`: no keep-alive. Every answer says
/// `connection: close` and the connection then closes; it used to answer as if the
/// connection went on and close it at once, so a client that sent its next request on it
/// (curl, a pool) met a dead connection.
#[test]
fn idle_timeout_zero_turns_keep_alive_off() {
    let origin = Origin::echo();
    let config = proxy_config(origin.addr, 1).replace("idle_timeout: 5s", "idle_timeout: 0s")
        + "      \"GET /ok\":\n        integration: { type: mock, status: 200, body: ok }\n";
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for (what, request) in [
            ("mock", &b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"[..]),
            ("proxied", b"GET /proxied HTTP/1.1\r\nHost: t\r\n\r\n"),
            (
                "HTTP/1.0 keep-alive",
                b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            ),
        ] {
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let r = read_response(&mut reader, false).unwrap();
            assert_eq!(r.status, 200, "{driver} {what}");
            assert_eq!(
                r.header("connection").map(|v| v.to_ascii_lowercase()),
                Some("close".to_string()),
                "{driver} {what}: the answer must say the connection ends"
            );
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut rest = Vec::new();
            reader
                .read_to_end(&mut rest)
                .unwrap_or_else(|e| panic!("{driver} {what}: not closed: {e}"));
            assert!(
                rest.is_empty(),
                "{driver} {what}: sent {rest:?} after the answer"
            );
        }
    }
}

/// Reads until the connection ends or `limit` passes: what came, and whether it ended.
fn until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// A blank line after a request is no request (RFC 9112 §2.2): the connection stays
/// idle and closes silently at `idle_timeout`, as nginx's does, without the 408 of a head
/// sent in part (it got one at `header_timeout`).
#[test]
fn a_blank_line_between_requests_leaves_the_connection_idle() {
    let origin = Origin::echo();
    let yaml = proxy_config(origin.addr, 1).replace(
        "header_timeout: 2s, idle_timeout: 5s",
        "header_timeout: 1s, idle_timeout: 3s",
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        assert_eq!(request(&mut s, "/first").status, 200, "{driver}");
        s.write_all(b"\r\n").unwrap();
        // Past header_timeout: nothing was written; the next request is served.
        thread::sleep(Duration::from_millis(1500));
        assert_eq!(request(&mut s, "/second").status, 200, "{driver}");
        s.write_all(b"\r\n\r\n").unwrap();
        let started = std::time::Instant::now();
        let (got, closed) = until_closed(&mut s, Duration::from_secs(8));
        assert!(closed, "{driver}: still open");
        assert!(
            got.is_empty(),
            "{driver}: {}",
            String::from_utf8_lossy(&got)
        );
        assert!(
            started.elapsed() > Duration::from_millis(2500),
            "{driver}: closed at {:?}, before idle_timeout",
            started.elapsed()
        );
    }
}

/// Blank lines don't restart `idle_timeout`: the connection closes that long after its
/// last answer (a CRLF every few seconds held it open for ever).
#[test]
fn blank_lines_do_not_keep_a_connection_open() {
    let origin = Origin::echo();
    let yaml = proxy_config(origin.addr, 1).replace(
        "header_timeout: 2s, idle_timeout: 5s",
        "header_timeout: 1s, idle_timeout: 2s",
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        assert_eq!(request(&mut s, "/first").status, 200, "{driver}");
        let answered = std::time::Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut byte = [0u8; 1];
        let closed_at = loop {
            if answered.elapsed() > Duration::from_secs(8) {
                panic!("{driver}: open 8 s after its answer, idle_timeout 2 s");
            }
            if s.write_all(b"\r\n").is_err() {
                break answered.elapsed();
            }
            match s.read(&mut byte) {
                Ok(0) => break answered.elapsed(),
                Ok(_) => panic!("{driver}: an answer to blank lines"),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break answered.elapsed()
                }
                Err(_) => {} // nothing yet: another blank line
            }
        };
        assert!(
            closed_at < Duration::from_secs(4),
            "{driver}: closed {closed_at:?} after its answer"
        );
        assert_eq!(p.get("/after").status, 200, "{driver}");
    }
}

/// A TCP urgent byte on a parked connection wakes its readiness wait with nothing to
/// read. Under io_uring the read after it then waited with no deadline: the connection
/// outlived `idle_timeout`, and a stop waited its drain timeout for it.
#[test]
fn an_urgent_byte_does_not_keep_a_parked_connection_open() {
    use std::os::fd::AsRawFd;
    let origin = Origin::echo();
    let yaml = proxy_config(origin.addr, 1).replace("idle_timeout: 5s", "idle_timeout: 2s");
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        assert_eq!(request(&mut s, "/first").status, 200, "{driver}");
        thread::sleep(Duration::from_millis(800)); // parked
                                                   // SAFETY: one byte from a live buffer on an open socket.
        let sent = unsafe { libc::send(s.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1, "{driver}");
        let (_, closed) = until_closed(&mut s, Duration::from_secs(6));
        assert!(closed, "{driver}: open 6 s after an idle_timeout of 2 s");
        // The worker serves on.
        assert_eq!(p.get("/after").status, 200, "{driver}");
    }
}
