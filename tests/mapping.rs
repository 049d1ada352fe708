//! Parameter mapping end to end: every request operation (overwrite/append/remove on
//! header.X and querystring.X, overwrite:path) with values mixing $request, $context,
//! $stageVariables and literals, as the origin sees it; and every response operation
//! (overwrite:statuscode, overwrite/append/remove:header.X) on http, mock and lambda
//! integrations, as the client sees it.

mod common;

use common::*;

fn all(r: &Response, name: &str) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

fn seen_all(s: &Seen, name: &str) -> Vec<String> {
    s.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

fn config(origin: &Origin, function: &Function) -> String {
    let (origin, url) = (origin.addr, function.url());
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  origin: {{ targets: ["{origin}"] }}
apis:
  shop:
    stages:
      prod: {{ variables: {{ tag: blue, backend: origin }} }}
    routes:
      "GET /users/{{id}}/{{rest+}}":
        integration: {{ type: http, upstream: "${{stageVariables.backend}}" }}
        parameters:
          "overwrite:path": "/v2/u/$request.path.id/${{context.stage}}/${{request.path.rest}}"
          "overwrite:header.x-tenant": "$request.header.x-org"
          "append:header.x-trace": "gw-$context.requestId"
          "remove:header.x-secret": ""
          "overwrite:header.x-mixed": "${{request.path.id}}:$request.header.x-org:$stageVariables.tag:lit:$context.httpMethod:$request.path:$request.querystring.l"
          "overwrite:header.x-ctx": "$context.identity.sourceIp|$context.identity.userAgent|$context.apiId|$context.routeKey|$context.domainName|$context.protocol|$context.isCanaryRequest"
          "overwrite:header.x-epoch": "$context.requestTimeEpoch"
          "overwrite:header.x-missing": "$request.header.x-none"
          "overwrite:querystring.lang": "$request.querystring.l"
          "append:querystring.src": "gw $stageVariables.tag&x"
          "remove:querystring.debug": ""
          "append:querystring.l": "$request.header.x-org"
        response_parameters:
          "200":
            "overwrite:statuscode": "201"
            "overwrite:header.server": "portico"
            "append:header.x-from": "$response.header.x-backend/$context.stage"
            "remove:header.x-internal": ""
          "404":
            "overwrite:statuscode": "$response.header.x-real-status"
            "overwrite:header.x-was": "404"
      "GET /plain": {{ integration: {{ type: http, upstream: origin }} }}
      "GET /files":
        integration: {{ type: http, upstream: origin }}
        parameters: {{ "overwrite:path": "/static/$request.querystring.name" }}
      "GET /mock":
        integration: {{ type: mock, status: 200, headers: {{ x-a: "1", x-b: "keep" }}, body: "m" }}
        response_parameters:
          "200":
            "overwrite:header.x-a": "$response.header.x-a$response.header.x-b"
            "append:header.x-id": "$context.requestId"
            "overwrite:statuscode": "202"
      "GET /fn":
        integration: {{ type: lambda, url: "{url}" }}
        response_parameters:
          "200": {{ "overwrite:statuscode": "203", "remove:header.x-fn": "", "append:header.x-got": "$response.header.x-fn" }}
"#
    )
}

