//! Upgrade passthrough on `http` integrations (integration::tunnel): a WebSocket through
//! Portico to a real WebSocket server (Python `websockets` on both ends, plain and TLS on
//! both sides), raw tunnels with bytes sent early by either side and half-closes, answers
//! other than 101 relayed as responses, upgrades the route does not allow sent as plain
//! requests, the tunnel's own idle timeout, metrics and the access log, and a reload that
//! leaves an open tunnel alone.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::tls::*;
use common::ws::*;
use common::*;
use serde_json::json;

#[path = "upgrade/answers.rs"]
mod answers;
#[path = "upgrade/bulk.rs"]
mod bulk;

/// `{PORT}` plain, the admin listener on `admin`, an access log at `log`; API `app`
/// (`$default` stage) sends everything to upstream `backend` (`target`), with `upgrade`
/// as the integration's `upgrade:` value when given.
fn config(target: &str, admin: u16, log: &Path, upgrade: Option<&str>, extra: &str) -> String {
    let upgrade = upgrade.map_or(String::new(), |u| format!(", upgrade: {u}"));
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 2s }}
  access_log: {{ path: "{log}", format: '{{"status":"$context.status","path":"$context.path","bytes":"$context.responseLength"}}' }}
admin: {{ listen: "127.0.0.1:{admin}" }}
state_dir: "{state}"
upstreams:
  backend:
    targets: ["{target}"]
    connect_timeout: 1s
{extra}apis:
  app:
    stages:
      $default: {{}}
    routes:
      "$default":
        integration: {{ type: http, upstream: backend, timeout: 2s{upgrade} }}
"#,
        log = log.display(),
        state = log.parent().unwrap().display()
    )
}

fn metric(admin: u16, line_prefix: &str) -> Option<u64> {
    let text = common::admin(
        SocketAddr::from(([127, 0, 0, 1], admin)),
        "GET",
        "/metrics",
        None,
        None,
    )
    .text();
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn websocket_through_an_http_route_reaches_a_real_server() {
    let echo = EchoServer::start(None);
    for driver in DRIVERS {
        let dir = temp_dir("ws-pass");
        let log = dir.join("access.log");
        let admin = free_port();
        let target = format!("127.0.0.1:{}", echo.port);
        let p = Portico::start(&config(&target, admin, &log, None, ""), driver);
        let url = format!("ws://{}/chat/room?x=1", p.addr);
        let mut ws = WsClient::connect(&url, json!({"subprotocols": ["chat.v1"]}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        // The server's choice of subprotocol and our request id reach the client.
        assert_eq!(ws.opened["subprotocol"], "chat.v1", "{driver}");
        assert!(ws.opened["headers"]["x-amzn-requestid"].is_string());
        assert_eq!(ws.ask("hello"), "hello", "{driver}");
        assert_eq!(ws.cmd("sendb 00ff10")["event"], "sent");
        assert_eq!(ws.cmd("recv")["binary"], "00ff10", "{driver}");
        assert_eq!(ws.cmd("ping")["event"], "pong", "{driver}");
        // Incompressible, so permessage-deflate can't shrink what the tunnel counts.
        let big = noise(300_000);
        assert_eq!(ws.ask(&big), big, "{driver}");
        // What the backend's handshake saw: the upgrade, the path and query, forwarding.
        let seen: serde_json::Value = serde_json::from_str(&ws.ask("headers?")).unwrap();
        assert_eq!(seen["path"], "/chat/room?x=1", "{driver}");
        let h = &seen["headers"];
        assert_eq!(h["upgrade"], "websocket", "{driver}: {h}");
        assert_eq!(h["connection"], "upgrade", "{driver}: {h}");
        assert!(h["sec-websocket-key"].is_string(), "{driver}: {h}");
        assert_eq!(h["sec-websocket-protocol"], "chat.v1", "{driver}");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{driver}");
        ws.send("push 200");
        for i in 0..200 {
            assert_eq!(ws.recv_text(), format!("push {i}"), "{driver}");
        }
        assert_eq!(
            metric(admin, "portico_tunnels_active "),
            Some(1),
            "{driver}"
        );
        // The server closes: its code reaches the client through the tunnel.
        ws.send("bye");
        let closed = ws.cmd("wait_closed");
        assert_eq!(closed["code"], 4001, "{driver}: {closed}");
        assert!(
            eventually(|| metric(admin, "portico_tunnels_active ") == Some(0)),
            "{driver}: the tunnel is closed"
        );
        let up = metric(
            admin,
            "portico_tunnel_bytes_total{direction=\"to_upstream\"}",
        )
        .unwrap();
        let down = metric(admin, "portico_tunnel_bytes_total{direction=\"to_client\"}").unwrap();
        assert!(up > 200_000 && down > 200_000, "{driver}: {up} {down}");
        // One access-log line when it closed: status 101, the bytes sent to the client.
        assert!(
            eventually(|| std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"101\""))),
            "{driver}"
        );
        let line = std::fs::read_to_string(&log).unwrap();
        let entry: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
        assert_eq!(entry["status"], "101", "{driver}");
        assert_eq!(entry["path"], "/chat/room", "{driver}");
        assert!(entry["bytes"].as_str().unwrap().parse::<u64>().unwrap() > 200_000);
        p.stop();
    }
}

/// Letters from a xorshift generator: text that permessage-deflate can't shrink much.
fn noise(n: usize) -> String {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

/// A raw backend on its own thread: `serve` gets each accepted connection.
fn raw_backend(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let serve = serve.clone();
            thread::spawn(move || serve(s));
        }
    });
    addr
}

