//! `%2F` and `%5C` separate path segments for routing, as API Gateway splits the path
//! there and nginx, WSGI servers and Go decode `%2F` before routing (IIS and Undertow read
//! `\` as `/`). Kept inside one segment, `/admin%2Fsecret` missed `/admin/{proxy+}`'s
//! key or authorizer and reached an open catch-all, whose backend served its
//! `/admin/secret`; `/reports%2Fdaily/x` missed a domain's `reports/daily` mapping. The
//! backend still gets the path as the client sent it.

mod common;

use common::*;
use serde_json::json;

const KEY: &str = "alice-key-0123456789abcdef";

/// One worker, upstream `app` at `origin`, API `s` on the default stage with `routes`,
/// and alice's key.
fn keyed_api(origin: std::net::SocketAddr, routes: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  app: {{ targets: ["{origin}"] }}
apis:
  s:
    stages: {{ $default: {{}} }}
    routes:
{routes}api_keys:
  - {{ name: alice, value: {KEY} }}
"#
    )
}

fn with_key(p: &Portico, host: &str, path: &str, key: Option<&str>) -> Response {
    let key = key.map_or(String::new(), |k| format!("x-api-key: {k}\r\n"));
    p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{key}Connection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn an_encoded_slash_or_backslash_meets_the_guarded_route() {
    let origin = Origin::fixed(b"backend");
    let yaml = keyed_api(
        origin.addr,
        r#"      "ANY /admin/{proxy+}": { integration: { type: http, upstream: app }, api_key_required: true }
      "ANY /{proxy+}": { integration: { type: http, upstream: app } }
"#,
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        assert_eq!(with_key(&p, "t", "/admin/secret", None).status, 403);
        assert_eq!(with_key(&p, "t", "/public/x", None).status, 200);
        for (sent, backend_gets) in [
            ("/admin%2Fsecret", "/admin%2Fsecret"),
            ("/admin%2fsecret", "/admin%2Fsecret"),
            ("/admin%5Csecret", "/admin%5Csecret"),
            ("/admin%5csecret", "/admin%5Csecret"),
            ("/%2Fadmin%2Fsecret?q=1", "/%2Fadmin%2Fsecret?q=1"),
            ("/admin;x%2Fsecret", "/admin;x%2Fsecret"),
        ] {
            let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
            let r = with_key(&p, "t", sent, None);
            assert_eq!(r.status, 403, "{driver} {sent}: the key applies");
            assert_eq!(
                origin.requests.load(std::sync::atomic::Ordering::SeqCst),
                before,
                "{driver} {sent} reached the backend"
            );
            let r = with_key(&p, "t", sent, Some(KEY));
            assert_eq!(r.status, 200, "{driver} {sent}");
            assert_eq!(origin.last().target, backend_gets, "{driver} {sent}");
        }
        // A dot-segment split out by an escaped separator is still refused.
        for sent in [
            "/public%2F..%2Fadmin/x",
            "/public%5C..%5Cadmin/x",
            "/a%2F.%2Fb",
        ] {
            assert_eq!(with_key(&p, "t", sent, None).status, 400, "{driver} {sent}");
        }
    }
}

/// A custom domain's base path is matched segment by segment, `%2F` ending one too.
#[test]
fn a_base_path_ended_by_an_encoded_slash_selects_its_mapping() {
    let origin = Origin::fixed(b"backend");
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode": 200, "body": "fn"}"#.into()));
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  app: {{ targets: ["{}"] }}
domains:
  api.test: {{ mappings: {{ "reports/daily": daily/live, "reports/fn": lam/live, "": open/live }} }}
apis:
  daily:
    disable_default_endpoint: true
    stages: {{ live: {{}} }}
    routes:
      "ANY /{{proxy+}}":
        integration: {{ type: http, upstream: app }}
        parameters: {{ "overwrite:header.x-path": "$request.path" }}
        api_key_required: true
  open:
    disable_default_endpoint: true
    stages: {{ live: {{}} }}
    routes:
      "ANY /{{proxy+}}": {{ integration: {{ type: mock, body: open }} }}
  lam:
    disable_default_endpoint: true
    stages: {{ live: {{}} }}
    routes:
      "ANY /{{proxy+}}": {{ integration: {{ type: lambda, url: "{}" }} }}
api_keys:
  - {{ name: alice, value: {KEY} }}
"#,
        origin.addr,
        f.url()
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        assert_eq!(with_key(&p, "api.test", "/other", None).text(), "open");
        // The event's path after the stage is a path, `/` first, as the backend gets it.
        for (sent, raw_path) in [
            ("/reports%2Ffn/x", "/live/x"),
            ("/reports%2Ffn%2Fx", "/live/%2Fx"),
        ] {
            let r = with_key(&p, "api.test", sent, None);
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "fn"),
                "{driver} {sent}"
            );
            let e = f.last_event();
            assert_eq!(e["rawPath"], raw_path, "{driver} {sent}");
            assert_eq!(e["pathParameters"]["proxy"], "x", "{driver} {sent}");
        }
        for (sent, backend_gets) in [
            ("/reports/daily/x", "/x"),
            ("/reports%2Fdaily/x", "/x"),
            ("/reports%2fdaily%2Fx", "/%2Fx"),
            ("/reports%5Cdaily/x%2Fy", "/x%2Fy"),
        ] {
            let r = with_key(&p, "api.test", sent, None);
            assert_eq!(
                r.status, 403,
                "{driver} {sent}: reports/daily's key applies"
            );
            let r = with_key(&p, "api.test", sent, Some(KEY));
            assert_eq!(r.status, 200, "{driver} {sent}");
            let seen = origin.last();
            assert_eq!(seen.target, backend_gets, "{driver} {sent}");
            // `$request.path` is that path too.
            assert_eq!(seen.header("x-path"), Some(backend_gets), "{driver} {sent}");
        }
    }
}

