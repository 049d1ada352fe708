//! Server limits end to end (`server.limits`; docs/ARCHITECTURE.md, Gateway answers):
//! header size → 431, request line → 414, body size → 413 (content-length before the body,
//! chunked as it streams), header_timeout → 408 and close, idle_timeout closes keep-alive
//! connections. After every refusal the worker keeps serving.

// Test-side recording backends share state across threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const MAX_HEADER_BYTES: usize = 4096;
const MAX_BODY_BYTES: usize = 1000;

/// One worker (so "the worker keeps serving" is about the worker that refused), small
/// limits, a mock route `GET /ok`, `POST /sink` to a raw sink and everything else to
/// `origin`.
fn config(origin: SocketAddr, sink: SocketAddr) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits:
    max_header_bytes: {MAX_HEADER_BYTES}
    max_body_bytes: {MAX_BODY_BYTES}
    header_timeout: 1s
    idle_timeout: 2s
    drain_timeout: 1s
    # Bodies stream to the backend, as the "while streaming" cases need.
    request_buffer_bytes: 0
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
  sink: {{ targets: ["{sink}"], connect_timeout: 1s }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /ok":
        integration: {{ type: mock, status: 200, headers: {{ content-type: text/plain }}, body: "ok" }}
      "POST /sink":
        integration: {{ type: http, upstream: sink, timeout: 2s }}
      "$default":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
"#
    )
}

/// A backend that never answers: it records every byte each connection sent until the
/// gateway closed it.
struct Sink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (r, a, c) = (received.clone(), accepted.clone(), closed.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let (r, c) = (r.clone(), c.clone());
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Sink {
            addr,
            received,
            accepted,
            closed,
        }
    }
}

/// `got` is exactly one gateway answer (docs/ARCHITECTURE.md, Gateway answers) that closes
/// the connection.
fn assert_refusal(got: &[u8], status: u16, message: &str, what: &str) {
    let text = String::from_utf8_lossy(got).to_string();
    let mut cur = Cursor::new(got);
    let r = read_response(&mut cur, false)
        .unwrap_or_else(|e| panic!("{what}: no response ({e}): {text:?}"));
    assert_eq!(r.status, status, "{what}: {text:?}");
    assert_eq!(r.json_message(), message, "{what}: {text:?}");
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: {text:?}"
    );
    assert_eq!(r.header("connection"), Some("close"), "{what}: {text:?}");
    let id = r
        .header("x-amzn-RequestId")
        .unwrap_or_else(|| panic!("{what}: no request id: {text:?}"));
    assert_eq!(r.header("apigw-requestid"), Some(id), "{what}");
    assert_eq!(
        cur.position() as usize,
        got.len(),
        "{what}: bytes after the answer: {text:?}"
    );
}

/// Sends `request` on a new connection and returns everything until the server closes.
fn refused(p: &Portico, request: &[u8]) -> Vec<u8> {
    let mut s = p.connect();
    s.write_all(request).unwrap();
    read_until_closed(&mut s, Duration::from_secs(5))
}

/// A good request on a new connection is still served.
fn assert_serves(p: &Portico, what: &str) {
    let r = p.get("/ok");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "{what}: the worker stopped serving"
    );
}

fn start(driver: &str) -> (Portico, Origin, Sink) {
    let origin = Origin::echo();
    let sink = Sink::start();
    let p = Portico::start(&config(origin.addr, sink.addr), driver);
    (p, origin, sink)
}

