//! `%3b` and `%3B` are one URI (RFC 3986 §6.2.2.1): a route written with an escape, and
//! the key or authorizer it has, matched only the case it was written in, so `/f/a%3bb`
//! stepped around `GET /f/a%3Bb`'s key to an open `{name}` route. Requests are routed,
//! and passed on, with escapes in upper case; route keys are read the same way.

mod common;

use common::*;

#[test]
fn escapes_route_alike_in_either_case() {
    let origin = Origin::fixed(b"backend");
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  app: {{ targets: ["{}"] }}
apis:
  shop:
    stages:
      $default: {{}}
    routes:
      "GET /f/a%3Bb": {{ api_key_required: true, integration: {{ type: http, upstream: app }} }}
      "GET /f/x%c3%a9": {{ integration: {{ type: mock, body: lower-written }} }}
      "GET /f/{{name}}": {{ integration: {{ type: mock, body: open }} }}
api_keys:
  - {{ name: alice, value: alice-key-0123456789abcdef }}
"#,
        origin.addr
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        for path in ["/f/a%3Bb", "/f/a%3bb"] {
            assert_eq!(p.get(path).status, 403, "{driver} {path}: the key applies");
        }
        let r = p.raw(b"GET /f/a%3bb HTTP/1.1\r\nHost: t\r\nx-api-key: alice-key-0123456789abcdef\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/f/a%3Bb", "{driver}");
        for path in ["/f/x%C3%A9", "/f/x%c3%A9"] {
            let r = p.get(path);
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "lower-written"),
                "{driver} {path}"
            );
        }
        assert_eq!(p.get("/f/other").text(), "open", "{driver}");
    }
}
