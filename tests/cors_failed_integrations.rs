//! On a CORS API, the gateway's answer to a failed integration (a refused upstream, a
//! function that can't be reached) carries the CORS headers of the request it answers.
//! The Origin was read from the connection's buffer after the integration had consumed
//! the request: the worker panicked (the buffer was shorter than the head's spans), or,
//! with a pipelined request behind it, echoed that request's origin. Under both drivers;
//! the worker keeps serving.

mod common;

use std::io::{BufReader, Write};
use std::sync::atomic::Ordering;

use common::*;

fn config(live: u16) -> String {
    let dead = free_port();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  dead: {{ targets: ["127.0.0.1:{dead}"], connect_timeout: 1s }}
  live: {{ targets: ["127.0.0.1:{live}"] }}
apis:
  shop:
    cors: {{ allow_origins: ["https://*"] }}
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /proxy": {{ integration: {{ type: http, upstream: dead }} }}
      "POST /fn":
        integration: {{ type: lambda, url: "http://127.0.0.1:{dead}/2015-03-31/functions/f/invocations", timeout: 1s }}
      "GET /ok": {{ integration: {{ type: mock, body: "ok" }} }}
      "GET /live": {{ integration: {{ type: http, upstream: live }} }}
      "GET /cached": {{ integration: {{ type: http, upstream: live }}, cache: {{ ttl: 60s }} }}
"#
    )
}

fn request(method: &str, path: &str, origin: &str) -> String {
    let body = if method == "POST" {
        "Content-Length: 2\r\n\r\n{}"
    } else {
        "\r\n"
    };
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n{body}")
}

#[test]
fn a_failed_integration_answers_with_its_own_requests_cors_headers() {
    let live = Origin::start(|_, s| {
        respond(s, 200, &[], b"live");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(live.addr.port()), driver);
        for (method, path) in [("GET", "/proxy"), ("POST", "/fn")] {
            // Two requests in one write: each answer echoes its own request's origin.
            let mut s = p.connect();
            let two = request(method, path, "https://good.example")
                + &request(method, path, "https://other.example");
            s.write_all(two.as_bytes()).unwrap();
            let mut r = BufReader::new(s);
            for origin in ["https://good.example", "https://other.example"] {
                let a = read_response(&mut r, false)
                    .unwrap_or_else(|e| panic!("{driver} {path}: no answer: {e}"));
                assert_eq!(a.status, 502, "{driver} {path}");
                assert_eq!(
                    a.header("access-control-allow-origin"),
                    Some(origin),
                    "{driver} {path}"
                );
                assert_eq!(a.header("vary"), Some("origin"), "{driver} {path}");
            }
            // Without an Origin: no CORS headers, and no panic.
            let a = p.raw(
                format!("{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            assert_eq!(a.status, 502, "{driver} {path}");
            assert_eq!(a.header("access-control-allow-origin"), None, "{driver}");
        }
        // A relayed answer echoes its request's origin too (the head is kept for it).
        let r = p.raw(
            b"GET /live HTTP/1.1\r\nHost: t\r\nOrigin: https://Live.Example\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.text(), "live", "{driver}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://live.example"),
            "{driver}"
        );
        // A cache hit echoes its own request's origin (it echoed an empty one).
        let cached_before = live.requests.load(Ordering::SeqCst);
        for origin in ["https://a.example", "https://b.example"] {
            let r = p.raw(
                format!("GET /cached HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            assert_eq!(r.text(), "live", "{driver}");
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some(origin),
                "{driver}"
            );
        }
        assert_eq!(live.requests.load(Ordering::SeqCst), cached_before + 1);

        // A request that reaches no route, after one whose integration failed on the same
        // connection, answers with its own origin (it echoed the first request's, kept
        // with its head).
        let mut s = p.connect();
        s.write_all(request("GET", "/proxy", "https://first.example").as_bytes())
            .unwrap();
        let mut r = BufReader::new(s);
        let a = read_response(&mut r, false).unwrap();
        assert_eq!(a.status, 502, "{driver}");
        r.get_mut()
            .write_all(request("GET", "/nope", "https://second.example").as_bytes())
            .unwrap();
        let a = read_response(&mut r, false).unwrap();
        assert_eq!(a.status, 404, "{driver}");
        assert_eq!(
            a.header("access-control-allow-origin"),
            Some("https://second.example"),
            "{driver}"
        );

        // The worker keeps serving.
        let r = p.get("/ok");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{driver}");
    }
}
