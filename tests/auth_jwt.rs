//! JWT authorizers end to end: real tokens minted by PyJWT against a discovery/JWKS
//! server the test starts on loopback (tests/py/idp.py), real Lambda-style functions and
//! origins behind Portico. Covers API Gateway's checks and answers (401/403 with RFC 6750
//! `www-authenticate`), what integrations, mappings and access logs see of the claims,
//! key rotation (one refetch, single-flight, cooldown), slow and oversized key sets, and
//! the per-worker verified-token cache.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::*;
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(idp: &Idp) -> Value {
    json!({
        "iss": idp.issuer(),
        "aud": "shop-api",
        "sub": "user-1",
        "exp": now() + 600,
        "iat": now() - 5,
        "email_verified": true,
        "groups": ["admin", "ops"],
        "scope": "profile.read orders.write",
    })
}

fn config(idp: &Idp, f: &Function, origin: &Origin, extra: &str) -> String {
    let iss = idp.issuer();
    let url = f.url();
    let o = origin.addr;
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
{extra}upstreams:
  echo: {{ targets: ["{o}"] }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      users: {{ type: jwt, issuer: "{iss}", audience: [shop-api, other] }}
      es: {{ type: jwt, issuer: "{iss}", audience: [shop-api], algorithms: [ES256] }}
      q: {{ type: jwt, issuer: "{iss}", jwks_uri: "{iss}/jwks.json", audience: [shop-api], identity_source: $request.querystring.token }}
      h: {{ type: jwt, issuer: "{iss}", audience: [shop-api], identity_source: $request.header.x-jwt }}
    routes:
      "GET /me": {{ authorizer: users, integration: {{ type: lambda, url: "{url}" }} }}
      "GET /v1/me": {{ authorizer: users, integration: {{ type: lambda, url: "{url}", payload_format: "1.0" }} }}
      "GET /scoped": {{ authorizer: users, authorization_scopes: [profile.read, admin.all], integration: {{ type: lambda, url: "{url}" }} }}
      "GET /admin": {{ authorizer: users, authorization_scopes: [admin.all], integration: {{ type: mock, status: 200, body: ok }} }}
      "GET /mapped":
        authorizer: users
        parameters: {{ "overwrite:header.x-user": "$context.authorizer.claims.sub" }}
        integration: {{ type: http, upstream: echo }}
      "GET /es": {{ authorizer: es, integration: {{ type: mock, status: 200, body: es }} }}
      "GET /q": {{ authorizer: q, integration: {{ type: mock, status: 200, body: q }} }}
      "GET /h": {{ authorizer: h, integration: {{ type: mock, status: 200, body: h }} }}
      "GET /open": {{ integration: {{ type: mock, status: 200, body: open }} }}
"#
    )
}

fn ok_fn() -> Function {
    Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"fn"}"#.into()))
}

