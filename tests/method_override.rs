//! A method-override header cannot take a request past its route: a POST matched by an
//! open catch-all, carrying `X-HTTP-Method-Override: GET` for a path a guarded GET route
//! serves, would reach that handler in a backend that honours the override (Express's
//! method-override, Rack's). Refused 400; an override its own route serves goes on.

mod common;

use common::*;

#[test]
fn an_override_naming_another_routes_method_is_refused() {
    let origin = Origin::fixed(b"backend");
    let yaml = one_origin_head(origin.addr)
        + r#"apis:
  app:
    stages: { $default: {} }
    routes:
      "GET /admin": { api_key_required: true, integration: { type: http, upstream: origin } }
      "ANY /{proxy+}": { integration: { type: http, upstream: origin } }
      "DELETE /items/{id}": { api_key_required: true, integration: { type: http, upstream: origin } }
      "POST /items/{id}": { integration: { type: http, upstream: origin } }
      "GET /users/{id}": { api_key_required: true, integration: { type: http, upstream: origin } }
"#;
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let req = |line: &str, header: &str| {
            p.raw(
                format!("{line} HTTP/1.1\r\nHost: a\r\n{header}Content-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
        };
        // Without an override: the catch-all serves POST /admin, the guarded route GET.
        assert_eq!(req("POST /admin", "").status, 200, "{driver}");
        assert_eq!(req("GET /admin", "").status, 403, "{driver}");
        let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
        for header in [
            "X-HTTP-Method-Override: GET\r\n",
            "x-http-method-override:  get \r\n",
            "X-HTTP-Method: GET\r\n",
            "X-Method-Override: GET\r\n",
            "X_HTTP_Method_Override: GET\r\n",
            "X-HTTP-Method-Override: POST\r\nX-HTTP-Method-Override: GET\r\n",
            // Express takes a list's first element, and trim()s U+00A0 too.
            "X-HTTP-Method-Override: GET, POST\r\n",
            "X-HTTP-Method-Override: GET,\r\n",
            "X-HTTP-Method-Override: \u{a0}GET\r\n",
        ] {
            let r = req("POST /admin", header);
            assert_eq!(r.status, 400, "{driver} {header:?}");
            let body = String::from_utf8_lossy(&r.body);
            assert!(body.contains("method override"), "{body}");
        }
        let r = req("POST /items/7", "X-HTTP-Method-Override: DELETE\r\n");
        assert_eq!(r.status, 400, "{driver}");
        // `?_method=` (Express's methodOverride('_method'), Laravel).
        for line in [
            "POST /admin?_method=GET",
            "POST /admin?a=1&%5Fmethod=get",
            "POST /admin?_%6Dethod=GET",
            "POST /admin?.method=GET",
            // PHP skips a name's leading spaces and ends it at a NUL.
            "POST /admin?+_method=GET",
            "POST /admin?%20_method=GET",
            "POST /admin?_method%00x=GET",
            // ASP.NET compares names without case; Rack and `qs` skip leading brackets.
            "POST /admin?_METHOD=GET",
            "POST /admin?%5B_method%5D=GET",
            // Express routes the override on the path with `%2F` inside its segment:
            // its `GET /users/:id`, guarded here, though the router's reading of either
            // alone stays with the catch-all.
            "POST /users/a%2Fb?_method=GET",
            "POST /items/7?_method=DELETE",
        ] {
            assert_eq!(req(line, "").status, 400, "{driver} {line}");
        }
        assert_eq!(
            origin.requests.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{driver}: a refused request reached the backend"
        );
        // An override the same route serves (the catch-all takes any method; POST named
        // as itself) goes on as sent.
        for (line, header) in [
            ("POST /other", "X-HTTP-Method-Override: DELETE\r\n"),
            ("POST /items/7", "X-HTTP-Method-Override: POST\r\n"),
            ("POST /admin", "X-Not-A-Method-Override: GET\r\n"),
            // An empty value names no method (Express and Rack ignore it).
            ("POST /items/7", "X-HTTP-Method-Override: \r\n"),
            ("POST /items/7?_method=", ""),
            ("POST /admin?x_method=GET", ""),
            // Named in Connection: for this hop only, not passed on.
            (
                "POST /admin",
                "X-HTTP-Method-Override: GET\r\nConnection: X-HTTP-Method-Override\r\n",
            ),
        ] {
            let r = req(line, header);
            assert_eq!(r.status, 200, "{driver} {line} {header:?}");
        }
        assert_eq!(
            origin.requests.load(std::sync::atomic::Ordering::SeqCst),
            before + 7,
            "{driver}"
        );
    }
}

/// A route literal with a character backends decode (`:`, `|`) guards both spellings:
/// sent as the other one, the request reached the open catch-all and the backend served
/// the guarded resource.
#[test]
fn a_literal_guards_its_other_spelling() {
    let origin = Origin::fixed(b"backend");
    let yaml = one_origin_head(origin.addr)
        + r#"apis:
  app:
    stages: { $default: {} }
    routes:
      "GET /reports%7Cdaily": { api_key_required: true, integration: { type: http, upstream: origin } }
      "GET /a:b": { api_key_required: true, integration: { type: http, upstream: origin } }
      "GET /{proxy+}": { integration: { type: http, upstream: origin } }
"#;
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        for path in [
            "/reports%7Cdaily",
            "/reports%7cdaily",
            "/reports|daily",
            "/a:b",
            "/a%3Ab",
            "/a%3ab",
        ] {
            let r = p.raw(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
            assert_eq!(r.status, 403, "{driver} {path}");
        }
        let r = p.raw(b"GET /reports%7Cweekly HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/reports%7Cweekly");
    }
}

/// The refusal is the route's: its stage's variables and the API's CORS headers (it was
/// answered before the request took its route, with the last request's stage).
#[test]
fn the_refusal_carries_its_routes_stage_and_cors_headers() {
    let origin = Origin::fixed(b"backend");
    let yaml = one_origin_head(origin.addr)
        + r#"apis:
  app:
    cors: { allow_origins: ["https://app.example"], allow_methods: [GET, POST] }
    gateway_responses:
      DEFAULT_4XX: { body: '{"stage":"$context.stage","v":"${stageVariables.tag}"}' }
    stages:
      $default: { variables: { tag: root } }
      prod: { variables: { tag: prod-secret } }
    routes:
      "GET /admin": { integration: { type: mock, status: 200 } }
      "ANY /{proxy+}": { integration: { type: http, upstream: origin } }
      "GET /ping": { integration: { type: mock, status: 200 } }
"#;
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let mut c = Client::connect(p.addr);
        assert_eq!(
            c.send(b"GET /prod/ping HTTP/1.1\r\nHost: a\r\n\r\n").status,
            200
        );
        let r = c.send(b"POST /admin HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\nX-HTTP-Method-Override: GET\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 400, "{driver}");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            r#"{"stage":"$default","v":"root"}"#,
            "{driver}"
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example"),
            "{driver}"
        );
    }
}

