//! Lambda REQUEST authorizers end to end, with real function endpoints started by the
//! test: the 1.0 and 2.0 events, simple and IAM-policy answers, the result cache (per
//! identity, evaluated per route ARN), 401 without a call when the identity source is
//! missing, 403 on deny, 500 (never cached) on errors, timeouts and garbage, the context
//! passed on to integrations and mappings, and `api_key_source: authorizer`.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The simple-response authorizer: decides on its first identity value.
fn simple_authorizer() -> Function {
    Function::start(|ev| {
        let token = ev["identitySource"][0].as_str().unwrap_or("");
        match token {
            "allow" => FnReply::Json(
                json!({"isAuthorized": true, "context": {"tenant": {"id": 7}, "user": "u1"}})
                    .to_string(),
            ),
            "deny" => {
                FnReply::Json(r#"{"isAuthorized": false, "context": {"why": "expired"}}"#.into())
            }
            "string" => FnReply::Json(r#"{"isAuthorized": "true"}"#.into()),
            "error" => FnReply::Error(r#"{"errorMessage":"boom","errorType":"Error"}"#.into()),
            "slow" => FnReply::Slow(
                Duration::from_millis(2500),
                r#"{"isAuthorized": true}"#.into(),
            ),
            "key" => FnReply::Json(
                json!({"isAuthorized": true, "usageIdentifierKey": "alice-key-0123456789abcdef"})
                    .to_string(),
            ),
            "badkey" => FnReply::Json(
                json!({"isAuthorized": true, "usageIdentifierKey": "nobody"}).to_string(),
            ),
            _ => FnReply::Raw("garbage".into()),
        }
    })
}

/// The 1.0 policy authorizer: token t1 may GET anything under /p, nothing else.
fn policy_authorizer() -> Function {
    Function::start(|ev| {
        if ev["authorizationToken"].as_str() == Some("office,acme") {
            // Only callers from 203.0.113.0/24 (the test client is 127.0.0.1).
            return FnReply::Json(
                json!({
                    "principalId": "office",
                    "policyDocument": {"Statement": [
                        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*",
                         "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}}
                    ]}
                })
                .to_string(),
            );
        }
        if ev["authorizationToken"].as_str() == Some("notres,acme") {
            // An Allow of everything but /p/secret: `NotResource` is not supported.
            return FnReply::Json(
                json!({
                    "principalId": "partner",
                    "policyDocument": {"Statement": [
                        {"Action": "*", "Effect": "Allow", "Resource": "*",
                         "NotResource": "arn:aws:execute-api:eu-west-1:*:shop/*/GET/p/secret"}
                    ]}
                })
                .to_string(),
            );
        }
        if ev["authorizationToken"].as_str() == Some("boom,acme") {
            return FnReply::Error(r#"{"errorMessage":"boom","errorType":"Error"}"#.into());
        }
        if ev["authorizationToken"].as_str() != Some("t1,acme") {
            return FnReply::Error(
                r#"{"errorMessage":"Unauthorized","errorType":"Exception","stackTrace":[]}"#.into(),
            );
        }
        FnReply::Json(
            json!({
                "principalId": "user-b",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Action": "execute-api:Invoke", "Effect": "Allow",
                         "Resource": "arn:aws:execute-api:eu-west-1:*:shop/*/GET/p/*"},
                        {"Action": "execute-api:Invoke", "Effect": "Deny",
                         "Resource": "arn:aws:execute-api:eu-west-1:*:shop/*/GET/p/secret"}
                    ]
                },
                "context": {"tenant": "t1", "n": 5, "ok": true, "none": null}
            })
            .to_string(),
        )
    })
}

fn config(simple: &Function, policy: &Function, f: &Function, origin: &Origin) -> String {
    let (s, p, u, o) = (simple.url(), policy.url(), f.url(), origin.addr);
    let state = temp_dir("auth-lambda").display().to_string();
    format!(
        r#"state_dir: "{state}"
server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 3s, idle_timeout: 5s, drain_timeout: 1s }}
iam: {{ region: eu-west-1 }}
upstreams:
  echo: {{ targets: ["{o}"] }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    api_key_source: authorizer
    authorizers:
      simple: {{ type: lambda, url: "{s}", simple_responses: true, identity_source: [$request.header.x-token], result_ttl: 300s }}
      nocache: {{ type: lambda, url: "{s}", simple_responses: true, identity_source: $request.header.x-token }}
      quick: {{ type: lambda, url: "{s}", simple_responses: true, identity_source: [$request.header.x-token], timeout: 1s }}
      policy: {{ type: lambda, url: "{p}", payload_format: "1.0", identity_source: [$request.header.x-token, $request.querystring.tenant], result_ttl: 300s }}
    routes:
      "GET /s": {{ authorizer: simple, integration: {{ type: lambda, url: "{u}" }} }}
      "GET /n": {{ authorizer: nocache, integration: {{ type: mock, status: 200, body: n }} }}
      "GET /quick": {{ authorizer: quick, integration: {{ type: mock, status: 200, body: q }} }}
      "GET /p/{{id}}": {{ authorizer: policy, integration: {{ type: lambda, url: "{u}", payload_format: "1.0" }} }}
      "DELETE /p/{{id}}": {{ authorizer: policy, integration: {{ type: mock, status: 200, body: deleted }} }}
      "GET /keyed": {{ authorizer: nocache, api_key_required: true, integration: {{ type: mock, status: 200, body: keyed }} }}
      "GET /mapped":
        authorizer: simple
        parameters: {{ "overwrite:header.x-user": "$context.authorizer.user" }}
        integration: {{ type: http, upstream: echo }}
usage_plans:
  gold: {{ stages: [shop/$default] }}
api_keys:
  - {{ name: alice, value: alice-key-0123456789abcdef, plan: gold }}
"#
    )
}

