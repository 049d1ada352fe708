//! The HTTP answers of a WebSocket API stage that are not a 101: a plain request's 426
//! names the protocol to upgrade to in `Upgrade` and `Connection` (RFC 9110 §15.5.22,
//! §7.8; it had only `Sec-WebSocket-Version`).

mod common;

use std::io::{Read, Write};

use common::ws::*;
use common::*;

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