#[test]
fn header_fields_too_large_is_431() {
    for driver in DRIVERS {
        let (p, origin, _sink) = start(driver);
        // Just under the limit is fine (so the limit is the configured one, not lower).
        let filler = "a".repeat(MAX_HEADER_BYTES - 200);
        let r = p.raw(
            format!("GET /ok HTTP/1.1\r\nHost: t\r\nX-Big: {filler}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(
            r.status, 200,
            "{driver}: a head under max_header_bytes was refused"
        );

        // One huge header: over the configured 4096 but under the 10240 default.
        let huge = "a".repeat(MAX_HEADER_BYTES + 500);
        let got = refused(
            &p,
            format!("GET /up HTTP/1.1\r\nHost: t\r\nX-Huge: {huge}\r\n\r\n").as_bytes(),
        );
        assert_refusal(
            &got,
            431,
            "Request Header Fields Too Large",
            &format!("{driver}: one huge header"),
        );
        assert_serves(&p, driver);

        // A really huge one (64 KiB), written while the answer is read: the server stops
        // reading at the limit, answers, and closes.
        let mut s = p.connect();
        let mut w = s.try_clone().unwrap();
        let req = format!(
            "GET /up HTTP/1.1\r\nHost: t\r\nX-Huge: {}\r\n\r\n",
            "h".repeat(64 * 1024)
        );
        let writer = thread::spawn(move || {
            let _ = w.write_all(req.as_bytes());
        });
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        writer.join().unwrap();
        assert_refusal(
            &got,
            431,
            "Request Header Fields Too Large",
            &format!("{driver}: 64 KiB header"),
        );
        assert_serves(&p, driver);

        // Many headers, each small, together over the limit.
        let mut req = String::from("GET /up HTTP/1.1\r\nHost: t\r\n");
        for i in 0..60 {
            req.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(80)));
        }
        req.push_str("\r\n");
        assert!(req.len() > MAX_HEADER_BYTES);
        let got = refused(&p, req.as_bytes());
        assert_refusal(
            &got,
            431,
            "Request Header Fields Too Large",
            &format!("{driver}: many headers"),
        );
        assert_serves(&p, driver);

        // Many tiny headers, well under the byte limit but more than the header count cap.
        let mut req = String::from("GET /up HTTP/1.1\r\nHost: t\r\n");
        for i in 0..300 {
            req.push_str(&format!("a{i}: b\r\n"));
        }
        req.push_str("\r\n");
        assert!(req.len() < MAX_HEADER_BYTES);
        let got = refused(&p, req.as_bytes());
        assert_refusal(
            &got,
            431,
            "Request Header Fields Too Large",
            &format!("{driver}: 300 headers"),
        );
        assert_serves(&p, driver);

        // A head that never ends: refused as soon as it passes the limit, without waiting
        // for the rest (the server cannot know where it would end).
        let mut s = p.connect();
        let t = Instant::now();
        s.write_all(
            format!(
                "GET /up HTTP/1.1\r\nHost: t\r\nX-Endless: {}",
                "z".repeat(MAX_HEADER_BYTES + 100)
            )
            .as_bytes(),
        )
        .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{driver}: 431 only after {:?}",
            t.elapsed()
        );
        assert_refusal(
            &got,
            431,
            "Request Header Fields Too Large",
            &format!("{driver}: unterminated head"),
        );
        assert_serves(&p, driver);
        assert_eq!(
            origin.connections.load(Ordering::SeqCst),
            0,
            "{driver}: a refused request reached the origin"
        );
    }
}

