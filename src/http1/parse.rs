//! Request heads: httparse checks the syntax, then this module applies the framing rules
//! that keep a proxy safe from request smuggling (RFC 9112 §2.2, §3.2, §6). Every name and
//! value stays in the caller's buffer and is described by a [`Span`]; nothing is copied.
//!
//! Choices a reader might trip over:
//! - CONNECT is answered 501 Not Implemented: the gateway does not tunnel.
//! - TRACE is answered 405, as nginx does: a backend that echoes it would show the client
//!   the headers the gateway added (mapped credentials among them).
//! - A method that is not upper-case letters, `_` and `-` (`get`) is 400, as nginx answers:
//!   see [`is_method_name`].
//! - A bare LF anywhere in the head is 400. httparse accepts LF as a line end, but a backend
//!   that does not would see one header where we saw two, which is how smuggling starts.
//! - A request-target with a fragment (`#`) or non-ASCII bytes is 400: RFC 9112 allows
//!   neither, and two layers that decode them differently would route differently.
//! - `Content-Length: 0` gives [`BodyKind::Empty`], so callers have one "no body" case.
//! - A request whose Transfer-Encoding has a coding besides `chunked` (`gzip, chunked`)
//!   is 501, as nginx answers: the proxy would forward it undecoded, and a backend that
//!   does not know the coding may frame the body differently (a smuggled request). A
//!   response with one is a 502 (`super::response`).
//! - `HTTP/1.2` … `HTTP/1.9` are read as HTTP/1.1 and `HTTP/2.0` and later are 505, as
//!   nginx does; httparse knows only 1.0 and 1.1, so those lines take a slower path.

use std::mem::MaybeUninit;

use super::framing::Framing;
use super::target::{is_valid_authority, split_target};

/// Header slots on the stack for one parse. `ParseLimits::max_headers` above this is capped
/// here; uninitialised slots cost nothing, so it is generous.
pub(crate) const HEADER_SLOTS: usize = 256;
/// RFC 9112 §2.2 lets a server skip empty lines before the request line (some clients send
/// a CRLF after a POST body); a handful is plenty and bounds the work.
const MAX_LEADING_EMPTY_LINES: usize = 4;
/// " HTTP/1.x" after the request-target.
const VERSION_SUFFIX: usize = 9;

/// Byte range into the buffer a head was parsed from. u32 keeps heads small; a head can
/// never be that long because of the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    Other,
}

impl Method {
    /// Methods are case-sensitive (RFC 9110 §9.1): `get` is `Other`.
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// RFC 9110 §9.2.2: decides whether a failed upstream request may be retried.
    pub fn is_idempotent(self) -> bool {
        // GET HEAD PUT DELETE OPTIONS TRACE; an unknown method is assumed unsafe to repeat.
        !matches!(
            self,
            Method::Post | Method::Patch | Method::Connect | Method::Other
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
}

/// A parsed request head. Spans point into the buffer given to [`parse_request`]. After
/// `Ok(false)` or an error the contents are unspecified; reuse the value for the next parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// Method token as sent.
    pub method_span: Span,
    /// Request-target as sent.
    pub target: Span,
    /// Origin-form: up to '?'. Absolute-form: the path after the authority, empty when there
    /// is none (treat as "/"). `*` for `OPTIONS *`.
    pub path: Span,
    /// After '?', without it; `Some` and empty for a bare '?'.
    pub query: Option<Span>,
    /// host[:port] of an absolute-form target.
    pub authority: Option<Span>,
    pub minor_version: u8,
    pub headers: Vec<HeaderSpan>,
    /// Leading empty lines + request line + header lines + the empty line.
    pub head_len: usize,
    pub body: BodyKind,
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (HTTP/1.0 clients must not get a 100).
    pub expect_continue: bool,
    /// The absolute-form authority if any, else the Host header value.
    pub host: Option<Span>,
    /// Connection lists "upgrade" and an Upgrade header is present.
    pub upgrade: bool,
    /// Connection names other fields: see [`super::hop::HopByHop`].
    pub connection_names: bool,
    /// A header backends read as the request's real method (see [`is_method_override`]).
    pub method_override: bool,
}

/// The headers backends read as the request's real method (Express's and Rack's
/// X-HTTP-Method-Override, Microsoft's X-HTTP-Method, X-Method-Override), in any case
/// and with `_` for `-` (as CGI-style backends read names).
pub fn is_method_override(name: &[u8]) -> bool {
    [
        &b"x-http-method-override"[..],
        b"x-http-method",
        b"x-method-override",
    ]
    .iter()
    .any(|n| super::same_cgi_name(name, n))
}

impl RequestHead {
    pub fn new() -> Self {
        Self::with_headers(Vec::with_capacity(32))
    }

