//! `..;` and `.;` segments are dot-segments too: Tomcat and Jetty drop a segment's `;`
//! parameters before they resolve dot-segments, so `/public/..;/admin` is their `/admin`.
//! Portico routed it under `/public/{proxy+}` (no authorizer there) and passed it on as
//! sent, while `/public/../admin` was already refused with 400.

mod common;

use std::sync::atomic::Ordering;

use common::*;

#[test]
fn dot_segments_with_parameters_are_refused() {
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
      "ANY /public/{{proxy+}}": {{ integration: {{ type: http, upstream: app }} }}
"#,
        origin.addr
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let before = origin.requests.load(Ordering::SeqCst);
        for path in [
            "/public/..;/admin",
            "/public/..;jsessionid=1/admin",
            "/public/x/.;/..;/admin",
            "/public/%2e%2e;/admin",
            "/public/..%3B/admin",
        ] {
            let r = p.get(path);
            assert_eq!(r.status, 400, "{driver} {path}");
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), before, "{driver}");
        // Parameters on other segments, and dots that are a name, pass as before.
        for path in ["/public/a;v=1/b", "/public/...;/b", "/public/x..;/b"] {
            let r = p.get(path);
            assert_eq!(r.status, 200, "{driver} {path}");
            assert_eq!(origin.last().target, path, "{driver}");
        }
    }
}
