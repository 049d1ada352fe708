//! The access-log side of a connection: what each request leaves behind (`Outcome`), the
//! request fields a log line needs, copied before the handler consumes the request from
//! `rbuf`, and the line formatted into the worker's buffer after the response
//! (`server.access_log`; docs/ARCHITECTURE.md, Config file).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::conn::Conn;
use crate::metrics::access_log::{hand_off, FLUSH_AT};
use crate::metrics::cells::bump;
use crate::metrics::log_format::LogRecord;
use crate::router::{RouteId, StageRef};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;

/// What one request leaves behind for metrics and the access log.
#[derive(Default)]
pub struct Outcome {
    pub status: u16,
    /// Response body bytes written to the client.
    pub body_sent: u64,
    pub integration_time: Option<Duration>,
    pub integration_status: Option<u16>,
    /// The `statusCode` a function returned (`$context.integration.status`); for an
    /// http integration that is `integration_status`.
    pub function_status: Option<u16>,
    /// The gateway's own answer, if it gave one.
    pub error_message: &'static str,
    /// Its gateway response type (`$context.error.responseType`), when the gateway said.
    pub error_type: &'static str,
    /// Texts only failed requests have; boxed, because every open connection carries
    /// an `Outcome` and these three buffers would be 72 bytes of each idle connection.
    texts: Option<Box<ErrorTexts>>,
    pub served_by: Option<(StageRef, RouteId)>,
    pub canary: bool,
    /// Name of the API key the request presented, when its route required one
    /// (`$context.identity.apiKeyId`).
    pub api_key: Option<std::sync::Arc<str>>,
    /// A WebSocket API connection wrote its own access-log lines (websocket::log).
    pub websocket_logged: bool,
    /// The response broke after its head went out: a TLS connection then closes without
    /// close_notify, the only way to tell a client that reads to the close (HTTP/1.0)
    /// that the body is short (RFC 8446 §6.1).
    pub cut_short: bool,
    /// A body being dropped was still coming when `LINGER_TOTAL` ran out: the connection
    /// closes without the lingering close, which would give the client that time again.
    pub linger_spent: bool,
}

/// The texts of a failed request; reused buffers once a connection has had one.
#[derive(Default)]
pub struct ErrorTexts {
    /// Why the integration failed (`$context.integrationErrorMessage`).
    pub integration: String,
    /// The gateway's whole message when it is not a fixed text (`$context.error.message`
    /// of "Missing required request parameters: [a]").
    pub message: String,
    /// `$context.error.validationErrorString`.
    pub validation: String,
    /// The API stage a request no route matched was addressed to (by host and base
    /// path): its line names the API and stage, as API Gateway's per-stage logs do.
    /// Here, not in `Outcome`, which every idle connection carries.
    pub addressed: Option<StageRef>,
    /// A refused WebSocket `$connect`'s connection id: its line is that CONNECT event's
    /// (`$context.eventType`, `$context.connectionId`), as API Gateway logs a `$connect`
    /// whatever its answer. An opened connection writes its own lines (websocket::log).
    pub connection_id: String,
}

impl Outcome {
    /// The texts, to write into.
    pub fn texts(&mut self) -> &mut ErrorTexts {
        self.texts.get_or_insert_with(Default::default)
    }

    pub fn integration_error(&self) -> &str {
        self.texts.as_ref().map_or("", |t| &t.integration)
    }

    fn error_text(&self) -> &str {
        self.texts.as_ref().map_or("", |t| &t.message)
    }

    fn validation_error(&self) -> &str {
        self.texts.as_ref().map_or("", |t| &t.validation)
    }

    fn refused_connection(&self) -> &str {
        self.texts.as_ref().map_or("", |t| &t.connection_id)
    }

    pub(super) fn reset(&mut self) {
        self.status = 0;
        self.body_sent = 0;
        self.integration_time = None;
        self.integration_status = None;
        self.function_status = None;
        if let Some(t) = &mut self.texts {
            t.integration.clear();
            t.message.clear();
            t.addressed = None;
            t.validation.clear();
            t.connection_id.clear();
        }
        self.error_message = "";
        self.error_type = "";
        self.served_by = None;
        self.canary = false;
        self.api_key = None;
        self.websocket_logged = false;
        self.cut_short = false;
        self.linger_spent = false;
    }
}

const METHOD: usize = 0;
const PATH: usize = 1;
const USER_AGENT: usize = 2;
const HOST: usize = 3;
/// The captured fields' end offsets at the start of `log_scratch`.
const LOG_ENDS: usize = 16;

impl Conn {
    /// Copies method, path, user agent and host; only when access logging is on. The
    /// scratch holds the four fields' end offsets (u32 each) and then the fields, so
    /// that a connection carries one buffer for them and no span table.
    pub(crate) fn capture_for_log(&mut self) {
        let buf = &self.rbuf[..];
        let fields = [
            Some(self.head.method_span.get(buf)),
            Some(self.head.path.get(buf)),
            self.head.header(buf, "user-agent"),
            self.head.host.map(|h| h.get(buf)),
        ];
        fill_scratch(&mut self.log_scratch, fields);
    }

