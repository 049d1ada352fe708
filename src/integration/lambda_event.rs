//! The Amazon API Gateway proxy event, payload formats 1.0 and 2.0, written straight into
//! one growing buffer: no intermediate JSON tree, no copy of the body besides its escaped
//! (or base64) form in the event itself.
//!
//! Choices where API Gateway leaves room: header names are lower-cased in both formats
//! (as the AWS examples show); query string names and values and path parameters are
//! percent-decoded (`+` stays `+`); a body is base64-encoded when it is not UTF-8 or its
//! content-type is not a text type; bytes that are not UTF-8 elsewhere (header values)
//! become U+FFFD so the event is always valid JSON.
//!
//! Paths, as API Gateway (HTTP APIs) writes them:
//! - 2.0 `rawPath` and `requestContext.http.path`: on a named stage, `/{stage}` followed by
//!   the path after the stage, on the default endpoint and on a custom domain alike; the
//!   custom domain's API mapping key is never in it ("rawPath won't provide the API mapping
//!   value", API Gateway's HTTP API Lambda guide). Handlers and libraries rely on it:
//!   AWS Lambda Powertools cuts `len("/" + stage)` off `rawPath` whenever the stage is not
//!   `$default`; serverless-express #465 and apig-wsgi #194 report `/{stage}` in
//!   `rawPath` behind custom domains. The `$default` stage adds nothing.
//! - 1.0 `path` and `requestContext.path`: the path as the client sent it, so the named
//!   stage is in it on the default endpoint (captured HTTP API 1.0 events show
//!   `"path": "/default/…"` for stage `default`) and the mapping key on a custom domain
//!   (the same guide: "use format 1.0 and path to access the API mapping").
//!
//! Headers API Gateway adds, in both formats: `x-forwarded-for` (the client address
//! appended), `x-forwarded-proto` and `x-forwarded-port` (the scheme and port the client
//! connected to) and `x-amzn-trace-id` (the caller's trace root continued, or a new one);
//! a client's own values of these four are replaced, and its `_` spellings of them and of
//! the other headers a gateway writes (`X_Forwarded_For`, `Content_Length`) dropped.
//!
//! 1.0 `requestContext.identity` carries every key AWS sends, `null` where Portico has
//! nothing to say (IAM and Cognito callers). `requestContext.authorizer` carries the
//! authorizer's verdict (`auth::event`), and is left out, as API Gateway leaves it out,
//! for routes without an authorizer.

use base64::Engine;

use crate::config::model::PayloadFormat;
use crate::http1::encode;
use crate::pipeline::context::{resolve, RequestView, Value, Var};

mod maps;
use maps::{cookies, headers, path_parameters, stage_variables, Multi, QueryPairs};

/// What the gateway adds to the request's headers, found by the caller.
pub struct Added<'a> {
    /// The port the client connected to.
    pub port: u16,
    /// The `x-amzn-trace-id` value for this hop.
    pub trace_id: &'a [u8],
}

/// The headers the gateway writes into events itself, replacing a client's own (and
/// dropping its `_` spellings of them).
pub const GATEWAY_HEADERS: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-amzn-trace-id",
];

/// `name` as one of [`GATEWAY_HEADERS`] when it is one (any case, and `_` for `-`: CGI-style
/// backends read `X_Forwarded_For` as the same header).
pub fn written_by_gateway(name: &[u8]) -> Option<&'static str> {
    GATEWAY_HEADERS
        .into_iter()
        .find(|g| crate::http1::same_cgi_name(name, g.as_bytes()))
}

/// Appends what an event carries for `name`, one of [`GATEWAY_HEADERS`]: the client's
/// `X-Forwarded-For` with its address appended, the scheme and port it connected to, the
/// trace id of this hop. An authorizer's identity source reads these too, so that the
/// function judges, and its verdict is cached under, one value.
pub fn gateway_header_value(name: &str, v: &RequestView, added: &Added, out: &mut Vec<u8>) {
    match name {
        "x-forwarded-for" => {
            let mut peer = Vec::new();
            Value::Ip(v.peer.ip()).write(&mut peer);
            let client = v.head.continued_values(v.buf, "x-forwarded-for");
            crate::integration::own_headers::forwarded_for(client, &peer, out);
        }
        "x-forwarded-proto" => out.extend_from_slice(if v.https { b"https" } else { b"http" }),
        "x-forwarded-port" => {
            let mut digits = [0u8; 5];
            out.extend_from_slice(maps::decimal(added.port, &mut digits));
        }
        _ => out.extend_from_slice(added.trace_id),
    }
}

