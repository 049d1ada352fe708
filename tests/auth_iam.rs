//! IAM authorization (SigV4) end to end: requests signed by unmodified clients —
//! botocore's `SigV4Auth` and `SigV4QueryAuth`, and `requests-aws4auth` — are accepted;
//! unsigned, mis-signed, mis-scoped, expired, tampered and not-allowed requests get
//! API Gateway's 403 answers; the integration sees the caller, never the signature.
//! (AWS's published test vectors run as unit tests in src/auth/sigv4_tests.rs.)

mod common;

use common::*;
use serde_json::{json, Value};

const KEY: &str = "AKIAEXAMPLEREPORTS";
const SECRET: &str = "reporting/secret+key0123456789abcdefghij";
const TEMP_KEY: &str = "ASIATEMPORARY";
const TEMP_SECRET: &str = "temporary-secret";
const TOKEN: &str = "session-token-value";

fn config(f: &Function, origin: &Origin) -> String {
    let (u, o) = (f.url(), origin.addr);
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
iam:
  region: us-east-1
  principals:
    reporting:
      access_key_id: {KEY}
      secret_access_key: "{SECRET}"
      user_arn: arn:aws:iam::111122223333:user/reporting
      allow: ["arn:aws:execute-api:us-east-1:*:shop/*/*/reports/*", "arn:aws:execute-api:*:*:shop/*/POST/items"]
      deny: ["arn:aws:execute-api:*:*:shop/*/GET/reports/secret"]
    temp:
      access_key_id: {TEMP_KEY}
      secret_access_key: {TEMP_SECRET}
      session_token: {TOKEN}
      allow: ["*"]
upstreams:
  echo: {{ targets: ["{o}"] }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "GET /reports/{{id}}":
        authorization: iam
        integration: {{ type: http, upstream: echo }}
        parameters:
          "overwrite:header.x-caller": "$context.identity.accountId $context.identity.caller $context.identity.user $context.identity.accessKey"
          "overwrite:header.x-user-arn": "$context.identity.userArn"
          "overwrite:header.x-org": "[$context.identity.principalOrgId]"
      "POST /items": {{ authorization: iam, integration: {{ type: http, upstream: echo }} }}
      "GET /fn2/reports/x": {{ authorization: iam, integration: {{ type: lambda, url: "{u}" }} }}
      "GET /fn1/reports/x": {{ authorization: iam, integration: {{ type: lambda, url: "{u}", payload_format: "1.0" }} }}
      "GET /open": {{ integration: {{ type: mock, status: 200, body: open }} }}
"#
    )
}

