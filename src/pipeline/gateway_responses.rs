//! Gateway responses (API Gateway's `x-amazon-apigateway-gateway-responses`): per
//! response type, the status, headers and body the gateway answers with instead of its
//! own `{"message": ...}`. Types fall back to DEFAULT_4XX / DEFAULT_5XX; bodies and header
//! values may use `$context` variables (`$context.authorizer.*` too), `$stageVariables.*`,
//! `$context.error.message`,
//! `$context.error.messageString` (the message quoted), `$context.error.responseType` and
//! `$context.error.validationErrorString`. Templates are compiled when the config loads.

use crate::config::definitions::GatewayResponse;
use crate::http1::encode;
use crate::http1::parse::Method;
use crate::pipeline::context::{self, request_view, RequestView, Var};
use crate::pipeline::cors::{is_cors_header, vary_covers_origin};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

macro_rules! response_types {
    ($($name:literal => $variant:ident $status:literal,)*) => {
        /// API Gateway's response types, with the status each answers by default.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ResponseType { $($variant,)* }
        impl ResponseType {
            pub const NAMES: &'static [(&'static str, ResponseType)] =
                &[$(($name, ResponseType::$variant),)*];
            pub fn default_status(self) -> u16 {
                match self { $(ResponseType::$variant => $status,)* }
            }
        }
    };
}

response_types! {
    "ACCESS_DENIED" => AccessDenied 403,
    "API_CONFIGURATION_ERROR" => ApiConfigurationError 500,
    "AUTHORIZER_CONFIGURATION_ERROR" => AuthorizerConfigurationError 500,
    "AUTHORIZER_FAILURE" => AuthorizerFailure 500,
    "BAD_REQUEST_PARAMETERS" => BadRequestParameters 400,
    "BAD_REQUEST_BODY" => BadRequestBody 400,
    "DEFAULT_4XX" => Default4xx 400,
    "DEFAULT_5XX" => Default5xx 500,
    "EXPIRED_TOKEN" => ExpiredToken 403,
    "INTEGRATION_FAILURE" => IntegrationFailure 504,
    "INTEGRATION_TIMEOUT" => IntegrationTimeout 504,
    "INVALID_API_KEY" => InvalidApiKey 403,
    "INVALID_SIGNATURE" => InvalidSignature 403,
    "MISSING_AUTHENTICATION_TOKEN" => MissingAuthenticationToken 403,
    "QUOTA_EXCEEDED" => QuotaExceeded 429,
    "REQUEST_TOO_LARGE" => RequestTooLarge 413,
    "RESOURCE_NOT_FOUND" => ResourceNotFound 404,
    "THROTTLED" => Throttled 429,
    "UNAUTHORIZED" => Unauthorized 401,
    "UNSUPPORTED_MEDIA_TYPE" => UnsupportedMediaType 415,
    "WAF_FILTERED" => WafFiltered 403,
}

impl ResponseType {
    pub fn parse(name: &str) -> Option<ResponseType> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }

    /// The type of one of the gateway's own answers.
    pub fn classify(status: u16, message: &str) -> ResponseType {
        match (status, message) {
            (400, "Invalid request body") => ResponseType::BadRequestBody,
            (400, m) if m.starts_with("Missing required request parameters") => {
                ResponseType::BadRequestParameters
            }
            (401, _) => ResponseType::Unauthorized,
            // The only 403 without a more specific caller on this path is the API key's.
            (403, "Forbidden") => ResponseType::InvalidApiKey,
            (403, _) => ResponseType::AccessDenied,
            (404, _) => ResponseType::ResourceNotFound,
            (413, _) => ResponseType::RequestTooLarge,
            (415, _) => ResponseType::UnsupportedMediaType,
            (429, "Limit Exceeded") => ResponseType::QuotaExceeded,
            (429, _) => ResponseType::Throttled,
            (502, _) => ResponseType::IntegrationFailure,
            (504, _) => ResponseType::IntegrationTimeout,
            (s, _) if s < 500 => ResponseType::Default4xx,
            _ => ResponseType::Default5xx,
        }
    }
}

