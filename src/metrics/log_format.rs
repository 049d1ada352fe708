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
    /// What answered the gateway: the backend, or for a function the Lambda service's
    /// status (its endpoint's HTTP status; 200 for any invocation it ran).
    IntegrationStatus,
    /// `integration.status`: the backend's status, or the `statusCode` the function
    /// code returned (AWS's HTTP API logging variables draw this line).
    IntegrationFunctionStatus,
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

impl LogVar {
    /// Written as a decimal number (or not at all): never needs escaping.
    fn is_number(self) -> bool {
        matches!(
            self,
            LogVar::Status
                | LogVar::ResponseLength
                | LogVar::ResponseLatency
                | LogVar::IntegrationLatency
                | LogVar::IntegrationStatus
                | LogVar::IntegrationFunctionStatus
        )
    }
}

const LOG_NAMES: &[(&str, LogVar)] = &[
    ("identity.apiKeyId", LogVar::ApiKeyId),
    ("status", LogVar::Status),
    ("responseLength", LogVar::ResponseLength),
    ("responseLatency", LogVar::ResponseLatency),
    ("integrationLatency", LogVar::IntegrationLatency),
    ("integration.latency", LogVar::IntegrationLatency),
    ("integrationStatus", LogVar::IntegrationStatus),
    ("integration.integrationStatus", LogVar::IntegrationStatus),
    ("integration.status", LogVar::IntegrationFunctionStatus),
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

const PLAIN: &str = "$context.";
const BRACED: &str = "${context.";

/// Whether JSON text `json` ends inside a string: its quotes counted, those escaped
/// with a backslash inside a string not (the text before a variable in a JSON format,
/// with every variable before it as it can come out).
pub(crate) fn in_string(json: &[u8]) -> bool {
    let (mut inside, mut escaped) = (false, false);
    for &b in json {
        if escaped {
            escaped = false;
        } else if inside && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            inside = !inside;
        }
    }
    inside
}

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
    /// Each part's text as written (`$context.canary`, `${context.path}`; empty for
    /// literals), for `check`'s messages: several names read as one variable.
    written: Vec<Box<str>>,
    json: bool,
    /// A format that starts with `<` (API Gateway's XML preset): `<`, `>`, `&` and `'`
    /// in values are written as entities, so a value can't close its element.
    xml: bool,
}

impl LogFormat {
    /// Compiles `format`. Line breaks at its end are dropped: a YAML block scalar
    /// (`format: |`) keeps one, and every line would be followed by an empty one.
    pub fn compile(format: &str) -> LogFormat {
        let format = format.trim_end_matches(['\n', '\r']);
        let mut f = LogFormat {
            parts: Vec::new(),
            written: Vec::new(),
            json: format.trim_start().starts_with('{'),
            xml: format.trim_start().starts_with('<'),
        };
        let mut rest = format;
        // The first reference of either form: `${context.a} $context.b` has two.
        while let Some((at, braced)) = [(PLAIN, false), (BRACED, true)]
            .iter()
            .filter_map(|(prefix, braced)| Some((rest.find(prefix)?, *braced)))
            .min()
        {
            if at > 0 {
                f.push(Part::Literal(rest.as_bytes()[..at].into()), "");
            }
            rest = &rest[at..];
            let used = if braced {
                f.braced(rest)
            } else {
                f.plain(rest)
            };
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            f.push(Part::Literal(rest.as_bytes().into()), "");
        }
        f
    }

    fn push(&mut self, part: Part, written: &str) {
        self.parts.push(part);
        self.written.push(written.into());
    }

    /// Reads the `$context.NAME` `text` starts with; returns the bytes it took.
    fn plain(&mut self, text: &str) -> usize {
        let after = &text[PLAIN.len()..];
        let ident = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
            .count();
        let (part, len) = if let Some(name) = after[..ident].strip_prefix("authorizer.") {
            // `$context.authorizer.claims.NAME`, `.NAME`, `.error`, `.principalId`.
            let name = name.trim_end_matches('.');
            (
                Part::Authorizer(name.into()),
                "authorizer.".len() + name.len(),
            )
        } else {
            match lookup(&after[..ident]) {
                Some((len, part)) => (part, len),
                None => (Part::Unknown(after[..ident].into()), ident),
            }
        };
        let used = PLAIN.len() + len;
        self.push(part, &text[..used]);
        used
    }

