//! Access-log formats with API Gateway's `$context` variables, compiled once per config
//! into literal pieces and variable slots, and rendered per request straight into the
//! worker's log buffer. A format that starts with `{` is JSON: values are JSON-escaped
//! so every line stays valid JSON whatever a client sends.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use crate::http1::encode;
use crate::pipeline::context::{Value, Var, ACCOUNT_ID};

/// Variables only an access log has: they describe the response. The request-side ones
/// are the shared `$context` variables of `pipeline::context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogVar {
    ApiKeyId,
    Status,
    ResponseLength,
    ResponseLatency,
    IntegrationLatency,
    IntegrationStatus,
    IntegrationError,
    ErrorMessage,
    /// `error.message` in quotes, for a JSON format's value position.
    ErrorMessageString,
    ErrorResponseType,
    ErrorValidation,
    /// WebSocket APIs: one line per CONNECT, MESSAGE and DISCONNECT.
    ConnectionId,
    EventType,
    MessageId,
}

const LOG_NAMES: &[(&str, LogVar)] = &[
    ("identity.apiKeyId", LogVar::ApiKeyId),
    ("status", LogVar::Status),
    ("responseLength", LogVar::ResponseLength),
    ("responseLatency", LogVar::ResponseLatency),
    ("integrationLatency", LogVar::IntegrationLatency),
    ("integration.latency", LogVar::IntegrationLatency),
    ("integrationStatus", LogVar::IntegrationStatus),
    ("integration.status", LogVar::IntegrationStatus),
    ("integration.error", LogVar::IntegrationError),
    ("integrationErrorMessage", LogVar::IntegrationError),
    ("error.message", LogVar::ErrorMessage),
    ("error.messageString", LogVar::ErrorMessageString),
    ("error.responseType", LogVar::ErrorResponseType),
    ("error.validationErrorString", LogVar::ErrorValidation),
    ("connectionId", LogVar::ConnectionId),
    ("eventType", LogVar::EventType),
    ("messageId", LogVar::MessageId),
];

