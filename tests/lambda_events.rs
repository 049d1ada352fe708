//! Lambda events against AWS's own: every key of AWS's published sample events
//! (tests/data/lambda-events, sources in its README) must be in the event Portico sends
//! for a like request, with the same JSON type and `null` where AWS sends `null`. Also
//! the paths of named stages on custom domains, the headers API Gateway adds, and
//! function errors as the Runtime Interface Emulator reports them (no header).

mod common;

use common::*;
use serde_json::Value;

fn config(f: &Function) -> String {
    let url = f.url();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 2s }}
apis:
  fns:
    stages:
      $default: {{ variables: {{ stageVariable1: value1, stageVariable2: value2 }} }}
      prod: {{}}
    routes:
      "$default": {{ integration: {{ type: lambda, url: "{url}" }} }}
      "ANY /my/{{parameter1}}": {{ integration: {{ type: lambda, url: "{url}" }} }}
      "ANY /v1/my/path": {{ integration: {{ type: lambda, url: "{url}", payload_format: "1.0" }} }}
domains:
  fn.example.com: {{ mappings: {{ api: fns/prod }} }}
  root.example.com: {{ mappings: {{ "": fns/prod }} }}
  dflt.example.com: {{ mappings: {{ base: fns/$default }} }}
"#
    )
}

fn sample(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lambda-events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How one sample is compared; paths are JSON pointers.
struct Rules<'a> {
    /// Objects whose keys are the request's data (header or parameter names), not schema:
    /// only their type is compared.
    data: &'a [&'a str],
    /// Keys AWS sends only for a feature this request doesn't use, and why.
    absent: &'a [(&'a str, &'a str)],
    /// Where AWS's sample and AWS's real events disagree on the type, and the evidence.
    retyped: &'a [(&'a str, &'a str)],
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `aws` must be in `ours` with the same JSON type; returns the differences.
fn compare(aws: &Value, ours: &Value, at: &str, rules: &Rules, diffs: &mut Vec<String>) {
    if rules.retyped.iter().any(|(p, _)| *p == at) {
        return;
    }
    if kind(aws) != kind(ours) {
        diffs.push(format!(
            "{at}: AWS sends {}, Portico {}",
            kind(aws),
            kind(ours)
        ));
        return;
    }
    let (Value::Object(aws), Value::Object(ours)) = (aws, ours) else {
        return;
    };
    if rules.data.contains(&at) {
        return;
    }
    for (key, value) in aws {
        let path = format!("{at}/{key}");
        match ours.get(key) {
            Some(mine) => compare(value, mine, &path, rules, diffs),
            None if rules.absent.iter().any(|(p, _)| *p == path) => {}
            None => diffs.push(format!("{path}: missing")),
        }
    }
}

