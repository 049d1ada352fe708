//! A function's answer → the HTTP response, as API Gateway reads it.
//!
//! 2.0: an object with `statusCode` is a response (`headers`, `cookies` → one
//! `set-cookie` each, `body`, `isBase64Encoded`); any other JSON value is a 200
//! `application/json` response whose body is that value (a string's text, or the JSON as
//! the function wrote it). 1.0: the object must have `statusCode`; `headers` and
//! `multiValueHeaders` merge into one list, the multi-value ones first, and a name and
//! value in both appear once (as API Gateway documents).
//! Anything else is a bad function response: the caller answers 502 and logs the reason.
//!
//! A function error is recognised without `X-Amz-Function-Error` too, because the Runtime
//! Interface Emulator never sends that header: it answers a handler's exception with the
//! runtime's error object as a plain 200. The rule ([`function_error`]): a JSON object
//! with a string `errorMessage` and a string `errorType`, and no key other than those,
//! `stackTrace`, `trace` (Node.js), `cause` (Java, .NET) and `requestId` (Python). Every
//! AWS runtime writes exactly that shape for an unhandled error (Lambda itself writes
//! `{"errorType":"Sandbox.Timedout","errorMessage":…}` for a timeout), and it has no
//! `statusCode`, so no answer API Gateway would serve as a response is taken for one.
//! Such an answer is a 502 in both formats, as API Gateway answers a function error; its
//! message goes to the log, its stack trace to neither the client nor the log.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Map, Value};

use crate::config::model::PayloadFormat;
use crate::http1::parse::is_tchar;

#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// An answer without a content-type gets the one API Gateway gives it, which
    /// mappings then see as the function's own: `text/plain; charset=utf-8` in 2.0 (HTTP
    /// APIs, as captured from AWS; a bare 2.0 value was typed `application/json` by
    /// [`parse`]), `application/json` in 1.0 (REST's Lambda proxy). 204 and 304 have no
    /// body to type. (Not for WebSocket answers, whose 2xx becomes the 101 of the
    /// handshake.)
    pub fn default_content_type(&mut self, format: PayloadFormat) {
        let typed = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if !typed && !matches!(self.status, 204 | 304) {
            let kind = match format {
                PayloadFormat::V2 => "text/plain; charset=utf-8",
                PayloadFormat::V1 => "application/json",
            };
            self.headers.push(("content-type".into(), kind.into()));
        }
    }

    /// All values of a header, joined with commas (for `$response.header.NAME`).
    pub fn joined(&self, name: &[u8], out: &mut Vec<u8>) {
        let mut first = true;
        for (n, v) in &self.headers {
            if n.as_bytes().eq_ignore_ascii_case(name) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
}

/// Why a function's answer is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The function failed: its error type and message (the stack trace is dropped).
    FunctionError(String),
    /// The answer is not a response of the payload format's shape.
    Malformed(String),
}

impl Refusal {
    pub fn into_reason(self) -> String {
        match self {
            Refusal::FunctionError(s) | Refusal::Malformed(s) => s,
        }
    }
}

/// Keys the AWS runtimes put in an unhandled-error object (see the module comment).
const ERROR_KEYS: &[&str] = &[
    "errorMessage",
    "errorType",
    "stackTrace",
    "trace",
    "cause",
    "requestId",
];

/// `Some("errorType: errorMessage")` when `obj` is a runtime's error object.
pub fn function_error(obj: &Map<String, Value>) -> Option<String> {
    let (Some(Value::String(kind)), Some(Value::String(message))) =
        (obj.get("errorType"), obj.get("errorMessage"))
    else {
        return None;
    };
    if !obj.keys().all(|k| ERROR_KEYS.contains(&k.as_str())) {
        return None;
    }
    let message: String = message.chars().take(300).collect();
    Some(format!("function error ({kind}): {message}"))
}