#[test]
fn request_line_too_long_is_414() {
    for driver in DRIVERS {
        let (p, origin, _sink) = start(driver);
        // A long query that still fits is routed normally.
        let ok = "q".repeat(MAX_HEADER_BYTES - 300);
        let r = p.get(&format!("/ok?x={ok}"));
        assert_eq!(
            r.status, 200,
            "{driver}: a request line under the limit was refused"
        );

        let long = "q".repeat(MAX_HEADER_BYTES + 100);
        let got = refused(
            &p,
            format!("GET /up?x={long} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        // Our answers table does not fix the wording; RFC 9110 calls it "URI Too Long".
        let message = json_message_of(&got);
        assert!(
            message.contains("URI Too Long"),
            "{driver}: 414 says {message:?}"
        );
        assert_refusal(&got, 414, &message, &format!("{driver}: long request line"));
        assert_serves(&p, driver);

        // The same without its line end yet: refused without waiting for it.
        let mut s = p.connect();
        let t = Instant::now();
        s.write_all(format!("GET /up?x={long}").as_bytes()).unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{driver}: 414 only after {:?}",
            t.elapsed()
        );
        assert_refusal(
            &got,
            414,
            &message,
            &format!("{driver}: unterminated long request line"),
        );
        assert_serves(&p, driver);
        assert_eq!(
            origin.connections.load(Ordering::SeqCst),
            0,
            "{driver}: a refused request reached the origin"
        );
    }
}

fn json_message_of(got: &[u8]) -> String {
    read_response(&mut Cursor::new(got), false)
        .map(|r| r.json_message())
        .unwrap_or_default()
}

#[test]
fn content_length_over_max_body_is_413_before_the_body_is_sent() {
    for driver in DRIVERS {
        let (p, origin, _sink) = start(driver);
        // Exactly the limit goes through, byte for byte.
        let body = "b".repeat(MAX_BODY_BYTES);
        let r = p.raw(
            format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {MAX_BODY_BYTES}\r\nConnection: close\r\n\r\n{body}")
                .as_bytes(),
        );
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.text(), body, "{driver}");
        let reached = origin.connections.load(Ordering::SeqCst);
        assert!(reached > 0);

        // One byte more: answered from the head alone; the body is never sent.
        let mut s = p.connect();
        s.write_all(
            format!(
                "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY_BYTES + 1
            )
            .as_bytes(),
        )
        .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(3));
        assert_refusal(
            &got,
            413,
            "Request Entity Too Large",
            &format!("{driver}: content-length over the limit"),
        );

        // With Expect: 100-continue the client gets the 413 instead of a 100.
        let mut s = p.connect();
        s.write_all(b"PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\nExpect: 100-continue\r\n\r\n").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(3));
        assert_refusal(
            &got,
            413,
            "Request Entity Too Large",
            &format!("{driver}: 100-continue over the limit"),
        );

        assert_eq!(
            origin.connections.load(Ordering::SeqCst),
            reached,
            "{driver}: the origin saw an oversized request"
        );
        assert_serves(&p, driver);
    }
}

#[test]
fn chunked_body_over_max_body_is_413() {
    let chunk = |byte: u8, n: usize| {
        let mut c = format!("{n:x}\r\n").into_bytes();
        c.extend(std::iter::repeat_n(byte, n));
        c.extend_from_slice(b"\r\n");
        c
    };
    for driver in DRIVERS {
        let (p, _origin, sink) = start(driver);
        // Under the limit in several chunks: relayed whole.
        let mut req = b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        req.extend(chunk(b'a', 400));
        req.extend(chunk(b'b', 400));
        req.extend(chunk(b'c', 200));
        req.extend_from_slice(b"0\r\n\r\n");
        let r = p.raw(&req);
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            r.body.len(),
            MAX_BODY_BYTES,
            "{driver}: chunked body at the limit"
        );

        // A mock answers without the body, then drops it up to the limit: past it the
        // connection closes, so the request pipelined behind it is never read.
        let mut req = b"GET /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend(chunk(b'a', MAX_BODY_BYTES + 1));
        req.extend_from_slice(b"0\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut s = p.connect();
        s.write_all(&req).unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert_eq!(
            String::from_utf8_lossy(&got)
                .matches("HTTP/1.1 200")
                .count(),
            1,
            "{driver}"
        );

        // Over the limit, all in one write.
        let mut req =
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend(chunk(b'a', 600));
        req.extend(chunk(b'b', 600));
        req.extend_from_slice(b"0\r\n\r\n");
        let got = refused(&p, &req);
        assert_refusal(
            &got,
            413,
            "Request Entity Too Large",
            &format!("{driver}: chunked over the limit"),
        );
        assert_serves(&p, driver);

        // Over the limit while streaming: the first chunk is already on its way to the
        // backend when the second one breaks the limit. Counted at the size line, so not
        // one byte of the second chunk is forwarded.
        let mut s = p.connect();
        let mut first =
            b"POST /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        first.extend(chunk(b'A', 600));
        s.write_all(&first).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while sink.received.lock().unwrap().len() < 600 {
            assert!(
                Instant::now() < deadline,
                "{driver}: the first chunk never reached the backend"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let mut second = chunk(b'B', 600);
        second.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&second).unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(3));
        assert_refusal(
            &got,
            413,
            "Request Entity Too Large",
            &format!("{driver}: streamed chunked over the limit"),
        );
        // The backend connection is dropped too: it carries a request that will never end.
        while sink.closed.load(Ordering::SeqCst) < sink.accepted.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "{driver}: the backend connection was left open"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let seen = sink.received.lock().unwrap().clone();
        assert!(
            !seen.contains(&b'B'),
            "{driver}: data of the oversized chunk reached the backend"
        );
        assert_eq!(seen.iter().filter(|&&b| b == b'A').count(), 600, "{driver}");
        sink.received.lock().unwrap().clear();
        assert_serves(&p, driver);
    }
}