    /// A head that parses into `headers` (an empty table, e.g. a spare one).
    pub fn with_headers(mut headers: Vec<HeaderSpan>) -> Self {
        headers.clear();
        RequestHead {
            method: Method::Get,
            method_span: Span::default(),
            target: Span::default(),
            path: Span::default(),
            query: None,
            authority: None,
            minor_version: 1,
            headers,
            head_len: 0,
            body: BodyKind::Empty,
            keep_alive: true,
            expect_continue: false,
            host: None,
            upgrade: false,
            connection_names: false,
            method_override: false,
        }
    }

    /// First header with this name, compared ASCII case-insensitively.
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        find_header(&self.headers, buf, name)
    }

    /// The header with this name, unless the head's `Connection` names it: a field for
    /// this hop only (RFC 9110 §7.6.1), which Portico does not continue where it writes
    /// its own from the client's (X-Forwarded-For, trace ids).
    pub fn continued<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.continued_values(buf, name).next()
    }

    /// Every value of the header `name`, in order; none when the head's `Connection`
    /// names it (see [`RequestHead::continued`]).
    pub fn continued_values<'s, 'a: 's>(
        &'s self,
        buf: &'a [u8],
        name: &'s str,
    ) -> impl Iterator<Item = &'a [u8]> + 's {
        let named = self.names_in_connection(buf, name.as_bytes());
        let lines = self.headers.iter().filter(move |_| !named);
        lines
            .filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |h| h.value.get(buf))
    }

    /// Whether the head's `Connection` names `name`.
    pub fn names_in_connection(&self, buf: &[u8], name: &[u8]) -> bool {
        self.connection_names
            && crate::http1::hop::HopByHop::new(&self.headers, buf, true).drops(name)
    }

    /// The header with this name when the head has exactly one.
    pub fn only_header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let mut named =
            (self.headers.iter()).filter(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()));
        let first = named.next()?;
        named.next().is_none().then(|| first.value.get(buf))
    }
}

impl Default for RequestHead {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn find_header<'a>(
    headers: &[HeaderSpan],
    buf: &'a [u8],
    name: &str,
) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| h.value.get(buf))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Leading empty lines + request line + headers; past it → 431.
    pub max_header_bytes: usize,
    /// Request line without its CRLF; past it → 414.
    pub max_request_line: usize,
    /// A declared Content-Length above it → 413.
    pub max_body_bytes: u64,
    /// More header lines → 431. Capped at 256.
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_header_bytes: 10240,
            max_request_line: 8192,
            max_body_bytes: 10 * 1024 * 1024,
            max_headers: 100,
        }
    }
}

/// Why a head was refused. `BadRequest` carries a detail for logs; clients get `message()`.
/// Also used by [`crate::http1::response::parse_response`], where the caller turns any
/// error into a 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    BadRequest(&'static str),
    UriTooLong,
    HeaderTooLarge,
    BodyTooLarge,
    NotImplemented,
    /// HTTP/2.0 and later majors in an HTTP/1 request line (505, as nginx answers).
    VersionNotSupported,
    /// TRACE (405, as nginx answers).
    MethodNotAllowed,
}

impl ParseError {
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::UriTooLong => 414,
            ParseError::HeaderTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::NotImplemented => 501,
            ParseError::VersionNotSupported => 505,
            ParseError::MethodNotAllowed => 405,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            ParseError::BadRequest(_) => "Bad Request",
            ParseError::UriTooLong => "Request-URI Too Long",
            ParseError::HeaderTooLarge => "Request Header Fields Too Large",
            ParseError::BodyTooLarge => "Request Entity Too Large",
            ParseError::NotImplemented => "Not Implemented",
            ParseError::VersionNotSupported => "HTTP Version Not Supported",
            ParseError::MethodNotAllowed => "Method Not Allowed",
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::BadRequest(detail) => write!(f, "bad request: {detail}"),
            other => f.write_str(other.message()),
        }
    }
}

impl std::error::Error for ParseError {}

pub(super) fn bad(detail: &'static str) -> ParseError {
    ParseError::BadRequest(detail)
}