fn assert_like(aws: &Value, ours: &Value, rules: &Rules, what: &str) {
    let mut diffs = Vec::new();
    compare(aws, ours, "", rules, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{what}: Portico's event differs from AWS's sample:\n  {}\nevent: {ours:#}",
        diffs.join("\n  ")
    );
}

/// Sent by API Gateway only with mutual TLS; tests/tls.rs checks Portico's.
const MTLS_ONLY: &str = "mutual TLS only (tests/tls.rs covers it)";
/// Sent only for a route with an authorizer; Portico has no authorizers.
const AUTHORIZER_ONLY: &str =
    "routes with an authorizer only (captured events without one have no such key)";

#[test]
fn events_have_every_key_of_aws_samples() {
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"ok"}"#.into()));
    for driver in DRIVERS {
        let p = Portico::start(&config(&f), driver);

        // The 2.0 sample of API Gateway's guide: a route with a path parameter on a stage
        // with variables, cookies, repeated query parameters, a body.
        let r = p.raw(b"POST /my/value1?parameter1=value1&parameter1=value2&parameter2=value HTTP/1.1\r\nHost: id.example.com\r\nUser-Agent: agent\r\nHeader1: value1\r\nCookie: cookie1; cookie2\r\nContent-Type: text/plain\r\nContent-Length: 17\r\nConnection: close\r\n\r\nHello from Lambda");
        assert_eq!(r.status, 200, "{driver}: {}", p.log_text());
        assert_like(
            &sample("http-api-v2-guide.json"),
            &f.last_event(),
            &Rules {
                data: &[
                    "/headers",
                    "/queryStringParameters",
                    "/pathParameters",
                    "/stageVariables",
                ],
                absent: &[
                    ("/requestContext/authentication", MTLS_ONLY),
                    ("/requestContext/authorizer", AUTHORIZER_ONLY),
                ],
                retyped: &[],
            },
            "2.0 (guide)",
        );

        // aws-lambda-go's 2.0 event: the headers API Gateway adds are compared by name.
        let r = p.raw(b"GET / HTTP/1.1\r\nHost: aaaaaaaaaa.example.com\r\nUser-Agent: curl/7.58.0\r\nAccept: */*\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        let e = f.last_event();
        assert_like(
            &sample("http-api-v2-no-authorizer.json"),
            &e,
            &Rules {
                data: &[],
                absent: &[("/requestContext/authentication", MTLS_ONLY)],
                retyped: &[],
            },
            "2.0 (aws-lambda-go)",
        );
        assert_eq!(e["headers"]["x-forwarded-port"], p.addr.port().to_string());

        // The 1.0 sample of the guide: no path parameters, a stage without variables.
        let r = p.raw(b"POST /prod/v1/my/path?parameter1=value1&parameter1=value2&parameter2=value HTTP/1.1\r\nHost: id.example.com\r\nUser-Agent: user-agent\r\nHeader2: value1\r\nHeader2: value2\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\nHello from Lambda!");
        assert_eq!(r.status, 200, "{driver}");
        let e = f.last_event();
        assert_like(
            &sample("http-api-v1-guide.json"),
            &e,
            &Rules {
                data: &[
                    "/headers",
                    "/multiValueHeaders",
                    "/queryStringParameters",
                    "/multiValueQueryStringParameters",
                ],
                absent: &[
                    ("/requestContext/authorizer", AUTHORIZER_ONLY),
                    ("/requestContext/identity/clientCert", MTLS_ONLY),
                ],
                retyped: &[(
                    "/requestContext/resourceId",
                    "the guide's sample has null; captured HTTP API 1.0 events carry the \
                     route key (\"ANY /handler/{proxy+}\"), as Portico does",
                )],
            },
            "1.0 (guide)",
        );
        let identity = &e["requestContext"]["identity"];
        // Also in captured events though not in the guide's sample.
        assert_eq!(identity["cognitoAmr"], Value::Null, "{identity}");
        assert_eq!(identity["sourceIp"], "127.0.0.1");
        assert!(e["requestContext"].get("authorizer").is_none());
        assert_eq!(e["requestContext"]["resourceId"], "ANY /v1/my/path");
    }
}

#[test]
fn a_named_stage_stays_in_raw_path_on_custom_domains() {
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"ok"}"#.into()));
    for driver in DRIVERS {
        let p = Portico::start(&config(&f), driver);
        // (host, request path, 2.0 rawPath and http.path, stage)
        for (host, path, raw, stage) in [
            ("x.test", "/prod/my/a%20b?q=1", "/prod/my/a%20b", "prod"),
            ("fn.example.com", "/api/my/a?q=1", "/prod/my/a", "prod"),
            ("root.example.com", "/my/a", "/prod/my/a", "prod"),
            ("dflt.example.com", "/base/my/a", "/my/a", "$default"),
            ("x.test", "/my/a", "/my/a", "$default"),
            ("fn.example.com", "/api", "/prod", "prod"),
        ] {
            let r = p.raw(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 200, "{driver} {host}{path}");
            let e = f.last_event();
            assert_eq!(e["rawPath"], raw, "{driver} {host}{path}");
            assert_eq!(e["requestContext"]["http"]["path"], raw, "{host}{path}");
            assert_eq!(e["requestContext"]["stage"], stage, "{host}{path}");
            // What Powertools' APIGatewayProxyEventV2.path computes from it.
            if stage != "$default" {
                let routed = &raw[stage.len() + 1..];
                assert!(routed.is_empty() || routed.starts_with("/my/"), "{routed}");
            }
        }
        // 1.0 `path`: as the client sent it (the mapping key included, as AWS's guide says).
        for (host, path) in [
            ("x.test", "/prod/v1/my/path"),
            ("fn.example.com", "/api/v1/my/path"),
            ("root.example.com", "/v1/my/path"),
        ] {
            let r = p.raw(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 200, "{driver} {host}{path}");
            let e = f.last_event();
            assert_eq!(e["path"], path, "{host}");
            assert_eq!(e["requestContext"]["path"], path, "{host}");
            assert_eq!(e["requestContext"]["stage"], "prod");
        }
        // A Host's trailing dot chooses the same domain and is no part of its name.
        let r = p.raw(
            b"GET /api/my/a HTTP/1.1\r\nHost: fn.example.com.:80\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{driver}");
        let e = f.last_event();
        assert_eq!(e["requestContext"]["domainName"], "fn.example.com", "{e}");
        assert_eq!(e["requestContext"]["domainPrefix"], "fn", "{e}");
    }
}

