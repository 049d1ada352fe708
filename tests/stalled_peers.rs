//! Peers that stop taking bytes can't hold a request, its buffers and an upstream
//! connection forever: a backend that takes no more of a request body is a 504 once
//! `max(header_timeout, what is left of the integration timeout)` passes without a byte
//! moving; a client that reads no more of a response is dropped by the kernel once
//! `limits.send_timeout` passes (TCP_USER_TIMEOUT, inherited from the listener); a
//! client that leaves while the backend thinks lets the backend's connection go at once
//! (499 in the access log). Under both drivers; the worker keeps serving afterwards.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_backend_that_stops_reading_the_body_is_a_504() {
    // Accepts, never reads.
    let deaf = silent_origin();
    for driver in DRIVERS {
        // header_timeout 2s and an integration timeout of 2s: no byte for 2s ends it.
        let p = Portico::start(&proxy_config(deaf, 1), driver);
        let mut s = p.connect();
        let body_len = 10 * 1024 * 1024;
        let head =
            format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {body_len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut writer = s.try_clone().unwrap();
        // The body goes out from another thread: Portico answers before taking it all.
        let pushing = std::thread::spawn(move || {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..body_len / chunk.len() {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut reader = std::io::BufReader::new(s);
        let r = read_response(&mut reader, false).expect("an answer, not a hang");
        let took = started.elapsed();
        assert_eq!(r.status, 504, "{driver}");
        assert_eq!(r.json_message(), "Endpoint request timed out", "{driver}");
        assert!(took < Duration::from_secs(10), "{driver}: {took:?}");
        drop(reader);
        let _ = pushing.join();
        // The worker keeps serving (a GET needs no body; the deaf backend never answers).
        let r = p.get("/other");
        assert_eq!(r.status, 504, "{driver}: served afterwards");
    }
}

/// Whether the kernel still has Portico's side of the connection to `client`.
fn server_side_open(portico: SocketAddr, client: SocketAddr) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        port_of(f[1]) == portico.port() && port_of(f[2]) == client.port()
    })
}

/// An origin with a 32 MiB answer at `/big` (more than both sockets' buffers hold) and a
/// small one elsewhere.
fn big_origin() -> Origin {
    let big = vec![b'b'; 32 * 1024 * 1024];
    Origin::start(move |req, s| {
        if req.target == "/big" {
            respond(s, 200, &[], &big);
        } else {
            respond(s, 200, &[], b"small");
        }
        true
    })
}

/// Asks for `/big`, reads only the status line, and waits for Portico's side of the
/// connection to go; then checks the worker still serves.
fn non_reader_is_dropped(p: &Portico, what: &str) {
    let mut s = p.connect();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "{what}");
    // Read nothing more: the response fills both sockets' buffers, then the window
    // stays shut.
    let client = s.local_addr().unwrap();
    let started = Instant::now();
    while server_side_open(p.addr, client) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: Portico still holds a connection whose client reads nothing"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(s);
    let r = p.get("/small");
    assert_eq!((r.status, r.text().as_str()), (200, "small"), "{what}");
}

fn with_send_timeout(config: &str) -> String {
    let out = config.replace("drain_timeout: 5s", "drain_timeout: 5s, send_timeout: 1s");
    assert!(out.contains("send_timeout: 1s"));
    out
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_send_timeout() {
    let origin = big_origin();
    let config = with_send_timeout(&proxy_config(origin.addr, 1));
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        non_reader_is_dropped(&p, driver);
    }
}

#[test]
fn a_reload_sets_send_timeout_on_the_listeners_it_keeps() {
    let origin = big_origin();
    let p = Portico::start(&proxy_config(origin.addr, 1), DRIVERS[0]);
    // The listener stays across the reload; connections accepted after it inherit the
    // new value.
    let running = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(&p.config, with_send_timeout(&running)).unwrap();
    p.signal(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.log_text().contains("config reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", p.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Workers apply a new generation's listener settings on their next tick (50 ms).
    std::thread::sleep(Duration::from_millis(300));
    non_reader_is_dropped(&p, "after a reload");
}

#[test]
fn without_send_timeout_a_slow_reader_is_kept() {
    // The check above means something: with the limit far away, the same client keeps
    // its connection (it is slow, not gone) and then gets the whole response.
    let big = vec![b'b'; 8 * 1024 * 1024];
    let origin = Origin::start(move |_, s| {
        respond(s, 200, &[], &big);
        true
    });
    let config = proxy_config(origin.addr, 1);
    let p = Portico::start(&config, DRIVERS[0]);
    let mut s = p.connect();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(server_side_open(p.addr, s.local_addr().unwrap()));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(
        got.ends_with(&[b'b'; 1024]),
        "the whole body after the pause"
    );
    assert!(got.len() > 8 * 1024 * 1024);
}

/// A backend that reads a request head, sends `first` (nothing, or the start of an
/// answer) and then waits (up to 8 s) for the proxy to close the connection; it reports
/// how long that took (None: it never did).
fn thinking_origin(
    first: &'static [u8],
) -> (SocketAddr, std::sync::mpsc::Receiver<Option<Duration>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                s.write_all(first).unwrap();
                let started = Instant::now();
                s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
                let closed = matches!(s.read(&mut byte), Ok(0) | Err(_))
                    && started.elapsed() < Duration::from_secs(8);
                let _ = tx.send(closed.then(|| started.elapsed()));
            });
        }
    });
    (addr, rx)
}

/// The thinking origin saw its connection closed within 2 s of the client leaving.
fn backend_let_go(closed: &std::sync::mpsc::Receiver<Option<Duration>>, driver: &str) {
    let took = closed
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("Portico closed the upstream connection");
    assert!(took < Duration::from_secs(2), "{driver}: {took:?}");
}

#[test]
fn a_client_that_leaves_lets_the_backend_go_at_once() {
    let (origin, closed) = thinking_origin(b"");
    for driver in DRIVERS {
        let dir = temp_dir("client-gone");
        let log = dir.join("access.log");
        // A 10 s integration timeout, which nobody waits for.
        let yaml = proxy_config(origin, 1)
            .replace("timeout: 2s }", "timeout: 10s }")
            .replace(
                "  limits:",
                &format!("  access_log: {{ path: \"{}\" }}\n  limits:", log.display()),
            );
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(s);
        backend_let_go(&closed, driver);
        let mut line = String::new();
        assert!(eventually(|| {
            line = std::fs::read_to_string(&log).unwrap_or_default();
            !line.is_empty()
        }));
        assert!(line.contains("\"status\":\"499\""), "{driver}: {line}");
    }
}

/// The same once the answer has begun: a stream that goes quiet (events seconds apart, a
/// body that comes late) let its backend go only at the backend's next byte or the
/// integration timeout, after the client had left.
#[test]
fn a_client_that_leaves_a_quiet_stream_lets_the_backend_go_at_once() {
    let (origin, closed) = thinking_origin(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: 1\r\n",
    );
    for driver in DRIVERS {
        let yaml = proxy_config(origin, 1).replace("timeout: 2s }", "timeout: 10s }");
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(7).any(|w| w == b"data: 1") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "{driver}: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        drop(s);
        backend_let_go(&closed, driver);
    }
}
