//! Authorization of WebSocket APIs end to end: a Lambda REQUEST authorizer on `$connect`
//! (a real function endpoint: 401 without calling it when an identity source is missing,
//! 403 on deny, 500 when it is down, 101 on allow with its context in every later
//! event and in access-log lines), IAM on `$connect` with botocore-signed handshakes
//! (presigned URL and headers), `@connections` signed by boto3's unmodified
//! `apigatewaymanagementapi` client against the `iam` principals, a JWT authorizer on
//! `$connect` with the token in the query string (PyJWT tokens, a real key-set server),
//! and what `check` says about authorizers WebSocket APIs cannot have.

// The test function records events from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::{Arc, Mutex};

use common::ws::*;
use common::*;
use serde_json::{json, Value};

const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:chat/prod/$connect";

/// A policy authorizer deciding on the `token` query parameter: allow, deny, or allow
/// for another ARN only (`elsewhere`); records the events it gets.
fn gate() -> (Function, Arc<Mutex<Vec<Value>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let f = Function::start(move |ev| {
        seen.lock().unwrap().push(ev.clone());
        let (effect, resource) = match ev["queryStringParameters"]["token"].as_str() {
            Some("allow") => ("Allow", ev["methodArn"].as_str().unwrap_or("").to_string()),
            Some("deny") => ("Deny", "*".to_string()),
            Some("elsewhere") => ("Allow", ARN.replace("$connect", "GET/")),
            _ => return FnReply::Error(r#"{"errorMessage":"boom","errorType":"Error"}"#.into()),
        };
        FnReply::Json(
            json!({
                "principalId": "user-1",
                "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
                "context": {"user": "u1", "n": 5, "ok": true}
            })
            .to_string(),
        )
    });
    (f, events)
}

/// The integration of every route of `chat`: records events, echoes messages.
fn recorder() -> (Function, Arc<Mutex<Vec<Value>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let f = Function::start(move |ev| {
        seen.lock().unwrap().push(ev.clone());
        let body = ev["body"].as_str().unwrap_or("");
        FnReply::Json(json!({"statusCode": 200, "body": body}).to_string())
    });
    (f, events)
}

fn config(gate: &Function, f: &Function, log: &std::path::Path) -> String {
    let state = temp_dir("ws-auth").display().to_string();
    let (g, u, dead) = (gate.url(), f.url(), free_port());
    let format = r#"{"event":"$context.eventType","conn":"$context.connectionId","user":"$context.authorizer.user","principal":"$context.authorizer.principalId"}"#;
    format!(
        r#"state_dir: "{state}"
server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  access_log: {{ path: "{log}", format: '{format}' }}
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 2s }}
iam:
  region: us-east-1
  principals:
    backend: {{ access_key_id: AKIDBACKEND, secret_access_key: backend-secret, allow: ["arn:aws:execute-api:us-east-1:*:chat/prod/*/@connections/*"] }}
    client: {{ access_key_id: AKIDCLIENT, secret_access_key: client-secret, allow: ["arn:aws:execute-api:us-east-1:*:signed/signed/$connect"] }}
    other: {{ access_key_id: AKIDOTHER, secret_access_key: other-secret, allow: ["arn:aws:execute-api:us-east-1:*:signed/signed/*/@connections/*"] }}
apis:
  chat:
    protocol: websocket
    stages: {{ prod: {{}} }}
    authorizers:
      gate: {{ type: lambda, url: "{g}", identity_source: [route.request.querystring.token, route.request.header.x-tenant] }}
    routes:
      $connect: {{ authorizer: gate, integration: {{ type: lambda, url: "{u}" }} }}
      $disconnect: {{ integration: {{ type: lambda, url: "{u}" }} }}
      $default: {{ integration: {{ type: lambda, url: "{u}" }}, route_response: true }}
  down:
    protocol: websocket
    stages: {{ down: {{}} }}
    authorizers:
      gate: {{ type: lambda, url: "http://127.0.0.1:{dead}/2015-03-31/functions/function/invocations", identity_source: $request.querystring.token, timeout: 1s }}
    routes:
      $connect: {{ authorizer: gate, integration: {{ type: mock, status: 200 }} }}
  signed:
    protocol: websocket
    stages: {{ signed: {{}} }}
    routes:
      $connect: {{ authorization: iam, integration: {{ type: mock, status: 200 }} }}
      $default: {{ integration: {{ type: mock, body: "$request.body" }}, route_response: true }}
"#,
        log = log.display()
    )
}