/// Runs tests/py/sigv4_client.py on `requests`; one result per request.
fn send(p: &Portico, requests: Value) -> Vec<Value> {
    common::py::require(&["botocore", "requests_aws4auth", "requests"]);
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/sigv4_client.py"
    ))
    .unwrap();
    let spec = json!({ "base": format!("http://{}", p.addr), "requests": requests });
    let out = common::py::run(&script, &[&spec.to_string()]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn message(r: &Value) -> String {
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    body["message"].as_str().unwrap().to_string()
}

fn signed(signer: &str, method: &str, path: &str, body: &str) -> Value {
    json!({"signer": signer, "method": method, "path": path, "body": body, "key": KEY, "secret": SECRET})
}

#[test]
fn unmodified_clients_are_accepted_and_the_integration_sees_the_caller() {
    for driver in DRIVERS {
        let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"fn"}"#.into()));
        let origin = Origin::echo();
        let p = Portico::start(&config(&f, &origin), driver);
        let results = send(
            &p,
            json!([
                signed("botocore", "GET", "/reports/1?b=2&a=1&a=0", ""),
                signed("botocore", "POST", "/items", r#"{"sku":"a-1"}"#),
                signed("botocore", "GET", "/reports/a%20b", ""),
                signed("botocore-query", "GET", "/reports/2?x=y", ""),
                signed("aws4auth", "GET", "/reports/3?q=a%2Fb", ""),
                signed("aws4auth", "POST", "/items", "plain body"),
                {"signer": "botocore", "method": "GET", "path": "/reports/4", "key": TEMP_KEY, "secret": TEMP_SECRET, "token": TOKEN},
                signed("botocore", "GET", "/fn2/reports/x", ""),
                {"signer": "manual", "method": "POST", "path": "/items", "body": "chunked=yes",
                 "chunked": true, "key": KEY, "secret": SECRET},
                // Escaped unreserved characters (Java's URLEncoder sends `%7E`): the
                // signature covers the path as sent, whatever the router decodes.
                signed("botocore", "GET", "/reports/d%61ily", ""),
                signed("aws4auth", "GET", "/reports/a%7Eb", ""),
            ]),
        );
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r["status"], 200, "request {i}: {r}\n{}", p.log_text());
        }
        // The bodies the signatures covered reached the backend.
        assert_eq!(results[1]["body"], r#"{"sku":"a-1"}"#);
        assert_eq!(results[5]["body"], "plain body");
        // A chunked body is hashed decoded and still reaches the backend.
        assert_eq!(results[8]["body"], "chunked=yes");
        // The echo origin got the body and no Authorization header.
        let seen = origin.last();
        assert_eq!(seen.header("authorization"), None);
        // The last request to the origin (`/reports/a%7Eb`) names its caller through
        // `$context.identity.*`, as API Gateway's IAM routes do.
        assert_eq!(
            seen.header("x-caller"),
            Some(format!("000000000000 {KEY} {KEY} {KEY}").as_str())
        );
        assert_eq!(
            seen.header("x-user-arn"),
            Some("arn:aws:iam::111122223333:user/reporting")
        );
        assert_eq!(seen.header("x-org"), Some("[]"));
        let ev = f.last_event();
        let iam = &ev["requestContext"]["authorizer"]["iam"];
        assert_eq!(iam["accessKey"], KEY);
        assert_eq!(iam["userArn"], "arn:aws:iam::111122223333:user/reporting");
        assert_eq!(iam["accountId"], "000000000000");
        assert!(ev["headers"].get("authorization").is_none(), "{ev}");

        let results = send(&p, json!([signed("botocore", "GET", "/fn1/reports/x", "")]));
        assert_eq!(results[0]["status"], 200);
        let id = &f.last_event()["requestContext"]["identity"];
        assert_eq!(id["accessKey"], KEY);
        assert_eq!(id["userArn"], "arn:aws:iam::111122223333:user/reporting");
        assert_eq!(id["caller"], KEY);
        assert_eq!(id["sourceIp"], "127.0.0.1");
    }
}

/// A signature covers its own request only: not a path whose `%25` makes it read as
/// another (`/a%2520b` for `/a%20b`'s signature), nor `+` for a signed `%2B` (a space
/// to the backend), nor another host given as an absolute-form target (the host that
/// picks the domain and API), nor `/a%3Bb` for `/a;b`'s, nor a scope date that is only a
/// prefix of the day, nor a presigned request stating a false body hash. The time may
/// come in `Date`, as AWS documents.
#[test]
fn a_signature_covers_only_the_request_it_signed() {
    for driver in DRIVERS {
        let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200}"#.into()));
        let origin = Origin::echo();
        let p = Portico::start(&config(&f, &origin), driver);
        let mut encoded = signed("botocore", "GET", "/reports/a%20b", "");
        encoded["send_path"] = json!("/reports/a%2520b");
        let mut plus = signed("botocore", "GET", "/reports/1?to=alice%2Bbob", "");
        plus["send_path"] = json!("/reports/1?to=alice+bob");
        let mut elsewhere = signed("botocore", "GET", "/reports/1", "");
        elsewhere["absolute"] = json!("http://other.test");
        let mut here = signed("botocore", "GET", "/reports/1", "");
        here["absolute"] = json!(format!("http://{}", p.addr));
        let mut dated = signed("manual", "GET", "/reports/1", "");
        dated["date_header"] = json!(true);
        // `/a%3Bb` as sent is, letter for letter, botocore's form of `/a;b`, which a
        // backend reads apart (`;` starts a path parameter).
        let mut semicolon = signed("botocore", "GET", "/reports/a;b", "");
        semicolon["send_path"] = json!("/reports/a%3Bb");
        // A scope date must be the request's whole day, not a prefix of it.
        let mut year = signed("manual", "GET", "/reports/1", "");
        year["scope_date"] = json!("2026");
        let mut no_day = signed("manual", "GET", "/reports/1", "");
        no_day["scope_date"] = json!("");
        // A presigned request's stated body hash must be its body's, as a signed one's.
        let mut false_hash = signed("botocore-query", "GET", "/reports/2", "");
        false_hash["unsigned_headers"] = json!({ "X-Amz-Content-Sha256": "0".repeat(64) });
        // The signature is the one parameter a presigned URL does not sign: a second one
        // would reach the backend unsigned.
        let mut second_signature = signed("botocore-query", "GET", "/reports/2", "");
        second_signature["append_query"] = json!("&X-Amz-Signature=0");
        let presigned = signed("botocore-query", "GET", "/reports/2", "");
        let results = send(
            &p,
            json!([
                encoded,
                plus,
                elsewhere,
                here,
                dated,
                semicolon,
                year,
                no_day,
                false_hash,
                second_signature,
                presigned
            ]),
        );
        let statuses: Vec<_> = results.iter().map(|r| r["status"].clone()).collect();
        assert_eq!(
            statuses,
            [403, 403, 403, 200, 200, 403, 403, 403, 403, 403, 200],
            "{driver}: {results:?}"
        );
    }
}

