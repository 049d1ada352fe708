//! Routing end to end (README, `apis`; docs/ARCHITECTURE.md, Request lifecycle): the most
//! specific route wins whatever the file order, stages at `/{stage}/…` and `$default` at
//! the root, several APIs on the default endpoint, 404 when nothing matches, request ids on
//! every response, mock integrations exactly as configured, and the http integration's path
//! template with `{param}`, `{proxy}` and `${stageVariables.x}`.

mod common;

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::net::SocketAddr;

use common::*;

/// Routes deliberately listed least specific first.
fn config(one: SocketAddr, two: SocketAddr) -> String {
    let mock = |body: &str| {
        format!("{{ integration: {{ type: mock, status: 200, headers: {{ content-type: text/plain }}, body: \"{body}\" }} }}")
    };
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
upstreams:
  one: {{ targets: ["{one}"], connect_timeout: 1s }}
  two: {{ targets: ["{two}"], connect_timeout: 1s }}
apis:
  pets:
    stages:
      $default: {{ variables: {{ backend: one, version: v1 }} }}
      prod: {{ variables: {{ backend: two, version: v2 }} }}
    routes:
      "$default": {default}
      "ANY /{{proxy+}}": {any_proxy}
      "GET /pets/{{proxy+}}": {get_pets_proxy}
      "GET /pets/dog/{{id}}": {get_dog_id}
      "GET /pets/dog/1": {get_dog_1}
      "ANY /pets/cat": {any_cat}
      "GET /pets/cat": {get_cat}
      "GET /teapot":
        integration:
          type: mock
          status: 418
          headers: {{ content-type: text/x-tea, x-custom: "a b", cache-control: no-store }}
          body: "short and stout"
      "POST /things":
        integration:
          type: mock
          status: 201
          headers: {{ content-type: application/json, location: /things/7 }}
          body: '{{"id":7,"name":"ü"}}'
      "GET /users/{{id}}":
        integration:
          type: http
          upstream: "${{stageVariables.backend}}"
          path: "/${{stageVariables.version}}/v/{{id}}/x"
          timeout: 2s
      "ANY /static/{{proxy+}}":
        integration: {{ type: http, upstream: one, path: "/assets/{{proxy}}", timeout: 2s }}
      "ANY /raw/{{proxy+}}":
        integration: {{ type: http, upstream: one, timeout: 2s }}
  shop:
    stages:
      beta: {{}}
    routes:
      "GET /items/{{id}}": {shop_item}
      "GET /items": {shop_items}
  billing:
    stages:
      live: {{}}
      test: {{}}
    routes:
      "$default": {billing_default}
      "ANY /items": {billing_any_items}
      "GET /items": {billing_items}
"#,
        default = mock("$default"),
        any_proxy = mock("ANY /{proxy+}"),
        get_pets_proxy = mock("GET /pets/{proxy+}"),
        get_dog_id = mock("GET /pets/dog/{id}"),
        get_dog_1 = mock("GET /pets/dog/1"),
        any_cat = mock("ANY /pets/cat"),
        get_cat = mock("GET /pets/cat"),
        shop_item = mock("shop GET /items/{id}"),
        shop_items = mock("shop GET /items"),
        billing_default = mock("billing $default"),
        billing_any_items = mock("billing ANY /items"),
        billing_items = mock("billing GET /items"),
    )
}

/// Origins that answer with their name, the method and the target they saw.
fn origins() -> (Origin, Origin) {
    let named = |name: &'static str| {
        Origin::start(move |req, s| {
            respond(
                s,
                200,
                &[("content-type", "text/plain")],
                format!("{name} {} {}", req.method, req.target).as_bytes(),
            );
            true
        })
    };
    (named("one"), named("two"))
}

fn request(p: &Portico, method: &str, path: &str) -> Response {
    let body = if method == "POST" || method == "PUT" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    p.raw(
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{body}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// (method, path, expected body) checked one by one.
fn assert_routes(p: &Portico, driver: &str, cases: &[(&str, &str, &str)]) {
    for (method, path, want) in cases {
        let r = request(p, method, path);
        assert_eq!(r.status, 200, "{driver}: {method} {path}: {}", r.text());
        assert_eq!(r.text(), *want, "{driver}: {method} {path}");
    }
}

#[test]
fn most_specific_route_wins_regardless_of_file_order() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        assert_routes(
            &p,
            driver,
            &[
                ("GET", "/pets/dog/1", "GET /pets/dog/1"),
                ("GET", "/pets/dog/2", "GET /pets/dog/{id}"),
                ("GET", "/pets/dog/1/", "GET /pets/dog/1"),
                ("GET", "/pets/dog/1/x", "GET /pets/{proxy+}"),
                ("GET", "/pets/cat/2", "GET /pets/{proxy+}"),
                ("GET", "/pets/dog", "GET /pets/{proxy+}"),
                // The method only matches ANY further up.
                ("POST", "/pets/dog/1", "ANY /{proxy+}"),
                ("DELETE", "/pets/dog/2", "ANY /{proxy+}"),
                // A method beats ANY at the same path; ANY takes the other methods.
                ("GET", "/pets/cat", "GET /pets/cat"),
                ("PUT", "/pets/cat", "ANY /pets/cat"),
                ("POST", "/pets/cat", "ANY /pets/cat"),
                // HEAD uses the GET route (checked for headers in its own test).
                ("GET", "/pets", "ANY /{proxy+}"),
                ("GET", "/anything/else?x=1", "ANY /{proxy+}"),
                // `$default` only when nothing else matches: a greedy segment needs one
                // segment, so the root falls through to it.
                ("GET", "/", "$default"),
                ("POST", "/", "$default"),
                // Matching is case-sensitive, as in API Gateway.
                ("GET", "/PETS/dog/1", "ANY /{proxy+}"),
            ],
        );
    }
}