fn of(events: &Mutex<Vec<Value>>, kind: &str) -> Vec<Value> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["requestContext"]["eventType"] == kind)
        .cloned()
        .collect()
}

fn tenant() -> Value {
    json!({"headers": {"x-tenant": "acme"}})
}

#[test]
fn lambda_authorizer_on_connect() {
    let (g, asked) = gate();
    let (f, events) = recorder();
    for driver in DRIVERS {
        asked.lock().unwrap().clear();
        events.lock().unwrap().clear();
        let log = temp_dir("ws-auth-log").join("access.log");
        let p = Portico::start(&config(&g, &f, &log), driver);
        let url = |q: &str| format!("ws://{}/prod{q}", p.addr);

        // An identity source missing: 401 without asking the function.
        for (q, opts) in [("", tenant()), ("?token=allow", json!({}))] {
            let ws = WsClient::connect(&url(q), opts);
            assert_eq!(ws.opened["event"], "rejected", "{driver}: {}", ws.opened);
            assert_eq!(ws.opened["status"], 401, "{driver} {q}: {}", ws.opened);
        }
        assert_eq!(asked.lock().unwrap().len(), 0, "{driver}: no call");
        // Denied, or allowed for another resource only: 403, no $connect integration.
        for q in ["?token=deny", "?token=elsewhere"] {
            let ws = WsClient::connect(&url(q), tenant());
            assert_eq!(ws.opened["status"], 403, "{driver} {q}: {}", ws.opened);
            let body: Value = serde_json::from_str(ws.opened["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["message"], "Forbidden");
        }
        // The function failing: 500.
        let ws = WsClient::connect(&url("?token=boom"), tenant());
        assert_eq!(ws.opened["status"], 500, "{driver}: {}", ws.opened);
        assert!(
            of(&events, "CONNECT").is_empty(),
            "{driver}: refused before $connect"
        );

        // Allowed: 101, and the verdict in every later event. The client's own
        // X-Forwarded-* values don't reach the functions beside Portico's.
        let spoof = json!({"headers": {"x-tenant": "acme", "x-forwarded-proto": "https",
            "x-forwarded-for": "6.6.6.6", "X-Forwarded-Port": "1", "X_Forwarded_For": "7.7.7.7",
            "X_Forwarded_Proto": "https"}});
        let mut ws = WsClient::connect(&url("?token=allow"), spoof);
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        let ev = asked.lock().unwrap().last().cloned().unwrap();
        assert_eq!(ev["type"], "REQUEST", "{ev}");
        assert_eq!(ev["methodArn"], ARN);
        assert_eq!(ev["requestContext"]["eventType"], "CONNECT");
        assert_eq!(ev["requestContext"]["routeKey"], "$connect");
        let headers = ev["headers"].as_object().unwrap();
        assert!(headers.keys().any(|k| k.eq_ignore_ascii_case("upgrade")));
        assert_eq!(headers["x-tenant"], "acme");
        assert!(ev["stageVariables"].is_object());
        let id = ev["requestContext"]["connectionId"].as_str().unwrap();
        let port = p.addr.port().to_string();
        let connect = of(&events, "CONNECT").pop().unwrap();
        for (what, e) in [("authorizer", &ev), ("CONNECT", &connect)] {
            // `_` spellings: WSGI-style adapters read them as the same headers.
            for key in ["headers", "multiValueHeaders"] {
                let names = e[key].as_object().unwrap();
                assert!(
                    names.keys().all(|k| !k.starts_with("X_")),
                    "{driver} {what} {key}: {names:?}"
                );
            }
            for (name, want) in [
                ("x-forwarded-proto", "http"),
                ("x-forwarded-for", "6.6.6.6, 127.0.0.1"),
                ("x-forwarded-port", port.as_str()),
            ] {
                for key in ["headers", "multiValueHeaders"] {
                    let found: Vec<&Value> = e[key]
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                        .collect();
                    let want = if key == "headers" {
                        json!(want)
                    } else {
                        json!([want])
                    };
                    assert_eq!(found, [&want], "{driver} {what} {key} {name}: {}", e[key]);
                }
            }
        }

        assert_eq!(ws.ask("hello"), "hello", "{driver}");
        assert_eq!(ws.cmd("close 1000")["code"], 1000);
        assert!(eventually(|| !of(&events, "DISCONNECT").is_empty()));
        let want = json!({"principalId": "user-1", "user": "u1", "n": "5", "ok": "true"});
        for kind in ["CONNECT", "MESSAGE", "DISCONNECT"] {
            let e = of(&events, kind).pop().unwrap();
            let rc = &e["requestContext"];
            assert_eq!(
                rc["connectionId"], id,
                "{driver} {kind}: the same connection"
            );
            let a = rc["authorizer"].as_object().expect("authorizer");
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(&a[k], v, "{driver} {kind}: {a:?}");
            }
            assert!(a["integrationLatency"].is_u64(), "{a:?}");
        }
        // $context.authorizer.* on every line of the connection (refused handshakes
        // have lines of their own, under their own connection ids).
        let lines = || -> Vec<Value> {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .filter(|l: &Value| l["conn"] == id)
                .collect()
        };
        assert!(eventually(|| lines()
            .iter()
            .any(|l| l["event"] == "DISCONNECT")));
        let ws_lines = lines();
        assert_eq!(ws_lines.len(), 3, "{driver}: {ws_lines:?}");
        for l in &ws_lines {
            assert_eq!(
                (&l["user"], &l["principal"]),
                (&json!("u1"), &json!("user-1"))
            );
        }

        // The authorizer down: 500.
        let ws = WsClient::connect(&format!("ws://{}/down?token=x", p.addr), json!({}));
        assert_eq!(ws.opened["status"], 500, "{driver}: {}", ws.opened);
        p.stop();
    }
}

/// Signs a handshake with botocore: `query` → a presigned URL, else the headers.
fn sign(url: &str, key: &str, secret: &str, query: bool) -> Value {
    let script = r#"
import json, sys
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key, secret, mode = sys.argv[1:5]
req = AWSRequest(method="GET", url=url)
creds = Credentials(key, secret)
if mode == "query":
    SigV4QueryAuth(creds, "execute-api", "us-east-1", expires=300).add_auth(req)
    print(json.dumps({"url": req.url}))
else:
    SigV4Auth(creds, "execute-api", "us-east-1").add_auth(req)
    print(json.dumps({"headers": {k: v for k, v in req.headers.items()
                                  if k.lower() in ("authorization", "x-amz-date")}}))
"#;
    let mode = if query { "query" } else { "headers" };
    serde_json::from_str(py::run(script, &[url, key, secret, mode]).trim()).unwrap()
}

#[test]
fn iam_on_connect_and_signed_connections_calls() {
    py::require(&["botocore", "boto3"]);
    let (g, _) = gate();
    let (f, events) = recorder();
    for driver in DRIVERS {
        events.lock().unwrap().clear();
        let log = temp_dir("ws-iam-log").join("access.log");
        let p = Portico::start(&config(&g, &f, &log), driver);
        let http = format!("http://{}/signed", p.addr);

        // A presigned URL, as AWS's wscat examples.
        let signed = sign(&http, "AKIDCLIENT", "client-secret", true);
        let url = signed["url"].as_str().unwrap().replace("http://", "ws://");
        let mut ws = WsClient::connect(&url, json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.ask("signed hi"), "signed hi");
        // Signed headers.
        let h = sign(&http, "AKIDCLIENT", "client-secret", false);
        let mut ws2 = WsClient::connect(
            &format!("ws://{}/signed", p.addr),
            json!({"headers": h["headers"]}),
        );
        assert!(ws2.is_open(), "{driver}: {}", ws2.opened);
        assert_eq!(ws2.ask("headers hi"), "headers hi");
        // Unsigned, a wrong secret, a principal not allowed: 403 with the error type.
        let bad = sign(&http, "AKIDCLIENT", "wrong", true);
        let other = sign(&http, "AKIDBACKEND", "backend-secret", true);
        for (u, kind) in [
            (
                format!("ws://{}/signed", p.addr),
                "MissingAuthenticationTokenException",
            ),
            (
                bad["url"].as_str().unwrap().replace("http://", "ws://"),
                "InvalidSignatureException",
            ),
            (
                other["url"].as_str().unwrap().replace("http://", "ws://"),
                "AccessDeniedException",
            ),
        ] {
            let r = WsClient::connect(&u, json!({}));
            assert_eq!(r.opened["status"], 403, "{driver} {kind}: {}", r.opened);
            assert_eq!(r.opened["headers"]["x-amzn-errortype"], kind, "{driver}");
        }

        // @connections with boto3, signed by the backend principal.
        let mut chat = WsClient::connect(&format!("ws://{}/prod?token=allow", p.addr), tenant());
        assert!(chat.is_open(), "{driver}: {}", chat.opened);
        let id = of(&events, "CONNECT").pop().unwrap()["requestContext"]["connectionId"]
            .as_str()
            .unwrap()
            .to_string();
        let endpoint = format!("http://{}/prod", p.addr);
        let ok = boto3_connections_as(
            &endpoint,
            "post",
            &id,
            Some("pushed"),
            Some(("AKIDBACKEND", "backend-secret")),
        );
        assert_eq!(ok, json!({"ok": true}), "{driver}");
        assert_eq!(chat.recv_text(), "pushed", "{driver}");
        let got = boto3_connections_as(
            &endpoint,
            "get",
            &id,
            None,
            Some(("AKIDBACKEND", "backend-secret")),
        );
        assert!(got["connectedAt"].is_string(), "{driver}: {got}");
        for (creds, code) in [
            (("AKIDBACKEND", "wrong"), "InvalidSignatureException"),
            (("", ""), "MissingAuthenticationTokenException"),
            (("AKIDCLIENT", "client-secret"), "AccessDeniedException"),
            (("AKIDNOBODY", "x"), "UnrecognizedClientException"),
        ] {
            let r = boto3_connections_as(&endpoint, "post", &id, Some("no"), Some(creds));
            assert_eq!(r["status"], 403, "{driver} {creds:?}: {r}");
            assert_eq!(r["error"], code, "{driver} {creds:?}: {r}");
        }
        // A principal allowed on another API's stage, calling through that stage's
        // endpoint: the id is not that stage's connection (410, as in API Gateway).
        let elsewhere = format!("http://{}/signed", p.addr);
        let creds = Some(("AKIDOTHER", "other-secret"));
        for op in ["post", "get", "delete"] {
            let r = boto3_connections_as(&elsewhere, op, &id, Some("stray"), creds);
            assert_eq!(r["error"], "GoneException", "{driver} {op}: {r}");
        }
        // Nothing refused reached the client: the next message is the echo.
        assert_eq!(chat.ask("after"), "after", "{driver}");
        p.stop();
    }
}

#[test]
fn check_refuses_authorizers_websocket_apis_cannot_have() {
    let yaml = r#"
server: { listen: ["127.0.0.1:8080"] }
apis:
  chat:
    protocol: websocket
    stages: { prod: {} }
    authorizers:
      jwt: { type: jwt, issuer: "https://idp.example", audience: [a], identity_source: $request.header.authorization }
      fn: { type: lambda, url: "http://127.0.0.1:9/2015-03-31/functions/f/invocations", identity_source: route.request.header.auth }
    routes:
      $connect: { authorizer: jwt, integration: { type: mock } }
      $default: { authorizer: fn, integration: { type: mock } }
"#;
    let (code, out) = check(yaml);
    assert_ne!(code, 0, "{out}");
    assert!(
        !out.contains("apis.chat.routes.$connect.authorizer"),
        "a JWT authorizer on $connect is accepted: {out}"
    );
    assert!(
        out.contains("apis.chat.routes.$default.authorizer") && out.contains("$connect only"),
        "{out}"
    );
    assert!(
        !out.contains("identity_source"),
        "route.request.* is accepted: {out}"
    );
    // No iam principals: @connections answers loopback callers only, said as a warning.
    let ok = yaml
        .replace("authorizer: jwt, ", "authorizer: fn, ")
        .replace("$default: { authorizer: fn, ", "$default: { ");
    let (code, out) = check(&ok);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("apis.chat.protocol") && out.contains("callers on this host only"),
        "{out}"
    );
}