/// The known variable named `ident` (dots at its end are text: `$context.requestId.`
/// ends a sentence). A longer name is not read as a known one and the rest as text:
/// `requestTimeEpoch` is not `requestTime` then "Epoch", and an unknown
/// `error.messageStrings` is unknown, not `error.message` then "Strings".
fn lookup(ident: &str) -> Option<(usize, Part)> {
    let name = ident.trim_end_matches('.');
    let ctx = Var::NAMES.iter().map(|(n, v)| (*n, Part::Ctx(*v)));
    let log = LOG_NAMES.iter().map(|(n, v)| (*n, Part::Log(*v)));
    let alias = std::iter::once(("canary", Part::Ctx(Var::IsCanaryRequest)));
    ctx.chain(log)
        .chain(alias)
        .find(|(n, _)| *n == name)
        .map(|(n, p)| (n.len(), p))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    Ctx(Var),
    Log(LogVar),
    /// `$context.authorizer.NAME`: what the route's authorizer left (`auth::AuthState`).
    Authorizer(Box<str>),
    /// A `$context.x` Portico does not know (its name, for `check`): rendered as "-"
    /// like an empty value.
    Unknown(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    parts: Vec<Part>,
    json: bool,
    /// A format that starts with `<` (API Gateway's XML preset): `<`, `>`, `&` and `'`
    /// in values are written as entities, so a value can't close its element.
    xml: bool,
}

impl LogFormat {
    pub fn compile(format: &str) -> LogFormat {
        const PREFIX: &str = "$context.";
        let mut parts = Vec::new();
        let mut rest = format;
        while let Some(at) = rest.find(PREFIX) {
            if at > 0 {
                parts.push(Part::Literal(rest.as_bytes()[..at].into()));
            }
            let after = &rest[at + PREFIX.len()..];
            let ident = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
                .count();
            if let Some(name) = after[..ident].strip_prefix("authorizer.") {
                // `$context.authorizer.claims.NAME`, `.NAME`, `.error`, `.principalId`.
                let name = name.trim_end_matches('.');
                parts.push(Part::Authorizer(name.into()));
                rest = &after["authorizer.".len() + name.len()..];
                continue;
            }
            match lookup(&after[..ident]) {
                Some((len, part)) => {
                    parts.push(part);
                    rest = &after[len..];
                }
                None => {
                    parts.push(Part::Unknown(after[..ident].into()));
                    rest = &after[ident..];
                }
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.as_bytes().into()));
        }
        LogFormat {
            parts,
            json: format.trim_start().starts_with('{'),
            xml: format.trim_start().starts_with('<'),
        }
    }

    /// The names after `$context.` that Portico does not know.
    pub fn unknown_variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Unknown(name) => Some(&**name),
            _ => None,
        })
    }

    /// `$context.authorizer.NAME` followed at once by `:` and a name (`claims.cognito:username`):
    /// names end at `:`, so this logs the claim `cognito` and then the text `:username`.
    /// Returns the name read and the text that follows it up to the next non-name byte.
    pub fn names_cut_at_colon(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parts.windows(2).filter_map(|w| match w {
            [Part::Authorizer(name), Part::Literal(next)] => {
                let rest = std::str::from_utf8(next).ok()?.strip_prefix(':')?;
                let word = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                    .count();
                (word > 0).then(|| (&**name, &rest[..word]))
            }
            _ => None,
        })
    }

    /// For a JSON format, why its lines would not be JSON: a variable outside quotes
    /// that is not always a number (`"latency":$context.integrationLatency` writes a bare
    /// `-` when it is empty), or a template that is not JSON whatever the values are
    /// (serde_json's message on the line with every value as it can come out).
    pub fn json_problem(&self) -> Option<String> {
        if !self.json {
            return None;
        }
        let always_a_number = |p: &Part| {
            matches!(
                p,
                Part::Log(LogVar::Status | LogVar::ResponseLength | LogVar::ResponseLatency)
                    | Part::Ctx(Var::RequestTimeEpoch)
            )
        };
        let mut line = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(b) => line.extend_from_slice(b),
                p if always_a_number(p) => line.push(b'0'),
                Part::Log(LogVar::ErrorMessageString) => line.extend_from_slice(b"\"-\""),
                _ => {
                    let quoted = i > 0 && line.last() == Some(&b'"');
                    if !quoted {
                        let name = self.variable_text(part);
                        return Some(format!("$context.{name} is outside quotes"));
                    }
                    line.push(b'-');
                }
            }
        }
        serde_json::from_slice::<serde_json::Value>(&line)
            .err()
            .map(|e| format!("not JSON: {e}"))
    }

    /// The name a variable part was written with (for messages).
    fn variable_text(&self, part: &Part) -> String {
        let names = Var::NAMES.iter().map(|(n, v)| (*n, Part::Ctx(*v)));
        let names = names.chain(LOG_NAMES.iter().map(|(n, v)| (*n, Part::Log(*v))));
        match part {
            Part::Authorizer(name) => format!("authorizer.{name}"),
            Part::Unknown(name) => name.to_string(),
            p => names
                .into_iter()
                .find(|(_, q)| q == p)
                .map_or_else(|| "canary".into(), |(n, _)| n.to_string()),
        }
    }

    /// Appends one line (with its newline) for `r`.
    pub fn render(&self, out: &mut Vec<u8>, r: &LogRecord<'_>) {
        for part in &self.parts {
            match part {
                Part::Literal(b) => out.extend_from_slice(b),
                Part::Unknown(_) => out.push(b'-'),
                Part::Log(LogVar::ErrorMessageString) => {
                    out.push(b'"');
                    let start = out.len();
                    out.extend_from_slice(r.error_message.as_bytes());
                    if out.len() == start {
                        out.push(b'-');
                    }
                    self.escape_from(out, start);
                    out.push(b'"');
                }
                Part::Ctx(_) | Part::Log(_) | Part::Authorizer(_) => {
                    let start = out.len();
                    match part {
                        Part::Ctx(v) => r.context(*v).write(out),
                        Part::Log(v) => r.value(*v, out),
                        Part::Authorizer(name) => {
                            if let Some(v) = r.authorizer.and_then(|a| a.value(name)) {
                                out.extend_from_slice(v.as_bytes());
                            }
                        }
                        _ => {}
                    }
                    if out.len() == start {
                        out.push(b'-');
                    } else {
                        self.escape_from(out, start);
                    }
                }
            }
        }
        out.push(b'\n');
    }

    /// Makes the bytes appended since `start` safe inside the format: JSON string
    /// escaping for JSON formats; otherwise `"`, `\\` and control characters as `\\xHH`,
    /// as nginx writes them, so a quoted field can't be closed early to forge the rest
    /// of a line. Control characters include the C1 ones (U+0080–U+009F; U+009B is a
    /// terminal's CSI, as ESC [ is), written `\\u009b` in JSON. Bytes that are not UTF-8
    /// (a User-Agent with obs-text) become U+FFFD in JSON, as Go's encoding/json writes
    /// them, and `\\xHH` otherwise: JSON is UTF-8, and a parser (serde_json, Python's
    /// json, log shippers) refuses the whole line otherwise, so a client could keep its
    /// requests out of whatever reads the log; a plain line stays UTF-8 text too.
    fn escape_from(&self, out: &mut Vec<u8>, start: usize) {
        let markup = |b: u8| self.xml && matches!(b, b'<' | b'>' | b'&' | b'\'');
        let needs = out[start..]
            .iter()
            .any(|&b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\' || markup(b));
        if !needs {
            return;
        }
        let raw: Vec<u8> = out.drain(start..).collect();
        let mut utf8 = [0u8; 4];
        for chunk in raw.utf8_chunks() {
            for ch in chunk.valid().chars() {
                match ch {
                    '<' if self.xml => out.extend_from_slice(b"&lt;"),
                    '>' if self.xml => out.extend_from_slice(b"&gt;"),
                    '&' if self.xml => out.extend_from_slice(b"&amp;"),
                    '\'' if self.xml => out.extend_from_slice(b"&apos;"),
                    '"' if self.xml => out.extend_from_slice(b"&quot;"),
                    '"' if self.json => out.extend_from_slice(b"\\\""),
                    '\\' if self.json => out.extend_from_slice(b"\\\\"),
                    c if c.is_control() && self.json => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c if c.is_control() || c == '"' || c == '\\' => {
                        for b in c.encode_utf8(&mut utf8).bytes() {
                            let _ = write!(out, "\\x{b:02X}");
                        }
                    }
                    c => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
                }
            }
            match chunk.invalid() {
                [] => {}
                _ if self.json => out.extend_from_slice("\u{fffd}".as_bytes()),
                bad => {
                    for b in bad {
                        let _ = write!(out, "\\x{b:02X}");
                    }
                }
            }
        }
    }
}