#[test]
fn slowloris_gets_408_at_header_timeout() {
    for driver in DRIVERS {
        let (p, origin, _sink) = start(driver);
        // A partial head, then one byte every 150 ms: the deadline counts from the first
        // byte, so trickling does not extend it.
        let mut s = p.connect();
        let t = Instant::now();
        s.write_all(b"GET /up HTTP/1.1\r\nHost: t\r\n").unwrap();
        let mut w = s.try_clone().unwrap();
        let trickler = thread::spawn(move || {
            for b in b"X-Slow: abcdefghijklmnopqrstuvwxyz0123456789".iter() {
                thread::sleep(Duration::from_millis(150));
                if w.write_all(&[*b]).is_err() {
                    return;
                }
            }
        });
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let took = t.elapsed();
        assert_refusal(
            &got,
            408,
            "Request Timeout",
            &format!("{driver}: slowloris"),
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2000),
            "{driver}: 408 after {took:?}"
        );
        trickler.join().unwrap();
        assert_serves(&p, driver);

        // A new connection's deadline counts from the connect, not its first byte (sent
        // 700 ms late, it gave the head 1.7 s in all).
        let mut s = p.connect();
        let t = Instant::now();
        thread::sleep(Duration::from_millis(700));
        s.write_all(b"GET /up HTTP/1.1\r\nHost: t\r\n").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let took = t.elapsed();
        assert_refusal(&got, 408, "Request Timeout", &format!("{driver}: late"));
        assert!(
            took < Duration::from_millis(1500),
            "{driver}: 408 after {took:?}"
        );

        // The same on the second request of a keep-alive connection.
        let mut s = p.connect();
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut BufReader::new(s.try_clone().unwrap()), false).unwrap();
        assert_eq!(r.status, 200, "{driver}");
        let t = Instant::now();
        s.write_all(b"GET /up HTTP/1.1\r\nHost: t\r\nX-Half: ")
            .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let took = t.elapsed();
        assert_refusal(
            &got,
            408,
            "Request Timeout",
            &format!("{driver}: slow second request"),
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2000),
            "{driver}: 408 after {took:?}"
        );
        assert_serves(&p, driver);
        assert_eq!(origin.connections.load(Ordering::SeqCst), 0, "{driver}");
    }
}

#[test]
fn silent_connection_is_closed_at_header_timeout() {
    for driver in DRIVERS {
        let (p, _origin, _sink) = start(driver);
        let mut s = p.connect();
        let t = Instant::now();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2000),
            "{driver}: closed after {took:?}"
        );
        // A bare close, as nginx's: a 408 on a connection that asked nothing could be
        // read as the answer to a request the client is just sending.
        assert!(got.is_empty(), "{driver}: {got:?}");
        assert_serves(&p, driver);
    }
}

#[test]
fn idle_keep_alive_connection_is_closed_at_idle_timeout() {
    for driver in DRIVERS {
        let (p, _origin, _sink) = start(driver);
        let mut s = p.connect();
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut BufReader::new(s.try_clone().unwrap()), false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{driver}");
        assert_eq!(
            r.header("connection"),
            None,
            "{driver}: keep-alive expected"
        );
        let t = Instant::now();
        // Still open and usable well before the timeout (and after header_timeout: an
        // idle connection between requests is not a slow head).
        thread::sleep(Duration::from_millis(1300));
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut BufReader::new(s.try_clone().unwrap()), false)
            .unwrap_or_else(|e| panic!("{driver}: closed after {:?} idle: {e}", t.elapsed()));
        assert_eq!(r.status, 200, "{driver}");

        let t = Instant::now();
        let got = read_until_closed(&mut s, Duration::from_secs(6));
        let took = t.elapsed();
        assert!(
            got.is_empty(),
            "{driver}: sent {:?} on idle close",
            String::from_utf8_lossy(&got)
        );
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_millis(3500),
            "{driver}: idle close after {took:?}"
        );
        assert_serves(&p, driver);
    }
}