/// A JWT authorizer on `$connect` (Portico's addition: API Gateway has none for WebSocket
/// APIs), with the token in the query string as a browser sends it: 401 without a token
/// or with a bad one, 101 with a valid one and its claims in every later event.
#[test]
fn jwt_authorizer_on_connect_with_a_query_token() {
    let idp = common::py::Idp::start();
    let (f, events) = recorder();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |aud: &str| {
        json!({ "claims": {
            "iss": idp.issuer(), "aud": aud, "sub": "user-7", "exp": now + 600,
            "iat": now - 5, "scope": "chat.join"
        }})
    };
    let good = idp.mint(claims("chat"));
    let other_audience = idp.mint(claims("someone-else"));
    for driver in DRIVERS {
        events.lock().unwrap().clear();
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 2s }}
apis:
  chat:
    protocol: websocket
    stages: {{ prod: {{}} }}
    authorizers:
      users: {{ type: jwt, issuer: "{iss}", audience: [chat], identity_source: $request.querystring.token }}
    routes:
      $connect: {{ authorizer: users, integration: {{ type: lambda, url: "{u}" }} }}
      $disconnect: {{ integration: {{ type: lambda, url: "{u}" }} }}
      $default: {{ integration: {{ type: lambda, url: "{u}" }}, route_response: true }}