    /// Reads the `${context.NAME}` `text` starts with, as mappings and gateway responses
    /// take it: the name is all up to `}` (so a claim's may hold `:`). Unclosed, it is
    /// an unknown variable (`check` says so), not text logged as written.
    fn braced(&mut self, text: &str) -> usize {
        let after = &text[BRACED.len()..];
        let Some(close) = after.find('}') else {
            let ident = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
                .count();
            let used = BRACED.len() + ident;
            self.push(Part::Unknown(after[..ident].into()), &text[..used]);
            return used;
        };
        let name = &after[..close];
        let part = match name.strip_prefix("authorizer.") {
            Some(name) if !name.is_empty() => Part::Authorizer(name.into()),
            _ => match lookup(name) {
                Some((len, part)) if len == name.len() => part,
                _ => Part::Unknown(name.into()),
            },
        };
        let used = BRACED.len() + close + 1;
        self.push(part, &text[..used]);
        used
    }

    /// The `$context` variables Portico does not know, as written.
    pub fn unknown_variables(&self) -> impl Iterator<Item = &str> {
        let written = self.written.iter();
        (self.parts.iter().zip(written)).filter_map(|(p, w)| match p {
            Part::Unknown(_) => Some(&**w),
            _ => None,
        })
    }

    /// `$context.authorizer.NAME` followed at once by `:` and a name (`claims.cognito:username`):
    /// names end at `:`, so this logs the claim `cognito` and then the text `:username`.
    /// Returns the name read and the text that follows it up to the next non-name byte.
    pub fn names_cut_at_colon(&self) -> impl Iterator<Item = (&str, &str)> {
        let braced = self.written.iter().map(|w| w.starts_with(BRACED));
        let plain = self
            .parts
            .windows(2)
            .zip(braced)
            .filter(|(_, braced)| !braced);
        plain.filter_map(|(w, _)| match w {
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
    /// that is not always a number or a boolean (`"latency":$context.integrationLatency` writes a bare
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
        for (part, written) in self.parts.iter().zip(&self.written) {
            match part {
                Part::Literal(b) => line.extend_from_slice(b),
                p if always_a_number(p) => line.push(b'0'),
                // Never empty: `true` or `false`, JSON as it stands.
                Part::Ctx(Var::IsCanaryRequest) => line.extend_from_slice(b"true"),
                Part::Log(LogVar::ErrorMessageString) => line.extend_from_slice(b"\"-\""),
                _ => {
                    if !in_string(&line) {
                        return Some(format!("{written} is outside quotes"));
                    }
                    line.push(b'-');
                }
            }
        }
        serde_json::from_slice::<serde_json::Value>(&line)
            .err()
            .map(|e| format!("not JSON: {e}"))
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
                    // Numbers, times, addresses and booleans need no escaping.
                    let text = match part {
                        Part::Ctx(v) => {
                            let value = r.context(*v);
                            value.write(out);
                            matches!(value, Value::Bytes(_))
                        }
                        Part::Log(v) => {
                            r.value(*v, out);
                            !v.is_number()
                        }
                        Part::Authorizer(name) => {
                            if let Some(v) = r.authorizer.and_then(|a| a.value(name)) {
                                out.extend_from_slice(v.as_bytes());
                            }
                            true
                        }
                        _ => true,
                    };
                    if out.len() == start {
                        out.push(b'-');
                    } else if text {
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
        let special = &SPECIAL[self.xml as usize];
        if !out[start..].iter().any(|&b| special[b as usize]) {
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
                    // U+2028/U+2029 end a line for some readers (JavaScript, editors),
                    // as the stderr log treats them; Go's encoding/json escapes them too.
                    c if (c.is_control() || is_line_separator(c)) && self.json => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c if is_line_separator(c) && self.xml => {
                        let _ = write!(out, "&#x{:x};", u32::from(c));
                    }
                    // Not characters XML 1.0 allows (its `Char`): a parser refuses the
                    // line, as JSON's would a line that is not UTF-8.
                    c if c.is_control()
                        || is_line_separator(c)
                        || c == '"'
                        || c == '\\'
                        || (self.xml && matches!(c, '\u{fffe}' | '\u{ffff}')) =>
                    {
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

fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Bytes a value can't be written with as they are, for `escape_from`: control
/// characters, DEL, non-ASCII, `"` and `\\`; in XML also `<`, `>`, `&` and `'`. A table
/// lookup per byte (the tests in the loop took ~90 ns of every line).
static SPECIAL: [[bool; 256]; 2] = [specials(false), specials(true)];

const fn specials(xml: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c < 0x20
            || c >= 0x7f
            || c == b'"'
            || c == b'\\'
            || (xml && matches!(c, b'<' | b'>' | b'&' | b'\''));
        b += 1;
    }
    table
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
    /// The status a function's code returned (None: not a function, or it returned none).
    pub function_status: Option<u16>,
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
            Var::IamAccessKey
            | Var::IamAccountId
            | Var::IamCaller
            | Var::IamUser
            | Var::IamUserArn
            | Var::Unset => Value::Bytes(crate::pipeline::context::iam_caller(v, self.authorizer)),
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
            LogVar::IntegrationFunctionStatus => {
                if let Some(s) = self.function_status.or(self.integration_status) {
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
mod tests;
