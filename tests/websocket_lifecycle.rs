//! `$disconnect` reaches the backend exactly once, with its close code, on every way a
//! WebSocket API connection can end: the client's close, a vanished client, the idle
//! timeout, DeleteConnection, a reload that removed the API, and SIGTERM. The backend is
//! an http integration that records the calls; clients are raw sockets.

// The origin records calls from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::ws::*;
use common::*;

/// Opens a connection and learns its id from the Forbidden notice of an unrouted message.
fn open(p: &Portico) -> (TcpStream, String) {
    let mut s = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let id = open_on(&mut s);
    (s, id)
}

/// The handshake and the id on a connected socket.
fn open_on(s: &mut TcpStream) -> String {
    let head = raw_handshake(s, "/prod", "");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s.write_all(&frame(1, b"who am i")).unwrap();
    let (op, notice) = read_frame(s);
    assert_eq!(op, 1);
    let notice: serde_json::Value = serde_json::from_slice(&notice).unwrap();
    let id = notice["connectionId"].as_str().unwrap().to_string();
    id
}

/// A masked, final client frame.
/// A connection whose client takes at most 4 KiB into its receive buffer, so that a
/// client that stops reading soon leaves the server's writes stuck.
fn open_small_window(p: &Portico) -> (TcpStream, String) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&p.addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let id = open_on(&mut s);
    (s, id)
}

/// The management API's path for a connection id (base64: `=`, `/`, `+` escaped).
fn connection_path(id: &str) -> String {
    let escaped = id
        .replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B");
    format!("/@connections/{escaped}")
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8, 9, 8, 7, 6];
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]),
    );
    out
}

fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    try_read_frame(s).expect("a frame")
}

/// One server frame, or None once the connection has ended (or stays silent past the
/// read timeout) before a frame starts.
fn try_read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    Some((h[0] & 0x0F, payload))
}

/// The `$disconnect` calls the backend got for connection `id`.
fn disconnects(backend: &Origin, id: &str) -> usize {
    backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.target == "/disconnect" && r.header("x-amzn-connection-id") == Some(id))
        .count()
}

/// Waits until `id` had its `$disconnect`, then a little longer to see no second one.
fn exactly_once(backend: &Origin, id: &str, what: &str) {
    assert!(
        eventually(|| disconnects(backend, id) >= 1),
        "{what}: no $disconnect for {id}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(disconnects(backend, id), 1, "{what}: {id}");
}

fn config(backend: SocketAddr, admin: u16, dir: &std::path::Path) -> String {
    let routes = "      $connect: { integration: { type: http, upstream: be, path: /connect } }\n      $disconnect: { integration: { type: http, upstream: be, path: /disconnect } }\n";
    let mut cfg = ws_api_config(
        admin,
        dir,
        "    limits: { idle: 2s, max_duration: 1h }\n",
        routes,
    );
    cfg.push_str(&format!(
        "upstreams:\n  be: {{ targets: [\"{backend}\"] }}\n"
    ));
    cfg
}

#[test]
fn disconnect_reaches_the_backend_once_on_every_kind_of_close() {
    let backend = Origin::start(|_, s| {
        common::respond(s, 200, &[], b"");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-life");
        let (port, admin) = (free_port(), free_port());
        let cfg = config(backend.addr, admin, &dir).replace("{PORT}", &port.to_string());
        let mut p = Portico::start_at(&cfg, driver, port);

        // The client's close.
        let (mut s, id) = open(&p);
        s.write_all(&frame(8, &1000u16.to_be_bytes())).unwrap();
        assert_eq!(read_frame(&mut s).0, 8);
        exactly_once(&backend, &id, &format!("{driver}: client close"));

        // The client vanishes without a close frame.
        let (s, id) = open(&p);
        drop(s);
        exactly_once(&backend, &id, &format!("{driver}: vanished"));

        // Idle for 2 s.
        let (mut s, id) = open(&p);
        assert_eq!(read_frame(&mut s).0, 8, "{driver}: idle close");
        exactly_once(&backend, &id, &format!("{driver}: idle"));

        // DeleteConnection on the admin listener.
        let (mut s, id) = open(&p);
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin));
        let path = connection_path(&id);
        let r = common::admin(admin_addr, "DELETE", &path, Some("secret"), None);
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert_eq!(read_frame(&mut s).0, 8, "{driver}: deleted");
        exactly_once(&backend, &id, &format!("{driver}: DeleteConnection"));

        // A reload that removed the API: the connection keeps the config it opened on,
        // its $disconnect included.
        let (mut s, id) = open(&p);
        let renamed = cfg.replace("\n  chat:\n", "\n  chat2:\n");
        assert_ne!(renamed, cfg);
        std::fs::write(&p.config, renamed).unwrap();
        p.signal(1);
        assert!(
            eventually(|| p.log_text().matches("config reloaded").count() >= 1),
            "{driver}: reloaded"
        );
        s.write_all(&frame(8, &1000u16.to_be_bytes())).unwrap();
        assert_eq!(read_frame(&mut s).0, 8);
        exactly_once(&backend, &id, &format!("{driver}: API removed by a reload"));
        std::fs::write(&p.config, &cfg).unwrap();
        p.signal(1);
        assert!(
            eventually(|| p.log_text().matches("config reloaded").count() >= 2),
            "{driver}: reloaded back"
        );

        // SIGTERM: 1001, and $disconnect before the process ends.
        let (mut s, id) = open(&p);
        p.signal(15);
        let (op, payload) = read_frame(&mut s);
        assert_eq!((op, &payload[..2]), (8, &1001u16.to_be_bytes()[..]));
        let status = p.wait_exit(Duration::from_secs(30));
        assert!(status.success(), "{driver}: {status:?}");
        assert_eq!(disconnects(&backend, &id), 1, "{driver}: SIGTERM");
    }
}