fn get(p: &Portico, target: &str, token: Option<&str>) -> Response {
    req(p, "GET", target, token)
}

fn req(p: &Portico, method: &str, target: &str, token: Option<&str>) -> Response {
    let t = token.map_or(String::new(), |t| format!("x-token: {t}\r\n"));
    p.raw(
        format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{t}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn ok_fn() -> Function {
    Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"fn"}"#.into()))
}

#[test]
fn simple_responses_are_cached_per_identity_and_errors_never() {
    for driver in DRIVERS {
        let (simple, policy, f, origin) = (
            simple_authorizer(),
            policy_authorizer(),
            ok_fn(),
            Origin::echo(),
        );
        let p = Portico::start(&config(&simple, &policy, &f, &origin), driver);

        // Missing identity source: 401 without a call.
        let r = get(&p, "/s", None);
        assert_eq!(r.status, 401);
        assert_eq!(r.json_message(), "Unauthorized");
        assert_eq!(get(&p, "/s", Some("")).status, 401);
        assert_eq!(simple.calls(), 0);

        // Allowed: the 2.0 authorizer event, then the context at the integration.
        assert_eq!(get(&p, "/s?x=1", Some("allow")).text(), "fn");
        assert_eq!(simple.calls(), 1);
        let ev = simple.last_event();
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["type"], "REQUEST");
        assert_eq!(
            ev["routeArn"],
            "arn:aws:execute-api:eu-west-1:000000000000:shop/$default/GET/s"
        );
        assert_eq!(ev["identitySource"], json!(["allow"]));
        assert_eq!(ev["headers"]["x-token"], "allow");
        // The request's trace, as the integration gets it (the client sent none).
        let trace = ev["headers"]["x-amzn-trace-id"]
            .as_str()
            .unwrap_or_default();
        assert!(
            trace.starts_with("Root=1-") && trace.contains(";Parent="),
            "{ev}"
        );
        assert_eq!(f.last_event()["headers"]["x-amzn-trace-id"], trace);
        assert_eq!(ev["queryStringParameters"]["x"], "1");
        assert_eq!(ev["requestContext"]["http"]["method"], "GET");
        assert_eq!(ev["routeKey"], "GET /s");
        assert!(ev.get("body").is_none());
        let ie = f.last_event();
        assert_eq!(
            ie["requestContext"]["authorizer"]["lambda"]["tenant"]["id"],
            7
        );
        assert_eq!(ie["requestContext"]["authorizer"]["lambda"]["user"], "u1");

        // Cached: no second call for the same identity.
        assert_eq!(get(&p, "/s", Some("allow")).status, 200);
        assert_eq!(simple.calls(), 1);

        // Deny: 403, cached too.
        let r = get(&p, "/s", Some("deny"));
        assert_eq!(r.status, 403);
        assert_eq!(r.json_message(), "Forbidden");
        assert_eq!(get(&p, "/s", Some("deny")).status, 403);
        assert_eq!(simple.calls(), 2);

        // Errors, garbage and a string "true": 500, and never cached.
        for token in ["error", "garbage", "string"] {
            let before = simple.calls();
            for _ in 0..2 {
                let r = get(&p, "/s", Some(token));
                assert_eq!(r.status, 500, "{token}");
                assert_eq!(r.json_message(), "Internal Server Error");
            }
            assert_eq!(simple.calls(), before + 2, "{token} was cached");
        }

        // Without result_ttl every request calls.
        let before = simple.calls();
        assert_eq!(get(&p, "/n", Some("allow")).text(), "n");
        assert_eq!(get(&p, "/n", Some("allow")).text(), "n");
        assert_eq!(simple.calls(), before + 2);

        // A context value mapped onto a request header.
        assert_eq!(get(&p, "/mapped", Some("allow")).status, 200);
        assert_eq!(origin.last().header("x-user"), Some("u1"));

        // An authorizer slower than its timeout: 500 once the timeout passes.
        let t = Instant::now();
        assert_eq!(get(&p, "/quick", Some("slow")).status, 500);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2400),
            "{took:?}"
        );
    }
}