#[test]
fn stages_and_base_paths_of_several_apis() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        assert_routes(
            &p,
            driver,
            &[
                // The prod stage of the root API, under /prod, with the base path stripped.
                ("GET", "/prod/pets/dog/1", "GET /pets/dog/1"),
                ("GET", "/prod/pets/dog/7", "GET /pets/dog/{id}"),
                ("PUT", "/prod/pets/cat", "ANY /pets/cat"),
                ("GET", "/prod", "$default"),
                ("GET", "/prod/", "$default"),
                // Other APIs own their stage names on the same endpoint.
                ("GET", "/beta/items", "shop GET /items"),
                ("GET", "/beta/items/9", "shop GET /items/{id}"),
                ("GET", "/live/items", "billing GET /items"),
                ("GET", "/test/items", "billing GET /items"),
                ("POST", "/live/items", "billing ANY /items"),
                ("GET", "/live/nothing/here", "billing $default"),
                // A base path is a whole segment: /betamax is not /beta.
                ("GET", "/betamax/items", "ANY /{proxy+}"),
                ("GET", "/production", "ANY /{proxy+}"),
            ],
        );
        // A stage that has no route for the request is a 404; it does not fall back to
        // the API at the root (which would have matched ANY /{proxy+}).
        for (method, path) in [
            ("GET", "/beta/nothing"),
            ("POST", "/beta/items"),
            ("GET", "/beta"),
            ("GET", "/beta/items/9/x"),
        ] {
            let r = request(&p, method, path);
            assert_eq!(r.status, 404, "{driver}: {method} {path}: {}", r.text());
            assert_eq!(
                r.body, br#"{"message":"Not Found"}"#,
                "{driver}: {method} {path}"
            );
        }
    }
}

#[test]
fn no_route_is_404_json_and_keeps_the_connection() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        let mut s = p.connect();
        s.write_all(
            b"GET /beta/missing HTTP/1.1\r\nHost: t\r\n\r\nHEAD /beta/missing HTTP/1.1\r\nHost: t\r\n\r\nGET /beta/items HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
        let mut rd = BufReader::new(s);
        let r = read_response(&mut rd, false).unwrap();
        assert_eq!(r.status, 404, "{driver}");
        assert_eq!(r.body, br#"{"message":"Not Found"}"#, "{driver}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        assert_eq!(
            r.header("connection"),
            None,
            "{driver}: a 404 needs no close"
        );
        let id = r.header("x-amzn-RequestId").expect("x-amzn-RequestId");
        assert_eq!(r.header("apigw-requestid"), Some(id));
        // HEAD: the same head, no body (else the next answer would not parse).
        let h = read_response(&mut rd, true).unwrap();
        assert_eq!(h.status, 404, "{driver}");
        assert_eq!(h.header("content-length"), r.header("content-length"));
        let next = read_response(&mut rd, false).unwrap();
        assert_eq!(next.text(), "shop GET /items", "{driver}");
    }
}

#[test]
fn every_response_has_one_unique_request_id() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        let mut ids = HashSet::new();
        // 200 requests on 8 keep-alive connections (both workers), mixing mock answers,
        // 404s and proxied responses.
        for conn in 0..8 {
            let mut s = p.connect();
            let mut rd = BufReader::new(s.try_clone().unwrap());
            for i in 0..25 {
                let path = match i % 3 {
                    0 => "/pets/cat",
                    1 => "/beta/missing",
                    _ => "/users/5",
                };
                s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                    .unwrap();
                let r = read_response(&mut rd, false).unwrap();
                assert!(
                    matches!(r.status, 200 | 404),
                    "{driver}: {path}: {}",
                    r.status
                );
                let id = r
                    .header("x-amzn-RequestId")
                    .unwrap_or_else(|| panic!("{driver}: no x-amzn-RequestId on {path}"));
                assert!(!id.is_empty());
                assert_eq!(r.header("apigw-requestid"), Some(id), "{driver}: {path}");
                let count = r
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("x-amzn-RequestId"))
                    .count();
                assert_eq!(count, 1, "{driver}: {path}: {:?}", r.headers);
                assert!(
                    ids.insert(id.to_string()),
                    "{driver}: id {id} repeated (connection {conn}, request {i})"
                );
            }
        }
        assert_eq!(ids.len(), 200);
    }
}

