//! The HTTP answers of a WebSocket API stage that are not a 101: a plain request's 426
//! names the protocol to upgrade to in `Upgrade` and `Connection` (RFC 9110 §15.5.22,
//! §7.8; it had only `Sec-WebSocket-Version`), and a `$connect` refusal with status 304
//! ends at its head, as the same answer on an HTTP route does (it was sent with the
//! function's body and its length). 204 and 205 are 2xx: they complete the handshake.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::ws::*;
use common::*;

/// Everything the server sends on `s` until it closes.
fn read_all(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The values of header `name` in a raw head, lowercased.
fn values(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .collect()
}

#[test]
fn a_426_names_the_websocket_upgrade() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-426");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", ECHO_ROUTES), driver);
        // Keep-alive and close alike: Connection lists `upgrade` either way.
        for connection in ["", "Connection: close\r\n"] {
            let mut s = p.connect();
            write!(s, "GET /prod HTTP/1.1\r\nHost: x\r\n{connection}\r\n").unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            assert!(head.starts_with("HTTP/1.1 426 "), "{driver}: {head}");
            assert_eq!(values(&head, "upgrade"), ["websocket"], "{driver}: {head}");
            assert!(
                values(&head, "connection")
                    .iter()
                    .any(|v| v.split(',').any(|t| t.trim() == "upgrade")),
                "{driver}: {head}"
            );
            assert_eq!(values(&head, "sec-websocket-version"), ["13"], "{head}");
        }
        p.stop();
    }
}

#[test]
fn bodiless_connect_refusals_end_at_the_head() {
    // A Lambda-style `$connect` function answering the status in `?st=` with a body.
    let function = Origin::start(|req, s| {
        let ev: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let st: u16 = ev["queryStringParameters"]["st"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let answer = serde_json::json!({"statusCode": st, "body": "go away"});
        respond(s, 200, &[], answer.to_string().as_bytes());
        true
    });
    let url = format!(
        "http://{}/2015-03-31/functions/f/invocations",
        function.addr
    );
    let routes = format!("      $connect: {{ integration: {{ type: lambda, url: \"{url}\" }} }}\n");
    for driver in DRIVERS {
        let dir = temp_dir("ws-refuse-bodiless");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", &routes), driver);
        for (st, length, body) in [(304, None, ""), (403, Some("7"), "go away")] {
            let mut s = p.connect();
            let head = raw_handshake(&mut s, &format!("/prod?st={st}"), "");
            assert!(
                head.starts_with(&format!("HTTP/1.1 {st} ")),
                "{driver}: {head}"
            );
            let length: Vec<String> = length.into_iter().map(String::from).collect();
            assert_eq!(values(&head, "content-length"), length, "{driver}: {head}");
            // The refusal closes the connection: what follows the head is all of it.
            assert_eq!(read_all(&mut s), body, "{driver}: {st}");
        }
        p.stop();
    }
}