#[test]
fn a_cached_policy_is_judged_against_each_route_arn() {
    for driver in DRIVERS {
        let (simple, policy, f, origin) = (
            simple_authorizer(),
            policy_authorizer(),
            ok_fn(),
            Origin::echo(),
        );
        let p = Portico::start(&config(&simple, &policy, &f, &origin), driver);

        assert_eq!(get(&p, "/p/1?tenant=acme", Some("t1")).text(), "fn");
        let ev = policy.last_event();
        assert_eq!(ev["version"], "1.0");
        assert_eq!(ev["type"], "REQUEST");
        assert_eq!(
            ev["methodArn"],
            "arn:aws:execute-api:eu-west-1:000000000000:shop/$default/GET/p/1"
        );
        assert_eq!(ev["identitySource"], "t1,acme");
        assert_eq!(ev["authorizationToken"], "t1,acme");
        assert_eq!(ev["pathParameters"]["id"], "1");
        assert_eq!(ev["httpMethod"], "GET");

        // 1.0 integration: flat, stringified, with principalId.
        let a = &f.last_event()["requestContext"]["authorizer"];
        assert_eq!(a["principalId"], "user-b");
        assert_eq!(a["tenant"], "t1");
        assert_eq!(a["n"], "5");
        assert_eq!(a["ok"], "true");
        // A null stays a null (API Gateway's REST shape keeps the key).
        assert!(a.get("none").is_some_and(|v| v.is_null()), "{a}");
        assert!(a["integrationLatency"].is_u64(), "{a}");

        // The same identity on another method and path: the cached policy decides.
        assert_eq!(get(&p, "/p/2?tenant=acme", Some("t1")).status, 200);
        assert_eq!(
            req(&p, "DELETE", "/p/1?tenant=acme", Some("t1")).status,
            403
        );
        assert_eq!(get(&p, "/p/secret?tenant=acme", Some("t1")).status, 403);
        // The router skips empty segments, and so does the ARN: no slash steps around
        // the deny, nor an escaped one ({id} reaches the integration decoded, as
        // "secret/"). A HEAD answered by the GET route is judged as that GET.
        for path in [
            "/p/secret/",
            "/p//secret",
            "//p/secret//",
            "/p/secret%2F",
            "/p/%2fsecret",
            "/p/secre%74",
        ] {
            let target = format!("{path}?tenant=acme");
            assert_eq!(get(&p, &target, Some("t1")).status, 403, "{path}");
        }
        let mut s = p.connect();
        s.write_all(b"HEAD /p/secret?tenant=acme HTTP/1.1\r\nHost: t\r\nx-token: t1\r\n\r\n")
            .unwrap();
        let head = read_response(&mut std::io::BufReader::new(s), true).unwrap();
        assert_eq!(head.status, 403);
        assert_eq!(get(&p, "/p/2/?tenant=acme", Some("t1")).status, 200);
        // A query identity source is found by its decoded name, as the event names it.
        assert_eq!(get(&p, "/p/2?%74enant=acme", Some("t1")).status, 200);
        assert_eq!(policy.calls(), 1, "one call per identity per TTL");

        // A Condition is not evaluated, so it fails closed: this Allow grants nothing.
        assert_eq!(get(&p, "/p/1?tenant=acme", Some("office")).status, 403);
        assert_eq!(policy.calls(), 2);

        // A `NotResource` beside `Resource` was dropped unread: the Allow let /p/secret
        // in. The answer is malformed: a 500, never cached.
        for _ in 0..2 {
            assert_eq!(get(&p, "/p/secret?tenant=acme", Some("notres")).status, 500);
        }
        assert_eq!(policy.calls(), 4);

        // Another identity value is another cache entry: here the function raises
        // "Unauthorized", REST's blueprint refusal, a 401 from a 1.0 authorizer (it was a
        // 500); another error is a 500.
        let r = get(&p, "/p/1?tenant=other", Some("t1"));
        assert_eq!((r.status, r.json_message()), (401, "Unauthorized".into()));
        let r = get(&p, "/p/1?tenant=acme", Some("boom"));
        assert_eq!(
            (r.status, r.json_message()),
            (500, "Internal Server Error".into())
        );
        assert_eq!(
            get(&p, "/p/1", Some("t1")).status,
            401,
            "identity source missing"
        );
        assert_eq!(policy.calls(), 6);
    }
}

