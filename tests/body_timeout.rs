//! A client that sends its request head and then stops sending the body it announced
//! (a stalled upload, or `Expect: 100-continue` and nothing after) gets 408 Request
//! Timeout and a close, as nginx answers at client_body_timeout, on every route that
//! reads a body: streamed to an http backend, read whole for validation or a Lambda
//! function. It got 400 Bad Request, which says the request was malformed.
//! Such a failure is the client's: it is not counted as the backend's error or timeout in
//! `portico_upstream_requests_total` (it was, so one client stalling uploads made a
//! healthy backend look like it was failing).

mod common;

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;

fn config(origin: SocketAddr, admin: u16, buffer: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 1s, request_buffer_bytes: {buffer} }}
admin: {{ listen: "127.0.0.1:{admin}" }}
upstreams:
  o: {{ targets: ["{origin}"] }}
apis:
  a:
    stages:
      s: {{}}
    models:
      M: {{ type: object }}
    routes:
      "POST /up":
        integration: {{ type: http, upstream: o, timeout: 2s }}
      "POST /checked":
        integration: {{ type: mock, status: 200, body: ok }}
        request_validator: all
        request_model: M
"#
    )
}

fn assert_408(got: &[u8], what: &str) {
    let text = String::from_utf8_lossy(got).to_string();
    // A 100 Continue may come first.
    let at = text.find("HTTP/1.1 4").unwrap_or(0);
    let r = read_response(&mut Cursor::new(&got[at..]), false)
        .unwrap_or_else(|e| panic!("{what}: no response ({e}): {text:?}"));
    assert_eq!(r.status, 408, "{what}: {text:?}");
    assert_eq!(r.json_message(), "Request Timeout", "{what}: {text:?}");
    assert_eq!(r.header("connection"), Some("close"), "{what}: {text:?}");
}

#[test]
fn a_body_that_stops_coming_is_408() {
    // Holds connections and reads nothing: its answer never comes, so what ends the
    // request is the client's silence.
    let origin = silent_origin();
    // Streamed to the backend (no buffering), and read whole before the backend is
    // asked (the default buffering of bodies up to 64 KiB).
    for (driver, buffer) in DRIVERS.iter().flat_map(|d| [(d, "0"), (d, "64KiB")]) {
        let streamed = buffer == "0";
        let admin = free_port();
        let p = Portico::start(&config(origin, admin, buffer), driver);
        let cases: [(&str, &[u8]); 4] = [
            (
                "streamed, content-length",
                b"POST /s/up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc",
            ),
            (
                "streamed, chunked",
                b"POST /s/up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            ),
            (
                "streamed, expect 100-continue",
                b"POST /s/up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
            ),
            (
                "read whole for validation",
                b"POST /s/checked HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            ),
        ];
        for (what, request) in cases {
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let got = read_until_closed(&mut s, Duration::from_secs(30));
            assert_408(&got, &format!("{driver}: {what}"));
        }
        // A broken chunk streamed to the backend is the client's failure too (400).
        let mut s = p.connect();
        s.write_all(b"POST /s/up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
            .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(30));
        assert!(
            got.starts_with(b"HTTP/1.1 400 "),
            "{driver}: {:?}",
            String::from_utf8_lossy(&got)
        );
        // Streamed, the three stalled uploads went to the backend on new connections (the
        // broken chunk, read with its head, never left); buffered, none did. None failed
        // on the backend's side.
        let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
        let new = format!(
            "portico_upstream_requests_total{{upstream=\"o\",outcome=\"new\"}} {}\n",
            if streamed { 3 } else { 0 }
        );
        let text = metrics_when(admin, |t| t.contains(&new));
        assert!(text.contains(&new), "{driver} {buffer}: {text}");
        for line in text
            .lines()
            .filter(|l| l.starts_with("portico_upstream_requests_total"))
        {
            if line.contains("\"error\"") || line.contains("\"timeout\"") {
                assert!(
                    line.ends_with(" 0"),
                    "{driver}: a client's failure counted as the backend's: {line}"
                );
            }
        }
        // The worker goes on serving.
        let r = p.raw(b"POST /s/checked HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        assert_eq!(r.status, 200, "{driver}");
    }
}