/// The Lambda authorizer of `/admin/{proxy+}` is asked, and its policy judged, on the
/// path as the router split it.
#[test]
fn the_authorizer_judges_the_split_path() {
    let gate = Function::start(|ev| {
        let ok = ev["authorizationToken"].as_str() == Some("t1");
        if !ok {
            return FnReply::Error(r#"{"errorMessage":"Unauthorized"}"#.into());
        }
        FnReply::Json(
            json!({
                "principalId": "u",
                "policyDocument": {"Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow",
                     "Resource": "arn:aws:execute-api:eu-west-1:*:s/*/GET/admin/*"},
                    {"Action": "execute-api:Invoke", "Effect": "Deny",
                     "Resource": "arn:aws:execute-api:eu-west-1:*:s/*/GET/admin/secret"}
                ]}
            })
            .to_string(),
        )
    });
    let origin = Origin::fixed(b"backend");
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
iam: {{ region: eu-west-1 }}
upstreams:
  app: {{ targets: ["{}"] }}
apis:
  s:
    stages: {{ $default: {{}} }}
    authorizers:
      gate: {{ type: lambda, url: "{}", payload_format: "1.0", identity_source: [$request.header.x-token] }}
    routes:
      "ANY /admin/{{proxy+}}": {{ authorizer: gate, integration: {{ type: http, upstream: app }} }}
      "ANY /{{proxy+}}": {{ integration: {{ type: http, upstream: app }} }}
"#,
        origin.addr,
        gate.url()
    );
    let token = |p: &Portico, path: &str| {
        p.raw(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nx-token: t1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        for sent in ["/admin%2Fsecret", "/admin%5csecret", "/admin%2F%2Fx"] {
            let calls = gate.calls();
            let r = token(&p, sent);
            if sent.ends_with("secret") {
                assert_eq!(r.status, 403, "{driver} {sent}: the Deny applies");
                assert_eq!(
                    gate.last_event()["methodArn"],
                    "arn:aws:execute-api:eu-west-1:000000000000:s/$default/GET/admin/secret",
                    "{driver} {sent}"
                );
            } else {
                assert_eq!(r.status, 200, "{driver} {sent}");
            }
            assert_eq!(
                gate.calls(),
                calls + 1,
                "{driver} {sent}: the authorizer was asked"
            );
        }
        let r = token(&p, "/admin%2Fother");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/admin%2Fother", "{driver}");
        assert_eq!(
            gate.last_event()["methodArn"],
            "arn:aws:execute-api:eu-west-1:000000000000:s/$default/GET/admin/other",
            "{driver}"
        );
        // Without a token the authorizer's route answers 401, not the open catch-all.
        assert_eq!(p.get("/admin%2Fother").status, 401, "{driver}");
    }
}