/// Reads a head up to the empty line; returns it and the bytes read past it.
fn read_head(r: &mut impl Read) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return (String::from_utf8(buf).unwrap(), rest);
        }
        let n = r.read(&mut byte).unwrap();
        assert!(n > 0, "closed before the end of the head: {buf:?}");
        buf.extend_from_slice(&byte[..n]);
    }
}

/// Upgrades a new connection to the `foo` backend's protocol: the 101 and the early
/// bytes the backend sends at once; returns the socket and what was read past them.
fn open_foo_tunnel(p: &Portico, driver: &str) -> (std::net::TcpStream, Vec<u8>) {
    let mut s = p.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n")
        .unwrap();
    let (head, mut rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{driver}: {head}");
    assert_eq!(read_exactly(&mut s, &mut rest, 5), b"EARLY");
    (s, rest)
}

fn read_exactly(r: &mut impl Read, have: &mut Vec<u8>, n: usize) -> Vec<u8> {
    let mut byte = [0u8; 1024];
    while have.len() < n {
        let k = r.read(&mut byte).unwrap();
        assert!(k > 0, "closed after {have:?}");
        have.extend_from_slice(&byte[..k]);
    }
    let rest = have.split_off(n);
    std::mem::replace(have, rest)
}

/// A backend that switches to protocol `foo`, sends "EARLY" behind its 101, then answers
/// every byte upper-cased; at the client's end of stream it sends "BYE" and closes.
fn foo_backend(seen: std::sync::mpsc::Sender<String>) -> SocketAddr {
    raw_backend(move |mut s| {
        let (head, mut rest) = read_head(&mut s);
        let _ = seen.send(head);
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\nX-Kept: 2\r\nX-Amzn-RequestId: forged\r\napigw-requestid: forged\r\n\r\nEARLY")
            .unwrap();
        let mut buf = [0u8; 1024];
        loop {
            if !rest.is_empty() {
                s.write_all(&rest.to_ascii_uppercase()).unwrap();
                rest.clear();
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => rest.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(b"BYE");
    })
}

#[test]
fn raw_tunnel_carries_early_bytes_both_ways_and_half_closes() {
    let (tx, rx) = std::sync::mpsc::channel();
    let backend = foo_backend(tx);
    for driver in DRIVERS {
        let dir = temp_dir("ws-raw");
        let cfg = config(
            &backend.to_string(),
            free_port(),
            &dir.join("a.log"),
            Some("{ protocols: [websocket, foo] }"),
            "",
        );
        let p = Portico::start(&cfg, driver);
        let mut s = p.connect();
        // The client speaks the new protocol in the same write as its request.
        s.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo/1, bar\r\n\r\nhello")
            .unwrap();
        let (head, mut rest) = read_head(&mut s);
        let lower = head.to_ascii_lowercase();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{driver}: {head}"
        );
        assert!(lower.contains("\r\nupgrade: foo\r\n"), "{driver}: {head}");
        assert!(
            lower.contains("\r\nconnection: upgrade\r\n"),
            "{driver}: {head}"
        );
        assert!(lower.contains("\r\nx-kept: 2\r\n"), "{driver}: {head}");
        // Date and Server, as on every answer (the backend sent neither).
        assert_eq!(lower.matches("\r\ndate: ").count(), 1, "{driver}: {head}");
        assert!(
            lower.contains("\r\nserver: portico\r\n"),
            "{driver}: {head}"
        );
        // Hop-by-hop fields the backend named are not passed on, nor framing, nor the
        // backend's request ids beside the gateway's.
        assert!(!lower.contains("x-hop"), "{driver}: {head}");
        assert!(!lower.contains("forged"), "{driver}: {head}");
        assert_eq!(
            lower.matches("\r\nx-amzn-requestid: ").count(),
            1,
            "{driver}"
        );
        assert_eq!(
            lower.matches("\r\napigw-requestid: ").count(),
            1,
            "{driver}"
        );
        assert!(!lower.contains("content-length"), "{driver}: {head}");
        let up = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            up.contains("\r\nupgrade: foo/1\r\n"),
            "{driver}: only allowed protocols: {up}"
        );
        assert!(up.contains("\r\nconnection: upgrade\r\n"), "{driver}: {up}");
        assert!(!up.contains("keep-alive"), "{driver}: {up}");
        assert_eq!(read_exactly(&mut s, &mut rest, 5), b"EARLY", "{driver}");
        assert_eq!(read_exactly(&mut s, &mut rest, 5), b"HELLO", "{driver}");
        s.write_all(b"more bytes").unwrap();
        assert_eq!(
            read_exactly(&mut s, &mut rest, 10),
            b"MORE BYTES",
            "{driver}"
        );
        // The client's end of stream reaches the backend; its answer still comes back.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut tail = Vec::new();
        s.read_to_end(&mut tail).unwrap();
        rest.extend_from_slice(&tail);
        assert_eq!(rest, b"BYE", "{driver}");
        p.stop();
    }
}

#[test]
fn an_idle_tunnel_closes_after_its_own_timeout_and_traffic_keeps_it_open() {
    let (tx, _rx) = std::sync::mpsc::channel();
    let backend = foo_backend(tx);
    for driver in DRIVERS {
        let dir = temp_dir("ws-idle");
        let admin = free_port();
        let cfg = config(
            &backend.to_string(),
            admin,
            &dir.join("a.log"),
            Some("{ protocols: [foo], idle_timeout: 1s }"),
            "",
        );
        let p = Portico::start(&cfg, driver);
        let (mut s, mut rest) = open_foo_tunnel(&p, driver);
        // Traffic every 400 ms for 2.4 s: longer than the idle timeout, never idle.
        for _ in 0..6 {
            thread::sleep(Duration::from_millis(400));
            s.write_all(b"ping").unwrap();
            assert_eq!(read_exactly(&mut s, &mut rest, 4), b"PING", "{driver}");
        }
        let quiet = Instant::now();
        let mut tail = Vec::new();
        s.read_to_end(&mut tail).unwrap();
        let waited = quiet.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{driver}: closed after {waited:?}"
        );
        assert!(eventually(
            || metric(admin, "portico_tunnels_active ") == Some(0)
        ));
        p.stop();
    }
}