#[test]
fn gateway_headers_replace_the_clients() {
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"ok"}"#.into()));
    for driver in DRIVERS {
        let p = Portico::start(&config(&f), driver);
        let port = p.addr.port().to_string();
        for path in ["/my/x", "/v1/my/path"] {
            // A caller's trace root is continued with a new parent; its port and
            // scheme claims are replaced.
            let r = p.raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0\r\nX-Forwarded-Port: 1234\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n").as_bytes());
            assert_eq!(r.status, 200, "{driver} {path}");
            let e = f.last_event();
            let h = &e["headers"];
            assert_eq!(h["x-forwarded-port"], port, "{path}: {h}");
            assert_eq!(h["x-forwarded-proto"], "http", "{path}");
            assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1", "{path}");
            let trace = h["x-amzn-trace-id"].as_str().unwrap();
            assert!(
                trace.starts_with("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=")
                    && trace.ends_with(";Sampled=0"),
                "{path}: {trace}"
            );
            if e["version"] == "1.0" {
                let m = &e["multiValueHeaders"];
                assert_eq!(m["x-forwarded-port"], serde_json::json!([port]), "{m}");
                assert_eq!(m["x-amzn-trace-id"], serde_json::json!([trace]));
            }
            // Named in the caller's Connection, they are its hop's only: not continued.
            let r = p.raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: x-forwarded-for, X-Amzn-Trace-Id\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n").as_bytes());
            assert_eq!(r.status, 200, "{driver} {path}");
            let h = &f.last_event()["headers"];
            assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{driver} {path}: {h}");
            let trace = h["x-amzn-trace-id"].as_str().unwrap();
            assert!(!trace.contains("5759e988"), "{driver} {path}: {trace}");
            // Without one, a new root in X-Ray's format.
            p.raw(
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            let e = f.last_event();
            let trace = e["headers"]["x-amzn-trace-id"]
                .as_str()
                .unwrap()
                .to_string();
            let root = trace
                .strip_prefix("Root=1-")
                .and_then(|t| t.split(';').next())
                .unwrap_or_default();
            assert_eq!(root.len(), 8 + 1 + 24, "{trace}");
            assert_eq!(e["headers"]["x-forwarded-port"], port);
            // An absolute-form target's host is the request's (RFC 9112 §3.2.2), not the
            // Host line's: it chose the domain, and `headers.host` must agree.
            let r = p.raw(format!("GET http://a.example:81{path} HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n").as_bytes());
            assert_eq!(r.status, 200, "{driver} {path}");
            let e = f.last_event();
            assert_eq!(e["headers"]["host"], "a.example:81", "{path}: {e}");
            if e["version"] == "1.0" {
                let m = &e["multiValueHeaders"]["host"];
                assert_eq!(*m, serde_json::json!(["a.example:81"]), "{m}");
            }
            // HTTP/1.0 needs no Host line: the target's authority is the host still.
            let r = p.raw(format!("GET http://a.example:81{path} HTTP/1.0\r\n\r\n").as_bytes());
            assert_eq!(r.status, 200, "{driver} {path}");
            let e = f.last_event();
            assert_eq!(e["headers"]["host"], "a.example:81", "{path}: {e}");
        }
    }
}

#[test]
fn underscore_spellings_of_gateway_headers_are_dropped() {
    // serverless-wsgi, Mangum and the like build HTTP_X_FORWARDED_FOR from the event's
    // header names with `-` and `_` folded together: a client's X_Forwarded_For would be
    // read as the gateway's.
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"ok"}"#.into()));
    for driver in DRIVERS {
        let p = Portico::start(&config(&f), driver);
        for path in ["/my/x", "/v1/my/path"] {
            let r = p.raw(format!("POST {path} HTTP/1.1\r\nHost: t\r\nX_Forwarded_For: 6.6.6.6\r\nx_forwarded_proto: https\r\nX_Forwarded_Port: 1\r\nX_Forwarded_Host: evil\r\nX_Amzn_RequestId: r\r\nX_Amzn_Trace_Id: Root=1-0-0\r\nContent_Length: 99\r\nX_Custom: kept\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").as_bytes());
            assert_eq!(r.status, 200, "{driver} {path}");
            let e = f.last_event();
            let mut objects = vec![("headers", &e["headers"])];
            if e["version"] == "1.0" {
                objects.push(("multiValueHeaders", &e["multiValueHeaders"]));
            }
            for (what, h) in objects {
                let names: Vec<&String> = h.as_object().unwrap().keys().collect();
                assert!(
                    names
                        .iter()
                        .all(|n| !n.contains('_') || n.as_str() == "x_custom"),
                    "{driver} {path} {what}: {names:?}"
                );
                assert!(h.get("x_custom").is_some(), "{driver} {path} {what}: {h}");
                assert!(h.get("content-length").is_some(), "{driver} {path} {what}");
            }
            assert_eq!(
                e["headers"]["x-forwarded-for"], "127.0.0.1",
                "{driver} {path}"
            );
        }
    }
}

