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
