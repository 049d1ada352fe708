//! `@connections` POSTs above the listener's own body limit (the stage endpoint's
//! `max_body_bytes`, the admin listener's 1 MiB): the HTTP codec refuses them before
//! routing, and that refusal must still be the management API's typed 413 with
//! `x-amzn-ErrorType: PayloadTooLargeException`, which boto3 raises as
//! `PayloadTooLargeException` (it raised a plain ClientError for a generic 413).
//! And a route response past the message limit, which is not sent; and a POST with
//! `Expect: 100-continue`, which gets its 100.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::ws::*;
use common::*;

/// Sends a head declaring `len` body bytes (and no body) and reads the answer whole.
fn declare(addr: SocketAddr, path: &str, len: usize) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\nContent-Length: {len}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn connections_posts_above_the_listener_limit_are_payload_too_large() {
    require_websockets();
    for driver in DRIVERS {
        let dir = temp_dir("ws-413");
        let admin = free_port();
        let cfg = ws_api_config(admin, &dir, "", ECHO_ROUTES)
            .replace("limits: {", "limits: { max_body_bytes: 1MiB,");
        let p = Portico::start(&cfg, driver);
        let endpoint = format!("http://{}/prod", p.addr);
        // boto3, 2 MiB: above max_body_bytes, refused before the body is read.
        let r = boto3_connections(&endpoint, "post", "R1kmxc2VNjMCFIA=", Some("@size:2097152"));
        assert_eq!(r["error"], "PayloadTooLargeException", "{driver}: {r}");
        // 200 KiB (under the listener's limit, over the API's 128 KiB) as before.
        let r = boto3_connections(&endpoint, "post", "R1kmxc2VNjMCFIA=", Some("@size:204800"));
        assert_eq!(r["error"], "PayloadTooLargeException", "{driver}: {r}");
        // Far above it, on the stage endpoint and the admin listener, with AWS's body.
        let a = SocketAddr::from(([127, 0, 0, 1], admin));
        for (addr, path) in [
            (p.addr, "/prod/@connections/abc%3D"),
            (p.addr, "/prod/%40connections/abc"),
            (a, "/@connections/abc"),
        ] {
            let answer = declare(addr, path, 1 << 30);
            let lower = answer.to_ascii_lowercase();
            assert!(
                answer.starts_with("HTTP/1.1 413 "),
                "{driver} {path}: {answer}"
            );
            assert!(
                lower.contains("\r\nx-amzn-errortype: payloadtoolargeexception\r\n"),
                "{driver} {path}: {answer}"
            );
            assert!(
                answer.ends_with("\r\n\r\n{\"message\":\"Message too long\"}"),
                "{driver} {path}: {answer}"
            );
        }
        // Other paths keep the generic answer.
        let answer = declare(p.addr, "/prod/upload", 1 << 30);
        assert!(answer.starts_with("HTTP/1.1 413 "), "{driver}: {answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("x-amzn-errortype"),
            "{driver}: {answer}"
        );
        p.stop();
    }
}

/// An integration's answer on a route with a route response is a message like any other:
/// one past `limits.message` (API Gateway's 128 KiB) is not sent, and the connection
/// stays. It went out whole (one 200 KiB frame).
#[test]
fn route_responses_past_the_message_limit_are_not_sent() {
    require_websockets();
    let backend = Origin::start(|req, s| {
        let size = match req.target.as_str() {
            "/big" => 128 * 1024 + 1,
            "/edge" => 128 * 1024,
            _ => 5,
        };
        common::respond(s, 200, &[], "y".repeat(size).as_bytes());
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-big-answer");
        let routes = "      big: { integration: { type: http, upstream: be, path: /big }, route_response: true }\n      edge: { integration: { type: http, upstream: be, path: /edge }, route_response: true }\n      small: { integration: { type: http, upstream: be, path: /small }, route_response: true }\n";
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{}\"] }}\n",
            backend.addr
        ));
        let p = Portico::start(&cfg, driver);
        let mut ws = WsClient::connect(&format!("ws://{}/prod", p.addr), serde_json::json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        // Exactly the limit goes out.
        assert_eq!(ws.ask(r#"{"action":"edge"}"#).len(), 128 * 1024, "{driver}");
        // One byte more does not; the next answer is the next message's.
        ws.send(r#"{"action":"big"}"#);
        let next = ws.ask(r#"{"action":"small"}"#);
        assert!(next == "yyyyy", "{driver}: got {} bytes", next.len());
        p.stop();
    }
}

/// A POST to `@connections` on the stage endpoint with `Expect: 100-continue` gets
/// `100 Continue` before it sends its body, then its answer. It got nothing: the body was
/// awaited until the header timeout and the connection closed unanswered (curl, which
/// gives up waiting after 1 s, was only slowed).
#[test]
fn connections_posts_expecting_100_continue_get_it() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-continue");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", ECHO_ROUTES), driver);
        let mut s = TcpStream::connect(p.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(
            b"POST /prod/@connections/R1kmxc2VNjMCFIA%3D HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => got.push(b[0]),
                _ => break,
            }
        }
        let interim = String::from_utf8_lossy(&got).into_owned();
        assert!(
            interim.starts_with("HTTP/1.1 100 Continue\r\n"),
            "{driver}: {interim:?}"
        );
        s.write_all(b"hello").unwrap();
        let mut rest = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&rest).contains("\r\n\r\n{}") {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => rest.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let answer = String::from_utf8_lossy(&rest);
        assert!(answer.starts_with("HTTP/1.1 410 "), "{driver}: {answer}");
        p.stop();
    }
}

/// A chunked `@connections` POST that goes past 128 KiB after part of it was decoded in
/// place is answered 413 and the connection closes: kept, the discard of the rest read
/// the decoded payload as framing, so `0\r\n\r\n` in it ended the body and a request
/// hidden after it was served as the client's next.
#[test]
fn a_chunked_connections_post_refused_midway_ends_the_connection() {
    require_websockets();
    for driver in DRIVERS {
        let dir = temp_dir("ws-413-chunked");
        let admin = free_port();
        let cfg = ws_api_config(admin, &dir, "", ECHO_ROUTES);
        let p = Portico::start(&cfg, driver);
        let mut s = TcpStream::connect(p.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hidden = b"0\r\n\r\nGET /prod/hidden HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut first = format!(
            "POST /prod/@connections/abc%3D HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            hidden.len()
        )
        .into_bytes();
        first.extend_from_slice(hidden);
        first.extend_from_slice(b"\r\n");
        s.write_all(&first).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // The next chunk takes the body past 128 KiB.
        s.write_all(b"30000\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let answer = String::from_utf8_lossy(&out);
        assert!(answer.starts_with("HTTP/1.1 413 "), "{driver}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{driver}: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{driver}: {answer}"
        );
        p.stop();
    }
}
