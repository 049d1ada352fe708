//! WebSocket APIs' `http` integrations whose target sends interim answers (100
//! Continue, 103 Early Hints) before the final one in the same packet, as RFC 9110 lets
//! a server do unasked: the final answer is what counts (the `$connect` handshake
//! completes with its headers, a message route's body goes back to the client). The
//! call's reader skipped the interim head and then waited for bytes already read, so the
//! handshake was refused with 502 when the target closed, or hung until the timeout.

mod common;

use std::io::Write;

use common::ws::*;
use common::*;
use serde_json::json;

#[test]
fn interim_answers_before_the_final_one() {
    // Keeps the connection open after answering, so a reader waiting for more waits.
    let origin = Origin::start(|req, s| {
        let answer: &[u8] = if req.target.starts_with("/c") {
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\nsec-websocket-protocol: p1\r\n\r\n"
        } else {
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal"
        };
        s.write_all(answer).unwrap();
        true
    });
    for driver in DRIVERS {
        let state = temp_dir("ws-interim");
        let routes = "      $connect: { integration: { type: http, upstream: o, path: /c, timeout: 5s } }\n      $default: { integration: { type: http, upstream: o, path: /m, timeout: 5s }, route_response: true }\n";
        let yaml = ws_api_config(free_port(), &state, "", routes).replacen(
            "apis:\n",
            &format!(
                "upstreams:\n  o: {{ targets: [\"{}\"] }}\napis:\n",
                origin.addr
            ),
            1,
        );
        let p = Portico::start(&yaml, driver);
        let mut ws = WsClient::connect(
            &format!("ws://{}/prod", p.addr),
            json!({"subprotocols": ["p1"]}),
        );
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.opened["subprotocol"], "p1", "{driver}: {}", ws.opened);
        assert_eq!(ws.ask("hello"), "final", "{driver}");
    }
}