/// awscurl, run as its users do: its own canonicalisation (signs only host and
/// x-amz-date, sends x-amz-content-sha256 unsigned).
fn awscurl(p: &Portico, method: &str, path: &str, body: &str) -> String {
    common::py::require(&["awscurl"]);
    let out = std::process::Command::new(common::py::python())
        .args([
            "-m",
            "awscurl",
            "--service",
            "execute-api",
            "--region",
            "us-east-1",
        ])
        .args([
            "--access_key",
            KEY,
            "--secret_key",
            SECRET,
            "-i",
            "-X",
            method,
        ])
        .args(if body.is_empty() {
            vec![]
        } else {
            vec!["-d", body]
        })
        .arg(format!("http://{}{path}", p.addr))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn awscurl_is_accepted() {
    for driver in DRIVERS {
        let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200}"#.into()));
        let origin = Origin::echo();
        let p = Portico::start(&config(&f, &origin), driver);
        let out = awscurl(&p, "POST", "/items?z=1&a=2", r#"{"sku":"awscurl"}"#);
        assert!(out.contains(r#"{"sku":"awscurl"}"#), "{out}");
        assert!(!out.contains("signature"), "{out}");
        let out = awscurl(&p, "GET", "/reports/monthly", "");
        assert!(!out.contains("message"), "{out}");
        assert_eq!(origin.last().target, "/reports/monthly");
        assert_eq!(origin.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
        let out = awscurl(&p, "GET", "/reports/secret", "");
        assert!(out.contains("is not authorized to perform"), "{out}");
    }
}

#[test]
fn refusals_carry_api_gateway_messages() {
    for driver in DRIVERS {
        let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200}"#.into()));
        let origin = Origin::echo();
        let p = Portico::start(&config(&f, &origin), driver);
        let mut wrong_secret = signed("botocore", "GET", "/reports/1", "");
        wrong_secret["secret"] = json!("not-the-secret");
        let mut wrong_region = signed("botocore", "GET", "/reports/1", "");
        wrong_region["region"] = json!("us-west-2");
        let mut wrong_service = signed("aws4auth", "GET", "/reports/1", "");
        wrong_service["service"] = json!("lambda");
        let mut unknown = signed("botocore", "GET", "/reports/1", "");
        unknown["key"] = json!("AKIANOBODY");
        let mut tampered = signed("manual", "POST", "/items", "amount=100");
        tampered["signed_body"] = json!("amount=1");
        let mut expired = signed("manual", "GET", "/reports/1", "");
        expired["skew"] = json!(-600);
        let mut future = signed("manual", "GET", "/reports/1", "");
        future["skew"] = json!(600);
        let mut bearer = json!({"signer": "none", "method": "GET", "path": "/reports/1"});
        bearer["headers"] = json!({"Authorization": "Bearer abc"});
        let no_token = json!({"signer": "botocore", "method": "GET", "path": "/reports/4", "key": TEMP_KEY, "secret": TEMP_SECRET});
        let results = send(
            &p,
            json!([
                {"signer": "none", "method": "GET", "path": "/reports/1"},
                wrong_secret,
                wrong_region,
                wrong_service,
                unknown,
                tampered,
                expired,
                future,
                signed("botocore", "GET", "/reports/secret", ""),
                signed("botocore", "GET", "/fn2/reports/y", ""),
                bearer,
                no_token,
                signed("manual", "POST", "/items", "amount=1"),
                // The router skips empty segments, so the ARN does: no slash steps
                // around the deny. A HEAD answered by the GET route is judged as GET.
                signed("botocore", "GET", "/reports/secret/", ""),
                signed("botocore", "GET", "/reports//secret", ""),
                signed("botocore", "HEAD", "/reports/secret", ""),
                // Nor an escaped slash or letter: the ARN holds the decoded path.
                signed("botocore", "GET", "/reports/secret%2F", ""),
                signed("botocore", "GET", "/reports/%73ecret", ""),
            ]),
        );
        let expect = |i: usize, prefix: &str, kind: &str| {
            let r = &results[i];
            assert_eq!(r["status"], 403, "request {i}: {r}");
            let m = message(r);
            assert!(
                m.starts_with(prefix),
                "request {i}: {m:?} should start with {prefix:?}"
            );
            assert_eq!(r["headers"]["x-amzn-ErrorType"], kind, "request {i}");
        };
        expect(
            0,
            "Missing Authentication Token",
            "MissingAuthenticationTokenException",
        );
        expect(
            1,
            "The request signature we calculated does not match the signature you provided.",
            "InvalidSignatureException",
        );
        expect(
            2,
            "Credential should be scoped to a valid region, not 'us-west-2'.",
            "InvalidSignatureException",
        );
        expect(
            3,
            "Credential should be scoped to correct service: 'execute-api'.",
            "InvalidSignatureException",
        );
        expect(
            4,
            "The security token included in the request is invalid.",
            "UnrecognizedClientException",
        );
        expect(
            5,
            "The request signature we calculated does not match",
            "InvalidSignatureException",
        );
        expect(6, "Signature expired: ", "InvalidSignatureException");
        assert!(message(&results[6]).ends_with(" - 5 min.)"));
        expect(
            7,
            "Signature not yet current: ",
            "InvalidSignatureException",
        );
        expect(
            8,
            "User: arn:aws:iam::111122223333:user/reporting is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:shop/$default/GET/reports/secret",
            "AccessDeniedException",
        );
        // No route: 404 as ever (only routed requests are authorized).
        assert_eq!(results[9]["status"], 404);
        expect(
            10,
            "Authorization header requires 'Credential' parameter.",
            "IncompleteSignatureException",
        );
        expect(
            11,
            "The security token included in the request is invalid.",
            "UnrecognizedClientException",
        );
        // The manual signer itself is right: the same request untampered passes.
        assert_eq!(results[12]["status"], 200, "{}", results[12]);
        let denied = "User: arn:aws:iam::111122223333:user/reporting is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:shop/$default/GET/reports/secret";
        expect(13, denied, "AccessDeniedException");
        expect(14, denied, "AccessDeniedException");
        assert_eq!(results[15]["status"], 403, "{}", results[15]);
        expect(16, denied, "AccessDeniedException");
        expect(17, denied, "AccessDeniedException");
        assert_eq!(origin.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

#[test]
fn check_wants_principals_for_iam_routes() {
    let (code, out) = check(
        r#"apis:
  shop:
    stages: { $default: {} }
    routes:
      "GET /a": { authorization: iam, integration: { type: mock } }
"#,
    );
    assert_ne!(code, 0);
    assert!(
        out.contains(r#"apis.shop.routes."GET /a".authorization: iam authorization needs principals in the top-level `iam` section"#),
        "{out}"
    );
    let (code, out) = check(
        r#"iam:
  region: "us east"
  principals:
    a: { access_key_id: K1, secret_access_key: "", allow: [] }
    b: { access_key_id: K1, secret_access_key: s, allow: ["*"] }
apis:
  shop:
    stages: { $default: {} }
    routes:
      "GET /a": { authorization: iam, integration: { type: mock } }
"#,
    );
    assert_ne!(code, 0);
    for want in [
        "iam.region: \"us east\" is not a region name",
        "iam.principals.a.secret_access_key: must not be empty",
        "iam.principals.a.allow: give at least one execute-api ARN pattern",
        "iam.principals.b.access_key_id: already used by another principal",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