/// A Lambda authorizer's policy is judged for the request line's method: on an `ANY`
/// route, `GET` carrying `X-HTTP-Method-Override: DELETE` was allowed as a GET and the
/// backend ran the DELETE. Any override naming another method is refused on such a
/// route (as on one with IAM authorization); naming the request's own method goes on.
#[test]
fn an_override_past_a_method_judging_authorizer_is_refused() {
    let gate = Function::start(|_| FnReply::Json(r#"{"isAuthorized": true}"#.into()));
    let origin = Origin::fixed(b"backend");
    let yaml = one_origin_head(origin.addr)
        + &format!(
            r#"apis:
  app:
    stages: {{ $default: {{}} }}
    authorizers:
      gate:
        type: lambda
        url: "{}"
        payload_format: "2.0"
        simple_responses: true
        identity_source: [$request.header.x-token]
    routes:
      "ANY /reports/{{p+}}": {{ authorizer: gate, integration: {{ type: http, upstream: origin }} }}
      "ANY /open/{{p+}}": {{ integration: {{ type: http, upstream: origin }} }}
"#,
            gate.url()
        );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let req = |line: &str, header: &str| {
            p.raw(format!("{line} HTTP/1.1\r\nHost: a\r\nx-token: t\r\n{header}\r\n").as_bytes())
        };
        assert_eq!(req("GET /reports/a", "").status, 200, "{driver}");
        let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
        for (line, header) in [
            ("GET /reports/a", "X-HTTP-Method-Override: DELETE\r\n"),
            ("GET /reports/a?_method=DELETE", ""),
        ] {
            let r = req(line, header);
            assert_eq!(r.status, 400, "{driver} {line} {header:?}");
        }
        assert_eq!(
            origin.requests.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{driver}: a refused request reached the backend"
        );
        // Its own method, and an override on a route no authorizer judges, go on.
        for (line, header) in [
            ("GET /reports/a", "X-HTTP-Method-Override: GET\r\n"),
            ("GET /open/a", "X-HTTP-Method-Override: DELETE\r\n"),
        ] {
            assert_eq!(req(line, header).status, 200, "{driver} {line}");
        }
    }
}