"#,
            iss = idp.issuer(),
            u = f.url()
        );
        let p = Portico::start(&yaml, driver);
        let url = |q: &str| format!("ws://{}/prod{q}", p.addr);
        for q in [
            String::new(),
            "?token=not-a-jwt".to_string(),
            format!("?token={other_audience}"),
        ] {
            let ws = WsClient::connect(&url(&q), json!({}));
            assert_eq!(ws.opened["status"], 401, "{driver} {q}: {}", ws.opened);
        }
        assert!(of(&events, "CONNECT").is_empty(), "{driver}: refused first");

        let mut ws = WsClient::connect(&url(&format!("?token={good}")), json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.ask("hi"), "hi", "{driver}");
        assert_eq!(ws.cmd("close 1000")["code"], 1000);
        assert!(eventually(|| !of(&events, "DISCONNECT").is_empty()));
        for kind in ["CONNECT", "MESSAGE", "DISCONNECT"] {
            let e = of(&events, kind).pop().unwrap();
            let a = &e["requestContext"]["authorizer"];
            assert_eq!(a["principalId"], "user-7", "{driver} {kind}: {a}");
            assert_eq!(a["claims"]["sub"], "user-7", "{driver} {kind}: {a}");
            assert_eq!(a["claims"]["aud"], "chat", "{driver} {kind}: {a}");
            assert_eq!(a["scopes"], json!(["chat.join"]), "{driver} {kind}: {a}");
        }
        p.stop();
    }
}