/// One piece of a response template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Box<[u8]>),
    Ctx(Var),
    Message,
    MessageString,
    ResponseType,
    Validation,
    /// `$context.authorizer.NAME` (`claims.sub`, a Lambda context key, `principalId`,
    /// `error`): empty when no authorizer answered.
    Authorizer(Box<str>),
    /// `$stageVariables.NAME` of the stage (or canary) the request reached; empty when
    /// that stage has no such variable (gateway responses belong to the API, not a stage).
    Stage(Box<str>),
}

/// A body or header value with `$context` and `$stageVariables` references, compiled
/// once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(Box<[Piece]>);

/// The reference prefixes a template may use, each unbraced and braced.
const PREFIXES: [(&str, bool, bool); 4] = [
    ("$context.", false, false),
    ("${context.", true, false),
    ("$stageVariables.", false, true),
    ("${stageVariables.", true, true),
];

/// Err for a `$` (or `${`) in text between references that reads as a reference: one
/// misspelt (`$Context.requestId`, `$stagevariables.v`) or one gateway responses don't
/// read (`$request.header.x`, REST's `$method.request.header.x`), which went out as
/// written. Mappings refuse the same (`template::unbraced`). Any other `$` is text
/// (`$5`, `US$`, `$HOME.`, MongoDB's `$set.a`), and so are REST's VTL `$util.` and
/// `$input.`, which an imported template may hold (the import warns that VTL is sent as
/// written).
fn misspelt(text: &str) -> Result<(), String> {
    for at in memchr::memchr_iter(b'$', text.as_bytes()) {
        let after = &text[at + 1..];
        let braced = after.starts_with('{');
        let name = &after[usize::from(braced)..];
        let word = name
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or(name.len());
        let first_alpha = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
        // Only what reads as a reference: `$HOME.`, `$USD.50` or MongoDB's `$set.a` are
        // text a body may hold.
        let meant = ["context", "stagevariables", "request", "method"]
            .iter()
            .any(|m| name[..word].eq_ignore_ascii_case(m));
        if !first_alpha || !name[word..].starts_with('.') || !meant {
            continue;
        }
        let len = word
            + name[word..]
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b"_.-".contains(&b)))
                .unwrap_or(name.len() - word);
        let what = name[..len].trim_end_matches('.');
        return Err(format!(
            "${what} would be sent as written: gateway responses read $context.VAR and $stageVariables.NAME only (names in that case), and no request values"
        ));
    }
    Ok(())
}