#[test]
fn mock_responses_are_exactly_as_configured() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        let r = p.get("/teapot");
        assert_eq!(r.status, 418, "{driver}");
        assert_eq!(r.body, b"short and stout", "{driver}");
        assert_eq!(r.header("content-type"), Some("text/x-tea"));
        assert_eq!(r.header("x-custom"), Some("a b"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("content-length"), Some("15"));
        let names: Vec<String> = r
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        for once in [
            "content-type",
            "content-length",
            "x-custom",
            "x-amzn-requestid",
            "apigw-requestid",
        ] {
            assert_eq!(
                names.iter().filter(|n| *n == once).count(),
                1,
                "{driver}: {once} in {names:?}"
            );
        }

        let r = p.raw(b"POST /things HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
        assert_eq!(r.status, 201, "{driver}");
        assert_eq!(r.text(), r#"{"id":7,"name":"ü"}"#);
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "content-length counts bytes"
        );
        assert_eq!(r.header("location"), Some("/things/7"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[test]
fn head_on_a_get_mock_route_has_headers_and_no_body() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        let mut s = p.connect();
        s.write_all(
            b"HEAD /teapot HTTP/1.1\r\nHost: t\r\n\r\nGET /pets/cat HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
        let mut rd = BufReader::new(s);
        let h = read_response(&mut rd, true).unwrap();
        assert_eq!(h.status, 418, "{driver}");
        assert_eq!(h.header("content-length"), Some("15"), "{driver}");
        assert_eq!(h.header("content-type"), Some("text/x-tea"));
        assert_eq!(h.header("x-custom"), Some("a b"));
        assert!(h.header("x-amzn-RequestId").is_some());
        // Had HEAD carried the body, this would read "short and stout…" instead.
        let next = read_response(&mut rd, false).unwrap();
        assert_eq!(
            (next.status, next.text().as_str()),
            (200, "GET /pets/cat"),
            "{driver}"
        );
    }
}

#[test]
fn http_integration_path_templates_and_stage_variables() {
    let (one, two) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(one.addr, two.addr), driver);
        assert_routes(
            &p,
            driver,
            &[
                // `$default` stage: backend one, version v1; the query string as received.
                (
                    "GET",
                    "/users/42?a=1&b=%20x",
                    "one GET /v1/v/42/x?a=1&b=%20x",
                ),
                ("GET", "/users/42", "one GET /v1/v/42/x"),
                // Parameters are forwarded raw, percent-encoding and all.
                ("GET", "/users/a%3Fb%20", "one GET /v1/v/a%3Fb%20/x"),
                // prod stage: backend two, version v2.
                ("GET", "/prod/users/42?z=9", "two GET /v2/v/42/x?z=9"),
                // {proxy+} into "/assets/{proxy}", several segments, any method.
                (
                    "GET",
                    "/static/css/site.css?v=3",
                    "one GET /assets/css/site.css?v=3",
                ),
                ("POST", "/prod/static/upload", "one POST /assets/upload"),
                // No path template: the path after the stage's base path.
                ("GET", "/raw/a/b?q", "one GET /raw/a/b?q"),
                ("GET", "/prod/raw/thing", "one GET /raw/thing"),
            ],
        );
    }
}

/// A route key whose path no request can reach is a check error at its key, not a route
/// that answers 404 forever: requests arrive with non-ASCII percent-encoded, escaped
/// unreserved characters decoded, and dot-segments refused.
#[test]
fn check_refuses_route_paths_no_request_can_match() {
    let mock = "{ integration: { type: mock, status: 200 } }";
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{port}"]
apis:
  u:
    stages:
      $default: {{}}
    routes:
      "GET /café": {mock}
      "GET /%61dmin": {mock}
      "GET /a/..": {mock}
      "GET /caf%C3%A9/ok": {mock}
"#,
        port = free_port()
    );
    let (code, out) = check(&yaml);
    assert_eq!(code, 1, "{out}");
    for (key, says) in [
        ("\"GET /café\"", "write \"caf%C3%A9\""),
        ("\"GET /%61dmin\"", "%61 is the unreserved character 'a'"),
        ("\"GET /a/..\"", "a request with a dot-segment is refused"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("apis.u.routes.{key}: ")) && l.contains(says)),
            "{key}: {out}"
        );
    }
    assert!(out.contains("3 error(s)"), "{out}");
    assert!(!out.contains("GET /caf%C3%A9/ok"), "{out}");
}