fn get(p: &Portico, path: &str, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn assert_invalid(r: &Response, description: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json_message(), "Unauthorized");
    let www = r.header("www-authenticate").expect("www-authenticate");
    assert!(
        www.starts_with("Bearer ") && www.contains(r#"error="invalid_token""#),
        "{www}"
    );
    assert!(
        www.contains(&format!(r#"error_description="{description}""#)),
        "{www}"
    );
}

#[test]
fn a_valid_token_reaches_the_integration_with_its_claims() {
    for driver in DRIVERS {
        let idp = Idp::start();
        let f = ok_fn();
        let origin = Origin::echo();
        let p = Portico::start(&config(&idp, &f, &origin, ""), driver);
        let token = idp.mint(json!({ "claims": claims(&idp) }));

        let r = get(&p, "/me", Some(&token));
        assert_eq!(r.status, 200, "{}", r.text());
        let ev = f.last_event();
        let jwt = &ev["requestContext"]["authorizer"]["jwt"];
        let c = &jwt["claims"];
        assert_eq!(c["sub"], "user-1");
        let exp = c["exp"].as_str().expect("numbers become strings");
        assert!(exp.parse::<u64>().unwrap() > now(), "{c}");
        assert_eq!(c["email_verified"], "true");
        assert_eq!(c["groups"], "[admin ops]");
        assert_eq!(c["aud"], "shop-api");
        assert_eq!(jwt["scopes"], Value::Null, "the route has no scopes");

        // Payload 1.0: no `jwt` level.
        assert_eq!(get(&p, "/v1/me", Some(&token)).status, 200);
        let ev = f.last_event();
        assert_eq!(
            ev["requestContext"]["authorizer"]["claims"]["sub"],
            "user-1"
        );
        assert_eq!(ev["requestContext"]["authorizer"]["scopes"], Value::Null);

        // A scoped route lists the token's scopes.
        assert_eq!(get(&p, "/scoped", Some(&token)).status, 200);
        let ev = f.last_event();
        assert_eq!(
            ev["requestContext"]["authorizer"]["jwt"]["scopes"],
            json!(["profile.read", "orders.write"])
        );

        // Without `Bearer `, and from the query string.
        let bare = p.raw(
            format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(bare.status, 200);
        assert_eq!(get(&p, &format!("/q?token={token}"), None).text(), "q");
        // A query value is percent-encoded: `Bearer ` as `Bearer%20`, a `.` as `%2E`
        // (a browser's encodeURIComponent).
        // Form encoding writes the space as `+` (Python's requests, an HTML form).
        for query in [
            format!("token=Bearer%20{token}"),
            format!("token={}", token.replace('.', "%2E")),
            format!("token=Bearer+{token}"),
        ] {
            assert_eq!(get(&p, &format!("/q?{query}"), None).text(), "q", "{query}");
        }

        // A claim mapped onto a request header.
        let r = get(&p, "/mapped", Some(&token));
        assert_eq!(r.status, 200);
        assert_eq!(origin.last().header("x-user"), Some("user-1"));

        // Routes without an authorizer: no authorizer node.
        assert_eq!(get(&p, "/open", None).text(), "open");
    }
}

#[test]
fn refusals_follow_api_gateway() {
    for driver in DRIVERS {
        let idp = Idp::start();
        let f = ok_fn();
        let origin = Origin::echo();
        let p = Portico::start(&config(&idp, &f, &origin, ""), driver);
        let good = claims(&idp);
        let with = |patch: Value| {
            let mut c = good.clone();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c
        };

        // No token: a bare challenge, the authorizer never ran the integration.
        let r = get(&p, "/me", None);
        assert_eq!(r.status, 401);
        assert_eq!(r.json_message(), "Unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(f.calls(), 0);

        assert_invalid(&get(&p, "/me", Some("not-a-jwt")), "the token is malformed");
        // Two tokens: the gateway would check one while the backend may read the other.
        let valid = idp.mint(json!({ "claims": good }));
        let twice = format!(
            "GET /me HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {valid}\r\nauthorization: Bearer x.y.z\r\nConnection: close\r\n\r\n"
        );
        assert_invalid(&p.raw(twice.as_bytes()), "the token is malformed");
        let r = get(&p, &format!("/q?token={valid}&token={valid}"), None);
        assert_invalid(&r, "the token is malformed");
        // An escaped name is the same parameter to the integration and to any backend.
        let r = get(&p, &format!("/q?token={valid}&%74oken=x.y.z"), None);
        assert_invalid(&r, "the token is malformed");
        let r = get(&p, &format!("/q?%74ok%65n={valid}"), None);
        assert_eq!(r.text(), "q");
        // X_Jwt beside X-Jwt: CGI-style backends read both as HTTP_X_JWT.
        let h = |extra: &str| {
            p.raw(format!("GET /h HTTP/1.1\r\nHost: test\r\nX-Jwt: {valid}\r\n{extra}Connection: close\r\n\r\n").as_bytes())
        };
        assert_eq!(h("").text(), "h");
        assert_invalid(&h("X_Jwt: x.y.z\r\n"), "the token is malformed");
        assert_eq!(get(&p, &format!("/q?token={valid}"), None).text(), "q");
        let expired = idp.mint(json!({ "claims": with(json!({"exp": now() - 10})) }));
        assert_invalid(&get(&p, "/me", Some(&expired)), "the token has expired");
        let aud = idp.mint(json!({ "claims": with(json!({"aud": "someone-else"})) }));
        assert_invalid(
            &get(&p, "/me", Some(&aud)),
            "the token does not have a valid audience",
        );
        let iss = idp.mint(json!({ "claims": with(json!({"iss": "https://evil.example"})) }));
        assert_invalid(
            &get(&p, "/me", Some(&iss)),
            "the token does not have a valid issuer",
        );
        let nbf = idp.mint(json!({ "claims": with(json!({"nbf": now() + 300})) }));
        assert_invalid(&get(&p, "/me", Some(&nbf)), "the token is not valid yet");
        let no_exp = idp.mint(json!({ "claims": with(json!({"exp": null})) }));
        assert_invalid(&get(&p, "/me", Some(&no_exp)), "the token has no exp claim");
        // A string where a number belongs is refused, not ignored.
        let typed = idp.mint(json!({ "claims": with(json!({"nbf": "soon"})) }));
        assert_invalid(&get(&p, "/me", Some(&typed)), "the token is malformed");

        // Algorithm attacks.
        let none = idp.mint(json!({ "key": "none", "kid": "k1", "claims": good }));
        assert_invalid(
            &get(&p, "/me", Some(&none)),
            "the token is signed with an algorithm that is not allowed",
        );
        let hs = idp.mint(json!({ "key": "hs-public", "kid": "k1", "claims": good }));
        assert_invalid(
            &get(&p, "/me", Some(&hs)),
            "the token is signed with an algorithm that is not allowed",
        );
        // A valid signature by a key the issuer never published, under a known kid.
        let forged = idp.mint(json!({ "key": "k2", "kid": "k1", "claims": good }));
        assert_invalid(
            &get(&p, "/me", Some(&forged)),
            "the token signature is invalid",
        );
        // ES256 only where listed.
        let es = idp.mint(json!({ "key": "ec", "claims": good }));
        assert_invalid(
            &get(&p, "/me", Some(&es)),
            "the token is signed with an algorithm that is not allowed",
        );
        idp.control(json!({ "publish": ["k1", "ec"] }));
        // The ES key is unknown to the cached set: one refetch finds it.
        assert_eq!(get(&p, "/es", Some(&es)).text(), "es");

        // `client_id` stands in for a missing `aud` (Cognito access tokens).
        let cid = idp.mint(json!({ "claims": with(json!({"aud": null, "client_id": "other"})) }));
        assert_eq!(get(&p, "/me", Some(&cid)).status, 200);
        let both =
            idp.mint(json!({ "claims": with(json!({"aud": "nope", "client_id": "shop-api"})) }));
        assert_invalid(
            &get(&p, "/me", Some(&both)),
            "the token does not have a valid audience",
        );

        // Missing scope: 403 insufficient_scope.
        let token = idp.mint(json!({ "claims": good }));
        let r = get(&p, "/admin", Some(&token));
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.json_message(), "Forbidden");
        assert_eq!(
            r.header("www-authenticate"),
            Some(
                r#"Bearer scope="admin.all" error="insufficient_scope" error_description="expected scopes: [admin.all]""#
            )
        );
        // `scp` as an array counts too.
        let scp = idp.mint(json!({ "claims": with(json!({"scope": null, "scp": ["admin.all"]})) }));
        assert_eq!(get(&p, "/admin", Some(&scp)).text(), "ok");
    }
}

#[test]
fn key_rotation_refetches_once_single_flight_with_a_cooldown() {
    for driver in DRIVERS {
        let idp = Idp::start();
        let f = ok_fn();
        let origin = Origin::echo();
        let p = Portico::start(&config(&idp, &f, &origin, ""), driver);
        let t1 = idp.mint(json!({ "key": "k1", "claims": claims(&idp) }));
        assert_eq!(get(&p, "/me", Some(&t1)).status, 200);
        let fetched = idp.jwks_fetches();
        // Both the /me authorizers share one issuer: one key source, one fetch (plus
        // the `q` authorizer's explicit jwks_uri).
        assert!(fetched <= 2, "{fetched}");

        // The issuer rotates to k2; many callers with k2 tokens at once.
        idp.control(json!({ "publish": ["k1", "k2"] }));
        let t2 = idp.mint(json!({ "key": "k2", "claims": claims(&idp) }));
        let addr = p.addr;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let t2 = t2.clone();
                std::thread::spawn(move || {
                    send_to(
                        addr,
                        format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {t2}\r\nConnection: close\r\n\r\n").as_bytes(),
                    )
                    .status
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 200);
        }
        let after = idp.jwks_fetches();
        assert_eq!(after, fetched + 1, "one refetch for all callers");

        // Within the cooldown an unknown kid does not cause another fetch.
        let t9 = idp.mint(json!({ "key": "k2", "kid": "k9", "claims": claims(&idp) }));
        assert_invalid(
            &get(&p, "/me", Some(&t9)),
            "the token's kid does not match any signing key of the issuer",
        );
        assert_eq!(idp.jwks_fetches(), after);
        assert_eq!(get(&p, "/me", Some(&t1)).status, 200);
    }
}

#[test]
fn a_discovery_document_for_another_issuer_is_not_used() {
    let idp = Idp::start();
    idp.control(json!({ "discovery_issuer": "https://someone-else.example" }));
    let (f, origin) = (ok_fn(), Origin::echo());
    let p = Portico::start(&config(&idp, &f, &origin, ""), "epoll");
    let token = idp.mint(json!({ "claims": claims(&idp) }));
    let r = get(&p, "/me", Some(&token));
    assert_invalid(&r, "the issuer's signing keys could not be fetched");
    assert!(
        eventually(|| p
            .log_text()
            .contains("its issuer is \"https://someone-else.example\", not")),
        "{}",
        p.log_text()
    );
    // The authorizer with an explicit jwks_uri does no discovery.
    assert_eq!(get(&p, &format!("/q?token={token}"), None).text(), "q");
}

#[test]
fn slow_and_oversized_key_sets_fail_closed_and_the_last_good_set_keeps_serving() {
    for driver in DRIVERS {
        // A key set that arrives after 1,500 ms is a failed fetch.
        let idp = Idp::start();
        idp.control(json!({ "delay_ms": 2500 }));
        let f = ok_fn();
        let origin = Origin::echo();
        let p = Portico::start(&config(&idp, &f, &origin, ""), driver);
        let token = idp.mint(json!({ "claims": claims(&idp) }));
        let r = get(&p, "/me", Some(&token));
        assert_invalid(&r, "the issuer's signing keys could not be fetched");
        assert!(
            eventually(|| p.log_text().contains("no answer within 1500 ms")),
            "{}",
            p.log_text()
        );
        drop(p);

        // Good keys first; then the issuer's answer grows past 150,000 bytes.
        let idp = Idp::start();
        let p = Portico::start(&config(&idp, &f, &origin, ""), driver);
        let t1 = idp.mint(json!({ "claims": claims(&idp) }));
        assert_eq!(get(&p, "/me", Some(&t1)).status, 200);
        idp.control(json!({ "publish": ["k1", "k2"], "oversize": true }));
        let t2 = idp.mint(json!({ "key": "k2", "claims": claims(&idp) }));
        assert_invalid(
            &get(&p, "/me", Some(&t2)),
            "the token's kid does not match any signing key of the issuer",
        );
        assert!(eventually(|| p
            .log_text()
            .contains("larger than 150000 bytes")));
        // A fresh k1 token (not cached) still verifies against the last good set.
        let mut c = claims(&idp);
        c["jti"] = json!("second");
        let t1b = idp.mint(json!({ "claims": c, "kid": "k1" }));
        assert_ne!(t1, t1b);
        assert_eq!(get(&p, "/me", Some(&t1b)).status, 200);
    }
}

fn metric(p: &Portico, admin: std::net::SocketAddr, line_start: &str) -> u64 {
    let m = admin_get(admin, "/metrics");
    m.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in {m}\n{}", p.log_text()))
}

fn admin_get(addr: std::net::SocketAddr, path: &str) -> String {
    send_to(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .text()
}

#[test]
fn verified_tokens_are_cached_but_never_past_exp_and_logged() {
    for driver in DRIVERS {
        let idp = Idp::start();
        let f = ok_fn();
        let origin = Origin::echo();
        let admin = free_port();
        let log = temp_dir("auth-log").join("access.log");
        let format = r#"{"sub":"$context.authorizer.claims.sub","err":"$context.authorizer.error","status":"$context.status"}"#;
        let extra = format!("admin: {{ listen: \"127.0.0.1:{admin}\" }}\n");
        let cfg = config(&idp, &f, &origin, &extra).replace(
            "  workers: 2\n",
            &format!(
                "  workers: 1\n  access_log: {{ path: \"{}\", format: '{format}' }}\n",
                log.display()
            ),
        );
        let p = Portico::start(&cfg, driver);
        let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
        let mut c = claims(&idp);
        c["exp"] = json!(now() + 2);
        let token = idp.mint(json!({ "claims": c }));
        for _ in 0..3 {
            assert_eq!(get(&p, "/me", Some(&token)).status, 200);
        }
        let hits = r#"portico_authorizer_cache_hits_total{api="shop",authorizer="users"}"#;
        assert_eq!(metric(&p, admin, hits), 2);
        let allowed =
            r#"portico_authorizer_requests_total{api="shop",authorizer="users",result="allow"}"#;
        assert_eq!(metric(&p, admin, allowed), 3);
        std::thread::sleep(Duration::from_millis(2100));
        assert_invalid(&get(&p, "/me", Some(&token)), "the token has expired");
        let refused = r#"portico_authorizer_requests_total{api="shop",authorizer="users",result="unauthorized"}"#;
        assert_eq!(metric(&p, admin, refused), 1);
        assert!(metric(&p, admin, "portico_jwks_fetches_total{") >= 1);

        assert!(
            eventually(|| {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.contains(r#"{"sub":"user-1","err":"-","status":"200"}"#)
                    && text.contains(r#"{"sub":"-","err":"the token has expired","status":"401"}"#)
            }),
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

#[test]
fn reload_keeps_the_keys_of_unchanged_issuers() {
    for driver in DRIVERS {
        let idp = Idp::start();
        let f = ok_fn();
        let origin = Origin::echo();
        let port = free_port();
        let cfg = config(&idp, &f, &origin, "").replace("{PORT}", &port.to_string());
        let p = Portico::start_at(&cfg, driver, port);
        let token = idp.mint(json!({ "claims": claims(&idp) }));
        assert_eq!(get(&p, "/me", Some(&token)).status, 200);
        let fetched = idp.jwks_fetches();
        // The issuer goes down; a reload that adds a route must not need it.
        idp.control(json!({ "status": 503 }));
        let more = cfg.replace(
            "      \"GET /open\"",
            "      \"GET /new\": { integration: { type: mock, status: 200, body: new } }\n      \"GET /open\"",
        );
        std::fs::write(&p.config, more).unwrap();
        p.signal(1);
        assert!(eventually(|| get(&p, "/new", None).status == 200));
        let mut c = claims(&idp);
        c["jti"] = json!("fresh");
        let fresh = idp.mint(json!({ "claims": c, "kid": "k1" }));
        assert_eq!(get(&p, "/me", Some(&fresh)).status, 200);
        assert_eq!(idp.jwks_fetches(), fetched);
    }
}

#[test]
fn check_reports_authorizer_mistakes_with_key_paths() {
    let (code, out) = check(
        r#"apis:
  shop:
    authorizers:
      users: { type: jwt, issuer: "ftp://idp", audience: [a], algorithms: [RS256, HS256, none] }
      gate: { type: jwt, issuer: "https://idp.example", audience: [], identity_source: "$request.body.x" }
      loose: { type: jwt, issuer: "https://idp.example", audience: [ok, " "], leeway: 8760h }
    routes:
      "GET /a": { authorizer: usres, integration: { type: mock } }
      "GET /b": { authorization_scopes: [x], integration: { type: mock } }
      "GET /c": { integration: { type: mock }, parameters: { "overwrite:header.x-u": "$context.authorizer.claims.sub" } }
      "GET /d": { authorizer: loose, authorization_scopes: [read, ""], integration: { type: mock } }
      "GET /e": { authorizer: loose, authorization: none, integration: { type: mock } }
iam:
  principals:
    p: { access_key_id: AK, secret_access_key: sk, allow: [""], deny: ["arn:x", ""] }
"#,
    );
    assert_ne!(code, 0, "{out}");
    for want in [
        r#"apis.shop.authorizers.users.issuer: bad issuer URL"#,
        r#"apis.shop.authorizers.users.algorithms[1]: unknown algorithm "HS256" (never accepted"#,
        r#"apis.shop.authorizers.users.algorithms[2]: unknown algorithm "none""#,
        r#"apis.shop.authorizers.gate.audience: give at least one audience"#,
        r#"apis.shop.authorizers.gate.identity_source: "$request.body.x" is not a JWT identity source"#,
        r#"apis.shop.routes."GET /a".authorizer: no authorizer "usres" (did you mean "users"?)"#,
        r#"apis.shop.routes."GET /b".authorization_scopes: scopes need a JWT authorizer on the route"#,
        r#"$context.authorizer.claims.sub needs an authorizer on the route"#,
        r#"apis.shop.authorizers.loose.audience[1]: is empty"#,
        r#"apis.shop.authorizers.loose.leeway: at most 10m"#,
        r#"apis.shop.routes."GET /d".authorization_scopes[1]: is empty"#,
        r#"apis.shop.routes."GET /e".authorization: "none" beside an authorizer"#,
        r#"iam.principals.p.allow[0]: is empty"#,
        r#"iam.principals.p.deny[1]: is empty"#,
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
