//! The HTTP answers of a WebSocket API stage that are not a 101: a plain request's 426
//! names the protocol to upgrade to in `Upgrade` and `Connection` (RFC 9110 §15.5.22,
//! §7.8; it had only `Sec-WebSocket-Version`), and a `$connect` refusal with status 304
//! ends at its head, as the same answer on an HTTP route does (it was sent with the
//! function's body and its length). 204 and 205 are 2xx: they complete the handshake.
//! A `$connect` answer's hop-by-hop fields (and those its `Connection` names) and a
//! function's own Date and Server stay out of the 101 and the refusal; a backend's header
//! bytes go as sent (they passed into both, and `\xff` came out as U+FFFD).

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

/// The head of the answer to a handshake for `target`, as bytes.
fn handshake_head(s: &mut std::net::TcpStream, target: &str) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    head
}

/// The header names of a raw head, lowercased.
fn names(head: &[u8]) -> Vec<String> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|l| l.iter().position(|&b| b == b':').map(|i| &l[..i]))
        .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
        .collect()
}

#[test]
fn connect_answers_keep_their_hop_by_hop_fields_to_themselves() {
    // An http `$connect` backend: 403 when asked `?st=403`, else 200.
    let backend = Origin::start(|req, s| {
        let status = if req.target.contains("st=403") {
            "403 No"
        } else {
            "200 OK"
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nConnection: x-secret\r\nX-Secret: internal\r\nTE: trailers\r\nTrailer: x\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nX-Kept: 1\r\nServer: be\r\nX-U: a"
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(b"\xffb\r\nContent-Length: 2\r\n\r\nno");
        s.write_all(&out).unwrap();
        true
    });
    // A Lambda-style `$connect` function answering hop-by-hop fields and its own Date
    // and Server.
    let function = Function::start(|_| {
        FnReply::Json(
            serde_json::json!({"statusCode": 200, "headers": {
                "TE": "trailers", "Trailer": "x", "Proxy-Connection": "keep-alive",
                "HTTP2-Settings": "AAMAAABkAAQAAP__", "Connection": "x-secret",
                "X-Secret": "internal", "X-Kept": "1",
                "Date": "Thu, 01 Jan 1970 00:00:00 GMT", "Server": "fn"}})
            .to_string(),
        )
    });
    let hop = [
        "connection",
        "te",
        "trailer",
        "http2-settings",
        "x-secret",
        "proxy-connection",
    ];
    for driver in DRIVERS {
        for lambda in [false, true] {
            let dir = temp_dir("ws-connect-hop");
            let integration = if lambda {
                format!("type: lambda, url: \"{}\"", function.url())
            } else {
                "type: http, upstream: be".to_string()
            };
            let routes = format!("      $connect: {{ integration: {{ {integration} }} }}\n");
            let mut cfg = ws_api_config(free_port(), &dir, "", &routes);
            cfg.push_str(&format!(
                "upstreams:\n  be: {{ targets: [\"{}\"] }}\n",
                backend.addr
            ));
            let p = Portico::start(&cfg, driver);
            let targets: &[&str] = if lambda {
                &["/prod"]
            } else {
                &["/prod", "/prod?st=403"]
            };
            for target in targets {
                let mut s = p.connect();
                let head = handshake_head(&mut s, target);
                let text = String::from_utf8_lossy(&head).into_owned();
                let ctx = format!("{driver} lambda={lambda} {target}: {text}");
                let want = if target.contains("403") {
                    "HTTP/1.1 403 "
                } else {
                    "HTTP/1.1 101 "
                };
                assert!(text.starts_with(want), "{ctx}");
                let names = names(&head);
                for h in hop {
                    let n = names.iter().filter(|n| *n == h).count();
                    // The 101's own `connection: upgrade`; a refusal closes with `connection: close`.
                    let own = usize::from(h == "connection");
                    assert_eq!(n, own, "{h} in {ctx}");
                }
                assert!(names.iter().any(|n| n == "x-kept"), "{ctx}");
                // One Date and one Server: Portico's for a function, the backend's
                // Server kept (a proxied answer's).
                assert_eq!(names.iter().filter(|n| *n == "date").count(), 1, "{ctx}");
                assert_eq!(names.iter().filter(|n| *n == "server").count(), 1, "{ctx}");
                // The function's 1970 Date is not the one sent (looked for in the Date
                // line alone: a random request id may hold the digits 1970).
                assert!(!text.contains("01 Jan 1970"), "{ctx}");
                if lambda {
                    assert!(
                        text.to_ascii_lowercase()
                            .contains("\r\nserver: portico\r\n"),
                        "{ctx}"
                    );
                } else {
                    assert!(text.contains("\r\nServer: be\r\n"), "{ctx}");
                    let raw = b"\r\nX-U: a\xffb\r\n";
                    assert!(head.windows(raw.len()).any(|w| w == raw), "{ctx}");
                }
            }
            p.stop();
        }
    }
}
