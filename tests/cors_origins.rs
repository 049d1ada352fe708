//! CORS origins are echoed as browsers write them. A browser compares
//! `access-control-allow-origin` with its own serialized origin byte for byte (scheme and
//! host lower-case, the port without leading zeros); an origin configured with capitals
//! or a zero-padded port matched its requests (origins compare without case) but was
//! echoed as configured, so every browser refused the answers.

mod common;

use common::*;

const CONFIG: &str = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    cors:
      allow_origins: ["HTTPS://App.Example", "http://localhost:03000"]
      allow_methods: [GET]
    stages:
      $default: {}
    routes:
      "GET /m": { integration: { type: mock, body: "m" } }
"#;

#[test]
fn allowed_origins_are_echoed_as_browsers_send_them() {
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        for origin in ["https://app.example", "http://localhost:3000"] {
            let r = p.raw(
                format!(
                    "GET /m HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            assert_eq!(r.status, 200, "{driver}");
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some(origin),
                "{driver}"
            );
            let r = p.raw(
                format!("OPTIONS /m HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 204, "{driver}");
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some(origin),
                "{driver}"
            );
        }
        // Another port is another origin.
        let r = p.raw(b"GET /m HTTP/1.1\r\nHost: t\r\nOrigin: http://localhost:30000\r\nConnection: close\r\n\r\n");
        assert_eq!(r.header("access-control-allow-origin"), None, "{driver}");
    }
}

/// `https://*` and `http://*` (API Gateway's HTTP APIs take both) allow any origin of
/// that scheme, echoed, with `vary: origin`, on actual answers, preflights and the
/// gateway's own answers; another scheme, an Origin with a path, or one that is not a
/// well-formed `scheme://host[:port]` is not allowed.
#[test]
fn a_scheme_wildcard_echoes_any_origin_of_its_scheme() {
    let config = CONFIG.replace(
        r#"["HTTPS://App.Example", "http://localhost:03000"]"#,
        r#"["https://*", "http://app.example"]"#,
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        let ask = |method: &str, path: &str, origin: &str| {
            p.raw(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
        };
        for (method, path, status) in [
            ("GET", "/m", 200),
            ("OPTIONS", "/m", 204),
            ("GET", "/nope", 404),
        ] {
            let r = ask(method, path, "https://Any.Example:8443");
            assert_eq!(r.status, status, "{driver} {method} {path}");
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some("https://any.example:8443"),
                "{driver} {method} {path}"
            );
            assert_eq!(r.header("vary"), Some("origin"), "{driver} {method} {path}");
        }
        // Only a well-formed origin matches the wildcard: markup after the scheme, or a
        // port no browser connected to, was echoed back.
        let refused = [
            "http://other.example",
            "https://a.example/x",
            "null",
            "https://\"><script>",
            "https://a:99999",
            "https://a..example",
        ];
        for refused in refused {
            for method in ["GET", "OPTIONS"] {
                let r = ask(method, "/m", refused);
                assert_eq!(
                    r.header("access-control-allow-origin"),
                    None,
                    "{driver} {method} {refused}"
                );
                assert_eq!(r.header("vary"), Some("origin"), "{driver} {refused}");
            }
        }
        let r = ask("GET", "/m", "http://app.example");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.example"),
            "{driver}"
        );
    }
}