impl Body {
    pub fn compile(s: &str) -> Result<Body, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        // The first reference of any kind: `${context.a} $context.b` has two.
        while let Some((at, (prefix, braced, stage))) = PREFIXES
            .iter()
            .filter_map(|p| rest.find(p.0).map(|at| (at, *p)))
            .min_by_key(|(at, p)| (*at, !p.1))
        {
            let start = at + prefix.len();
            let (name, next) = if braced {
                let close = rest[start..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
                (&rest[start..start + close], start + close + 1)
            } else {
                let len = rest[start..]
                    .bytes()
                    .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
                    .unwrap_or(rest.len() - start);
                let name = rest[start..start + len].trim_end_matches('.');
                (name, start + name.len())
            };
            let piece = match name {
                _ if stage => {
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(format!("{prefix}{name} is not a stage variable name"));
                    }
                    Piece::Stage(name.into())
                }
                "error.message" => Piece::Message,
                "error.messageString" => Piece::MessageString,
                "error.responseType" => Piece::ResponseType,
                "error.validationErrorString" => Piece::Validation,
                _ if name.starts_with("authorizer.") && name.len() > "authorizer.".len() => {
                    Piece::Authorizer(name["authorizer.".len()..].into())
                }
                _ => Piece::Ctx(
                    Var::parse(name).ok_or_else(|| format!("unknown variable $context.{name}"))?,
                ),
            };
            misspelt(&rest[..at])?;
            lit.push_str(&rest[..at]);
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit).into_bytes().into()));
            }
            pieces.push(piece);
            rest = &rest[next..];
        }
        misspelt(rest)?;
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit.into_bytes().into()));
        }
        Ok(Body(pieces.into()))
    }

    /// `esc`: how the body's media type quotes `$context` values (a client's User-Agent
    /// or path, a certificate's PEM, a token's claims): as JSON string content, as the
    /// error message is, or as HTML text.
    fn eval(&self, v: &RequestView, e: &ErrorInfo, esc: Escape, out: &mut Vec<u8>) {
        for p in self.0.iter() {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                // No route matched: there is no route key or resource path to name.
                Piece::Ctx(Var::RouteKey | Var::ResourcePath) if !e.routed => {}
                Piece::Ctx(var) => {
                    let start = out.len();
                    context::resolve(*var, v).write(out);
                    escape_tail(out, start, esc);
                }
                // The messages are JSON string content (API Gateway's), except in a page:
                // a validation error quotes the client's body (`"<script>" is not one of`).
                Piece::Message | Piece::Validation if esc == Escape::Html => {
                    let text = if *p == Piece::Message {
                        e.message
                    } else {
                        e.detail
                    };
                    let start = out.len();
                    out.extend_from_slice(text.as_bytes());
                    escape_tail(out, start, esc);
                }
                // The JSON string, quoted as HTML: a SigV4 refusal quotes the client's
                // credential scope or date (`<svg onload=…>`, from a link).
                Piece::MessageString if esc == Escape::Html => {
                    let start = out.len();
                    out.push(b'"');
                    encode::json_escape(out, e.message.as_bytes());
                    out.push(b'"');
                    escape_tail(out, start, esc);
                }
                Piece::Message => encode::json_escape(out, e.message.as_bytes()),
                Piece::MessageString => {
                    out.push(b'"');
                    encode::json_escape(out, e.message.as_bytes());
                    out.push(b'"');
                }
                Piece::ResponseType => out.extend_from_slice(e.rtype.name().as_bytes()),
                Piece::Validation => encode::json_escape(out, e.detail.as_bytes()),
                Piece::Authorizer(name) => {
                    let start = out.len();
                    out.extend_from_slice(v.state.auth.value(name).unwrap_or_default().as_bytes());
                    escape_tail(out, start, esc);
                }
                Piece::Stage(name) => {
                    let start = out.len();
                    if let Some((_, value)) = v.stage_vars().iter().find(|(n, _)| **n == **name) {
                        out.extend_from_slice(value.as_bytes());
                    }
                    escape_tail(out, start, esc);
                }
            }
        }
    }
}

/// How a body's media type quotes the values put into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Json,
    Html,
}

impl Escape {
    /// From the content-type header's value as sent (None: none is configured, and the
    /// gateway's `application/json` goes out), read as a browser reads it: the last
    /// media type of a list (`application/json, text/html` renders as a page). JSON and
    /// text/plain bodies keep their quoting; any other type, or a value no browser takes
    /// as a type (it sniffs the body then), gets HTML's, which also keeps a value from
    /// adding markup to XML and SVG (a script in `image/svg+xml` runs).
    fn for_content_type(value: Option<&[u8]>) -> Escape {
        let Some(value) = value else {
            return Escape::Json;
        };
        let Some((kind, sub)) = crate::http1::media_type::browser_media_type(value) else {
            return Escape::Html;
        };
        let is = |k: &str, s: &str| {
            kind.eq_ignore_ascii_case(k.as_bytes()) && sub.eq_ignore_ascii_case(s.as_bytes())
        };
        let plus_json = sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case(b"+json");
        if is("application", "json") || is("text", "json") || plus_json {
            Escape::Json
        } else if is("text", "plain") {
            Escape::None
        } else {
            Escape::Html
        }
    }
}