/// A client that sends pings and reads nothing: once its pongs fill both sockets and the
/// queue, the server stops reading it and its writer waits forever. The idle timeout
/// (pings are not activity) decides the close; the socket is dropped when the close frame
/// can't be sent within the grace, and `$disconnect` runs. It used to stay open, past
/// idle and max_duration, holding up to 1 MiB of queued pongs, with no `$disconnect`.
#[test]
fn a_client_that_reads_nothing_is_dropped_after_the_close_grace() {
    let backend = Origin::start(|_, s| {
        common::respond(s, 200, &[], b"");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-deaf");
        let cfg = config(backend.addr, free_port(), &dir).replace("idle: 2s", "idle: 1s");
        let p = Portico::start(&cfg, driver);
        // The handshake and the id, read while the client still reads.
        let (mut s, id) = open_small_window(&p);
        let mut pings = Vec::new();
        for _ in 0..64 {
            pings.extend(frame(9, &[b'p'; 125]));
        }
        s.set_nonblocking(true).unwrap();
        let started = Instant::now();
        let mut blocked_since: Option<Instant> = None;
        // Until the server has taken nothing for 2 s (it stopped reading).
        while blocked_since.is_none_or(|t| t.elapsed() < Duration::from_secs(2)) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{driver}: the server kept reading"
            );
            match s.write(&pings) {
                Ok(_) => blocked_since = None,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    blocked_since.get_or_insert_with(Instant::now);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{driver}: {e}"),
            }
        }
        // Idle (1 s) and the grace (10 s) later, without reading a byte.
        let deadline = Instant::now() + Duration::from_secs(40);
        while disconnects(&backend, &id) == 0 {
            assert!(
                Instant::now() < deadline,
                "{driver}: the connection of a client that reads nothing stayed open"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(disconnects(&backend, &id), 1, "{driver}");
        drop(s);
        p.stop();
    }
}

/// Pings are answered while a message's integration runs (a client's keepalive gave up
/// on pongs held for a slow integration: they waited for it); messages that come
/// meanwhile are still handled in order, after it. A close is echoed at once (see
/// tests/websocket_client_leaves.rs).
#[test]
fn pings_are_answered_while_an_integration_runs() {
    let backend = Origin::start(|req, s| {
        if req.target == "/slow" {
            std::thread::sleep(Duration::from_secs(2));
        }
        let body = format!("done {}", String::from_utf8_lossy(&req.body));
        common::respond(s, 200, &[], body.as_bytes());
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-busy");
        let routes = "      slow: { integration: { type: http, upstream: be, path: /slow }, route_response: true }\n      fast: { integration: { type: http, upstream: be, path: /fast }, route_response: true }\n";
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{}\"] }}\n",
            backend.addr
        ));
        let p = Portico::start(&cfg, driver);
        let (mut s, _) = open(&p);
        let slow = br#"{"action":"slow"}"#;
        let fast = br#"{"action":"fast"}"#;
        let mut burst = frame(1, slow);
        burst.extend(frame(9, b"p1"));
        burst.extend(frame(1, fast));
        burst.extend(frame(9, b"p2"));
        s.write_all(&burst).unwrap();
        // Both pongs before the slow answer, then the answers in order.
        assert_eq!(read_frame(&mut s), (10, b"p1".to_vec()), "{driver}");
        assert_eq!(read_frame(&mut s), (10, b"p2".to_vec()), "{driver}");
        let text = |b: &[u8]| format!("done {}", String::from_utf8_lossy(b)).into_bytes();
        assert_eq!(read_frame(&mut s), (1, text(slow)), "{driver}");
        assert_eq!(read_frame(&mut s), (1, text(fast)), "{driver}");
        // A close behind a slow message: echoed without waiting for it, and the
        // message's answer, due after the close, is not sent.
        let mut burst = frame(1, slow);
        burst.extend(frame(8, &1000u16.to_be_bytes()));
        s.write_all(&burst).unwrap();
        assert_eq!(read_frame(&mut s).0, 8, "{driver}");
        assert_eq!(try_read_frame(&mut s), None, "{driver}");
        p.stop();
    }
}