/// What one request leaves for its access-log line.
#[derive(Debug, Clone)]
pub struct LogRecord<'a> {
    pub request_id: &'a [u8],
    pub source_ip: IpAddr,
    pub user_agent: &'a [u8],
    pub api_key_id: &'a str,
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub protocol: &'a str,
    pub route_key: &'a str,
    pub resource_path: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub domain_name: &'a [u8],
    pub status: u16,
    pub response_length: u64,
    pub response_latency: Duration,
    pub integration_latency: Option<Duration>,
    pub integration_status: Option<u16>,
    pub integration_error: &'a str,
    pub error_message: &'a str,
    pub error_response_type: &'a str,
    /// Why request validation refused the body (`$context.error.validationErrorString`).
    pub validation_error: &'a str,
    /// Milliseconds since the epoch.
    pub request_time: u64,
    pub canary: bool,
    pub client_cert: Option<&'a crate::tls::PeerCert>,
    /// WebSocket API events ("" for HTTP requests).
    pub connection_id: &'a str,
    pub event_type: &'a str,
    pub message_id: &'a str,
    /// The authorizer's verdict (`$context.authorizer.*`).
    pub authorizer: Option<&'a crate::auth::AuthState>,
}

impl<'a> LogRecord<'a> {
    /// The shared `$context` variables, from what the request left behind.
    fn context(&self, v: Var) -> Value<'a> {
        match v {
            Var::AccountId => Value::Bytes(ACCOUNT_ID.as_bytes()),
            Var::ApiId => Value::Bytes(self.api_id.as_bytes()),
            Var::DomainName => Value::Bytes(self.domain_name),
            Var::DomainPrefix => {
                let d = self.domain_name;
                Value::Bytes(&d[..d.iter().position(|&b| b == b'.').unwrap_or(d.len())])
            }
            Var::RequestId | Var::ExtendedRequestId => Value::Bytes(self.request_id),
            Var::HttpMethod => Value::Bytes(self.method),
            Var::SourceIp => Value::Ip(self.source_ip),
            Var::UserAgent => Value::Bytes(self.user_agent),
            Var::IsCanaryRequest => Value::Bool(self.canary),
            Var::ClientCertSubjectDn
            | Var::ClientCertIssuerDn
            | Var::ClientCertSerialNumber
            | Var::ClientCertNotBefore
            | Var::ClientCertNotAfter
            | Var::ClientCertPem => {
                Value::Bytes(crate::pipeline::context::client_cert(v, self.client_cert))
            }
            Var::Path => Value::Bytes(self.path),
            Var::Protocol => Value::Bytes(self.protocol.as_bytes()),
            Var::RequestTime => Value::Time(self.request_time),
            Var::RequestTimeEpoch => Value::Num(self.request_time),
            Var::ResourcePath => Value::Bytes(self.resource_path.as_bytes()),
            Var::RouteKey => Value::Bytes(self.route_key.as_bytes()),
            Var::Stage => Value::Bytes(self.stage.as_bytes()),
        }
    }

    fn value(&self, v: LogVar, out: &mut Vec<u8>) {
        let ms = |d: Duration| d.as_millis() as u64;
        match v {
            LogVar::ApiKeyId => out.extend_from_slice(self.api_key_id.as_bytes()),
            LogVar::Status => encode::decimal(out, u64::from(self.status)),
            LogVar::ResponseLength => encode::decimal(out, self.response_length),
            LogVar::ResponseLatency => encode::decimal(out, ms(self.response_latency)),
            LogVar::IntegrationLatency => {
                if let Some(d) = self.integration_latency {
                    encode::decimal(out, ms(d));
                }
            }
            LogVar::IntegrationStatus => {
                if let Some(s) = self.integration_status {
                    encode::decimal(out, u64::from(s));
                }
            }
            LogVar::IntegrationError => out.extend_from_slice(self.integration_error.as_bytes()),
            LogVar::ErrorMessage | LogVar::ErrorMessageString => {
                out.extend_from_slice(self.error_message.as_bytes())
            }
            LogVar::ErrorResponseType => out.extend_from_slice(self.error_response_type.as_bytes()),
            LogVar::ErrorValidation => out.extend_from_slice(self.validation_error.as_bytes()),
            LogVar::ConnectionId => out.extend_from_slice(self.connection_id.as_bytes()),
            LogVar::EventType => out.extend_from_slice(self.event_type.as_bytes()),
            LogVar::MessageId => out.extend_from_slice(self.message_id.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord<'static> {
        LogRecord {
            request_id: b"id-1",
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: b"curl/8 \"quoted\"\n",
            api_key_id: "",
            method: b"GET",
            path: b"/prod/x",
            protocol: "HTTP/1.1",
            route_key: "GET /x",
            resource_path: "/x",
            stage: "prod",
            api_id: "shop",
            domain_name: b"api.example.com",
            status: 200,
            response_length: 11,
            response_latency: Duration::from_millis(7),
            integration_latency: Some(Duration::from_millis(5)),
            integration_status: Some(200),
            integration_error: "",
            error_message: "",
            error_response_type: "",
            validation_error: "",
            request_time: 1_795_315_778_000,
            canary: false,
            client_cert: None,
            connection_id: "",
            event_type: "",
            message_id: "",
            authorizer: None,
        }
    }

    #[test]
    fn json_formats_stay_valid_json() {
        let f = LogFormat::compile(
            r#"{"id":"$context.requestId","ua":"$context.identity.userAgent","status":"$context.status","key":"$context.identity.apiKeyId","x":"$context.nope","t":"$context.requestTime","e":$context.requestTimeEpoch}"#,
        );
        let mut out = Vec::new();
        f.render(&mut out, &record());
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["ua"], "curl/8 \"quoted\"\n");
        assert_eq!(v["status"], "200");
        assert_eq!(v["key"], "-");
        assert_eq!(v["x"], "-");
        assert_eq!(v["t"], "22/Nov/2026:02:49:38 +0000");
        assert_eq!(v["e"], 1795315778000u64);
    }

    #[test]
    fn error_message_string_is_the_message_quoted_and_longer_names_are_unknown() {
        let f = LogFormat::compile(
            r#"{"m":$context.error.messageString,"e":"$context.error.message","x":"$context.statusCode","id":"$context.requestId."}"#,
        );
        assert_eq!(f.json_problem(), None);
        assert_eq!(f.unknown_variables().collect::<Vec<_>>(), ["statusCode"]);
        let mut r = record();
        r.error_message = "Bad \"Gateway\"";
        let mut out = Vec::new();
        f.render(&mut out, &r);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(
            (v["m"].as_str(), v["e"].as_str()),
            (Some("Bad \"Gateway\""), v["m"].as_str())
        );
        assert_eq!(v["x"], "-", "not the status, then \"Code\"");
        assert_eq!(v["id"], "id-1.");
        r.error_message = "";
        out.clear();
        f.render(&mut out, &r);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["m"], "-");
    }

    #[test]
    fn xml_values_cannot_close_their_element() {
        let f = LogFormat::compile(
            r#"<request id="$context.requestId"><ua>$context.identity.userAgent</ua></request>"#,
        );
        let mut r = record();
        r.user_agent = b"x</ua></request><request id=\"forged\"><ua>&'";
        let mut out = Vec::new();
        f.render(&mut out, &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<request id=\"id-1\"><ua>x&lt;/ua&gt;&lt;/request&gt;&lt;request id=&quot;forged&quot;&gt;&lt;ua&gt;&amp;&apos;</ua></request>\n"
        );
    }

    #[test]
    fn json_lines_stay_utf8_whatever_bytes_a_client_sends() {
        let f = LogFormat::compile(
            r#"{"ua":"$context.identity.userAgent","host":"$context.domainName"}"#,
        );
        let mut r = record();
        r.user_agent = b"ev\xff\xfeil \"x\" caf\xc3\xa9 \xe2\x82 \xc2\x9b[2J";
        r.domain_name = b"a\x80b";
        let mut out = Vec::new();
        f.render(&mut out, &r);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid UTF-8 JSON");
        assert_eq!(
            v["ua"],
            "ev\u{fffd}\u{fffd}il \"x\" caf\u{e9} \u{fffd} \u{9b}[2J"
        );
        assert!(String::from_utf8(out.clone())
            .unwrap()
            .contains(r"\u009b[2J"));
        assert_eq!(v["host"], "a\u{fffd}b");
        // Plain formats write bytes that are not UTF-8, and C1 controls, as \xHH (as
        // nginx does), and keep other non-ASCII text.
        let f = LogFormat::compile("$context.identity.userAgent");
        let mut out = Vec::new();
        f.render(&mut out, &r);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "ev\\xFF\\xFEil \\x22x\\x22 caf\u{e9} \\xE2\\x82 \\xC2\\x9B[2J\n"
        );
    }

    #[test]
    fn authorizer_names_cut_at_a_colon_are_found() {
        let f = LogFormat::compile(
            r#"{"user":"$context.authorizer.claims.cognito:username","s":"$context.authorizer.claims.sub:$context.stage"}"#,
        );
        let cut: Vec<_> = f.names_cut_at_colon().collect();
        assert_eq!(cut, [("claims.cognito", "username")]);
    }

    #[test]
    fn json_formats_with_a_variable_outside_quotes_are_found() {
        let ok = r#"{"s":$context.status,"n":$context.responseLength,"t":$context.requestTimeEpoch,"l":"$context.integrationLatency"}"#;
        assert_eq!(LogFormat::compile(ok).json_problem(), None);
        let bare = r#"{"s":"$context.status","l":$context.integrationLatency}"#;
        assert_eq!(
            LogFormat::compile(bare).json_problem().as_deref(),
            Some("$context.integrationLatency is outside quotes")
        );
        let broken = LogFormat::compile(r#"{"a":"$context.path""#).json_problem();
        assert!(broken.unwrap().starts_with("not JSON: EOF"));
        assert_eq!(
            LogFormat::compile("$context.path $context.status").json_problem(),
            None
        );
    }

    #[test]
    fn plain_formats_escape_quotes_backslashes_and_control_characters() {
        let f = LogFormat::compile("$context.httpMethod $context.path $context.status $context.identity.userAgent ($context.responseLatency ms)");
        let mut out = Vec::new();
        f.render(&mut out, &record());
        assert_eq!(
            out,
            b"GET /prod/x 200 curl/8 \\x22quoted\\x22\\x0A (7 ms)\n"
        );
    }
}