/// A request body as the event carries it: text (a JSON string, escaped) or base64.
pub struct Body<'a> {
    bytes: &'a [u8],
    base64: bool,
    /// The request's body as read (an authorizer's event has none, before it is read).
    read: bool,
}

impl<'a> Body<'a> {
    pub const EMPTY: Body<'static> = Body {
        bytes: b"",
        base64: false,
        read: false,
    };

    /// Text when it is UTF-8 and its media type textual ([`is_text`]), else base64.
    pub fn new(content_type: Option<&[u8]>, bytes: &'a [u8]) -> Self {
        let base64 = !bytes.is_empty() && !is_text(content_type, bytes);
        Body {
            bytes,
            base64,
            read: true,
        }
    }

    /// Its length, when the client sent it chunked (the event carries it whole; read, the
    /// head says `Length`, and the `transfer-encoding` line is what is left of it).
    fn dechunked_len(&self, v: &RequestView) -> Option<usize> {
        let mut names = v.head.headers.iter().map(|h| v.span(h.name));
        let chunked = names.any(|n| n.eq_ignore_ascii_case(b"transfer-encoding"));
        (chunked && self.read).then_some(self.bytes.len())
    }

    /// The bytes of its JSON string, quotes included: for base64, and for text that could
    /// be larger than `cap` (counted: an escaped byte is up to 6, `\u0001`); `None` for
    /// text that cannot be. A body of control characters makes an event 6 times its
    /// size, base64 only 4/3.
    pub fn json_len(&self, cap: usize) -> Option<usize> {
        let n = self.bytes.len();
        if n == 0 {
            Some(0)
        } else if self.base64 {
            Some(n.div_ceil(3) * 4 + 2)
        } else if n.saturating_mul(6).saturating_add(2) <= cap {
            None
        } else {
            // UTF-8 already (is_text): no replacement characters, only escapes.
            let extra: usize = (self.bytes.iter())
                .map(|&b| match b {
                    b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 1,
                    0..=0x1f => 5,
                    _ => 0,
                })
                .sum();
            Some(n + extra + 2)
        }
    }
}

/// Appends the event for the request in `v` with `body`.
pub fn write_event(
    out: &mut Vec<u8>,
    v: &RequestView,
    format: PayloadFormat,
    body: &Body,
    added: &Added,
) {
    match format {
        PayloadFormat::V2 => v2(out, v, body, added),
        PayloadFormat::V1 => v1(out, v, body, added),
    }
}

/// 2.0's `rawPath` as a JSON string (see the module comment).
fn raw_path(out: &mut Vec<u8>, v: &RequestView) {
    out.push(b'"');
    let stage = &v.stage().name;
    if !v.state.custom_domain {
        escape(out, v.full_path());
    } else {
        if stage != "$default" {
            out.push(b'/');
            escape(out, stage.as_bytes());
        }
        // A base path ended by an escaped separator (`/reports%2Fx`) leaves `%2Fx`: the
        // `/` goes in front, as the http integration puts it.
        let rest = v.span(v.state.rest);
        if stage == "$default" || !rest.is_empty() {
            if rest.first() != Some(&b'/') {
                out.push(b'/');
            }
            escape(out, rest);
        }
    }
    out.push(b'"');
}

