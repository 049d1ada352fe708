//! How a function's answer becomes the response, end to end, beyond the documented
//! shape: what Python and Node handlers write where AWS says nothing (float statuses,
//! null headers, MIME or unpadded base64), header values that must not split or reframe
//! the head, and answers up to Lambda's own size limit.

mod common;

use std::io::Write;

use common::*;
use serde_json::json;

#[test]
fn answers_as_python_and_node_handlers_write_them() {
    // What json.dumps and base64.encodebytes produce: a float status, None headers, base64
    // with line breaks; and base64 without padding, as Node's Buffer takes it.
    let f = Function::start(|e| {
        match e["rawPath"].as_str().unwrap_or("") {
        "/v2/float" => FnReply::Json(
            r#"{"statusCode":201.0,"headers":{"x-gone":null,"x-n":7,"x-t":true},"cookies":[null,"a=1"],"body":"made"}"#.into(),
        ),
        "/v2/mime" => FnReply::Json(
            r#"{"statusCode":"200","body":"AAEC\n/w==\n","isBase64Encoded":true}"#.into(),
        ),
        "/v2/unpadded" => FnReply::Json(
            r#"{"statusCode":200,"body":"AAEC/w","isBase64Encoded":true}"#.into(),
        ),
        "/v2/number" => FnReply::Json(r#"{"statusCode":200,"body":42}"#.into()),
        "/v2/reset" => FnReply::Json(r#"{"statusCode":205,"body":"x"}"#.into()),
        "/v2/dated" => FnReply::Json(
            r#"{"statusCode":200,"headers":{"date":"yesterday","Server":"mine"},"body":"d"}"#.into(),
        ),
        "/v2/notbase64" => FnReply::Json(
            r#"{"statusCode":200,"body":"plain text!","isBase64Encoded":true}"#.into(),
        ),
        _ => FnReply::Json(
            r#"{"statusCode":200,"headers":{"x-a":"1","x-gone":null},"multiValueHeaders":{"x-m":["m1",null],"x-none":null},"body":"v1"}"#.into(),
        ),
    }
    });
    for driver in DRIVERS {
        let p = Portico::start(&lambda_config(&f, ""), driver);
        let mut c = Client::new(&p);
        let r = c.get("/v2/float", "t");
        assert_eq!((r.status, r.text().as_str()), (201, "made"), "{driver}");
        assert_eq!(r.header("x-gone"), None);
        assert_eq!(
            (r.header("x-n"), r.header("x-t")),
            (Some("7"), Some("true"))
        );
        assert_eq!(r.header("set-cookie"), Some("a=1"));
        // Untyped: HTTP APIs' text/plain in 2.0, REST's application/json in 1.0 (below).
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        for path in ["/v2/mime", "/v2/unpadded"] {
            let r = c.get(path, "t");
            assert_eq!(
                (r.status, &r.body[..]),
                (200, &[0u8, 1, 2, 255][..]),
                "{path}"
            );
        }
        assert_eq!(c.get("/v2/number", "t").text(), "42");
        // A 205 carries no content (RFC 9110 §15.3.6), framed with length 0.
        let r = c.get("/v2/reset", "t");
        assert_eq!((r.status, r.text().as_str()), (205, ""), "{driver}");
        assert_eq!(r.header("content-length"), Some("0"), "{driver}");
        // The gateway's Date and Server, not the function's (once each).
        let r = c.get("/v2/dated", "t");
        assert_eq!(r.header("server"), Some("portico"), "{driver}");
        assert!(
            r.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "{:?}",
            r.header("date")
        );
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
                .count(),
            1
        );
        let r = c.get("/v2/notbase64", "t");
        assert_eq!(r.status, 502);
        assert!(eventually(|| p.log_text().contains("body is not base64")));
        let r = c.get("/v1/1/x", "t");
        assert_eq!((r.status, r.text().as_str()), (200, "v1"), "{driver}");
        assert_eq!((r.header("x-a"), r.header("x-m")), (Some("1"), Some("m1")));
        assert_eq!((r.header("x-gone"), r.header("x-none")), (None, None));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[test]
fn answer_headers_cannot_split_or_reframe_the_response() {
    // Whatever a function puts in header values, cookies or framing headers, the client
    // gets one head with the gateway's own framing, and a content-type.
    let f = Function::start(|e| {
        if e["version"] == "2.0" {
            FnReply::Json(
                r#"{"statusCode":200,"headers":{"x-a":"1\r\nInjected: yes","x-ctl":"a\u0001b\u007fc\u0000d","content-length":"1","transfer-encoding":"chunked","connection":"close","keep-alive":"timeout=1","upgrade":"h2c","HTTP2-Settings":"AAMAAABkAAQAAP__","te":"trailers","trailer":"x","proxy-connection":"keep-alive"},"cookies":["c=1\r\n\r\nHTTP/1.1 200 OK"],"body":"hello"}"#.into(),
            )
        } else {
            FnReply::Json(
                r#"{"statusCode":200,"multiValueHeaders":{"x-m":["m\nInjected: 1"]},"headers":{"content-type":"text/plain"},"body":"v1"}"#.into(),
            )
        }
    });
    for driver in DRIVERS {
        let p = Portico::start(&lambda_config(&f, ""), driver);
        // Two requests on one connection: the second answer must be read where the first ends.
        let mut s = p.connect();
        s.write_all(b"GET /v2/h HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/1/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let (first, rest) = text.split_once("\r\n\r\nhello").expect(&text);
        let lines: Vec<&str> = first.split("\r\n").collect();
        assert_eq!(lines[0], "HTTP/1.1 200 OK", "{driver}");
        for line in &lines[1..] {
            let name = line.split(':').next().unwrap().to_ascii_lowercase();
            assert!(
                ![
                    "injected",
                    "transfer-encoding",
                    "keep-alive",
                    "upgrade",
                    "connection",
                    // The relay's hop-by-hop list, h2c's upgrade offer among them.
                    "http2-settings",
                    "te",
                    "trailer",
                    "proxy-connection"
                ]
                .contains(&name.as_str()),
                "{driver}: {line:?}"
            );
            assert!(
                !line.bytes().any(|b| b.is_ascii_control() && b != b'\t'),
                "{driver}: {line:?}"
            );
        }
        assert!(lines.contains(&"x-a: 1  Injected: yes"), "{first}");
        assert!(lines.contains(&"x-ctl: a b c d"), "{first}");
        assert!(
            lines.contains(&"set-cookie: c=1    HTTP/1.1 200 OK"),
            "{first}"
        );
        assert!(lines.contains(&"content-length: 5"), "{first}");
        assert!(
            lines.contains(&"content-type: text/plain; charset=utf-8"),
            "{first}"
        );
        assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{driver}: {rest}");
        assert!(rest.contains("\r\nx-m: m Injected: 1\r\n"), "{rest}");
        assert!(rest.contains("\r\ncontent-type: text/plain\r\n"), "{rest}");
        assert!(!rest.contains("application/json"), "{rest}");
        assert!(rest.ends_with("\r\n\r\nv1"), "{rest}");
    }
}

#[test]
fn answers_up_to_lambdas_limit_pass_whatever_max_body_bytes() {
    // A function may answer up to Lambda's 6 MB whatever the request limit is.
    let big = "a".repeat(5 << 20);
    let answer = json!({"statusCode": 200, "body": big}).to_string();
    let f = Function::start(move |_| FnReply::Json(answer.clone()));
    for driver in DRIVERS {
        let cfg = lambda_config(&f, "")
            .replace(
                "drain_timeout: 2s }",
                "drain_timeout: 2s, max_body_bytes: 64KiB }",
            )
            .replace("timeout: 2s }", "timeout: 20s }");
        let p = Portico::start(&cfg, driver);
        let r = p.get("/v2/big");
        assert_eq!(r.status, 200, "{driver}: {}", p.log_text());
        assert_eq!(r.body.len(), 5 << 20);
    }
}
