//! The response cache on routes with an authorizer, end to end: one caller's cached
//! answer never reaches another. The key names the caller as the authorizer knows it —
//! a Lambda authorizer's identity-source values, the JWT, the SigV4 access key — so two
//! requests of one caller share an entry and two callers never do. A Lambda authorizer
//! without identity sources names no caller: its routes are not cached.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::py::Idp;
use common::*;
use serde_json::{json, Value};

const ALICE_KEY: &str = "AKIAALICE";
const BOB_KEY: &str = "AKIABOB";
const SECRET: &str = "cache-test-secret";

/// Each body is the origin's sequence number and the path: which fetch an answer is.
fn origin() -> Origin {
    let seq = Arc::new(AtomicUsize::new(0));
    Origin::start(move |req, s| {
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        let path = req.target.split('?').next().unwrap_or("");
        respond(s, 200, &[], format!("#{n} {path}").as_bytes());
        true
    })
}

/// A Lambda authorizer that lets alice and bob in, named by X-Token or Authorization.
fn authorizer() -> Function {
    Function::start(|event| {
        let h = &event["headers"];
        let who = h["x-token"].as_str().or(h["authorization"].as_str());
        let ok = matches!(who, Some("alice" | "bob"));
        FnReply::Json(json!({ "isAuthorized": ok }).to_string())
    })
}

fn config(origin: &Origin, f: &Function, idp: &Idp) -> String {
    let (o, url, iss) = (origin.addr, f.url(), idp.issuer());
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    let lambda =
        format!("type: lambda, url: \"{url}\", payload_format: \"2.0\", simple_responses: true");
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
iam:
  principals:
    alice: {{ access_key_id: {ALICE_KEY}, secret_access_key: {SECRET}, allow: ["*"] }}
    bob: {{ access_key_id: {BOB_KEY}, secret_access_key: {SECRET}, allow: ["*"] }}
upstreams:
  origin: {{ targets: ["{o}"], connect_timeout: 1s }}
apis:
  shop:
    authorizers:
      gate: {{ {lambda}, identity_source: [$request.header.X-Token] }}
      gate-auth: {{ {lambda}, identity_source: [$request.header.Authorization], result_ttl: 60s }}
      gate-any: {{ {lambda} }}
      users: {{ type: jwt, issuer: "{iss}", audience: [shop-api] }}
      users-q: {{ type: jwt, issuer: "{iss}", audience: [shop-api], identity_source: $request.querystring.token }}
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /lambda/{{p}}": {{ authorizer: gate, integration: {http}, cache: {{}} }}
      "GET /lambda-auth/{{p}}": {{ authorizer: gate-auth, integration: {http}, cache: {{}} }}
      "GET /lambda-any/{{p}}": {{ authorizer: gate-any, integration: {http}, cache: {{}} }}
      "GET /jwt/{{p}}": {{ authorizer: users, integration: {http}, cache: {{}} }}
      "GET /jwt-q/{{p}}": {{ authorizer: users-q, integration: {http}, cache: {{}} }}
      "GET /iam/{{p}}": {{ authorization: iam, integration: {http}, cache: {{}} }}
"#
    )
}

struct Setup {
    origin: Origin,
    // Kept alive for the authorizers.
    _f: Function,
    idp: Idp,
    p: Portico,
}

#[test]
fn check_says_when_an_authorizer_leaves_nothing_to_key_on() {
    let (origin, f, idp) = (origin(), authorizer(), Idp::start());
    let (code, out) = check(&config(&origin, &f, &idp).replace("{PORT}", "1"));
    assert_eq!(code, 0, "{out}");
    let want = r#"apis.shop.routes."GET /lambda-any/{p}".cache: not used: the route's Lambda authorizer has no identity source, so there is no caller to key entries by"#;
    assert!(out.contains(want), "{want}\nin\n{out}");
    assert_eq!(out.matches("not used").count(), 1, "{out}");
}

fn start(driver: &str) -> Setup {
    let origin = origin();
    let f = authorizer();
    let idp = Idp::start();
    let p = Portico::start(&config(&origin, &f, &idp), driver);
    Setup {
        origin,
        _f: f,
        idp,
        p,
    }
}

/// `GET path` with `headers`; the body, which says which fetch answered.
fn get(p: &Portico, path: &str, headers: &str) -> String {
    let r = p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.text()
}

fn fetches(origin: &Origin) -> usize {
    origin.requests.load(Ordering::SeqCst)
}