fn v2(out: &mut Vec<u8>, v: &RequestView, body: &Body, added: &Added) {
    out.extend_from_slice(br#"{"version":"2.0","routeKey":"#);
    string(out, v.route().key.as_bytes());
    out.extend_from_slice(br#","rawPath":"#);
    raw_path(out, v);
    out.extend_from_slice(br#","rawQueryString":"#);
    string(out, v.query());
    cookies(out, v);
    out.extend_from_slice(br#","headers":"#);
    headers(out, v, added, false, Multi::Joined, body.dechunked_len(v));
    let pairs = QueryPairs::decode(v.query());
    if !pairs.items.is_empty() {
        out.extend_from_slice(br#","queryStringParameters":"#);
        pairs.write(out, Multi::Joined);
    }
    if !v.params.is_empty() {
        out.extend_from_slice(br#","pathParameters":"#);
        path_parameters(out, v);
    }
    if !v.stage_vars().is_empty() {
        out.extend_from_slice(br#","stageVariables":"#);
        stage_variables(out, v);
    }
    fields(
        out,
        v,
        &[
            (br#","requestContext":{"accountId":"#, Var::AccountId),
            (br#","apiId":"#, Var::ApiId),
        ],
    );
    if let Some(cert) = v.client_cert {
        out.extend_from_slice(br#","authentication":{"clientCert":"#);
        client_cert(out, cert);
        out.push(b'}');
    }
    crate::auth::event::write_v2(out, &v.state.auth);
    fields(
        out,
        v,
        &[
            (br#","domainName":"#, Var::DomainName),
            (br#","domainPrefix":"#, Var::DomainPrefix),
            (br#","http":{"method":"#, Var::HttpMethod),
        ],
    );
    out.extend_from_slice(br#","path":"#);
    raw_path(out, v);
    fields(
        out,
        v,
        &[
            (br#","protocol":"#, Var::Protocol),
            (br#","sourceIp":"#, Var::SourceIp),
            (br#","userAgent":"#, Var::UserAgent),
            (br#"},"requestId":"#, Var::RequestId),
            (br#","routeKey":"#, Var::RouteKey),
            (br#","stage":"#, Var::Stage),
            (br#","time":"#, Var::RequestTime),
        ],
    );
    out.extend_from_slice(br#","timeEpoch":"#);
    encode::decimal(out, v.state.time_ms());
    out.push(b'}');
    if !body.bytes.is_empty() {
        out.extend_from_slice(br#","body":"#);
    }
    let base64 = write_body(out, body);
    out.extend_from_slice(br#","isBase64Encoded":"#);
    out.extend_from_slice(if base64 { b"true" } else { b"false" });
    out.push(b'}');
}

fn v1(out: &mut Vec<u8>, v: &RequestView, body: &Body, added: &Added) {
    fields(
        out,
        v,
        &[
            (br#"{"version":"1.0","resource":"#, Var::ResourcePath),
            (br#","path":"#, Var::Path),
            (br#","httpMethod":"#, Var::HttpMethod),
        ],
    );
    out.extend_from_slice(br#","headers":"#);
    headers(out, v, added, true, Multi::Last, body.dechunked_len(v));
    out.extend_from_slice(br#","multiValueHeaders":"#);
    headers(out, v, added, true, Multi::List, body.dechunked_len(v));
    let pairs = QueryPairs::decode(v.query());
    for (key, multi) in [
        (&br#","queryStringParameters":"#[..], Multi::Last),
        (br#","multiValueQueryStringParameters":"#, Multi::List),
    ] {
        out.extend_from_slice(key);
        if pairs.items.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            pairs.write(out, multi);
        }
    }
    fields(
        out,
        v,
        &[
            (br#","requestContext":{"accountId":"#, Var::AccountId),
            (br#","apiId":"#, Var::ApiId),
        ],
    );
    crate::auth::event::write_v1(out, &v.state.auth);
    fields(
        out,
        v,
        &[
            (br#","domainName":"#, Var::DomainName),
            (br#","domainPrefix":"#, Var::DomainPrefix),
            (br#","extendedRequestId":"#, Var::ExtendedRequestId),
            (br#","httpMethod":"#, Var::HttpMethod),
        ],
    );
    // In AWS's order; the IAM caller (SigV4 routes) from the authorizer, no Cognito.
    let iam = crate::auth::event::IamFields::of(&v.state.auth);
    out.extend_from_slice(br#","identity":{"accessKey":"#);
    iam.write(out, |c| &c.access_key);
    out.extend_from_slice(br#","accountId":"#);
    iam.write(out, |c| &c.account_id);
    // The key a route that requires one was given (its value and, for its id, its name),
    // as REST APIs send it; null on routes without a key.
    out.extend_from_slice(br#","apiKey":"#);
    match v.api_key {
        Some(_) => {
            let value = if v.api().auth.key_from_authorizer {
                v.state.auth.usage_key().unwrap_or_default().as_bytes()
            } else {
                crate::pipeline::api_key::single(v.head, v.buf).unwrap_or_default()
            };
            string(out, value);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","apiKeyId":"#);
    match v.api_key {
        Some(name) => string(out, name.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","caller":"#);
    iam.write(out, |c| &c.user_id);
    out.extend_from_slice(
        br#","cognitoAmr":null,"cognitoAuthenticationProvider":null,"cognitoAuthenticationType":null,"cognitoIdentityId":null,"cognitoIdentityPoolId":null,"principalOrgId":null"#,
    );
    fields(out, v, &[(br#","sourceIp":"#, Var::SourceIp)]);
    out.extend_from_slice(br#","user":"#);
    iam.write(out, |c| &c.user_id);
    fields(out, v, &[(br#","userAgent":"#, Var::UserAgent)]);
    out.extend_from_slice(br#","userArn":"#);
    iam.write(out, |c| &c.user_arn);
    if let Some(cert) = v.client_cert {
        out.extend_from_slice(br#","clientCert":"#);
        client_cert(out, cert);
    }
    fields(
        out,
        v,
        &[
            (br#"},"path":"#, Var::Path),
            (br#","protocol":"#, Var::Protocol),
            (br#","requestId":"#, Var::RequestId),
            (br#","requestTime":"#, Var::RequestTime),
        ],
    );
    out.extend_from_slice(br#","requestTimeEpoch":"#);
    encode::decimal(out, v.state.time_ms());
    fields(
        out,
        v,
        &[
            (br#","resourceId":"#, Var::RouteKey),
            (br#","resourcePath":"#, Var::ResourcePath),
            (br#","stage":"#, Var::Stage),
        ],
    );
    out.extend_from_slice(br#"},"pathParameters":"#);
    if v.params.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        path_parameters(out, v);
    }
    out.extend_from_slice(br#","stageVariables":"#);
    if v.stage_vars().is_empty() {
        out.extend_from_slice(b"null");
    } else {
        stage_variables(out, v);
    }
    out.extend_from_slice(br#","body":"#);
    if body.bytes.is_empty() {
        out.extend_from_slice(b"null");
    }
    let base64 = write_body(out, body);
    out.extend_from_slice(br#","isBase64Encoded":"#);
    out.extend_from_slice(if base64 { b"true" } else { b"false" });
    out.push(b'}');
}

/// A mutual-TLS client certificate as API Gateway describes it to integrations.
fn client_cert(out: &mut Vec<u8>, c: &crate::tls::PeerCert) {
    out.extend_from_slice(br#"{"clientCertPem":"#);
    string(out, c.pem.as_bytes());
    out.extend_from_slice(br#","subjectDN":"#);
    string(out, c.subject_dn.as_bytes());
    out.extend_from_slice(br#","issuerDN":"#);
    string(out, c.issuer_dn.as_bytes());
    out.extend_from_slice(br#","serialNumber":"#);
    string(out, c.serial_number.as_bytes());
    out.extend_from_slice(br#","validity":{"notBefore":"#);
    string(out, c.not_before.as_bytes());
    out.extend_from_slice(br#","notAfter":"#);
    string(out, c.not_after.as_bytes());
    out.extend_from_slice(b"}}");
}

/// Writes the body as a JSON string (nothing when empty); returns whether it is base64.
fn write_body(out: &mut Vec<u8>, body: &Body) -> bool {
    let (base64, body) = (body.base64, body.bytes);
    if body.is_empty() {
        return false;
    }
    if !base64 {
        string(out, body);
        return false;
    }
    let start = out.len() + 1;
    let n = base64::encoded_len(body.len(), true).expect("a body under max_body_bytes");
    out.push(b'"');
    out.resize(start + n, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(body, &mut out[start..])
        .expect("sized by encoded_len");
    out.truncate(start + written);
    out.push(b'"');
    true
}

/// Text stays text when it is UTF-8 and its media type is textual (or not given).
pub fn is_text(content_type: Option<&[u8]>, body: &[u8]) -> bool {
    if std::str::from_utf8(body).is_err() {
        return false;
    }
    let Some(ct) = content_type else {
        return true;
    };
    let media = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let media = String::from_utf8_lossy(media).to_ascii_lowercase();
    media.starts_with("text/")
        || media.ends_with("json")
        || media.ends_with("xml")
        || matches!(
            media.as_str(),
            "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | "application/yaml"
                | "application/x-yaml"
        )
}

/// `key` then the `$context` value as a JSON string, for each pair in order.
fn fields(out: &mut Vec<u8>, v: &RequestView, pairs: &[(&[u8], Var)]) {
    for (key, var) in pairs {
        out.extend_from_slice(key);
        ctx(out, v, *var);
    }
}

fn ctx(out: &mut Vec<u8>, v: &RequestView, var: Var) {
    match resolve(var, v) {
        Value::Bytes(b) => string(out, b),
        other => {
            out.push(b'"');
            other.write(out);
            out.push(b'"');
        }
    }
}

/// A JSON string.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escape(out, s);
    out.push(b'"');
}

/// JSON string contents: quotes, backslashes and control characters escaped, invalid
/// UTF-8 replaced, unescaped runs copied in one go.
pub fn escape(out: &mut Vec<u8>, s: &[u8]) {
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut run = 0;
        for (i, &b) in valid.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => {
                    out.extend_from_slice(&valid[run..i]);
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                    run = i + 1;
                    continue;
                }
                _ => continue,
            };
            out.extend_from_slice(&valid[run..i]);
            out.extend_from_slice(esc);
            run = i + 1;
        }
        out.extend_from_slice(&valid[run..]);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

#[cfg(test)]
#[path = "lambda_event_tests.rs"]
mod tests;