/// Whether a failed call's reason names a function error whose message is exactly
/// `Unauthorized` ([`function_error`]'s text, maybe followed by the exchange's
/// ` [X-Amz-Function-Error: KIND]`): what a REST-style Lambda authorizer raises
/// (`raise Exception("Unauthorized")`, `callback("Unauthorized")`) to have API Gateway
/// answer 401 rather than 500.
pub fn says_unauthorized(reason: &str) -> bool {
    let reason = match reason.rfind(" [X-Amz-Function-Error: ") {
        Some(at) if reason.ends_with(']') => &reason[..at],
        _ => reason,
    };
    reason.starts_with("function error (") && reason.ends_with("): Unauthorized")
}

pub fn parse(format: PayloadFormat, raw: &[u8]) -> Result<Reply, Refusal> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| Refusal::Malformed(format!("the answer is not JSON: {e}")))?;
    if let Value::Object(obj) = &value {
        if let Some(error) = function_error(obj) {
            return Err(Refusal::FunctionError(error));
        }
    }
    parse_value(format, value, raw).map_err(Refusal::Malformed)
}

fn parse_value(format: PayloadFormat, value: Value, raw: &[u8]) -> Result<Reply, String> {
    match value {
        Value::Object(obj) if obj.contains_key("statusCode") => structured(format, obj),
        Value::Object(_) if format == PayloadFormat::V1 => {
            Err("the answer has no statusCode (payload format 1.0 needs one)".into())
        }
        _ if format == PayloadFormat::V1 => Err("the answer is not a JSON object".into()),
        bare => Ok(Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: match bare {
                Value::String(s) => s.into_bytes(),
                _ => raw.trim_ascii().to_vec(),
            },
        }),
    }
}

fn structured(format: PayloadFormat, mut obj: Map<String, Value>) -> Result<Reply, String> {
    let status = status_code(&obj["statusCode"])
        .ok_or_else(|| format!("statusCode {} is not a status 200–599", obj["statusCode"]))?;
    let mut headers = Vec::new();
    if format == PayloadFormat::V1 {
        if let Some(multi) = object(&obj, "multiValueHeaders")? {
            for (name, values) in multi {
                let values = match values {
                    Value::Array(values) => values,
                    Value::Null => continue,
                    _ => return Err(format!("multiValueHeaders.{name} is not a list")),
                };
                for value in values {
                    push_header(&mut headers, name, value)?;
                }
            }
        }
    }
    // The names and values the multi-value lists gave, names lower-cased, for a lookup
    // per single header: a scan of the lists for each was quadratic, and an answer with
    // 50,000 of each held a worker's core for 50 s (every connection on it waiting).
    let listed: HashSet<(String, String)> = headers
        .iter()
        .map(|(n, v): &(String, String)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    // 2.0: a name given twice in two cases (`Location` and `location`) is one field, its
    // values joined (RFC 9110 §5.3), not two lines of a field that may appear once.
    let mut named: std::collections::HashMap<String, usize> = Default::default();
    if let Some(single) = object(&obj, "headers")? {
        for (name, value) in single {
            let before = headers.len();
            push_header(&mut headers, name, value)?;
            if headers.len() == before {
                continue;
            }
            let lower = headers[before].0.to_ascii_lowercase();
            if listed.contains(&(lower.clone(), headers[before].1.clone())) {
                headers.truncate(before);
            } else if format == PayloadFormat::V2
                && lower != "set-cookie"
                && lower != "content-type"
            {
                if let Some(&first) = named.get(&lower) {
                    let (_, value) = headers.pop().unwrap_or_default();
                    headers[first].1.push_str(", ");
                    headers[first].1.push_str(&value);
                } else {
                    named.insert(lower, before);
                }
            }
        }
    }
    // One media type: a second Content-Type (in another case, or in both lists) is left
    // out, not sent as a second line or joined into no media type at all. The first
    // stays: 1.0's multi-value lists come first, and the names of one object are in byte
    // order (serde_json's map), `Content-Type` before `content-type`.
    let mut typed = false;
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("content-type") || !std::mem::replace(&mut typed, true)
    });
    if format == PayloadFormat::V2 {
        match obj.get("cookies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(cookies)) => {
                for c in cookies {
                    push_header(&mut headers, "set-cookie", c)?;
                }
            }
            Some(_) => return Err("cookies is not a list".into()),
        }
    }
    let base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("isBase64Encoded is {other}, not true or false")),
    };
    let body = match obj.remove("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if base64 => decode_base64(&s)?,
        Some(Value::String(s)) => s.into_bytes(),
        // A number or boolean is its JSON text, as for header values (a handler returning
        // `"body": 42`); an object or a list is no body (API Gateway: malformed).
        Some(Value::Number(n)) if !base64 => n.to_string().into_bytes(),
        Some(Value::Bool(b)) if !base64 => b.to_string().into_bytes(),
        Some(_) => return Err("body is not a string".into()),
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(format!("{key} is not an object")),
    }
}