/// A tunnel waits for readability holding no copy buffer, taking one when bytes arrive:
/// after quiet spells longer than the worker's coarse tick it must still carry bytes both
/// ways, small and large (more than one buffer's worth), and still end as a half-close.
#[test]
fn a_quiet_tunnel_carries_bytes_both_ways_after() {
    let (tx, _rx) = std::sync::mpsc::channel();
    let backend = foo_backend(tx);
    for driver in DRIVERS {
        let dir = temp_dir("ws-park");
        let upgrade = Some("{ protocols: [foo], idle_timeout: 10s }");
        let p = Portico::start(
            &config(
                &backend.to_string(),
                free_port(),
                &dir.join("a.log"),
                upgrade,
                "",
            ),
            driver,
        );
        let (mut s, mut rest) = open_foo_tunnel(&p, driver);
        for round in 0..2 {
            // Quiet for many of the worker's coarse ticks (the idle checks').
            thread::sleep(Duration::from_millis(1300));
            s.write_all(b"after").unwrap();
            assert_eq!(
                read_exactly(&mut s, &mut rest, 5),
                b"AFTER",
                "{driver} {round}"
            );
        }
        thread::sleep(Duration::from_millis(1300));
        // More than one copy buffer's worth, read back while it is written.
        let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut writer = s.try_clone().unwrap();
        let sent = big.clone();
        let w = thread::spawn(move || writer.write_all(&sent).unwrap());
        let back = read_exactly(&mut s, &mut rest, big.len());
        w.join().unwrap();
        assert!(
            back == big.to_ascii_uppercase(),
            "{driver}: the large transfer"
        );
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut tail = Vec::new();
        s.read_to_end(&mut tail).unwrap();
        rest.extend_from_slice(&tail);
        assert_eq!(rest, b"BYE", "{driver}");
        p.stop();
    }
}

