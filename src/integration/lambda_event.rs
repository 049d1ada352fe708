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

use std::ops::Range;

use base64::Engine;

use crate::config::model::PayloadFormat;
use crate::http1::{encode, percent_decode};
use crate::pipeline::context::{resolve, RequestView, Value, Var};

/// What the gateway adds to the request's headers, found by the caller.
pub struct Added<'a> {
    /// The port the client connected to.
    pub port: u16,
    /// The `x-amzn-trace-id` value for this hop.
    pub trace_id: &'a [u8],
}

/// Appends the event for the request in `v` with `body`.
pub fn write_event(
    out: &mut Vec<u8>,
    v: &RequestView,
    format: PayloadFormat,
    body: &[u8],
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
    } else if stage == "$default" {
        escape(out, v.rest_path());
    } else {
        out.push(b'/');
        escape(out, stage.as_bytes());
        escape(out, v.span(v.state.rest));
    }
    out.push(b'"');
}

fn v2(out: &mut Vec<u8>, v: &RequestView, body: &[u8], added: &Added) {
    out.extend_from_slice(br#"{"version":"2.0","routeKey":"#);
    string(out, v.route().key.as_bytes());
    out.extend_from_slice(br#","rawPath":"#);
    raw_path(out, v);
    out.extend_from_slice(br#","rawQueryString":"#);
    string(out, v.query());
    cookies(out, v);
    out.extend_from_slice(br#","headers":"#);
    headers(out, v, added, false, Multi::Joined);
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
    if !body.is_empty() {
        out.extend_from_slice(br#","body":"#);
    }
    let base64 = write_body(out, v, body);
    out.extend_from_slice(br#","isBase64Encoded":"#);
    out.extend_from_slice(if base64 { b"true" } else { b"false" });
    out.push(b'}');
}

fn v1(out: &mut Vec<u8>, v: &RequestView, body: &[u8], added: &Added) {
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
    headers(out, v, added, true, Multi::Last);
    out.extend_from_slice(br#","multiValueHeaders":"#);
    headers(out, v, added, true, Multi::List);
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
    if body.is_empty() {
        out.extend_from_slice(b"null");
    }
    let base64 = write_body(out, v, body);
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
fn write_body(out: &mut Vec<u8>, v: &RequestView, body: &[u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    if is_text(v.header(b"content-type"), body) {
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

/// Header values in one event object: joined with commas (2.0), the last one (1.0
/// `headers`), or all as a list (1.0 `multiValueHeaders`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Multi {
    Joined,
    Last,
    List,
}

/// The headers object. Repeated names (any case) are grouped; a request has at most a
/// hundred headers, so grouping by scanning is cheaper than building a map.
fn headers(out: &mut Vec<u8>, v: &RequestView, added: &Added, with_cookie: bool, multi: Multi) {
    let hs = &v.head.headers;
    let name = |i: usize| v.span(hs[i].name);
    let mut any = false;
    out.push(b'{');
    for i in 0..hs.len() {
        let n = name(i);
        let skip = (!with_cookie && n.eq_ignore_ascii_case(b"cookie"))
            || n.eq_ignore_ascii_case(b"x-forwarded-for")
            || n.eq_ignore_ascii_case(b"x-forwarded-proto")
            || n.eq_ignore_ascii_case(b"x-forwarded-port")
            || n.eq_ignore_ascii_case(b"x-amzn-trace-id")
            || super::own_headers::underscore_spelling_of_own(n)
            // A SigV4 signature is the gateway's business, not the integration's.
            || (v.state.auth.is_iam() && n.eq_ignore_ascii_case(b"authorization"))
            || (0..i).any(|j| name(j).eq_ignore_ascii_case(n));
        if skip {
            continue;
        }
        if any {
            out.push(b',');
        }
        any = true;
        out.push(b'"');
        out.extend(n.iter().map(u8::to_ascii_lowercase));
        out.extend_from_slice(b"\":");
        let values = (i..hs.len())
            .filter(|&j| name(j).eq_ignore_ascii_case(n))
            .map(|j| v.span(hs[j].value));
        values_of(out, values, multi, b",");
    }
    // As API Gateway does: the client address appended, the scheme and port the client
    // connected to, the trace id for this hop.
    if any {
        out.push(b',');
    }
    out.extend_from_slice(br#""x-forwarded-for":"#);
    let client = (0..hs.len())
        .filter(|&j| name(j).eq_ignore_ascii_case(b"x-forwarded-for"))
        .map(|j| v.span(hs[j].value));
    let mut forwarded = Vec::new();
    for value in client {
        forwarded.extend_from_slice(value);
        forwarded.extend_from_slice(b", ");
    }
    Value::Ip(v.peer.ip()).write(&mut forwarded);
    values_of(out, std::iter::once(&forwarded[..]), multi, b"");
    out.extend_from_slice(br#","x-forwarded-proto":"#);
    let scheme: &[u8] = if v.https { b"https" } else { b"http" };
    values_of(out, std::iter::once(scheme), multi, b"");
    out.extend_from_slice(br#","x-forwarded-port":"#);
    let mut digits = [0u8; 5];
    values_of(
        out,
        std::iter::once(decimal(added.port, &mut digits)),
        multi,
        b"",
    );
    out.extend_from_slice(br#","x-amzn-trace-id":"#);
    values_of(out, std::iter::once(added.trace_id), multi, b"");
    out.push(b'}');
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn values_of<'a>(
    out: &mut Vec<u8>,
    values: impl Iterator<Item = &'a [u8]>,
    multi: Multi,
    joiner: &[u8],
) {
    match multi {
        Multi::Joined => {
            out.push(b'"');
            for (k, value) in values.enumerate() {
                if k > 0 {
                    out.extend_from_slice(joiner);
                }
                escape(out, value);
            }
            out.push(b'"');
        }
        Multi::Last => string(out, values.last().unwrap_or_default()),
        Multi::List => {
            out.push(b'[');
            for (k, value) in values.enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                string(out, value);
            }
            out.push(b']');
        }
    }
}

/// 2.0 moves cookies out of the headers: every `cookie` header split at `;`.
fn cookies(out: &mut Vec<u8>, v: &RequestView) {
    let mut first = true;
    for h in &v.head.headers {
        if !v.span(h.name).eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for c in v.span(h.value).split(|&b| b == b';') {
            let c = c.trim_ascii();
            if c.is_empty() {
                continue;
            }
            out.extend_from_slice(if first { br#","cookies":["# } else { b"," });
            first = false;
            string(out, c);
        }
    }
    if !first {
        out.push(b']');
    }
}

fn path_parameters(out: &mut Vec<u8>, v: &RequestView) {
    let mut scratch = Vec::new();
    out.push(b'{');
    for (k, (name, span)) in v.route().param_names.iter().zip(v.params).enumerate() {
        if k > 0 {
            out.push(b',');
        }
        string(out, name.as_bytes());
        out.push(b':');
        scratch.clear();
        percent_decode(v.span(*span), false, &mut scratch);
        string(out, &scratch);
    }
    out.push(b'}');
}

fn stage_variables(out: &mut Vec<u8>, v: &RequestView) {
    out.push(b'{');
    for (k, (name, value)) in v.stage_vars().iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        string(out, name.as_bytes());
        out.push(b':');
        string(out, value.as_bytes());
    }
    out.push(b'}');
}

/// Query parameters decoded into one buffer, grouped by name.
struct QueryPairs {
    buf: Vec<u8>,
    items: Vec<(Range<usize>, Range<usize>)>,
}

impl QueryPairs {
    fn decode(q: &[u8]) -> QueryPairs {
        let mut p = QueryPairs {
            buf: Vec::with_capacity(q.len()),
            items: Vec::new(),
        };
        for (name, value) in crate::pipeline::template::query_pairs(q) {
            let a = p.buf.len();
            percent_decode(name, false, &mut p.buf);
            let b = p.buf.len();
            percent_decode(value, false, &mut p.buf);
            p.items.push((a..b, b..p.buf.len()));
        }
        // Stable, so repeated names keep their order; n log n even for a hostile query.
        let buf = &p.buf;
        p.items
            .sort_by(|x, y| buf[x.0.clone()].cmp(&buf[y.0.clone()]));
        p
    }

    fn write(&self, out: &mut Vec<u8>, multi: Multi) {
        out.push(b'{');
        let mut i = 0;
        while i < self.items.len() {
            let name = &self.buf[self.items[i].0.clone()];
            let end = self.items[i..]
                .iter()
                .position(|(n, _)| self.buf[n.clone()] != *name)
                .map_or(self.items.len(), |k| i + k);
            if i > 0 {
                out.push(b',');
            }
            string(out, name);
            out.push(b':');
            let values = self.items[i..end].iter().map(|(_, v)| &self.buf[v.clone()]);
            values_of(out, values, multi, b",");
            i = end;
        }
        out.push(b'}');
    }
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