#[test]
fn the_authorizer_can_supply_the_api_key() {
    for driver in DRIVERS {
        let (simple, policy, f, origin) = (
            simple_authorizer(),
            policy_authorizer(),
            ok_fn(),
            Origin::echo(),
        );
        let p = Portico::start(&config(&simple, &policy, &f, &origin), driver);
        assert_eq!(get(&p, "/keyed", Some("key")).text(), "keyed");
        assert_eq!(get(&p, "/keyed", Some("badkey")).status, 403);
        // The header is not the key source here.
        let r = p.raw(
            b"GET /keyed HTTP/1.1\r\nHost: t\r\nx-token: allow\r\nx-api-key: alice-key-0123456789abcdef\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 403);
    }
}

#[test]
fn check_reports_lambda_authorizer_mistakes() {
    let (code, out) = check(
        r#"apis:
  shop:
    stages: { $default: {} }
    authorizers:
      a: { type: lambda, url: "https://x/fn", identity_source: [$request.body.x], result_ttl: 2h, simple_responses: true, payload_format: "1.0" }
      b: { type: lambda, url: "http://127.0.0.1:9/fn", result_ttl: 10s, timeout: 30s }
    routes:
      "GET /a": { authorizer: a, authorization_scopes: [x], integration: { type: mock } }
"#,
    );
    assert_ne!(code, 0);
    for want in [
        "apis.shop.authorizers.a.url:",
        "apis.shop.authorizers.a.simple_responses: simple responses need payload_format \"2.0\"",
        "apis.shop.authorizers.a.result_ttl: at most 3600s",
        "apis.shop.authorizers.a.identity_source[0]: \"$request.body.x\" is not an identity source",
        "apis.shop.authorizers.b.identity_source: caching results (result_ttl) needs at least one identity source",
        "apis.shop.authorizers.b.timeout: between 1ms and 10s",
        "apis.shop.routes.\"GET /a\".authorization_scopes: scopes need a JWT authorizer on the route",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn authorizer_refusals_use_the_apis_gateway_responses() {
    for driver in DRIVERS {
        let (simple, policy, f, origin) = (
            simple_authorizer(),
            policy_authorizer(),
            ok_fn(),
            Origin::echo(),
        );
        let cfg = config(&simple, &policy, &f, &origin).replace(
            "    api_key_source: authorizer\n",
            "    api_key_source: authorizer\n    gateway_responses:\n      UNAUTHORIZED: { status: 401, headers: { x-why: who }, body: '{\"m\":\"$context.error.message\",\"t\":\"$context.error.responseType\"}' }\n      ACCESS_DENIED: { status: 403, body: '{\"t\":\"$context.error.responseType\",\"why\":\"$context.authorizer.why\"}' }\n      AUTHORIZER_FAILURE: { status: 503, body: '{\"t\":\"$context.error.responseType\"}' }\n",
        );
        let p = Portico::start(&cfg, driver);
        let r = get(&p, "/s", None);
        assert_eq!(r.status, 401);
        assert_eq!(r.header("x-why"), Some("who"));
        assert_eq!(r.text(), r#"{"m":"Unauthorized","t":"UNAUTHORIZED"}"#);
        // A deny's context fills `$context.authorizer.*`, as API Gateway's does.
        let r = get(&p, "/s", Some("deny"));
        assert_eq!(
            (r.status, r.text()),
            (403, r#"{"t":"ACCESS_DENIED","why":"expired"}"#.into())
        );
        let r = get(&p, "/s", Some("garbage"));
        assert_eq!(
            (r.status, r.text()),
            (503, r#"{"t":"AUTHORIZER_FAILURE"}"#.into())
        );
    }
}

#[test]
fn a_cached_verdict_stays_with_its_api() {
    // Two APIs whose authorizers call the same function with the same identity source:
    // a `true` given for one is not a `true` for the other.
    let gate = Function::start(|ev| {
        let arn = ev["routeArn"].as_str().unwrap_or("");
        FnReply::Json(json!({"isAuthorized": arn.contains(":public/")}).to_string())
    });
    let authorizer = format!(
        "{{ type: lambda, url: \"{}\", simple_responses: true, identity_source: [$request.header.x-token], result_ttl: 300s }}",
        gate.url()
    );
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
domains:
  pub.test: {{ mappings: {{ "": public/live }} }}
  adm.test: {{ mappings: {{ "": admin/live }} }}
apis:
  public:
    disable_default_endpoint: true
    stages: {{ live: {{}} }}
    authorizers: {{ gate: {authorizer} }}
    routes:
      "GET /x": {{ authorizer: gate, integration: {{ type: mock, status: 200, body: public }} }}
  admin:
    disable_default_endpoint: true
    stages: {{ live: {{}} }}
    authorizers: {{ gate: {authorizer} }}
    routes:
      "GET /x": {{ authorizer: gate, integration: {{ type: mock, status: 200, body: secret }} }}
"#
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        let at = |host: &str| {
            p.raw(
                format!(
                    "GET /x HTTP/1.1\r\nHost: {host}\r\nx-token: t\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
        };
        let calls = gate.calls();
        assert_eq!(at("pub.test").text(), "public");
        assert_eq!(at("adm.test").status, 403);
        assert_eq!(
            gate.calls(),
            calls + 2,
            "each API asked the function itself"
        );
        assert_eq!(at("pub.test").text(), "public");
        assert_eq!(gate.calls(), calls + 2, "and cached its own answer");
    }
}
