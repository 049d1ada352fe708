//! The admin listener under slow clients: hundreds of connections trickling one byte
//! every 2 s (reconnecting when closed) never stop `/health` and `/metrics` from being
//! answered at once, and a request that is still arriving after the whole-request
//! deadline gets 408 however steadily it sends.
//!
//! The admin listener is plain std sockets and threads (poll(2)), not a monoio worker:
//! the workers' driver plays no part, so one run suffices.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn config(admin_port: u16) -> String {
    let state = temp_dir("state");
    format!(
        r#"state_dir: "{state}"
server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
admin: {{ listen: "127.0.0.1:{admin_port}", token: "t0ken" }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /ping":
        integration: {{ type: mock, status: 200, body: "pong" }}
"#,
        state = state.display()
    )
}

/// `n` slow-loris clients: each sends a request head one byte every 2 s, and reconnects
/// when the server closes it, until `stop`.
fn slow_clients(addr: SocketAddr, n: usize, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        const HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: admin\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let connect = || {
            let s = TcpStream::connect(addr).ok()?;
            s.set_write_timeout(Some(Duration::from_millis(200))).ok()?;
            Some((s, 0usize))
        };
        let mut conns: Vec<Option<(TcpStream, usize)>> = (0..n).map(|_| connect()).collect();
        while !stop.load(Ordering::SeqCst) {
            for c in conns.iter_mut() {
                let alive = match c {
                    Some((s, sent)) if *sent < HEAD.len() - 1 => {
                        let ok = s.write_all(&HEAD[*sent..*sent + 1]).is_ok();
                        *sent += 1;
                        ok
                    }
                    _ => false,
                };
                if !alive {
                    *c = connect();
                }
            }
            let round = Instant::now();
            while round.elapsed() < Duration::from_secs(2) && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(50));
            }
        }
    })
}

/// A public admin GET that must be answered 200 within a second.
fn prompt(addr: SocketAddr, path: &str) -> Response {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes())
        .unwrap();
    let r = read_response(&mut BufReader::new(s), false)
        .unwrap_or_else(|e| panic!("GET {path}: no answer: {e}"));
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "GET {path} took {took:?}");
    r
}

#[test]
fn health_and_metrics_are_answered_while_hundreds_of_clients_trickle_bytes() {
    let admin_port = free_port();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let p = Portico::start(&config(admin_port), DRIVERS[0]);
    let stop = Arc::new(AtomicBool::new(false));
    // More than the listener keeps reading at once (256), so the newest take the place
    // of the oldest; far more than the 32 connection threads of old.
    let loris = slow_clients(admin, 300, stop.clone());
    thread::sleep(Duration::from_secs(3));
    // Across more than one request deadline (5 s), so through the 408s and reconnects.
    let until = Instant::now() + Duration::from_secs(7);
    let mut answered = 0;
    while Instant::now() < until {
        let r = prompt(admin, "/health");
        assert!(r.text().contains(r#""status":"ok""#), "{}", r.text());
        let m = prompt(admin, "/metrics");
        assert!(m.text().contains("portico_"), "{}", m.text());
        answered += 1;
        thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::SeqCst);
    loris.join().unwrap();
    assert!(answered >= 5, "{answered}");
    // The gateway itself never noticed.
    assert_eq!(p.get("/ping").status, 200);
}

#[test]
fn a_request_still_arriving_at_the_deadline_gets_408() {
    let admin_port = free_port();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let _p = Portico::start(&config(admin_port), DRIVERS[0]);
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: admin\r\n")
        .unwrap();
    let mut got = Vec::new();
    // A header byte every 500 ms: each read is quick, the request never ends.
    while started.elapsed() < Duration::from_secs(8) {
        if s.write_all(b"x").is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => thread::sleep(Duration::from_millis(300)),
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "after {took:?}: {text:?}");
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(7),
        "answered after {took:?}"
    );
}

/// Clients that never read their answer hold a thread while it is written (up to 5 s),
/// not a handler's place: forty of them, each sent a `/metrics` of megabytes, more than
/// the socket buffers take, made `/health` answer 503 (and a load balancer drop the
/// node) with no token needed.
#[test]
fn clients_that_never_read_their_answer_leave_health_answered() {
    let admin_port = free_port();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let mut yaml = config(admin_port);
    for i in 0..3000 {
        yaml += &format!(
            "      \"GET /r{i}\": {{ integration: {{ type: mock, status: 200, body: x }} }}\n"
        );
    }
    let p = Portico::start(&yaml, DRIVERS[0]);
    // Each route counted once: its series are in `/metrics`.
    let mut c = Client::connect(p.addr);
    for i in 0..3000 {
        let r = c.send(format!("GET /r{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(r.status, 200);
    }
    let size = prompt(admin, "/metrics").body.len();
    assert!(size > 4 << 20, "{size}");
    let stuck: Vec<socket2::Socket> = (0..40)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(1024).unwrap();
            s.connect(&admin.into()).unwrap();
            let mut s2 = TcpStream::from(s.try_clone().unwrap());
            s2.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    for _ in 0..4 {
        let r = prompt(admin, "/health");
        assert!(r.text().contains(r#""status":"ok""#), "{}", r.text());
        thread::sleep(Duration::from_millis(500));
    }
    drop(stuck);
}