/// Ok(true) = complete head parsed into `head`; Ok(false) = need more bytes.
pub fn parse_request(
    buf: &[u8],
    limits: &ParseLimits,
    head: &mut RequestHead,
) -> Result<bool, ParseError> {
    let Some(skip) = skip_empty_lines(buf)? else {
        return Ok(false);
    };
    let line = &buf[skip..];
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.min(HEADER_SLOTS)];
    let mut req = httparse::Request::new(&mut []);
    // The default config is the strict one: no space before ':', no obs-fold, single spaces
    // in the request line, invalid header lines are errors rather than skipped.
    let parsed =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, line, slots);
    // Header slots for a request line httparse refuses only for its version (HTTP/1.2);
    // initialised on that path alone.
    let mut later_slots: [httparse::Header<'_>; HEADER_SLOTS];
    let (head_len, method, target, minor, headers) = match parsed {
        Ok(httparse::Status::Complete(n)) => {
            let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version)
            else {
                return Err(bad("incomplete request line"));
            };
            (
                skip + n,
                method.as_bytes(),
                target.as_bytes(),
                minor,
                &*req.headers,
            )
        }
        Ok(httparse::Status::Partial) => {
            check_partial(line, buf.len(), limits)?;
            return Ok(false);
        }
        Err(httparse::Error::Version) => {
            let Some(line_end) = later_minor_version(line)? else {
                check_partial(line, buf.len(), limits)?;
                return Ok(false);
            };
            later_slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
            let slots = &mut later_slots[..limits.max_headers.min(HEADER_SLOTS)];
            match httparse::parse_headers(&line[line_end..], slots) {
                Ok(httparse::Status::Complete((n, headers))) => {
                    // httparse checked the method and the target before the version.
                    let mut parts = line[..line_end].splitn(3, |&b| b == b' ');
                    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
                        return Err(bad("incomplete request line"));
                    };
                    (skip + line_end + n, method, target, 1, headers)
                }
                Ok(httparse::Status::Partial) => {
                    check_partial(line, buf.len(), limits)?;
                    return Ok(false);
                }
                Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeaderTooLarge),
                Err(e) => return Err(ParseError::BadRequest(httparse_detail(e))),
            }
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeaderTooLarge),
        Err(e) => return Err(ParseError::BadRequest(httparse_detail(e))),
    };
    if head_len > u32::MAX as usize {
        return Err(ParseError::HeaderTooLarge); // Spans are u32
    }
    let target = span_of(buf, target);
    if target.end as usize + VERSION_SUFFIX - skip > limits.max_request_line {
        return Err(ParseError::UriTooLong);
    }
    if head_len > limits.max_header_bytes {
        return Err(ParseError::HeaderTooLarge);
    }
    if has_bare_lf(&buf[skip..head_len]) {
        return Err(bad("bare LF in head"));
    }

    let method_span = span_of(buf, method);
    head.method = Method::from_bytes(method);
    match head.method {
        Method::Connect => return Err(ParseError::NotImplemented),
        Method::Other if !is_method_name(method) => return Err(bad("method not in upper case")),
        _ => {}
    }
    head.method_span = method_span;
    head.target = target;
    head.minor_version = minor;
    split_target(buf, head)?;

    let mut framing = Framing::default();
    let mut host: Option<Span> = None;
    let mut upgrade_header = false;
    let mut expect_continue = false;
    let mut method_override = false;
    head.headers.clear();
    for h in headers {
        let name = h.name.as_bytes();
        let entry = HeaderSpan {
            name: span_of(buf, name),
            value: span_of(buf, h.value),
        };
        head.headers.push(entry);
        if framing
            .observe(name, h.value)
            .map_err(ParseError::BadRequest)?
        {
            continue;
        }
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                if host.is_some() {
                    return Err(bad("more than one Host"));
                }
                if !is_valid_authority(h.value) {
                    return Err(bad("invalid Host"));
                }
                host = Some(entry.value);
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect_continue |= trim_ows(h.value).eq_ignore_ascii_case(b"100-continue");
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => {
                upgrade_header |= !trim_ows(h.value).is_empty();
            }
            13 | 17 | 22 => method_override |= is_method_override(name),
            _ => {}
        }
    }

    if minor == 1 && host.is_none() {
        return Err(bad("missing Host"));
    }
    // Before the body's length is judged: a 413 for a declared length, and a TRACE's
    // 405, are logged with the head's method, path and host, which are all in by now.
    head.host = head.authority.or(host);
    if head.method == Method::Trace {
        return Err(ParseError::MethodNotAllowed);
    }
    head.body = if framing.transfer_encoding {
        if framing.content_length.is_some() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if minor == 0 {
            return Err(bad("Transfer-Encoding on HTTP/1.0"));
        }
        if !framing.chunked_last {
            return Err(bad("final transfer-coding is not chunked"));
        }
        if framing.other_coding {
            return Err(ParseError::NotImplemented);
        }
        BodyKind::Chunked
    } else {
        match framing.content_length {
            None | Some(0) => BodyKind::Empty,
            Some(n) if n > limits.max_body_bytes => return Err(ParseError::BodyTooLarge),
            Some(n) => BodyKind::Length(n),
        }
    };
    head.head_len = head_len;
    head.keep_alive = framing.keep_alive(minor);
    head.expect_continue = expect_continue && minor == 1;
    head.upgrade = framing.upgrade && upgrade_header;
    head.connection_names = framing.names_fields;
    head.method_override = method_override;
    Ok(true)
}

