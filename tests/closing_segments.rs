//! A connection that closes after its response (the client sent `Connection: close`, or
//! is HTTP/1.0 without keep-alive) gets the response whole and the FIN on the segment
//! that carries the response's last bytes: proxied, mock and the gateway's own answers.
//! Counted with the client socket's `tcpi_segs_in`.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

/// Sends `request`, reads to the end of stream; the bytes and the segments that came.
fn exchange(p: &Portico, request: &[u8]) -> (Vec<u8>, u32) {
    let mut s = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    (got, tcp_info(&s).tcpi_segs_in)
}

#[test]
fn a_closing_connections_last_response_carries_its_fin() {
    let origin = Origin::fixed(b"from the origin");
    for driver in DRIVERS {
        let yaml = format!(
            "{}apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      \"GET /proxied\": {{ integration: {{ type: http, upstream: origin, timeout: 2s }} }}
      \"GET /mock\": {{ integration: {{ type: mock, status: 200, body: mocked }} }}
",
            one_origin_head(origin.addr)
        );
        let p = Portico::start(&yaml, driver);
        let cases: [(&[u8], &str, &str); 5] = [
            (
                b"GET /proxied HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                " 200 ",
                "from the origin",
            ),
            (b"GET /proxied HTTP/1.0\r\n\r\n", " 200 ", "from the origin"),
            (
                b"GET /mock HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                " 200 ",
                "mocked",
            ),
            (
                b"GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                " 404 ",
                r#"{"message":"Not Found"}"#,
            ),
            (
                b"HEAD /proxied HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                " 200 ",
                "",
            ),
        ];
        for (request, status, body) in cases {
            let what = String::from_utf8_lossy(request.split(|&b| b == b'\r').next().unwrap());
            let (got, segments) = exchange(&p, request);
            let text = String::from_utf8_lossy(&got);
            assert!(text.contains(status), "{driver} {what}: {text}");
            assert!(text.ends_with(body), "{driver} {what}: {text}");
            // SYN-ACK, the request's acknowledgement (Linux acknowledges a new
            // connection's first data at once: quick-ack mode), then the response with
            // the FIN. A FIN of its own would make it four.
            assert_eq!(
                segments, 3,
                "{driver} {what}: {segments} segments came, not SYN-ACK, ACK, response+FIN"
            );
        }
    }
}