    /// For a head refused before it parsed whole (431, 408): its request line's method
    /// and path, and its version for the protocol, when the line came whole and is an
    /// HTTP/1.x one; nothing otherwise. Only on that refusal's path, never per request.
    pub(super) fn capture_request_line(&mut self) {
        let Some((method, path, minor)) = request_line(&self.rbuf) else {
            self.log_scratch.clear();
            return;
        };
        fill_scratch(
            &mut self.log_scratch,
            [Some(method), Some(path), None, None],
        );
        // The protocol `log` writes. `head` is not this request's (it did not parse); the
        // connection closes after this line.
        self.head.minor_version = minor;
    }

    /// Captured field `i` (empty when nothing was captured: a head that did not parse).
    fn log_field(&self, i: usize) -> &[u8] {
        let s = &self.log_scratch;
        if s.len() < LOG_ENDS {
            return b"";
        }
        let end_of = |k: usize| {
            let e = u32::from_le_bytes([s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]]);
            (e as usize).min(s.len())
        };
        let start = if i == 0 { LOG_ENDS } else { end_of(i - 1) };
        &s[start.min(end_of(i))..end_of(i)]
    }

    /// Formats the line of the request that `started` (None: refused before it began,
    /// logged as of now) and took `latency` into the worker's log buffer.
    pub(crate) fn log(
        &self,
        ctx: &WorkerCtx,
        gen: &Generation,
        started: Option<Instant>,
        latency: Duration,
    ) {
        let Some(format) = &gen.snap.access_log else {
            return;
        };
        // A WebSocket API connection logged its own CONNECT … DISCONNECT lines.
        if self.out.websocket_logged {
            return;
        }
        let field = |i: usize| self.log_field(i);
        let (route_key, resource_path, stage, api_id) = match self.out.served_by {
            Some((s, r)) => {
                let api = &gen.snap.apis[s.api as usize];
                let route = &api.routes[r as usize];
                (
                    route.key.as_str(),
                    route.path.as_str(),
                    api.stages[s.stage as usize].name.as_str(),
                    api.name.as_str(),
                )
            }
            None => match self.out.texts.as_ref().and_then(|t| t.addressed) {
                Some(s) => {
                    let api = &gen.snap.apis[s.api as usize];
                    let stage = api.stages[s.stage as usize].name.as_str();
                    ("", "", stage, api.name.as_str())
                }
                None => ("", "", "", ""),
            },
        };
        let record = LogRecord {
            request_id: &self.request_id,
            source_ip: self.peer.ip(),
            user_agent: field(USER_AGENT),
            api_key_id: self.out.api_key.as_deref().unwrap_or(""),
            method: field(METHOD),
            path: field(PATH),
            // Like method and path, unknown for a head that did not parse: `head` is then
            // the previous request's on this connection (an HTTP/1.0 one logged a later
            // bad request as HTTP/1.0), or nothing's.
            protocol: match (self.log_scratch.len() < LOG_ENDS, self.head.minor_version) {
                (true, _) => "",
                (false, 0) => "HTTP/1.0",
                (false, _) => "HTTP/1.1",
            },
            route_key,
            resource_path,
            stage,
            api_id,
            // As `$context.domainName` resolves everywhere else: the Host without its
            // port or trailing dot.
            domain_name: crate::router::domain_name(field(HOST)),
            status: self.out.status,
            response_length: self.out.body_sent,
            response_latency: latency,
            integration_latency: self.out.integration_time,
            integration_status: self.out.integration_status,
            function_status: self.out.function_status,
            integration_error: self.out.integration_error(),
            error_message: if self.out.error_text().is_empty() {
                self.out.error_message
            } else {
                self.out.error_text()
            },
            validation_error: self.out.validation_error(),
            error_response_type: match (self.req.auth.error.is_empty(), self.out.status) {
                // The answer said which it was.
                _ if !self.out.error_type.is_empty() => self.out.error_type,
                // The authorizer refused: not an API key problem.
                (false, 403) => "ACCESS_DENIED",
                (false, 500) => "AUTHORIZER_FAILURE",
                _ => response_type(self.out.status, self.out.error_message),
            },
            request_time: started
                .map_or_else(
                    || {
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                    },
                    crate::runtime::coarse_timer::unix_time_of,
                )
                .as_millis() as u64,
            canary: self.out.canary,
            client_cert: self.peer_cert.as_deref().filter(|_| self.req.client_cert),
            connection_id: self.out.refused_connection(),
            event_type: match self.out.refused_connection() {
                "" => "",
                _ => "CONNECT",
            },
            message_id: "",
            authorizer: Some(&self.req.auth),
        };
        let mut buf = ctx.log_buf.borrow_mut();
        format.render(&mut buf, &record);
        ctx.log_lines.set(ctx.log_lines.get() + 1);
        if buf.len() >= FLUSH_AT {
            let dropped = hand_off(&mut buf, ctx.log_lines.replace(0));
            bump(&ctx.cells.access_log_dropped, dropped);
        }
    }
}