#[test]
fn runtime_error_objects_without_the_header_are_502() {
    // What the Runtime Interface Emulator answers for a handler that raised: 200, no
    // X-Amz-Function-Error, the runtime's error object with its stack trace.
    let f = Function::start(|e| {
        let path = e["rawPath"].as_str().or(e["path"].as_str()).unwrap_or("");
        FnReply::Json(match path {
            "/my/bare" => r#"{"errorMessage":"only a message"}"#.into(),
            _ => r#"{"errorMessage":"division by zero","errorType":"ZeroDivisionError","requestId":"8f1c","stackTrace":["  File \"/var/task/app.py\", line 7, in handler\n    return 1 / 0\n"]}"#.into(),
        })
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(&f), driver);
        for path in ["/my/raise", "/v1/my/path"] {
            let r = p.get(path);
            assert_eq!(r.status, 502, "{driver} {path}: {}", r.text());
            assert_eq!(r.json_message(), "Internal server error");
            assert!(!r.text().contains("var/task"), "{}", r.text());
        }
        assert!(
            eventually(|| p
                .log_text()
                .contains("function error (ZeroDivisionError): division by zero")),
            "{}",
            p.log_text()
        );
        assert!(
            !p.log_text().contains("/var/task/app.py"),
            "the stack trace was logged"
        );
        // Not a runtime's error object: a 2.0 bare answer, served as API Gateway serves it.
        let r = p.get("/my/bare");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, r#"{"errorMessage":"only a message"}"#)
        );
    }
}

#[test]
fn failure_logs_are_rate_limited() {
    let f = Function::start(|_| FnReply::Json(r#"{"errorMessage":"m","errorType":"E"}"#.into()));
    for driver in DRIVERS {
        let p = Portico::start(&config(&f), driver);
        let mut c = Client::new(&p);
        for _ in 0..100 {
            assert_eq!(c.get("/my/x", "t").status, 502);
        }
        let lines = || p.log_text().matches("lambda function failed").count();
        assert!(eventually(|| lines() >= 20), "{}", p.log_text());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let logged = lines();
        // One worker: at most 20 a second (the run may straddle a second or two).
        assert!((20..=60).contains(&logged), "{driver}: {logged} lines");
        // The next second's first line counts what was left out.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(c.get("/my/x", "t").status, 502);
        assert!(
            eventually(|| p
                .log_text()
                .lines()
                .any(|l| l.contains("lambda function failed") && !l.contains("suppressed=0"))),
            "{}",
            p.log_text()
        );
    }
}

/// REST events name the API key a route required: `identity.apiKey` (its value) and
/// `identity.apiKeyId` (its id: the key's name here); both null on a route without one.
#[test]
fn events_name_the_api_key_a_route_required() {
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"ok"}"#.into()));
    let url = f.url();
    let cfg = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes:
      "GET /keyed": {{ api_key_required: true, integration: {{ type: lambda, url: "{url}", payload_format: "1.0" }} }}
      "GET /open": {{ integration: {{ type: lambda, url: "{url}", payload_format: "1.0" }} }}
api_keys:
  - {{ name: alice, value: alice-key-0123456789abcdef }}
"#
    );
    for driver in DRIVERS {
        let p = Portico::start(&cfg, driver);
        let r = p.raw(b"GET /prod/keyed HTTP/1.1\r\nHost: a\r\nx-api-key: alice-key-0123456789abcdef\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}: {}", p.log_text());
        let identity = f.last_event()["requestContext"]["identity"].clone();
        assert_eq!(
            identity["apiKey"], "alice-key-0123456789abcdef",
            "{identity}"
        );
        assert_eq!(identity["apiKeyId"], "alice", "{identity}");

        // A key sent to a route that requires none is no key of the request's.
        let r = p.raw(b"GET /prod/open HTTP/1.1\r\nHost: a\r\nx-api-key: alice-key-0123456789abcdef\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        let identity = f.last_event()["requestContext"]["identity"].clone();
        assert_eq!(identity["apiKey"], Value::Null, "{identity}");
        assert_eq!(identity["apiKeyId"], Value::Null, "{identity}");
    }
}