#[test]
fn wss_to_portico_and_wss_to_the_backend() {
    let dir = temp_dir("ws-tls");
    let ca = Ca::new("ws test CA");
    let ca_file = ca.write(&dir, "ca");
    let backend_files = ca.server_cert(&["localhost"]).write(&dir, "backend");
    let front_files = ca.server_cert(&["ws.example"]).write(&dir, "front");
    let echo = EchoServer::start(Some((&backend_files.0, &backend_files.1)));
    for driver in DRIVERS {
        let tls_port = free_port();
        let domains = format!(
            "domains:\n  ws.example:\n    cert: \"{}\"\n    key: \"{}\"\n    mappings: {{ \"\": app/$default }}\n",
            front_files.0.display(),
            front_files.1.display()
        );
        let target = format!("https://localhost:{}", echo.port);
        let mut cfg = config(&target, free_port(), &dir.join("a.log"), None, "");
        cfg = cfg.replace(
            "  workers: 2\n",
            &format!("  workers: 2\n  tls_listen: [\"127.0.0.1:{tls_port}\"]\n"),
        );
        cfg = cfg.replace(
            "    connect_timeout: 1s\n",
            &format!(
                "    connect_timeout: 1s\n    tls: {{ ca: \"{}\" }}\n",
                ca_file.display()
            ),
        );
        cfg.push_str(&domains);
        let p = Portico::start(&cfg, driver);
        wait_port(tls_port);
        let url = format!("wss://ws.example:{tls_port}/secure");
        // The client resolves ws.example to 127.0.0.1 through the URL's host only for
        // SNI; it connects to the listener by address.
        let mut ws = WsClient::connect(
            &format!("wss://127.0.0.1:{tls_port}/secure"),
            json!({"ca": ca_file.display().to_string(), "server_hostname": "ws.example"}),
        );
        assert!(ws.is_open(), "{driver} {url}: {}", ws.opened);
        assert_eq!(ws.ask("over tls"), "over tls", "{driver}");
        let big = noise(200_000);
        assert_eq!(ws.ask(&big), big, "{driver}");
        ws.send("push 100");
        for i in 0..100 {
            assert_eq!(ws.recv_text(), format!("push {i}"), "{driver}");
        }
        assert_eq!(ws.cmd("close")["code"], 1000, "{driver}");
        p.stop();
    }
}