/// A request line httparse refused for its version alone (it reads the method and the
/// target first). `HTTP/1.x` for x ≥ 2 is served as HTTP/1.1, as nginx does (RFC 9110
/// §2.5: a recipient uses the highest minor version it supports): Some(where the header
/// lines start). A later major is 505; anything else, `HTTP/0.9` included, stays 400.
/// None while the version may still become one of those.
fn later_minor_version(line: &[u8]) -> Result<Option<usize>, ParseError> {
    const SHAPE: &[u8; 10] = b"HTTP/#.#\r\n";
    let mut spaces = line.iter().enumerate().filter(|(_, &b)| b == b' ');
    let Some((start, _)) = spaces.nth(1) else {
        return Err(bad("unsupported HTTP version"));
    };
    let version = &line[start + 1..];
    for (&b, &want) in version.iter().zip(SHAPE) {
        let fits = match want {
            b'#' => b.is_ascii_digit(),
            _ => b == want,
        };
        if !fits {
            return Err(bad("unsupported HTTP version"));
        }
    }
    if version.len() < SHAPE.len() {
        return Ok(None);
    }
    match version[5] {
        // HTTP/1.0 and HTTP/1.1 never get here.
        b'1' => Ok(Some(start + 1 + SHAPE.len())),
        b'0' => Err(bad("unsupported HTTP version")),
        _ => Err(ParseError::VersionNotSupported),
    }
}

/// Limits for a head that is not complete yet. The request line is measured without CRLF.
fn check_partial(line: &[u8], total: usize, limits: &ParseLimits) -> Result<(), ParseError> {
    // Only look as far as a line could legally go, so a slow client cannot make us rescan
    // a huge buffer for the line end on every read.
    let window = &line[..line.len().min(limits.max_request_line.saturating_add(2))];
    let line_len = match window.iter().position(|&b| b == b'\n') {
        Some(lf) => lf.saturating_sub(1),
        None => line.len() - usize::from(line.last() == Some(&b'\r')),
    };
    if line_len > limits.max_request_line {
        return Err(ParseError::UriTooLong);
    }
    if total > limits.max_header_bytes {
        return Err(ParseError::HeaderTooLarge);
    }
    Ok(())
}

pub(crate) fn httparse_detail(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "unsupported HTTP version",
    }
}

/// Where the message starts after up to MAX_LEADING_EMPTY_LINES CRLFs; None while the
/// buffer holds nothing but (part of) empty lines.
pub(crate) fn skip_empty_lines(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut i = 0;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b'\r') => match buf.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => {
                    i += 2;
                    if i / 2 > MAX_LEADING_EMPTY_LINES {
                        return Err(bad("too many empty lines before the head"));
                    }
                }
                Some(_) => return Err(bad("bare CR")),
            },
            Some(b'\n') => return Err(bad("bare LF in head")),
            Some(_) => return Ok(Some(i)),
        }
    }
}

pub(crate) fn has_bare_lf(head: &[u8]) -> bool {
    // memchr finds the few line ends: a walk over every byte pair was ~190 ns of a
    // request whose head carries a JWT.
    memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r')
}

/// Range of `part` inside `buf`. httparse hands out slices of the buffer it was given, except
/// for an empty reason phrase, which may be a static "": that becomes an empty Span.
pub(crate) fn span_of(buf: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if start > buf.len() || part.len() > buf.len() - start {
        return Span::default();
    }
    Span::new(start, start + part.len())
}

pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// A method name as nginx reads one: upper-case letters, `_` and `-`. Methods are
/// case-sensitive, but a backend that folds case (Werkzeug upper-cases them) would run
/// `get /admin` as the GET that the route `GET /admin` guards, while the router sent it
/// to `ANY` or `$default` with other checks.
fn is_method_name(m: &[u8]) -> bool {
    m.iter()
        .all(|&b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
}

/// RFC 9110 tchar: what a header name or a token may hold.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An RFC 9110 token (a header name, a media type's parts): one tchar or more. An empty
/// name is none: `: x` on the wire makes strict clients and proxies refuse the message.
pub(crate) fn is_token(v: impl AsRef<[u8]>) -> bool {
    let v = v.as_ref();
    !v.is_empty() && v.iter().all(|&b| is_tchar(b))
}
