//! A body declared longer than `max_body_bytes` is refused by the route it is sent to, as
//! the gateway's other refusals are: its API's CORS headers and `vary: origin`, its
//! access-log line and metrics. It was
//! refused before routing, without them, while the same body sent chunked got them (a
//! browser app could not read the 413). Either way the body is not read, no 100 is sent
//! and the connection closes. Under both drivers.

mod common;

use std::io::{BufReader, Write};

use common::*;

fn config(origin: std::net::SocketAddr) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ max_body_bytes: 1000 }}
upstreams:
  be: {{ targets: ["{origin}"] }}
apis:
  shop:
    cors: {{ allow_origins: ["https://app.example"] }}
    stages:
      $default: {{}}
    routes:
      "POST /up": {{ integration: {{ type: http, upstream: be }} }}
"#
    )
}

/// The answer to `request` on a new connection, and whether the connection then closed.
fn answer(p: &Portico, request: &str) -> (Response, bool) {
    let mut s = p.connect();
    s.write_all(request.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let got = read_response(&mut r, false).unwrap();
    let mut rest = Vec::new();
    let closed = std::io::Read::read_to_end(&mut r, &mut rest).is_ok_and(|n| n == 0);
    (got, closed)
}

#[test]
fn a_declared_length_past_the_limit_is_the_routes_413_with_its_cors_headers() {
    let origin = Origin::start(|_, s| {
        respond(s, 200, &[], b"taken");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let head = "POST /up HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n";
        let declared = format!("{head}Content-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
        let chunked = format!(
            "{head}Transfer-Encoding: chunked\r\n\r\n7d0\r\n{}\r\n0\r\n\r\n",
            "x".repeat(2000)
        );
        for (what, request) in [("declared", declared), ("chunked", chunked)] {
            let (r, closed) = answer(&p, &request);
            assert_eq!(r.status, 413, "{driver} {what}: {}", r.text());
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some("https://app.example"),
                "{driver} {what}: {:?}",
                r.headers
            );
            assert_eq!(r.header("vary"), Some("origin"), "{driver} {what}");
            assert!(closed, "{driver} {what}: the connection stayed open");
        }
        // Not routed: the plain refusal, also before the body.
        let (r, closed) = answer(
            &p,
            "POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n",
        );
        assert_eq!(
            (r.status, r.json_message().as_str()),
            (413, "Request Entity Too Large"),
            "{driver}"
        );
        assert!(closed, "{driver}");
        // At the limit, the route answers.
        let (r, _) = answer(
            &p,
            &format!(
                "POST /up HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n{}",
                "y".repeat(1000)
            ),
        );
        assert_eq!((r.status, r.text().as_str()), (200, "taken"), "{driver}");
        p.stop();
    }
    // Only that one reached the backend.
    assert_eq!(
        origin.requests.load(std::sync::atomic::Ordering::SeqCst),
        DRIVERS.len()
    );
}