#[test]
fn a_reload_leaves_an_open_tunnel_alone() {
    let echo = EchoServer::start(None);
    for driver in DRIVERS {
        let dir = temp_dir("ws-reload");
        let log = dir.join("a.log");
        let admin = free_port();
        let target = format!("127.0.0.1:{}", echo.port);
        let port = free_port();
        let cfg = config(&target, admin, &log, None, "").replace("{PORT}", &port.to_string());
        let p = Portico::start_at(&cfg, driver, port);
        let mut ws = WsClient::connect(&format!("ws://{}/", p.addr), json!({}));
        assert_eq!(ws.ask("before"), "before", "{driver}");
        // The new config sends every request to a mock: the open tunnel keeps its backend.
        let mocked = cfg.replace(
            "integration: { type: http, upstream: backend, timeout: 2s }",
            "integration: { type: mock, body: reloaded }",
        );
        assert_ne!(mocked, cfg);
        std::fs::write(&p.config, mocked).unwrap();
        p.signal(1);
        assert!(eventually(|| p.get("/").text() == "reloaded"), "{driver}");
        assert_eq!(ws.ask("after"), "after", "{driver}");
        let again = WsClient::connect(&format!("ws://{}/", p.addr), json!({}));
        assert_eq!(
            again.opened["event"], "rejected",
            "{driver}: {}",
            again.opened
        );
        assert_eq!(again.opened["status"], 200, "{driver}");
        p.stop();
    }
}

#[test]
fn a_bad_upgrade_setting_is_an_error_with_its_key_path() {
    let dir = temp_dir("ws-check");
    let cfg = config(
        "127.0.0.1:9",
        free_port(),
        &dir.join("a.log"),
        Some("{ protocols: [\"web socket\"], idle_timeout: soon }"),
        "",
    );
    let (code, out) = check(&cfg);
    assert_ne!(code, 0, "{out}");
    let at = "apis.app.routes.$default.integration.upgrade";
    assert!(
        out.contains(&format!(
            r#"{at}.protocols: "web socket" is not a protocol name"#
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{at}.idle_timeout: expected a duration")),
        "{out}"
    );
    // 0s passed `check`, and every tunnel of the route ended right after its 101.
    let cfg = config(
        "127.0.0.1:9",
        free_port(),
        &dir.join("a.log"),
        Some("{ protocols: [websocket], idle_timeout: 0s }"),
        "",
    );
    let (code, out) = check(&cfg);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{at}.idle_timeout: must be above 0")),
        "{out}"
    );
}

#[test]
fn an_upgrade_request_is_never_answered_from_the_response_cache() {
    let echo = EchoServer::start(None);
    for driver in DRIVERS {
        let dir = temp_dir("ws-cache");
        let target = format!("127.0.0.1:{}", echo.port);
        let cfg = config(&target, free_port(), &dir.join("a.log"), None, "")
            .replace("      $default: {}\n", "      $default: { cache: { capacity: 1MiB } }\n")
            .replace(
                "integration: { type: http, upstream: backend, timeout: 2s }",
                "integration: { type: http, upstream: backend, timeout: 2s }\n        cache: { ttl: 60s, statuses: [426] }",
            );
        assert!(
            cfg.contains("cache: { ttl: 60s, statuses: [426] }"),
            "{cfg}"
        );
        let p = Portico::start(&cfg, driver);
        // A plain GET fills the cache with the server's refusal of a non-upgrade (426,
        // cacheable here), which an upgrade request must never get.
        let first = p.get("/live");
        assert_eq!(first.status, 426, "{driver}: {}", first.text());
        let mut ws = WsClient::connect(&format!("ws://{}/live", p.addr), json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.ask("fresh"), "fresh", "{driver}");
        p.stop();
    }
}