#[test]
fn request_mapping_reaches_the_origin() {
    let origin = Origin::start(|req, s| {
        if req.target.contains("/missing/") {
            respond(s, 404, &[("x-real-status", "418")], b"gone");
        } else if req.target.contains("/signed/") {
            respond(s, 404, &[("x-real-status", "+418")], b"gone");
        } else {
            respond(
                s,
                200,
                &[
                    ("server", "origin"),
                    ("x-backend", "b1"),
                    ("x-internal", "secret"),
                ],
                b"hi",
            );
        }
        true
    });
    let f = Function::start(|_| FnReply::Json("{}".into()));
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin, &f), driver);
        let r = p.raw(
            b"GET /prod/users/42/a/b?l=en+gb&debug=1&keep=%20y&lang=xx&debug=2 HTTP/1.1\r\nHost: api.test\r\nUser-Agent: ua/2\r\nX-Org: acme\r\nX-Tenant: spoofed\r\nX_Tenant: spoofed\r\nX-Trace: client\r\nX-Secret: s3\r\nX_Secret: s4\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 201, "{driver}: {}", p.log_text());
        let seen = origin.last();
        assert_eq!(
            seen.target,
            "/v2/u/42/prod/a/b?l=en+gb&keep=%20y&lang=en%20gb&src=gw%20blue%26x&l=acme",
            "a client's `+` is a space: copied, it stays one, not a plus (%2B)"
        );
        assert_eq!(seen_all(&seen, "x-tenant"), ["acme"]);
        let id = r.header("x-amzn-RequestId").unwrap();
        assert_eq!(
            seen_all(&seen, "x-trace"),
            ["client".to_string(), format!("gw-{id}")]
        );
        assert!(seen.header("x-secret").is_none());
        assert!(
            seen.header("x_secret").is_none(),
            "X_Secret is X-Secret to CGI backends"
        );
        assert_eq!(seen_all(&seen, "x_tenant"), Vec::<String>::new());
        assert_eq!(
            seen.header("x-mixed"),
            Some("42:acme:blue:lit:GET:/users/42/a/b:en+gb")
        );
        assert_eq!(
            seen.header("x-ctx"),
            Some("127.0.0.1|ua/2|shop|GET /users/{id}/{rest+}|api.test|HTTP/1.1|false")
        );
        let epoch: u64 = seen.header("x-epoch").unwrap().parse().unwrap();
        assert!(epoch > 1_700_000_000_000);
        // A value that comes out empty adds nothing.
        assert!(seen.header("x-missing").is_none());
        // The proxy's own headers are untouched.
        assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(seen.header("host"), Some(origin.addr.to_string().as_str()));

        // Response: status overwritten, headers overwritten, appended, removed.
        assert_eq!(r.text(), "hi");
        assert_eq!(all(&r, "server"), ["portico"]);
        assert_eq!(all(&r, "x-from"), ["b1/prod"]);
        assert!(r.header("x-internal").is_none());
        assert_eq!(r.header("x-backend"), Some("b1"));

        // Rules are chosen by the integration's status; the new one may come from it.
        let r = p.get("/prod/users/1/missing/x");
        assert_eq!((r.status, r.text().as_str()), (418, "gone"));
        assert_eq!(r.header("x-was"), Some("404"));
        // A status is digits: `+418` (which Rust's parser takes) is no status, ignored.
        let r = p.get("/prod/users/1/signed/x");
        assert_eq!((r.status, r.text().as_str()), (404, "gone"), "{driver}");

        // A name the mapping overwrites or removes is recognised under an escape too
        // (`%6Cang` is `lang`): no client value survives beside the mapped one.
        let r = p.raw(b"GET /prod/users/42/a/b?l=en&%64ebug=1&%6Cang=evil HTTP/1.1\r\nHost: api.test\r\nX-Org: acme\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 201, "{driver}");
        assert_eq!(
            origin.last().target,
            "/v2/u/42/prod/a/b?l=en&lang=en&src=gw%20blue%26x&l=acme"
        );

        // A mapped path that comes out with a dot-segment is refused, as a client's own
        // would be: the backend must not resolve it outside the template's prefix.
        let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
        for name in [
            "../admin/keys",
            "%2e%2e/admin",
            "a/../../etc/passwd",
            ".",
            "a..%00",
        ] {
            let r = p.get(&format!("/prod/files?name={name}"));
            assert_eq!(r.status, 400, "{driver} {name}");
        }
        assert_eq!(
            origin.requests.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{driver}: a refused path reached the backend"
        );
        assert_eq!(p.get("/prod/files?name=a..b.txt").status, 200);
        assert_eq!(origin.last().target, "/static/a..b.txt?name=a..b.txt");
        // A % that starts no escape goes as a percent sign, never as a new escape: as
        // sent, /static/%%36%31dmin is /static/%61dmin, then /static/admin, to a backend.
        assert_eq!(p.get("/prod/files?name=%%36%31dmin").status, 200);
        assert_eq!(
            origin.last().target,
            "/static/%25%36%31dmin?name=%%36%31dmin"
        );
        // A client's query value is form-encoded: its `+` is a space, in a path too.
        assert_eq!(p.get("/prod/files?name=new+york%2B1").status, 200);
        assert_eq!(
            origin.last().target,
            "/static/new%20york%2B1?name=new+york%2B1"
        );
        // A `;` in a value starts no path parameters: `a;x` and `a%3Bx` are one value.
        for sent in ["admin;x", "admin%3Bx"] {
            assert_eq!(p.get(&format!("/prod/files?name={sent}")).status, 200);
            assert_eq!(
                origin.last().target,
                format!("/static/admin%3Bx?name={sent}"),
                "{driver}"
            );
        }

        // A route without mapping is forwarded exactly as before.
        let r = p.raw(b"GET /prod/plain?debug=1 HTTP/1.1\r\nHost: t\r\nX-Secret: s\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(all(&r, "server"), ["origin"]);
        let seen = origin.last();
        assert_eq!(seen.target, "/plain?debug=1");
        assert_eq!(seen.header("x-secret"), Some("s"));
    }
}

#[test]
fn response_mapping_on_mock_and_lambda() {
    let origin = Origin::fixed(b"x");
    let f = Function::start(|_| {
        FnReply::Json(r#"{"statusCode":200,"headers":{"x-fn":"v"},"body":"fn"}"#.into())
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin, &f), driver);
        let r = p.get("/prod/mock");
        assert_eq!((r.status, r.text().as_str()), (202, "m"), "{driver}");
        assert_eq!(all(&r, "x-a"), ["1keep"]);
        assert_eq!(all(&r, "x-b"), ["keep"]);
        assert_eq!(r.header("x-id"), r.header("x-amzn-RequestId"));
        assert_eq!(r.header("content-length"), Some("1"));

        let r = p.get("/prod/fn");
        assert_eq!((r.status, r.text().as_str()), (203, "fn"));
        assert!(r.header("x-fn").is_none());
        assert_eq!(r.header("x-got"), Some("v"));
    }
}

/// `remove:` and `overwrite:` of a query parameter catch it under every spelling PHP,
/// Rack and ASP.NET read as that name (`+debug`, `debug%00x`, `debug[]`, a `;`-separated
/// part, `DEBUG`), and
/// a mapped value's `;` is encoded: Rack 2 and older Python split pairs on it.
#[test]
fn query_names_are_matched_as_backends_read_them() {
    let origin = Origin::fixed(b"x");
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  origin: {{ targets: ["{}"] }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes:
      "GET /map/{{id}}":
        integration: {{ type: http, upstream: origin }}
        parameters:
          "remove:querystring.debug": ""
          "overwrite:querystring.role": "$request.header.x-role"
"#,
        origin.addr
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        let r = p.raw(b"GET /prod/map/x?debug=0&+debug=1&%20debug=2&debug%00=3&debug[]=4&x=1;debug=5&%64ebug=6&debugx=7&role[a]=admin;y=2&;role=admin&DEBUG=8&Role=admin HTTP/1.1\r\nHost: t\r\nX-Role: u;admin=1\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}: {}", p.log_text());
        assert_eq!(
            origin.last().target,
            "/map/x?x=1&debugx=7&y=2&role=u%3Badmin%3D1",
            "{driver}"
        );
        // A pair with a `;` but nothing to drop goes as it came.
        let r =
            p.raw(b"GET /prod/map/x?a=1;b=2&c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/map/x?a=1;b=2&c", "{driver}");
    }
}
