//! CORS end to end: preflights from allowed and disallowed origins are answered by the
//! gateway and never reach the backend; actual responses carry the CORS headers for
//! allowed origins only, whatever the backend sent; `*` origins; APIs without CORS pass
//! OPTIONS through.

mod common;

use std::sync::atomic::Ordering;

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
    cors:
      allow_origins: ["https://app.example", "https://other.example"]
      allow_methods: [GET, POST, DELETE]
      allow_headers: [content-type, x-api-key]
      expose_headers: [x-total]
      allow_credentials: true
      max_age: 10m
    stages:
      $default: {{}}
    routes:
      "ANY /items/{{id}}": {{ integration: {{ type: http, upstream: origin }} }}
      "GET /m": {{ integration: {{ type: mock, body: "mock" }} }}
  open:
    cors: {{ allow_origins: ["*"], allow_methods: ["*"] }}
    stages:
      pub: {{}}
    routes:
      "GET /x": {{ integration: {{ type: http, upstream: origin }} }}
  plain:
    stages:
      raw: {{}}
    routes:
      "ANY /{{proxy+}}": {{ integration: {{ type: http, upstream: origin }} }}
"#
    )
}

fn preflight(p: &Portico, path: &str, origin: &str) -> Response {
    p.raw(
        format!(
            "OPTIONS {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn get(p: &Portico, path: &str, origin: &str) -> Response {
    p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn cors_headers(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-"))
        .map(|(n, v)| format!("{}: {v}", n.to_ascii_lowercase()))
        .collect()
}

#[test]
fn preflights_are_answered_by_the_gateway() {
    let origin = Origin::start(|_, s| {
        respond(s, 200, &[("access-control-allow-origin", "*")], b"backend");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin), driver);
        let calls = origin.requests.load(Ordering::SeqCst);

        let r = preflight(&p, "/items/1", "https://app.example");
        assert_eq!(r.status, 204, "{driver}");
        assert!(r.body.is_empty());
        assert_eq!(
            cors_headers(&r),
            [
                "access-control-allow-origin: https://app.example",
                "access-control-allow-methods: GET,POST,DELETE",
                "access-control-allow-headers: content-type,x-api-key",
                "access-control-max-age: 600",
                "access-control-allow-credentials: true",
            ]
        );
        assert_eq!(r.header("vary"), Some("origin"));
        assert!(r.header("x-amzn-RequestId").is_some());

        // A disallowed origin gets an answer without CORS headers: the browser stops there.
        let r = preflight(&p, "/items/1", "https://evil.example");
        assert_eq!(r.status, 204);
        assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);

        // Paths without a route (nor an OPTIONS route) are answered too.
        let r = preflight(&p, "/nowhere/at/all", "https://other.example");
        assert_eq!(r.status, 204);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://other.example")
        );
        let r = preflight(&p, "/m", "https://app.example");
        assert_eq!(r.status, 204);

        // Keep-alive preflights keep the connection.
        let mut c = Client::new(&p);
        for _ in 0..3 {
            let r = c.send(b"OPTIONS /items/2 HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: DELETE\r\n\r\n");
            assert_eq!(r.status, 204);
        }
        assert_eq!(
            origin.requests.load(Ordering::SeqCst),
            calls,
            "a preflight reached the backend"
        );

        // OPTIONS that is not a preflight is an ordinary request.
        let r = p.raw(b"OPTIONS /items/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "backend"));
        assert_eq!(origin.requests.load(Ordering::SeqCst), calls + 1);
    }
}

#[test]
fn actual_responses_carry_cors_headers_for_allowed_origins_only() {
    let origin = Origin::start(|_, s| {
        respond(
            s,
            200,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-max-age", "1"),
                ("x-total", "3"),
            ],
            b"backend",
        );
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin), driver);
        let r = get(&p, "/items/1", "https://APP.example");
        assert_eq!((r.status, r.text().as_str()), (200, "backend"), "{driver}");
        assert_eq!(
            cors_headers(&r),
            [
                "access-control-allow-origin: https://app.example",
                "access-control-expose-headers: x-total",
                "access-control-allow-credentials: true",
            ]
        );
        assert_eq!(r.header("vary"), Some("origin"));

        // The backend's own CORS headers never get through a CORS API.
        for r in [
            get(&p, "/items/1", "https://evil.example"),
            p.get("/items/1"),
        ] {
            assert_eq!(r.status, 200);
            assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
            assert_eq!(r.header("x-total"), Some("3"));
        }

        // Mock integrations too.
        let r = get(&p, "/m", "https://other.example");
        assert_eq!((r.status, r.text().as_str()), (200, "mock"));
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://other.example")
        );
        let r = get(&p, "/m", "https://evil.example");
        assert!(cors_headers(&r).is_empty());

        // "*": any origin, answered with "*".
        let r = get(&p, "/pub/x", "https://anyone.example");
        assert_eq!(r.status, 200);
        assert_eq!(cors_headers(&r), ["access-control-allow-origin: *"]);
        let r = preflight(&p, "/pub/x", "https://anyone.example");
        assert_eq!(
            cors_headers(&r),
            [
                "access-control-allow-origin: *",
                "access-control-allow-methods: *"
            ]
        );

        // An API without CORS leaves everything to the backend, preflights included.
        let calls = origin.requests.load(Ordering::SeqCst);
        let r = preflight(&p, "/raw/anything", "https://app.example");
        assert_eq!((r.status, r.text().as_str()), (200, "backend"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(origin.requests.load(Ordering::SeqCst), calls + 1);
    }
}