/// Writes the four fields' end offsets and then the fields into `scratch` (see
/// `Conn::capture_for_log`).
fn fill_scratch(scratch: &mut Vec<u8>, fields: [Option<&[u8]>; 4]) {
    scratch.clear();
    scratch.extend_from_slice(&[0; LOG_ENDS]);
    for (i, f) in fields.iter().enumerate() {
        scratch.extend_from_slice(f.unwrap_or(b""));
        let end = (scratch.len() as u32).to_le_bytes();
        scratch[4 * i..4 * i + 4].copy_from_slice(&end);
    }
}

/// The longest request line a head gets to a 431 or a 408 with: past the limit on the
/// line (`max_header_bytes`, at most 8 KiB: `server::head`) it is refused 414 first.
const LONGEST_LINE: usize = 8192;

/// `METHOD SP request-target SP HTTP/1.x CRLF` at the start of `buf`: the method, the
/// target's path as the log has it for a parsed head (up to `?`; of an absolute-form
/// target, what follows its authority) and the minor version. None when the line is not
/// whole or not one a head could start with.
fn request_line(buf: &[u8]) -> Option<(&[u8], &[u8], u8)> {
    let window = &buf[..buf.len().min(LONGEST_LINE + 2)];
    let line = &window[..memchr::memmem::find(window, b"\r\n")?];
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let visible = |b: &u8| (0x21..0x7f).contains(b);
    if parts.next().is_some()
        || method.is_empty()
        || !method.iter().all(token)
        || target.is_empty()
        || !target.iter().all(visible)
    {
        return None;
    }
    let minor = match version {
        b"HTTP/1.0" => 0,
        b"HTTP/1.1" => 1,
        _ => return None,
    };
    let target = &target[..memchr::memchr(b'?', target).unwrap_or(target.len())];
    let path = match memchr::memmem::find(target, b"://") {
        Some(i) if target[..i].iter().all(u8::is_ascii_alphabetic) => {
            let rest = &target[i + 3..];
            &rest[memchr::memchr(b'/', rest).unwrap_or(rest.len())..]
        }
        _ => target,
    };
    Some((method, path, minor))
}

/// API Gateway's gateway-response type for an answer Portico gave itself ("" otherwise).
fn response_type(status: u16, message: &str) -> &'static str {
    if message.is_empty() {
        return "";
    }
    match (status, message) {
        (429, "Limit Exceeded") => "QUOTA_EXCEEDED",
        (429, _) => "THROTTLED",
        (403, "Forbidden") => "INVALID_API_KEY",
        (403, _) => "ACCESS_DENIED",
        (401, _) => "UNAUTHORIZED",
        (404, _) => "MISSING_AUTHENTICATION_TOKEN",
        (413, _) => "REQUEST_TOO_LARGE",
        (504, _) => "INTEGRATION_TIMEOUT",
        (502, _) => "INTEGRATION_FAILURE",
        (400..=499, _) => "DEFAULT_4XX",
        _ => "DEFAULT_5XX",
    }
}

#[cfg(test)]
mod tests {
    use super::{request_line, LONGEST_LINE};

    #[test]
    fn a_whole_request_line_is_read_for_the_log() {
        let got = |b: &[u8]| request_line(b).map(|(m, p, v)| (m.to_vec(), p.to_vec(), v));
        let want = |m: &str, p: &str, v| Some((m.as_bytes().to_vec(), p.as_bytes().to_vec(), v));
        assert_eq!(got(b"GET /a?b=1 HTTP/1.1\r\nX: y"), want("GET", "/a", 1));
        assert_eq!(got(b"POST /p HTTP/1.0\r\n"), want("POST", "/p", 0));
        assert_eq!(
            got(b"GET http://h.example:8/x/y?q HTTP/1.1\r\n"),
            want("GET", "/x/y", 1)
        );
        assert_eq!(
            got(b"GET http://h.example HTTP/1.1\r\n"),
            want("GET", "", 1)
        );
        assert_eq!(got(b"OPTIONS * HTTP/1.1\r\n"), want("OPTIONS", "*", 1));
        // Not whole, or not a request line a head could start with.
        for bad in [
            &b"GET /a HTTP/1.1"[..],
            b"GET /a HT",
            b"GET /a HTTP/2.0\r\n",
            b"GET  /a HTTP/1.1\r\n",
            b"GET /a HTTP/1.1 x\r\n",
            b"G(T /a HTTP/1.1\r\n",
            b"GET /\x01 HTTP/1.1\r\n",
            b"\r\n",
        ] {
            assert_eq!(got(bad), None, "{bad:?}");
        }
        // A line longer than any that gets here is not looked for past the limit.
        let mut long = b"GET /".to_vec();
        long.resize(LONGEST_LINE + 10, b'a');
        long.extend_from_slice(b" HTTP/1.1\r\n");
        assert_eq!(got(&long), None);
    }
}