/// A route key written with an encoded slash or backslash could never match: `check`
/// says so at the key.
#[test]
fn check_refuses_a_route_key_with_an_encoded_separator() {
    for (key, says) in [
        ("GET /files/a%2Fb", "%2F is an encoded slash"),
        ("GET /files/a%5cb", "%5c is an encoded backslash"),
    ] {
        let yaml = format!(
            r#"apis:
  s:
    stages: {{ $default: {{}} }}
    routes:
      "{key}": {{ integration: {{ type: mock, body: x }} }}
"#
        );
        let (code, out) = check(&yaml);
        assert_ne!(code, 0, "{key}: {out}");
        assert!(out.contains(says), "{key}: {out}");
        assert!(
            out.contains("write \"a/b\" as separate segments"),
            "{key}: {out}"
        );
    }
}

/// The other reading: Express and Go's `ServeMux` keep `%2F` inside its segment, so
/// `/users/a%2Fb` is their `/users/:id`. Routed as `/users/a/b` to the open catch-all,
/// it reached that guarded handler. A path whose one-segment reading takes another,
/// guarded route of the stage is refused; one that stays with an open route goes on.
#[test]
fn an_escape_a_guarded_route_would_take_as_one_segment_is_refused() {
    let origin = Origin::fixed(b"backend");
    let yaml = keyed_api(
        origin.addr,
        r#"      "GET /users/{id}": { integration: { type: http, upstream: app }, api_key_required: true }
      "GET /internal/{x}": { integration: { type: mock, status: 403, body: no }}
      "GET /files/{name}": { integration: { type: http, upstream: app } }
      "ANY /{proxy+}": { integration: { type: http, upstream: app } }
"#,
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
        for sent in [
            "/users/a%2Fb",
            "/users/a%2fb",
            "/users/a%5Cb",
            "/internal/a%2Fb",
        ] {
            let r = with_key(&p, "t", sent, None);
            assert_eq!(r.status, 400, "{driver} {sent}");
            assert!(r.text().contains("encoded slash"), "{driver} {sent}");
        }
        assert_eq!(
            origin.requests.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{driver}: a refused request reached the backend"
        );
        assert_eq!(with_key(&p, "t", "/users/a", None).status, 403, "{driver}");
        // An open route either way: the backend's reading reaches nothing guarded.
        for sent in ["/files/a%2Fb", "/other/a%2Fb"] {
            let r = with_key(&p, "t", sent, None);
            assert_eq!(r.status, 200, "{driver} {sent}");
            assert_eq!(origin.last().target, sent, "{driver} {sent}");
        }
    }
}

/// Both readings guarded alike (a key on the catch-all too): nothing is stepped around,
/// so a GitLab-style encoded path with a valid key goes on, and without one is 403.
#[test]
fn an_escape_read_two_ways_under_the_same_guard_goes_on() {
    let origin = Origin::fixed(b"backend");
    let yaml = keyed_api(
        origin.addr,
        r#"      "GET /projects/{id}": { integration: { type: http, upstream: app }, api_key_required: true }
      "ANY /{proxy+}": { integration: { type: http, upstream: app }, api_key_required: true }
"#,
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let sent = "/projects/group%2Fproject";
        assert_eq!(with_key(&p, "t", sent, None).status, 403, "{driver}");
        assert_eq!(with_key(&p, "t", sent, Some(KEY)).status, 200, "{driver}");
        assert_eq!(origin.last().target, sent, "{driver}");
    }
}
