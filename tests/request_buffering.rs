//! `limits.request_buffer_bytes`: an `http` integration reads a request body up to that
//! size whole before it connects to the backend, so a client that uploads slowly holds
//! no backend connection (the reason nginx sits in front of gunicorn-like backends);
//! a longer body, or any body with the setting at 0, streams through as it comes.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn config(origin: SocketAddr, buffer: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ request_buffer_bytes: {buffer} }}
upstreams:
  o: {{ targets: ["{origin}"] }}
apis:
  a:
    stages:
      $default: {{}}
    routes:
      "POST /up":
        integration: {{ type: http, upstream: o }}
"#
    )
}

/// The backend's side of one connection made within `wait`, if one was.
fn accepted_within(origin: &TcpListener, wait: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + wait;
    loop {
        match origin.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                return Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads on the backend's side until the request ends with `end`, answers 200 and
/// returns what came.
fn serve_one(s: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while !got.ends_with(end) {
        let n = s.read(&mut buf).expect("the request's end never came");
        assert!(n > 0, "closed before the request's end: {:?}", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    got
}

/// Sends `first`, waits, then checks whether the backend was asked before `rest` came;
/// sends `rest` and checks the whole request arrives and the client gets 200.
fn upload(
    p: &Portico,
    origin: &TcpListener,
    first: &[u8],
    rest: &[u8],
    end: &[u8],
    streamed: bool,
    what: &str,
) {
    let mut client = p.connect();
    client.write_all(first).unwrap();
    // Long enough for Portico to have connected, had it been going to.
    let early = accepted_within(origin, Duration::from_millis(400));
    assert_eq!(
        early.is_some(),
        streamed,
        "{what}: backend connected before the body was whole"
    );
    client.write_all(rest).unwrap();
    let mut backend = early
        .or_else(|| accepted_within(origin, Duration::from_secs(5)))
        .unwrap_or_else(|| panic!("{what}: the request never reached the backend"));
    let got = serve_one(&mut backend, end);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("POST /up HTTP/1.1\r\n"), "{what}: {text}");
    let r = read_response(&mut std::io::BufReader::new(client), false).unwrap();
    assert_eq!(r.status, 200, "{what}: {}", r.text());
}

#[test]
fn short_bodies_are_read_whole_before_the_backend_is_asked() {
    let origin = TcpListener::bind("127.0.0.1:0").unwrap();
    origin.set_nonblocking(true).unwrap();
    let addr = origin.local_addr().unwrap();
    let long_body = "x".repeat(100 * 1024 - 5);
    for driver in DRIVERS {
        for buffer in ["64KiB", "0"] {
            let p = Portico::start(&config(addr, buffer), driver);
            let buffered = buffer != "0";
            let what = format!("{driver} request_buffer_bytes {buffer}");
            upload(
                &p,
                &origin,
                b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello",
                b"world",
                b"world",
                !buffered,
                &format!("{what}, content-length"),
            );
            upload(
                &p,
                &origin,
                b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                b"5\r\nworld\r\n0\r\n\r\n",
                // Read whole, it goes de-chunked with its length; streamed, chunked.
                if buffered {
                    b"\r\n\r\nhelloworld"
                } else {
                    b"0\r\n\r\n"
                },
                !buffered,
                &format!("{what}, chunked"),
            );
            // Over the limit: it streams whatever the setting.
            let head = format!(
                "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\nfirst",
                long_body.len() + 5
            );
            upload(
                &p,
                &origin,
                head.as_bytes(),
                long_body.as_bytes(),
                &long_body.as_bytes()[long_body.len() - 5..],
                true,
                &format!("{what}, 100 KiB"),
            );
            assert!(p.stop().success(), "{what}");
        }
    }
}
