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

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::config::model::PayloadFormat;
use crate::http1::parse::{is_token, HEADER_SLOTS};

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
    let value: Value = crate::auth::function_json::json_allowing_big_numbers(raw)
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
        Value::Object(obj) if obj.contains_key("statusCode") => {
            structured(format, obj, &NumberText::new(raw))
        }
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

/// The most fields, and bytes of fields, an answer's head may have: as many as Portico
/// takes from an HTTP backend (more is a 502 there too). A function could otherwise make
/// Portico send a head of megabytes (a 3 MB value, 200,000 cookies), which clients and
/// proxies in front refuse.
const MAX_FIELDS: usize = HEADER_SLOTS;
const MAX_FIELD_BYTES: usize = 64 * 1024;

fn structured(
    format: PayloadFormat,
    mut obj: Map<String, Value>,
    numbers: &NumberText,
) -> Result<Reply, String> {
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
                for (i, value) in values.iter().enumerate() {
                    let text = || numbers.multi_value(name, i);
                    push_header(&mut headers, name, value, text)?;
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
            push_header(&mut headers, name, value, || numbers.header(name))?;
            if headers.len() == before {
                continue;
            }
            let lower = headers[before].0.to_ascii_lowercase();
            if listed.contains(&(lower.clone(), headers[before].1.clone())) {
                headers.truncate(before);
            } else if format == PayloadFormat::V2
                && lower != "set-cookie"
                && one_valued(&lower).is_none()
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
    // One media type, one entity-tag, one Location: a second value of a field that has
    // one (in another case, or in both lists) is left out, not sent as a second line or
    // joined into no value at all (`etag: "a", "b"`, weakened to `W/"a", "b"` when
    // compressed). The first stays: 1.0's multi-value lists come first, and the names of
    // one object are in byte order (serde_json's map), `ETag` before `etag`.
    let mut seen = 0u32;
    headers.retain(|(n, _)| match one_valued(n) {
        Some(i) => {
            let first = seen & 1 << i == 0;
            seen |= 1 << i;
            first
        }
        None => true,
    });
    if format == PayloadFormat::V2 {
        match obj.get("cookies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(cookies)) => {
                for (i, c) in cookies.iter().enumerate() {
                    push_header(&mut headers, "set-cookie", c, || numbers.cookie(i))?;
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
        Some(Value::Number(n)) if !base64 => numbers.body().unwrap_or(n.to_string()).into_bytes(),
        Some(Value::Bool(b)) if !base64 => b.to_string().into_bytes(),
        Some(_) => return Err("body is not a string".into()),
    };
    let field_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    if headers.len() > MAX_FIELDS || field_bytes > MAX_FIELD_BYTES {
        return Err(format!(
            "the answer's {} header fields take {field_bytes} bytes: at most {MAX_FIELDS} fields and 64 KiB",
            headers.len()
        ));
    }
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

/// Response fields defined with one value (RFC 9110, 6265's companions, CORS, HSTS);
/// their index in a bit set.
const SINGLE: [&str; 17] = [
    "content-type",
    "content-length",
    "content-location",
    "content-range",
    "content-disposition",
    "etag",
    "last-modified",
    "location",
    "date",
    "expires",
    "age",
    "retry-after",
    "server",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-max-age",
    "strict-transport-security",
];

/// Whether a response field is defined with one value: a second line of it is dropped
/// from a function's answer, and `check` refuses a response mapping that appends one.
pub fn one_valued_field(name: &str) -> bool {
    one_valued(name).is_some()
}

fn one_valued(name: &str) -> Option<usize> {
    SINGLE.iter().position(|s| s.eq_ignore_ascii_case(name))
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
        // Some runtimes send it as text; API Gateway takes "200" too. Digits only: u64's
        // parser also takes "+200".
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        _ => return None,
    };
    (200..=599).contains(&n).then_some(n as u16)
}

/// Base64 as the runtimes and libraries write it: line breaks (Python's
/// `base64.encodebytes`, MIME encoders: every 76 characters), other blanks and missing
/// `=` padding are taken, as Node's `Buffer.from(s, "base64")` takes them; any other
/// character outside the alphabet is an error.
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
/// `number_text`: the number's JSON text as the function wrote it.
fn push_header(
    headers: &mut Vec<(String, String)>,
    name: &str,
    value: &Value,
    number_text: impl FnOnce() -> Option<String>,
) -> Result<(), String> {
    if !is_token(name) {
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
        Value::Number(n) => number_text().unwrap_or(n.to_string()),
        Value::Bool(b) => b.to_string(),
        other => return Err(format!("header {name} is {other}, not text")),
    };
    // A field value has no blanks at its ends (RFC 9110 §5.5), as nginx trims them.
    let text = match text.trim_matches([' ', '\t']) {
        trimmed if trimmed.len() == text.len() => text,
        trimmed => trimmed.to_string(),
    };
    headers.push((name.to_string(), text));
    Ok(())
}

/// A number's JSON text as the function wrote it (`18446744073709551616`, `1e2`,
/// `12.50`, `-0`): a number or boolean header value or body is its JSON text, and
/// serde_json keeps a number only as a u64, i64 or f64, whose text
/// (`1.8446744073709552e+19`, `100.0`) would change what the function sent. Read again
/// from the answer, each part once and only when some value is a number. Duplicate keys
/// resolve as in the `Value` read: the last one.
struct NumberText<'a> {
    raw: &'a [u8],
    top: OnceCell<HashMap<String, &'a RawValue>>,
    headers: OnceCell<HashMap<String, &'a RawValue>>,
    multi: OnceCell<HashMap<String, Option<Vec<&'a RawValue>>>>,
    cookies: OnceCell<Vec<&'a RawValue>>,
}

impl<'a> NumberText<'a> {
    fn new(raw: &'a [u8]) -> Self {
        NumberText {
            raw,
            top: OnceCell::new(),
            headers: OnceCell::new(),
            multi: OnceCell::new(),
            cookies: OnceCell::new(),
        }
    }

    /// A top-level field, read as `T` (an empty `T` when it is not one).
    fn field<T: serde::Deserialize<'a> + Default>(&self, key: &str) -> T {
        let top = self
            .top
            .get_or_init(|| serde_json::from_slice(self.raw).unwrap_or_default());
        top.get(key)
            .and_then(|v| serde_json::from_str(v.get()).ok())
            .unwrap_or_default()
    }

    fn body(&self) -> Option<String> {
        self.field::<Option<&RawValue>>("body")
            .map(|v| v.get().to_string())
    }

    fn header(&self, name: &str) -> Option<String> {
        let headers = self.headers.get_or_init(|| self.field("headers"));
        headers.get(name).map(|v| v.get().to_string())
    }

    fn multi_value(&self, name: &str, i: usize) -> Option<String> {
        let multi = self.multi.get_or_init(|| self.field("multiValueHeaders"));
        let v = multi.get(name)?.as_ref()?.get(i)?;
        Some(v.get().to_string())
    }

    fn cookie(&self, i: usize) -> Option<String> {
        let cookies = self.cookies.get_or_init(|| self.field("cookies"));
        cookies.get(i).map(|v| v.get().to_string())
    }
}

#[cfg(test)]
#[path = "lambda_response_tests.rs"]
mod tests;
