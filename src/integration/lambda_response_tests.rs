//! Unit tests of `lambda_response.rs`.

use super::*;
use PayloadFormat::*;

fn ok(format: PayloadFormat, raw: &str) -> Reply {
    parse(format, raw.as_bytes()).unwrap()
}

#[test]
fn v2_structured_and_bare() {
    let r = ok(
        V2,
        r#"{"statusCode":201,"headers":{"x-a":"1","x-n":5},"cookies":["a=1","b=2"],"body":"hi"}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.headers,
        [
            ("x-a".into(), "1".into()),
            ("x-n".into(), "5".into()),
            ("set-cookie".into(), "a=1".into()),
            ("set-cookie".into(), "b=2".into())
        ]
    );
    assert_eq!(r.body, b"hi");
    let r = ok(V2, r#" {"message":"hi"} "#);
    assert_eq!((r.status, &r.body[..]), (200, &br#"{"message":"hi"}"#[..]));
    assert_eq!(ok(V2, r#""plain""#).body, b"plain");
    assert_eq!(ok(V2, "[1,2]").body, b"[1,2]");
    let r = ok(
        V2,
        r#"{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true}"#,
    );
    assert_eq!(r.body, [0, 1, 2, 255]);
}

#[test]
fn v2_names_in_two_cases_are_one_field() {
    let r = ok(
        V2,
        r#"{"statusCode":302,"headers":{"Cache-Control":"no-store","cache-control":"private","x-a":"1","Set-Cookie":"a=1","set-cookie":"b=2"}}"#,
    );
    let values = |name: &str| -> Vec<&str> {
        (r.headers.iter())
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(values("cache-control"), ["no-store, private"]);
    let cookies = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"));
    assert_eq!(cookies.count(), 2, "{:?}", r.headers);
}

#[test]
fn a_field_of_one_value_keeps_its_first_in_any_case_or_list() {
    let values = |format, answer: &str, name: &str| -> Vec<String> {
        (ok(format, answer).headers.into_iter())
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    };
    let two = r#"{"statusCode":302,"headers":{"ETag":"\"abc\"","etag":"\"def\"","Location":"/a","location":"/b","Last-Modified":"x","last-modified":"y"}}"#;
    for format in [V1, V2] {
        assert_eq!(values(format, two, "etag"), [r#""abc""#], "{format:?}");
        assert_eq!(values(format, two, "location"), ["/a"], "{format:?}");
        assert_eq!(values(format, two, "last-modified"), ["x"], "{format:?}");
    }
    let lists = r#"{"statusCode":200,"multiValueHeaders":{"ETag":["\"m\"","\"n\""]},"headers":{"etag":"\"s\""}}"#;
    assert_eq!(values(V1, lists, "etag"), [r#""m""#]);
}

#[test]
fn one_content_type_in_any_case_or_list() {
    let types = |format, answer: &str| -> Vec<String> {
        ok(format, answer)
            .headers
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v)
            .collect()
    };
    let two_cases = r#"{"statusCode":200,"body":"x","headers":{"Content-Type":"text/html","content-type":"application/json"}}"#;
    for format in [V1, V2] {
        assert_eq!(types(format, two_cases).len(), 1, "{format:?}");
    }
    let both_lists = r#"{"statusCode":200,"body":"x","headers":{"Content-Type":"text/html"},"multiValueHeaders":{"content-type":["application/json","text/plain"]}}"#;
    assert_eq!(types(V1, both_lists), ["application/json"]);
}

#[test]
fn v1_merges_headers() {
    let r = ok(
        V1,
        r#"{"statusCode":"404","headers":{"x-a":"single","x-b":"b","x-c":"m2","x-n":7},"multiValueHeaders":{"X-A":["m1","m2"],"X-C":["m1","m2"],"x-n":[7]},"body":null}"#,
    );
    assert_eq!(r.status, 404);
    // One list per name, the multi-value ones first; a name and value in both, once.
    assert_eq!(
        r.headers,
        [
            ("X-A".into(), "m1".into()),
            ("X-A".into(), "m2".into()),
            ("X-C".into(), "m1".into()),
            ("X-C".into(), "m2".into()),
            ("x-n".into(), "7".into()),
            ("x-a".into(), "single".into()),
            ("x-b".into(), "b".into())
        ]
    );
    assert!(r.body.is_empty());
}

#[test]
fn lenient_where_runtimes_and_libraries_differ() {
    // A float status without a fraction, a status as text.
    assert_eq!(ok(V2, r#"{"statusCode":201.0}"#).status, 201);
    assert_eq!(ok(V1, r#"{"statusCode":"204"}"#).status, 204);
    for text in ["+200", " 200", "200 ", "", "2e2", "-200"] {
        let answer = format!(r#"{{"statusCode":"{text}"}}"#);
        assert!(parse(V2, answer.as_bytes()).is_err(), "{text:?}");
    }
    // null headers, list entries and cookies add nothing; numbers and booleans are text.
    let r = ok(
        V1,
        r#"{"statusCode":200,"headers":{"x-gone":null,"x-n":1.5,"x-b":false},"multiValueHeaders":{"x-m":["a",null],"x-none":null}}"#,
    );
    assert_eq!(
        r.headers,
        [
            ("x-m".into(), "a".into()),
            ("x-b".into(), "false".into()),
            ("x-n".into(), "1.5".into())
        ]
    );
    let r = ok(
        V2,
        r#"{"statusCode":200,"headers":{"x-c":"a\u0001b\tc\u007fd\r\ne"}}"#,
    );
    assert_eq!(r.headers, [("x-c".into(), "a b\tc d  e".into())]);
    // Blanks at the ends are trimmed, also where a control character was.
    let r = ok(
        V2,
        r#"{"statusCode":200,"headers":{"x-s":"  pad\t ","x-t":"\r\nv\r\n"}}"#,
    );
    assert_eq!(
        r.headers,
        [("x-s".into(), "pad".into()), ("x-t".into(), "v".into())]
    );
    assert_eq!(ok(V2, r#"{"statusCode":200,"body":42}"#).body, b"42");
    assert_eq!(ok(V1, r#"{"statusCode":200,"body":true}"#).body, b"true");
    let r = ok(V2, r#"{"statusCode":200,"cookies":[null,"a=1"]}"#);
    assert_eq!(r.headers, [("set-cookie".into(), "a=1".into())]);
    // Base64 with MIME line breaks, without padding, with non-zero trailing bits.
    for body in [r"AAEC\r\n/w==", "AAEC/w", r" AAEC/w==\n", "AAEC/x=="] {
        let raw = format!(r#"{{"statusCode":200,"body":"{body}","isBase64Encoded":true}}"#);
        assert_eq!(ok(V2, &raw).body, [0, 1, 2, 255], "{body}");
    }
}

#[test]
fn many_headers_in_both_maps_merge_whole() {
    // The merge goes through a set of the listed names (it scanned the lists for each
    // single header: quadratic). What this checks is the result; speed is not timed.
    let n = 120;
    let multi: Map<String, Value> = (0..n)
        .map(|i| (format!("M{i}"), Value::Array(vec!["x".into()])))
        .collect();
    let single: Map<String, Value> = (0..n)
        .map(|i| (format!("s{i}"), Value::String("y".into())))
        .chain([("m7".to_string(), Value::String("x".into()))])
        .chain([("m8".to_string(), Value::String("other".into()))])
        .collect();
    let raw = serde_json::json!({"statusCode": 200, "multiValueHeaders": multi, "headers": single})
        .to_string();
    let r = ok(V1, &raw);
    // m7: x is listed already; m8: other is a second value.
    assert_eq!(r.headers.len(), 2 * n + 1);
    assert_eq!(r.headers.iter().filter(|(_, v)| v == "other").count(), 1);
}

#[test]
fn a_head_over_what_a_backend_may_send_is_refused() {
    // As from an HTTP backend: more than 256 fields, or over 64 KiB of them, is a 502.
    let cookies: Vec<String> = (0..300).map(|i| format!("c{i}=1")).collect();
    let raw = serde_json::json!({"statusCode": 200, "cookies": cookies}).to_string();
    assert!(parse(V2, raw.as_bytes()).is_err());
    let big = "v".repeat(70_000);
    let raw = serde_json::json!({"statusCode": 200, "headers": {"x-big": big}}).to_string();
    assert!(parse(V2, raw.as_bytes()).is_err());
    let fits: Vec<String> = (0..250).map(|i| format!("c{i}=1")).collect();
    let raw = serde_json::json!({"statusCode": 200, "cookies": fits}).to_string();
    assert_eq!(ok(V2, &raw).headers.len(), 250);
}

#[test]
fn numbers_are_their_json_text_as_written() {
    let raw = r#"{"statusCode":200,"headers":{"x-id":18446744073709551616,"x-a":1e2,"x-b":12.50,"x-e":-0,"x-s":"t"},"cookies":[1.0],"body":123456789012345678901234567890}"#;
    let r = ok(V2, raw);
    let value = |n: &str| {
        r.headers
            .iter()
            .find(|(h, _)| h == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("x-id"), Some("18446744073709551616"));
    assert_eq!(value("x-a"), Some("1e2"));
    assert_eq!(value("x-b"), Some("12.50"));
    assert_eq!(value("x-e"), Some("-0"));
    assert_eq!(value("x-s"), Some("t"));
    assert_eq!(value("set-cookie"), Some("1.0"));
    assert_eq!(r.body, b"123456789012345678901234567890");
    // 1.0's lists, and a key given twice (the last counts, as in the first read).
    let raw = r#"{"statusCode":200,"multiValueHeaders":{"x-m":["a",2.50]},"headers":{"x-d":1,"x-d":1.10},"body":1,"body":1E+3}"#;
    let r = ok(V1, raw);
    assert_eq!(
        r.headers,
        [
            ("x-m".into(), "a".into()),
            ("x-m".into(), "2.50".into()),
            ("x-d".into(), "1.10".into())
        ]
    );
    assert_eq!(r.body, b"1E+3");
}

/// A number past a double's range is JSON: serde_json refuses it, and one anywhere in an
/// answer (even in a key Portico doesn't read) made the answer a 502.
#[test]
fn numbers_past_a_doubles_range_are_json_too() {
    let r = ok(
        V2,
        "{\"statusCode\":200,\"headers\":{\"x-n\":1e400,\"x-m\":-1E+999},\n\"unused\":[1e400, 2e500],\"body\":1e400}",
    );
    assert_eq!(r.status, 200);
    let value = |n: &str| {
        r.headers
            .iter()
            .find(|(h, _)| h == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        (value("x-n"), value("x-m")),
        (Some("1e400"), Some("-1E+999"))
    );
    assert_eq!(r.body, b"1e400");
    // A bare 2.0 answer is its body as written.
    let r = ok(V2, r#"{"a":1e400}"#);
    assert_eq!((r.status, r.body.as_slice()), (200, &br#"{"a":1e400}"#[..]));
    assert_eq!(ok(V2, "[1e400]\n").body, b"[1e400]");
    // 64 of them; a statusCode of one is said as written.
    let many = format!(
        r#"{{"statusCode":200,"body":"x","x":[{}]}}"#,
        ["1e400"; 64].join(",")
    );
    assert_eq!(ok(V2, &many).status, 200);
    match parse(V2, br#"{"statusCode":1e400,"body":"x"}"#) {
        Err(Refusal::Malformed(why)) => assert!(why.contains("1e400"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Still not JSON: a number cut short, and such a number where JSON is broken too.
    for raw in [
        "{\"statusCode\":200,\"body\":1e}",
        "{\"statusCode\":200,\"x\":1e400,}",
        "{\"statusCode\":200,\"body\":\"x\",\"y\":1e400e5}",
        "{\"statusCode\":200,\"body\":\"x\",\"y\":-1e400-}",
    ] {
        assert!(
            matches!(parse(V2, raw.as_bytes()), Err(Refusal::Malformed(_))),
            "{raw}"
        );
    }
}

#[test]
fn wrong_shapes() {
    for (format, raw) in [
        (V2, "not json"),
        (V2, r#"{"statusCode":99}"#),
        (V2, r#"{"statusCode":199}"#),
        (V2, r#"{"statusCode":600}"#),
        (V2, r#"{"statusCode":200.5}"#),
        (V2, r#"{"statusCode":-200.0}"#),
        (V2, r#"{"statusCode":1e300}"#),
        (V2, r#"{"statusCode":true}"#),
        (V2, r#"{"statusCode":null}"#),
        (
            V2,
            r#"{"statusCode":200,"body":"AAEC-w==","isBase64Encoded":true}"#,
        ),
        (
            V2,
            r#"{"statusCode":200,"body":"A","isBase64Encoded":true}"#,
        ),
        (V2, r#"{"statusCode":"x"}"#),
        (V2, r#"{"statusCode":200,"headers":[]}"#),
        (V2, r#"{"statusCode":200,"headers":{"a b":"x"}}"#),
        (V2, r#"{"statusCode":200,"headers":{"a":{}}}"#),
        (V2, r#"{"statusCode":200,"body":{}}"#),
        (V2, r#"{"statusCode":200,"body":[1]}"#),
        (V2, r#"{"statusCode":200,"body":5,"isBase64Encoded":true}"#),
        (
            V2,
            r#"{"statusCode":200,"body":"@@","isBase64Encoded":true}"#,
        ),
        (V2, r#"{"statusCode":200,"cookies":"a=1"}"#),
        (V1, r#"{"body":"x"}"#),
        (V1, r#""text""#),
        (V1, r#"{"statusCode":200,"multiValueHeaders":{"a":"x"}}"#),
    ] {
        let r = parse(format, raw.as_bytes());
        assert!(matches!(r, Err(Refusal::Malformed(_))), "{raw}: {r:?}");
    }
}

#[test]
fn runtime_error_objects_are_function_errors() {
    for raw in [
        // Python (with the emulator's requestId), Node.js, Java, Go, Lambda's timeout.
        r#"{"errorMessage":"boom","errorType":"ValueError","requestId":"r","stackTrace":["  File \"/var/task/app.py\", line 3\n"]}"#,
        r#"{"errorType":"Error","errorMessage":"boom","trace":["Error: boom","    at x (/var/task/index.js:1:7)"]}"#,
        r#"{"errorMessage":"boom","errorType":"java.lang.RuntimeException","stackTrace":["a.B.c(B.java:9)"],"cause":{"errorMessage":"x"}}"#,
        r#"{"errorMessage":"boom","errorType":"errorString"}"#,
        r#"{"errorType":"Sandbox.Timedout","errorMessage":"boom"}"#,
    ] {
        for format in [V2, V1] {
            match parse(format, raw.as_bytes()) {
                Err(Refusal::FunctionError(why)) => {
                    assert!(why.contains("boom") && !why.contains("/var/task"), "{why}")
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }
    // Not the runtimes' shape: served as 2.0 bare answers, as API Gateway serves them.
    for raw in [
        r#"{"errorMessage":"shown to the user"}"#,
        r#"{"errorMessage":"m","errorType":"t","detail":"an application's own error body"}"#,
        r#"{"errorMessage":5,"errorType":"t"}"#,
    ] {
        assert_eq!(ok(V2, raw).status, 200, "{raw}");
    }
}

#[test]
fn unauthorized_function_errors() {
    for yes in [
        "function error (Exception): Unauthorized",
        "function error (Error): Unauthorized [X-Amz-Function-Error: Unhandled]",
    ] {
        assert!(says_unauthorized(yes), "{yes}");
    }
    for no in [
        "function error (Exception): Unauthorized user",
        "function error (Exception): unauthorized",
        "function error (Unhandled)",
        "read: Unauthorized",
        "function error (Error): Unauthorized [X-Amz-Function-Error: Unhandled] x",
    ] {
        assert!(!says_unauthorized(no), "{no}");
    }
}