/// Every `vary` value of a response, lower-cased, in order.
fn vary(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("vary"))
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect()
}

#[test]
fn vary_origin_on_every_response_whose_answer_depends_on_the_origin() {
    // The backend's own Vary, by path.
    let origin = Origin::start(|req, s| {
        let vary: &[(&str, &str)] = match req.target.as_str() {
            "/items/ae" => &[("Vary", "Accept-Encoding")],
            "/items/origin" => &[("Vary", "Origin")],
            "/items/both" => &[("vary", "accept-encoding, ORIGIN")],
            "/items/star" => &[("Vary", "*")],
            _ => &[],
        };
        respond(s, 200, vary, b"backend");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin), driver);
        // A listed origin, another one, none: a cache must keep their answers apart.
        for r in [
            get(&p, "/items/1", "https://app.example"),
            get(&p, "/items/1", "https://evil.example"),
            p.get("/items/1"),
            get(&p, "/m", "https://evil.example"),
            p.get("/m"),
            preflight(&p, "/items/1", "https://evil.example"),
            preflight(&p, "/items/1", "https://app.example"),
        ] {
            assert_eq!(vary(&r), ["origin"], "{driver}: {:?}", r.headers);
        }
        // Beside the backend's own Vary, never twice.
        for (path, want) in [
            ("/items/ae", &["accept-encoding", "origin"][..]),
            ("/items/origin", &["origin"]),
            ("/items/both", &["accept-encoding", "origin"]),
            ("/items/star", &["*"]),
        ] {
            for r in [get(&p, path, "https://app.example"), p.get(path)] {
                assert_eq!(vary(&r), want, "{driver} {path}: {:?}", r.headers);
            }
        }
        // "*" alone answers every origin alike: no Vary.
        for r in [
            get(&p, "/pub/x", "https://anyone.example"),
            p.get("/pub/x"),
            preflight(&p, "/pub/x", "https://anyone.example"),
        ] {
            assert!(vary(&r).is_empty(), "{driver}: {:?}", r.headers);
        }
    }
}

#[test]
fn check_refuses_header_names_that_are_not_tokens() {
    let yaml = |allow: &str, expose: &str| {
        format!(
            r#"server: {{ listen: ["127.0.0.1:1"], workers: 1 }}
apis:
  x:
    cors: {{ allow_origins: ["https://good.example"], allow_headers: {allow}, expose_headers: {expose} }}
    stages: {{ $default: {{}} }}
    routes:
      "GET /a": {{ integration: {{ type: mock, body: "a" }} }}
"#
        )
    };
    // A CR/LF in a name would add header lines to every CORS answer.
    let (code, out) = check(&yaml(
        r#"[content-type, "x-a\r\nset-cookie: injected=1", "bad header"]"#,
        r#"["x\nfoo: bar", "*", x-total]"#,
    ));
    assert_eq!(code, 1, "{out}");
    for want in [
        r#"apis.x.cors.allow_headers[1]: expected a header name (an HTTP token) or "*", got "x-a\r\nset-cookie: injected=1""#,
        r#"apis.x.cors.allow_headers[2]: expected a header name (an HTTP token) or "*", got "bad header""#,
        r#"apis.x.cors.expose_headers[0]: expected a header name (an HTTP token) or "*", got "x\nfoo: bar""#,
    ] {
        assert!(out.contains(want), "{want}\nin\n{out}");
    }
    assert!(
        !out.contains("expose_headers[1]") && !out.contains("expose_headers[2]"),
        "{out}"
    );
    let (code, out) = check(&yaml("[content-type, x-api-key, \"*\"]", "[x-total]"));
    assert_eq!(code, 0, "{out}");
}

