//! Headers of the gateway's own answers on an API.
//!
//! - A gateway response's header replaces the gateway's header of the same name: a
//!   THROTTLED response configured with `retry-after: 7` was sent with the gateway's
//!   `retry-after: 1` beside it, two values a client picks from. `server` too; but a
//!   configured `date`, a mock's or a gateway response's, is left out for the current one
//!   (it replaced it, and a fixed Date makes caches reckon the answer's age wrong).
//! - The 404 of a request that reaches a CORS API but none of its routes carries the
//!   API's CORS headers and `vary: origin` like its other answers, and a gateway
//!   response's own `access-control-*` headers give way to the cors config there too;
//!   it had neither (a DEFAULT_4XX `access-control-allow-origin: *` went out as written).

mod common;

use common::*;

const CONFIG: &str = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    cors: { allow_origins: ["https://app.example"], allow_methods: [GET] }
    gateway_responses:
      THROTTLED: { headers: { Retry-After: "7", x-why: "$context.error.responseType" }, body: '{"message":"slow down"}' }
      DEFAULT_4XX: { headers: { access-control-allow-origin: "*", x-gw: "4xx" } }
    stages:
      prod: {}
    routes:
      "GET /blocked":
        integration: { type: mock, body: "never" }
        throttle: { rate: 0, burst: 0 }
  plain:
    gateway_responses:
      THROTTLED: { headers: { retry-after: "30", date: "Thu, 01 Jan 1970 00:00:00 GMT", server: "edge" } }
    stages:
      raw: {}
    routes:
      "GET /blocked":
        integration: { type: mock, body: "never" }
        throttle: { rate: 0, burst: 0 }
      "GET /open":
        integration: { type: mock, body: "open" }
      "GET /dated":
        integration: { type: mock, headers: { Date: "Thu, 01 Jan 1970 00:00:00 GMT", Server: "edge" }, body: "d" }
      "GET /dated-mapped":
        integration: { type: mock, headers: { date: "x", server: "edge" }, body: "d" }
        response_parameters: { "200": { "overwrite:header.x-m": "1" } }
"#;

fn get(p: &Portico, path: &str, origin: &str) -> Response {
    p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn all<'r>(r: &'r Response, name: &str) -> Vec<&'r str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_configured_header_replaces_the_gateways_own() {
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        let r = get(&p, "/prod/blocked", "https://app.example");
        assert_eq!(r.status, 429, "{driver}");
        assert_eq!(all(&r, "retry-after"), ["7"], "{driver}: {:?}", r.headers);
        assert_eq!(r.header("x-why"), Some("THROTTLED"));
        assert_eq!(r.text(), r#"{"message":"slow down"}"#);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        let r = get(&p, "/raw/blocked", "https://app.example");
        assert_eq!(r.status, 429, "{driver}");
        assert_eq!(all(&r, "retry-after"), ["30"], "{driver}: {:?}", r.headers);
        // Without a configured one, the gateway's own stays.
        let r = p.get("/raw/open");
        assert_eq!(r.status, 200, "{driver}");
    }
}

#[test]
fn mocks_and_gateway_responses_keep_the_current_date() {
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        for path in ["/raw/dated", "/raw/dated-mapped", "/raw/blocked"] {
            let r = p.get(path);
            let ctx = format!("{driver} {path}: {:?}", r.headers);
            assert!(matches!(r.status, 200 | 429), "{ctx}");
            let date = all(&r, "date");
            assert_eq!(date.len(), 1, "{ctx}");
            assert!(!date[0].contains("1970") && date[0] != "x", "{ctx}");
            assert!(date[0].ends_with(" GMT"), "{ctx}");
            assert_eq!(all(&r, "server"), ["edge"], "{ctx}");
        }
    }
}

#[test]
fn a_cors_apis_unrouted_answer_carries_its_cors_headers() {
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        let r = get(&p, "/prod/nowhere", "https://app.example");
        assert_eq!(r.status, 404, "{driver}");
        assert_eq!(r.text(), r#"{"message":"Not Found"}"#);
        assert_eq!(r.header("x-gw"), Some("4xx"), "{driver}");
        assert_eq!(
            all(&r, "access-control-allow-origin"),
            ["https://app.example"],
            "{driver}: {:?}",
            r.headers
        );
        assert_eq!(r.header("vary"), Some("origin"), "{driver}");

        // Another origin: no CORS headers (not the gateway response's "*"), but vary.
        let r = get(&p, "/prod/nowhere", "https://evil.example");
        assert_eq!(r.status, 404, "{driver}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{driver}: {:?}",
            r.headers
        );
        assert_eq!(r.header("vary"), Some("origin"), "{driver}");

        // An API without CORS and a path of no API: as before.
        let r = get(&p, "/raw/nowhere", "https://app.example");
        assert_eq!(r.status, 404, "{driver}");
        assert!(
            r.headers
                .iter()
                .all(|(n, _)| !n.starts_with("access-control")),
            "{:?}",
            r.headers
        );
        let r = get(&p, "/nostage/x", "https://app.example");
        assert_eq!(r.status, 404, "{driver}");
        assert_eq!(r.header("vary"), None, "{driver}");
    }
}
