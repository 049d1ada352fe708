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
        if authorized && offered.split(',').any(|p| p.trim() == "chat.v2") {
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
        let extra = "Authorization: Bearer abc\r\nX-Tenant: t1\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\nSec-WebSocket-Extensions: permessage-deflate\r\nConnection: x-secret-hop\r\nX-Secret-Hop: 1\r\nx-amzn-connection-id: spoofed\r\nX_Forwarded_For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n";
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
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("127.0.0.1"),
            "{driver}"
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