/// DeleteConnection on a client that reads nothing (its socket and queue full of posted
/// messages): the 204 comes at once and the connection goes within the short grace after
/// it, with `$disconnect` (1000) once. The writer, waiting on the client, was the one to
/// notice the delete, so the socket stayed until the idle timeout and the 10 s grace.
#[test]
fn delete_connection_drops_a_client_that_reads_nothing() {
    let backend = Origin::start(|_, s| {
        common::respond(s, 200, &[], b"");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-delete-deaf");
        let admin_port = free_port();
        let cfg = config(backend.addr, admin_port, &dir).replace("idle: 2s", "idle: 10m");
        let p = Portico::start(&cfg, driver);
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let (mut s, id) = open_small_window(&p);
        let path = connection_path(&id);
        // Posts until the queue is full (429): the writer is stuck on the client.
        let chunk = "x".repeat(100 * 1024);
        let mut full = false;
        for _ in 0..200 {
            let r = common::admin(admin_addr, "POST", &path, Some("secret"), Some(&chunk));
            if r.status == 429 {
                full = true;
                break;
            }
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
        }
        assert!(full, "{driver}: the queue never filled");
        let asked = Instant::now();
        let r = common::admin(admin_addr, "DELETE", &path, Some("secret"), None);
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        // The grace is 1 s; 20 s is slack for a loaded machine, far below the idle 10 m.
        while disconnects(&backend, &id) == 0 {
            assert!(
                asked.elapsed() < Duration::from_secs(20),
                "{driver}: the deleted connection of a client that reads nothing stayed open"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(disconnects(&backend, &id), 1, "{driver}");
        // The socket is gone: what the client reads ends (EOF or a reset) without a wait.
        let mut sink = vec![0u8; 64 * 1024];
        let ended = loop {
            match s.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break false,
                Err(_) => break true,
            }
        };
        assert!(ended, "{driver}: the socket stayed open");
        p.stop();
    }
}

/// Once the server has queued its close frame (here the idle timeout's 1001, decided while
/// the client was not reading), `@connections` answers 410 for the connection: a POST was
/// answered 200 and its message queued behind the close frame, so a client that read on
/// got a data frame after the close (RFC 6455 §5.5.1 forbids it).
#[test]
fn posts_after_the_servers_close_are_gone() {
    let backend = Origin::start(|_, s| {
        common::respond(s, 200, &[], b"");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-post-closing");
        let admin_port = free_port();
        let cfg = config(backend.addr, admin_port, &dir);
        let p = Portico::start(&cfg, driver);
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let (mut s, id) = open_small_window(&p);
        let path = connection_path(&id);
        // Fill the sockets and most of the queue, so the close frame waits behind them.
        let chunk = "x".repeat(100 * 1024);
        let mut posted = 0;
        for _ in 0..200 {
            let r = common::admin(admin_addr, "POST", &path, Some("secret"), Some(&chunk));
            // 410: a loaded machine took the idle time between two posts.
            if r.status == 429 || r.status == 410 {
                break;
            }
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            posted += 1;
        }
        // The idle timeout (2 s after the last post) queues the close.
        std::thread::sleep(Duration::from_secs(5));
        let r = common::admin(admin_addr, "POST", &path, Some("secret"), Some("late"));
        assert_eq!(r.status, 410, "{driver}: {}", r.text());
        // The client reads on: the posted messages, then the close, and nothing after it.
        let mut frames = Vec::new();
        while let Some((opcode, payload)) = try_read_frame(&mut s) {
            frames.push((opcode, payload.len()));
        }
        let close = frames.iter().position(|f| f.0 == 8);
        assert_eq!(close, Some(posted), "{driver}: {frames:?}");
        assert_eq!(frames.len(), posted + 1, "{driver}: {frames:?}");
        p.stop();
    }
}

/// A reload that removes a route sends its messages to `$default` (here: none, so a
/// Forbidden notice); a later reload that removes the whole API kept the config the
/// connection opened on, and the removed route answered again. It keeps the last
/// config that had the API now, whether or not it sent a message between the reloads.
#[test]
fn a_route_removed_before_its_api_stays_removed() {
    for quiet in [false, true] {
        for driver in DRIVERS {
            route_removed_then_api(driver, quiet);
        }
    }
}

fn route_removed_then_api(driver: &str, quiet_between: bool) {
    let dir = temp_dir("ws-removed");
    let (port, admin) = (free_port(), free_port());
    let cfg = ws_api_config(admin, &dir, "", ECHO_ROUTES).replace("{PORT}", &port.to_string());
    let p = Portico::start_at(&cfg, driver, port);
    let (mut s, _) = open(&p);
    let echo = br#"{"action":"echo","n":1}"#;
    s.write_all(&frame(1, echo)).unwrap();
    assert_eq!(read_frame(&mut s), (1, echo.to_vec()), "{driver}");
    let mut reloads = 0;
    let mut reload = |yaml: &str| {
        std::fs::write(&p.config, yaml).unwrap();
        p.signal(1);
        reloads += 1;
        assert!(
            eventually(|| p.log_text().matches("config reloaded").count() >= reloads),
            "{driver}: reload {reloads}"
        );
    };
    let without_echo = cfg.replace("      echo: ", "      gone: ");
    assert_ne!(without_echo, cfg);
    reload(&without_echo);
    if !quiet_between {
        s.write_all(&frame(1, echo)).unwrap();
        let (_, notice) = read_frame(&mut s);
        assert!(
            String::from_utf8_lossy(&notice).contains("Forbidden"),
            "{driver}: {}",
            String::from_utf8_lossy(&notice)
        );
    }
    let without_api = without_echo.replace("\n  chat:\n", "\n  chat2:\n");
    assert_ne!(without_api, without_echo);
    reload(&without_api);
    s.write_all(&frame(1, echo)).unwrap();
    let (_, notice) = read_frame(&mut s);
    assert!(
        String::from_utf8_lossy(&notice).contains("Forbidden"),
        "{driver}, quiet between the reloads: {quiet_between}: the removed route answered again: {}",
        String::from_utf8_lossy(&notice)
    );
}