#[test]
fn a_lambda_authorizer_keys_entries_by_its_identity_sources() {
    for driver in DRIVERS {
        let Setup { origin, p, .. } = start(driver);
        let alice = get(&p, "/lambda/me", "X-Token: alice\r\n");
        assert_eq!(alice, "#1 /lambda/me", "{driver}");
        let bob = get(&p, "/lambda/me", "X-Token: bob\r\n");
        assert_eq!(
            bob, "#2 /lambda/me",
            "{driver}: bob was served alice's answer"
        );
        assert_eq!(get(&p, "/lambda/me", "X-Token: alice\r\n"), alice, "a hit");
        assert_eq!(get(&p, "/lambda/me", "X-Token: bob\r\n"), bob, "a hit");
        assert_eq!(fetches(&origin), 2, "{driver}");

        // The identity in Authorization: such requests are cached, by it.
        let alice = get(&p, "/lambda-auth/me", "Authorization: alice\r\n");
        assert_ne!(
            get(&p, "/lambda-auth/me", "Authorization: bob\r\n"),
            alice,
            "{driver}"
        );
        assert_eq!(
            get(&p, "/lambda-auth/me", "Authorization: alice\r\n"),
            alice
        );
        assert_eq!(fetches(&origin), 4, "{driver}");

        // Without identity sources the function decides on anything in the request:
        // no caller to key on, so nothing is cached.
        let first = get(&p, "/lambda-any/me", "X-Token: alice\r\n");
        assert_ne!(
            get(&p, "/lambda-any/me", "X-Token: alice\r\n"),
            first,
            "{driver}"
        );
        assert_eq!(fetches(&origin), 6, "{driver}");
    }
}

#[test]
fn a_jwt_authorizer_keys_entries_by_the_token() {
    for driver in DRIVERS {
        let Setup { origin, idp, p, .. } = start(driver);
        let token = |sub: &str| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            idp.mint(json!({ "claims": {
                "iss": idp.issuer(), "aud": "shop-api", "sub": sub, "exp": now + 600, "iat": now - 5
            }}))
        };
        let (a, b) = (token("alice"), token("bob"));

        // In the query: no Authorization header to keep the request out of the cache.
        let alice = get(&p, &format!("/jwt-q/me?token={a}"), "");
        assert_eq!(alice, "#1 /jwt-q/me", "{driver}");
        assert_eq!(
            get(&p, &format!("/jwt-q/me?token={b}"), ""),
            "#2 /jwt-q/me",
            "{driver}: bob was served alice's answer"
        );
        assert_eq!(
            get(&p, &format!("/jwt-q/me?token={a}&x=1"), ""),
            alice,
            "a hit"
        );

        // In Authorization (the default source): cached too, by the token.
        let alice = get(&p, "/jwt/me", &format!("Authorization: Bearer {a}\r\n"));
        assert_eq!(alice, "#3 /jwt/me", "{driver}");
        assert_eq!(
            get(&p, "/jwt/me", &format!("Authorization: Bearer {b}\r\n")),
            "#4 /jwt/me",
            "{driver}"
        );
        assert_eq!(
            get(&p, "/jwt/me", &format!("Authorization: bearer {a}\r\n")),
            alice
        );
        assert_eq!(fetches(&origin), 4, "{driver}");
    }
}

/// Signs and sends each request with botocore (tests/py/sigv4_client.py); the bodies.
fn signed(p: &Portico, requests: &[(&str, &str, &str)]) -> Vec<String> {
    py::require(&["botocore", "requests_aws4auth", "requests"]);
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/sigv4_client.py"
    ))
    .unwrap();
    let requests: Vec<Value> = requests
        .iter()
        .map(|(signer, key, path)| {
            json!({"signer": signer, "method": "GET", "path": path, "key": key, "secret": SECRET})
        })
        .collect();
    let spec = json!({ "base": format!("http://{}", p.addr), "requests": requests });
    let out = py::run(&script, &[&spec.to_string()]);
    let results: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    results
        .iter()
        .map(|r| {
            assert_eq!(r["status"], 200, "{r}");
            r["body"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn iam_keys_entries_by_the_signing_access_key() {
    for driver in DRIVERS {
        let Setup { origin, p, .. } = start(driver);
        // Presigned: the signature is in the query, no Authorization header.
        let q = "botocore-query";
        let got = signed(
            &p,
            &[
                (q, ALICE_KEY, "/iam/q"),
                (q, BOB_KEY, "/iam/q"),
                (q, ALICE_KEY, "/iam/q"),
            ],
        );
        assert_eq!(got[0], "#1 /iam/q", "{driver}");
        assert_eq!(
            got[1], "#2 /iam/q",
            "{driver}: bob was served alice's answer"
        );
        assert_eq!(got[2], got[0], "{driver}: alice's second request is a hit");
        // Signed in Authorization: cached too, by the signer.
        let h = "botocore";
        let got = signed(
            &p,
            &[
                (h, ALICE_KEY, "/iam/h"),
                (h, ALICE_KEY, "/iam/h"),
                (h, BOB_KEY, "/iam/h"),
            ],
        );
        assert_eq!(got[0], "#3 /iam/h", "{driver}");
        assert_eq!(got[1], got[0], "{driver}: a hit");
        assert_eq!(got[2], "#4 /iam/h", "{driver}");
        assert_eq!(fetches(&origin), 4, "{driver}");
    }
}
