//! An `http` integration on `$connect` gets the client's query string and end-to-end
//! headers, so a backend can authenticate the caller and choose a subprotocol; it got
//! none of them (only the x-amzn-* headers). What would make the call look like the
//! handshake (Upgrade, Connection, Sec-WebSocket-Key/-Version/-Extensions), hop-by-hop
//! fields, and a client's own spellings of the headers Portico writes are not passed on.

// The origin records calls from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::ws::*;
use common::*;

#[test]
fn connect_calls_carry_the_clients_query_and_headers() {
    let backend = Origin::start(|req, s| {
        let authorized = req.target.contains("token=good") && req.header("authorization").is_some();
        let offered = req.header("sec-websocket-protocol").unwrap_or("");
        if authorized && req.target.contains("two=1") {
            // Two lines: the 101 may carry one subprotocol only.
            let both = [
                ("Sec-WebSocket-Protocol", "chat.v2"),
                ("Sec-WebSocket-Protocol", "chat.v1"),
            ];
            respond(s, 200, &both, b"");
        } else if authorized && offered.split(',').any(|p| p.trim() == "chat.v2") {
            respond(s, 200, &[("Sec-WebSocket-Protocol", "chat.v2")], b"");
        } else {
            respond(s, 401, &[], b"no");
        }
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-connect-http");
        let routes =
            "      $connect: { integration: { type: http, upstream: be, path: /connect } }\n";
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{}\"] }}\n",
            backend.addr
        ));
        let p = Portico::start(&cfg, driver);
        let extra = "Authorization: Bearer abc\r\nX-Tenant: t1\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\nSec-WebSocket-Extensions: permessage-deflate\r\nConnection: x-secret-hop, x-forwarded-for, x-amzn-trace-id\r\nX-Secret-Hop: 1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\nx-amzn-connection-id: spoofed\r\nX_Forwarded_For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 8.8.8.8\r\nX_Real_IP: 8.8.4.4\r\n";
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = raw_handshake(&mut s, "/prod?token=good&x=a%20b&h={HOST}", extra);
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\nsec-websocket-protocol: chat.v2\r\n"),
            "{driver}: {head}"
        );
        let seen = backend.last();
        assert_eq!(
            seen.target, "/connect?token=good&x=a%20b&h={HOST}",
            "{driver}"
        );
        let mut two = p.connect();
        two.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = raw_handshake(&mut two, "/prod?token=good&two=1", extra).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101 "), "{driver}: {head}");
        assert_eq!(
            head.matches("sec-websocket-protocol").count(),
            1,
            "{driver}: {head}"
        );
        assert!(
            head.contains("\r\nsec-websocket-protocol: chat.v2\r\n"),
            "{driver}: {head}"
        );
        // The host line is the target's, whatever the query holds.
        assert_eq!(
            seen.header("host"),
            Some(backend.addr.to_string().as_str()),
            "{driver}"
        );
        assert_eq!(seen.header("authorization"), Some("Bearer abc"), "{driver}");
        assert_eq!(seen.header("x-tenant"), Some("t1"), "{driver}");
        assert_eq!(
            seen.header("sec-websocket-protocol"),
            Some("chat.v1, chat.v2"),
            "{driver}"
        );
        for gone in [
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
            "upgrade",
            "x-secret-hop",
            "x_forwarded_for",
        ] {
            assert_eq!(seen.header(gone), None, "{driver}: {gone} in {seen:?}");
        }
        assert!(
            seen.headers
                .iter()
                .all(|(n, v)| !n.eq_ignore_ascii_case("connection") || v == "keep-alive"),
            "{driver}: {seen:?}"
        );
        let ids: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-amzn-connection-id"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(ids.len() == 1 && ids[0] != "spoofed", "{driver}: {ids:?}");
        assert_eq!(seen.header("x-forwarded-proto"), Some("http"), "{driver}");
        // The client's address, as the HTTP proxy writes it; the client's own dropped.
        let real: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(n, _)| {
                n.eq_ignore_ascii_case("x-real-ip") || n.eq_ignore_ascii_case("x_real_ip")
            })
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(real, ["127.0.0.1"], "{driver}");
        // Named in the client's Connection: this hop's only, not continued.
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("127.0.0.1"),
            "{driver}"
        );
        let trace = seen.header("x-amzn-trace-id").unwrap_or_default();
        assert!(
            trace.starts_with("Root=1-") && !trace.contains("5759e988"),
            "{driver}: {trace}"
        );
        // The backend refuses a bad token: its answer is the handshake's.
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = raw_handshake(
            &mut s,
            "/prod?token=bad",
            "Authorization: Bearer abc\r\nSec-WebSocket-Protocol: chat.v2\r\n",
        );
        assert!(head.starts_with("HTTP/1.1 401 "), "{driver}: {head}");
        p.stop();
    }
}

/// Header values go to the backend as the client sent them: a value that is not UTF-8
/// (obs-text, a Latin-1 cookie) is not rewritten with U+FFFD as the events' strings are.
#[test]
fn connect_headers_reach_the_backend_byte_for_byte() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let seen = seen.clone();
            std::thread::spawn(move || loop {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if !matches!(s.read(&mut b), Ok(1)) {
                        return;
                    }
                    head.push(b[0]);
                }
                // $connect calls carry no body.
                seen.lock().unwrap().push(head);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            });
        }
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-connect-raw");
        let routes =
            "      $connect: { integration: { type: http, upstream: be, path: /connect } }\n";
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!("upstreams:\n  be: {{ targets: [\"{addr}\"] }}\n"));
        let p = Portico::start(&cfg, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(
            b"GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: name=caf\xe9\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "{driver}: {head:?}");
            head.push(b[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{driver}: {head:?}");
        let seen = heads.lock().unwrap().pop().expect("the backend was called");
        assert!(
            seen.windows(17)
                .any(|w| w.eq_ignore_ascii_case(b"cookie: name=caf\xe9")),
            "{driver}: {}",
            String::from_utf8_lossy(&seen)
        );
        p.stop();
    }
}