/// Quotes the bytes appended since `start`. JSON: `"`, `\` and control characters
/// escaped, and bytes that are not UTF-8 (obs-text in a User-Agent) as U+FFFD, since JSON
/// is UTF-8 and a client's parser refuses the whole body otherwise. HTML: `& < > " '` as
/// character references, and bytes that are not UTF-8 as U+FFFD too (an XML parser
/// refuses the whole document for one). A value a client sends must not close the template's string and
/// add members of its own (`"admin": true`), nor add markup to a page (`<script>`).
fn escape_tail(out: &mut Vec<u8>, start: usize, esc: Escape) {
    let needs = match esc {
        Escape::None => false,
        Escape::Json => out[start..]
            .iter()
            .any(|&b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\'),
        Escape::Html => {
            out[start..].iter().any(|b| b"&<>\"'".contains(b))
                || std::str::from_utf8(&out[start..]).is_err()
        }
    };
    if !needs {
        return;
    }
    let raw: Vec<u8> = out.drain(start..).collect();
    for chunk in raw.utf8_chunks() {
        if esc == Escape::Html {
            for &b in chunk.valid().as_bytes() {
                match b {
                    b'&' => out.extend_from_slice(b"&amp;"),
                    b'<' => out.extend_from_slice(b"&lt;"),
                    b'>' => out.extend_from_slice(b"&gt;"),
                    b'"' => out.extend_from_slice(b"&quot;"),
                    b'\'' => out.extend_from_slice(b"&#39;"),
                    b => out.push(b),
                }
            }
        } else {
            encode::json_escape(out, chunk.valid().as_bytes());
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

struct ErrorInfo<'a> {
    /// A route matched (else only the API and stage are known).
    routed: bool,
    rtype: ResponseType,
    message: &'a str,
    detail: &'a str,
}

#[derive(Debug)]
pub struct Custom {
    status: Option<u16>,
    headers: Vec<(Box<[u8]>, Body)>,
    body: Option<Body>,
    /// The content-type header among `headers` (else application/json goes out). How
    /// values are quoted in the body is read from its value as sent: it may name a stage
    /// variable or a `$context` value.
    content_type: Option<usize>,
}

/// An API's gateway responses, by type.
#[derive(Debug, Default)]
pub struct GatewayResponsesRt(Vec<(ResponseType, Custom)>);

impl GatewayResponsesRt {
    /// None when the API customises nothing. The config has been validated.
    pub fn compile(defs: &[(String, GatewayResponse)]) -> Option<Box<GatewayResponsesRt>> {
        let mut out = Vec::new();
        for (kind, g) in defs {
            let Some(t) = ResponseType::parse(kind) else {
                continue;
            };
            // API Gateway does not let REQUEST_TOO_LARGE be customised either: the body
            // was never read.
            if t == ResponseType::RequestTooLarge {
                continue;
            }
            // Portico's current Date goes out whatever the config says, as with mocks
            // (integrations::mock): a fixed Date breaks caches' age arithmetic.
            let headers: Vec<(Box<[u8]>, Body)> = g
                .headers
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
                .filter_map(|(n, v)| {
                    Some((
                        n.to_ascii_lowercase().into_bytes().into(),
                        Body::compile(v).ok()?,
                    ))
                })
                .collect();
            let content_type = headers.iter().position(|(n, _)| &n[..] == b"content-type");
            out.push((
                t,
                Custom {
                    status: g.status,
                    content_type,
                    headers,
                    body: g.body.as_deref().and_then(|b| Body::compile(b).ok()),
                },
            ));
        }
        inherit_fallback_status(&mut out);
        (!out.is_empty()).then(|| Box::new(GatewayResponsesRt(out)))
    }

    fn find(&self, t: ResponseType, status: u16) -> Option<&Custom> {
        // Not through DEFAULT_4XX either: the answer is API Gateway's own.
        if t == ResponseType::RequestTooLarge {
            return None;
        }
        let fallback = if status < 500 {
            ResponseType::Default4xx
        } else {
            ResponseType::Default5xx
        };
        self.0
            .iter()
            .find(|(k, _)| *k == t)
            .or_else(|| self.0.iter().find(|(k, _)| *k == fallback))
            .map(|(_, c)| c)
    }
}

/// API Gateway: "Changing the status code of this fallback gateway response changes the
/// status codes of all other 4XX responses to the new value" (and DEFAULT_5XX's of the
/// 5XX ones). A type customised without a status answers with its fallback's; one that
/// names its own keeps it.
fn inherit_fallback_status(out: &mut [(ResponseType, Custom)]) {
    for fallback in [ResponseType::Default4xx, ResponseType::Default5xx] {
        let Some(status) = out
            .iter()
            .find(|(t, _)| *t == fallback)
            .and_then(|(_, c)| c.status)
        else {
            continue;
        };
        let class = fallback.default_status() / 100;
        for (t, c) in out.iter_mut() {
            if c.status.is_none() && t.default_status() / 100 == class {
                c.status = Some(status);
            }
        }
    }
}

#[path = "gateway_responses_answer.rs"]
mod answer;
pub use answer::{answer, answer_as, answer_unrouted, applies};

#[cfg(test)]
#[path = "gateway_responses_tests.rs"]
mod tests;