/// A status 200–599 from a number or a string of digits. `200.0` counts: Python handlers
/// write it when the status went through arithmetic or a float field, and the runtimes'
/// JSON keeps the `.0`; `200.5` is no status. Below 200 is never a final answer over
/// HTTP/1.1 (a client would wait on past a 1xx for the real one).
fn status_code(v: &Value) -> Option<u16> {
    let n = match v {
        Value::Number(n) => match n.as_u64() {
            Some(n) => n,
            None => {
                let f = n.as_f64()?;
                if f.fract() != 0.0 || !(0.0..=1000.0).contains(&f) {
                    return None;
                }
                f as u64
            }
        },
        // Some runtimes send it as text; API Gateway takes "200" too.
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    (200..=599).contains(&n).then_some(n as u16)
}

/// Base64 as the runtimes and libraries write it: line breaks (Python's
/// `base64.encodebytes`, MIME encoders: every 76 characters) and missing `=` padding are
/// taken, as Node's `Buffer.from(s, "base64")` takes them; a character outside the
/// alphabet is an error.
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let decoded = if s.bytes().any(|b| b.is_ascii_whitespace()) {
        let packed: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        LENIENT.decode(packed)
    } else {
        LENIENT.decode(s)
    };
    decoded.map_err(|e| format!("body is not base64: {e}"))
}

/// Adds one header. Values may be strings, numbers or booleans (handlers often write
/// numbers); a `null` value adds nothing, as a handler writing `{"Location": None}` or a
/// serializer writing an unset field means no such header.
fn push_header(
    headers: &mut Vec<(String, String)>,
    name: &str,
    value: &Value,
) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!("{name:?} is not a header name"));
    }
    let text = match value {
        Value::Null => return Ok(()),
        // CR, LF and NUL become spaces when the head is written; the other controls would
        // pass and make strict clients (httparse, llhttp) refuse the whole response.
        Value::String(s) if s.bytes().any(|b| b.is_ascii_control() && b != b'\t') => s
            .chars()
            .map(|c| match c {
                '\t' => c,
                c if c.is_ascii_control() => ' ',
                c => c,
            })
            .collect(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(format!("header {name} is {other}, not text")),
    };
    headers.push((name.to_string(), text));
    Ok(())
}

#[cfg(test)]
mod tests {
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
            r#"{"statusCode":302,"headers":{"Location":"/a","location":"/b","x-a":"1","Set-Cookie":"a=1","set-cookie":"b=2"}}"#,
        );
        let locations: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("location"))
            .collect();
        assert_eq!(locations.len(), 1, "{:?}", r.headers);
        assert!(
            locations[0].1 == "/a, /b" || locations[0].1 == "/b, /a",
            "{:?}",
            r.headers
        );
        let cookies = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"));
        assert_eq!(cookies.count(), 2, "{:?}", r.headers);
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
        let n = 5_000;
        let multi: Map<String, Value> = (0..n)
            .map(|i| (format!("M{i}"), Value::Array(vec!["x".into()])))
            .collect();
        let single: Map<String, Value> = (0..n)
            .map(|i| (format!("s{i}"), Value::String("y".into())))
            .chain([("m7".to_string(), Value::String("x".into()))])
            .chain([("m8".to_string(), Value::String("other".into()))])
            .collect();
        let raw =
            serde_json::json!({"statusCode": 200, "multiValueHeaders": multi, "headers": single})
                .to_string();
        let r = ok(V1, &raw);
        // m7: x is listed already; m8: other is a second value.
        assert_eq!(r.headers.len(), 2 * n + 1);
        assert_eq!(r.headers.iter().filter(|(_, v)| v == "other").count(), 1);
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
}
