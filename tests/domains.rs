//! Custom domains end to end: the Host header selects the domain and its base-path
//! mappings select the API stage; the default endpoint keeps working beside them; and
//! `portico check` refuses base paths and domains that clash.

mod common;

use common::*;

fn config(origin: &Origin) -> String {
    let origin = origin.addr;
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
upstreams:
  origin: {{ targets: ["{origin}"] }}
apis:
  shop:
    stages:
      prod: {{ variables: {{ who: prod }} }}
      beta: {{ variables: {{ who: beta }} }}
    routes:
      "GET /ping": {{ integration: {{ type: mock, body: "shop ${{stageVariables.who}}" }} }}
  other:
    stages:
      $default: {{}}
    routes:
      "GET /ping": {{ integration: {{ type: mock, body: "other" }} }}
      "ANY /{{proxy+}}": {{ integration: {{ type: http, upstream: origin }} }}
domains:
  api.example.com:
    mappings: {{ "": shop/prod, v2: shop/beta, "deep/path": other/$default }}
  other.example.com:
    mappings: {{ "": other/$default }}
"#
    )
}

fn get(p: &Portico, host: &str, path: &str) -> Response {
    p.raw(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
}

#[test]
fn host_selects_the_domain_and_its_mappings() {
    let origin = Origin::start(|req, s| {
        respond(s, 200, &[], format!("origin {}", req.target).as_bytes());
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin), driver);
        let port = p.addr.port();
        let api = format!("api.example.com:{port}");
        for (host, path, want) in [
            (api.as_str(), "/ping", "shop prod"),
            (api.as_str(), "/v2/ping", "shop beta"),
            (api.as_str(), "/deep/path/ping", "other"),
            (api.as_str(), "/deep/path/a/b?q=1", "origin /a/b?q=1"),
            ("API.Example.COM", "/v2/ping", "shop beta"),
            // The absolute form of a name (a trailing dot) is the same name.
            ("api.example.com.", "/v2/ping", "shop beta"),
            (&format!("api.example.com.:{port}"), "/ping", "shop prod"),
            // Leading empty segments are skipped before the base path, as in routes.
            (api.as_str(), "//v2/ping", "shop beta"),
            ("other.example.com", "/ping", "other"),
            ("other.example.com", "/x", "origin /x"),
        ] {
            let r = get(&p, host, path);
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, want),
                "{driver} {host}{path}"
            );
        }
        // On a custom domain only its mappings count: no /{stage} addressing there.
        assert_eq!(get(&p, &api, "/prod/ping").status, 404);
        assert_eq!(get(&p, &api, "/v2").status, 404);
        // "v2x" is not under the "v2" base path; the root mapping takes it.
        assert_eq!(get(&p, &api, "/v2x/ping").status, 404);

        // The default endpoint, for any other host (or none).
        for (host, path, want) in [
            (format!("127.0.0.1:{port}"), "/prod/ping", "shop prod"),
            ("unknown.example".to_string(), "/beta/ping", "shop beta"),
            ("localhost".to_string(), "/ping", "other"),
            ("localhost".to_string(), "//prod//ping", "shop prod"),
            (
                "localhost".to_string(),
                "/production/x",
                "origin /production/x",
            ),
        ] {
            let r = get(&p, &host, path);
            assert_eq!((r.status, r.text().as_str()), (200, want), "{host}{path}");
        }
        // The stage's base path is taken even when none of its routes match.
        assert_eq!(get(&p, "localhost", "/prod/x").status, 404);
        let r = p.raw(b"GET /beta/ping HTTP/1.0\r\n\r\n");
        assert_eq!(r.text(), "shop beta");
        // An absolute-form target names the host too.
        let r = p.raw(
            b"GET http://api.example.com/v2/ping HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.text(), "shop beta");
    }
}

#[test]
fn a_wildcard_domain_takes_one_label() {
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    stages: { $default: { variables: { who: root } }, tenants: { variables: { who: tenant } } }
    routes:
      "GET /who": { integration: { type: mock, body: "${stageVariables.who}" } }
  admin:
    stages: { ops: {} }
    routes:
      "GET /who": { integration: { type: mock, body: "admin" } }
domains:
  "*.tenants.example": { mappings: { "": shop/tenants } }
  admin.tenants.example: { mappings: { "": admin/ops } }
"#;
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        for (host, want) in [
            ("acme.tenants.example", "tenant"),
            ("Other.Tenants.Example:8080", "tenant"),
            ("admin.tenants.example", "admin"),
            ("a.b.tenants.example", "root"),
            ("tenants.example", "root"),
        ] {
            let r = get(&p, host, "/who");
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, want),
                "{driver} {host}"
            );
        }
    }
}

#[test]
fn an_api_can_be_kept_off_the_default_endpoint() {
    // "shop" only through its domain (as with mutual TLS); "other" may then use the same
    // stage name on the default endpoint without a clash.
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    disable_default_endpoint: true
    stages: { prod: {} }
    routes:
      "GET /ping": { integration: { type: mock, body: "shop" } }
  other:
    stages: { prod: {} }
    routes:
      "GET /ping": { integration: { type: mock, body: "other" } }
domains:
  api.example.com: { mappings: { "": shop/prod } }
"#;
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        let r = get(&p, "api.example.com", "/ping");
        assert_eq!((r.status, r.text().as_str()), (200, "shop"), "{driver}");
        let r = get(&p, "127.0.0.1", "/prod/ping");
        assert_eq!((r.status, r.text().as_str()), (200, "other"), "{driver}");
    }
}

#[test]
fn check_rejects_clashing_base_paths_and_domains() {
    let (code, out) = check(
        r#"apis:
  a: { stages: { $default: {}, prod: {} }, routes: { "GET /": { integration: { type: mock } } } }
  b: { stages: { prod: {}, $default: {} }, routes: { "GET /": { integration: { type: mock } } } }
domains:
  api.example.com: { mappings: { "": a/prod, "v1/x": b/prod } }
  Api.Example.com: { mappings: { "": b/prod } }
"#,
    );
    assert_eq!(code, 1, "{out}");
    for line in [
        r#"apis.b.stages.prod: base path /prod on the default endpoint already belongs to API "a""#,
        r#"apis.b.stages.$default: the root of the default endpoint ($default stage) already belongs to API "a""#,
        r#"domains."Api.Example.com": is the same host name as domains."api.example.com""#,
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("3 error(s)"), "{out}");

    let (code, out) = check(
        r#"apis:
  a: { stages: { $default: {}, prod: {} }, routes: { "GET /": { integration: { type: mock } } } }
  b: { stages: { beta: {} }, routes: { "GET /": { integration: { type: mock } } } }
domains:
  api.example.com: { mappings: { "": a/prod, "v1/x": b/beta, v1: a/$default } }
"#,
    );
    assert_eq!(code, 0, "{out}");
}