/// An allowed origin that no browser's Origin can equal is an error: it passed check
/// and then never matched (a blank before it, a default port browsers leave out), or
/// was echoed onto a header line as written (a line break).
#[test]
fn check_refuses_origins_no_browser_sends() {
    let yaml = |origins: &str| {
        format!(
            "server: {{ listen: [\"127.0.0.1:1\"], workers: 1 }}\napis:\n  x:\n    cors: {{ allow_origins: {origins} }}\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /a\": {{ integration: {{ type: mock }} }}\n"
        )
    };
    let (code, out) = check(&yaml(
        r#"[" https://a.example", "https://b.example:443", "http://c.example:80", "https://d.example\r\nx-injected: 1", "https://u@e.example", "https://f.example:", "1https://g.example", "https://h.example:0", "https://i.example:99999", "http://[::FFFF:1.2.3.4]", "http://[0:0::1]", "https://*.example", "http://01.2.3.4", "http://2130706433", "http://0x7f.0.0.1:8080"]"#,
    ));
    assert_eq!(code, 1, "{out}");
    for (i, why) in [
        (0, ""),
        (
            1,
            " (browsers leave the default port out of Origin: write it without)",
        ),
        (
            2,
            " (browsers leave the default port out of Origin: write it without)",
        ),
        (3, ""),
        (4, ""),
        (5, ""),
        (6, ""),
        (7, " (a port is 1–65535)"),
        (8, " (a port is 1–65535)"),
        (9, IPV6),
        (10, IPV6),
        (11, ""),
        (12, IPV4),
        (13, IPV4),
        (14, IPV4),
    ] {
        let want = format!("apis.x.cors.allow_origins[{i}]: expected \"*\", \"https://*\", \"http://*\" or scheme://host[:port], got ");
        let line = out
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("no error for [{i}] in\n{out}"));
        assert!(line.ends_with(&format!("\"{why}")), "{line}");
    }
    let (code, out) = check(&yaml(
        r#"["https://a.example", "http://b.example:8080", "https://[::1]:8443", "http://[::1]", "app-x+y://local", "HTTPS://C.Example", "http://[::ffff:102:304]", "https://[2001:db8::1:0:0:1]", "https://*", "HTTP://*", "http://127.0.0.1:8080", "https://10.0.0.1", "https://a0.example"]"#,
    ));
    assert_eq!(code, 0, "{out}");
}

const IPV4: &str =
    " (write an IPv4 address as browsers send it: four decimal numbers without leading zeros)";
const IPV6: &str =
    " (write an IPv6 address as browsers send it: lower-case, shortest form, no dotted quad)";

/// A scheme wildcard beside `allow_credentials` passes check (browsers take the echoed
/// origin with credentials, where they refuse `*`), with a warning: any site of that
/// scheme could send a user's cookies and read the answers.
#[test]
fn a_scheme_wildcard_with_credentials_is_warned_about() {
    let yaml = "server: { listen: [\"127.0.0.1:1\"], workers: 1 }\napis:\n  x:\n    cors: { allow_origins: [\"https://app.example\", \"https://*\"], allow_credentials: true }\n    stages: { $default: {} }\n    routes:\n      \"GET /a\": { integration: { type: mock } }\n";
    let (code, out) = check(yaml);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: apis.x.cors.allow_origins[1]: https://* with allow_credentials: true lets any site"),
        "{out}"
    );
    assert!(!out.contains("allow_origins[0]"), "{out}");
}
