//! `$context` variables: one resolver over the request state, shared by parameter mapping,
//! Lambda events and (later) access logs, so every feature reports the same values.
//!
//! Names follow Amazon API Gateway: `requestId`, `apiId`, `stage`, `routeKey`,
//! `identity.sourceIp`, `requestTime` ("22/Nov/2026:02:49:38 +0000") and so on; see
//! [`Var::parse`] for the full list. Values borrow from the request buffer and the config
//! snapshot; nothing is allocated to resolve one.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use super::cors::CorsMatch;
use crate::config::compile::{ApiRt, RouteRt, Snapshot, StageRt};
use crate::http1::encode;
use crate::http1::{RequestHead, Span};
use crate::router::Matched;

/// There are no AWS accounts here; events carry this where Lambda handlers expect one.
pub const ACCOUNT_ID: &str = "000000000000";

/// What the gateway decided about the request being served. Kept in the connection and
/// overwritten by [`RequestState::begin`] for each request, so it costs no allocation.
#[derive(Debug, Default)]
pub struct RequestState {
    pub api: u32,
    pub stage: u32,
    pub route: u32,
    /// The stage's canary served this request (its variables and integrations).
    pub canary: bool,
    /// The Host named a custom domain (whose base-path mapping is not part of 2.0's
    /// rawPath, where a named stage is).
    pub custom_domain: bool,
    /// The connection's client certificate is this request's: its Host is the mutual-TLS
    /// domain the handshake verified it for (`ServerTls::certificate_applies`).
    pub client_cert: bool,
    /// The request path after the base path.
    pub rest: Span,
    /// Milliseconds since the epoch, read from the clock the first time a feature asks
    /// (0 = not yet), so requests that use no time-based value never read the clock.
    time_ms: Cell<u64>,
    /// Which configured origin the actual response echoes (CORS APIs only).
    pub cors: CorsMatch,
    /// The request head, kept apart once an integration consumed the request when the
    /// answer still needs request values (response mappings, gateway responses, CORS).
    /// Spans of `head` index it. Dropped when the request ends.
    pub saved_head: Option<BytesMut>,
    /// The authorizer's verdict (`pipeline::auth`).
    pub auth: crate::auth::AuthState,
}

impl RequestState {
    /// Forgets what the connection's previous request left. Every request starts here,
    /// routed or not: an unrouted request's 404 (a gateway response's `$context` values)
    /// and a refused head's log line read this state too, and must not show the
    /// previous caller's authorizer verdict or request time.
    pub fn start(&mut self) {
        self.canary = false;
        self.time_ms.set(0);
        self.cors = CorsMatch::None;
        // `saved_head` is None here: the connection loop drops it when a request ends.
        self.auth.reset();
    }

    /// The route this request matched.
    pub fn begin(&mut self, m: &Matched, canary: bool) {
        self.api = m.stage.api;
        self.stage = m.stage.stage;
        self.route = m.route;
        self.canary = canary;
        self.custom_domain = m.custom_domain;
        self.rest = m.rest;
    }

    /// The request time, fixed at the first call for this request.
    pub fn time_ms(&self) -> u64 {
        let t = self.time_ms.get();
        if t != 0 {
            return t;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        self.time_ms.set(now);
        now
    }
}

/// Everything a `$context` value or a mapping can read about one request.
pub struct RequestView<'a> {
    pub snap: &'a Snapshot,
    pub state: &'a RequestState,
    /// The bytes `head` and `params` index (the connection buffer, or the saved head).
    pub buf: &'a [u8],
    pub head: &'a RequestHead,
    pub params: &'a [Span],
    pub peer: SocketAddr,
    pub request_id: &'a [u8],
    /// The client connected over TLS.
    pub https: bool,
    /// The certificate a mutual-TLS client presented.
    pub client_cert: Option<&'a crate::tls::PeerCert>,
    /// The name of the API key the route required and the request presented.
    pub api_key: Option<&'a str>,
}

/// The `RequestView` of connection `$c` (an `http1::Conn`) over the bytes `$buf`. A macro
/// rather than a method so that the caller can keep borrowing the connection's other
/// fields (its write buffer) mutably while the view is alive.
macro_rules! request_view {
    ($c:expr, $snap:expr, $buf:expr) => {
        $crate::pipeline::context::RequestView {
            snap: $snap,
            state: &$c.req,
            buf: $buf,
            head: &$c.head,
            params: &$c.params,
            peer: $c.peer,
            request_id: &$c.request_id,
            https: $c.stream.is_tls(),
            client_cert: $c.peer_cert.as_deref().filter(|_| $c.req.client_cert),
            api_key: $c.out.api_key.as_deref(),
        }
    };
}
pub(crate) use request_view;

impl<'a> RequestView<'a> {
    pub fn api(&self) -> &'a ApiRt {
        &self.snap.apis[self.state.api as usize]
    }

    pub fn stage(&self) -> &'a StageRt {
        &self.api().stages[self.state.stage as usize]
    }

    pub fn route(&self) -> &'a RouteRt {
        &self.api().routes[self.state.route as usize]
    }

    /// The stage variables in effect: the canary's overrides when it serves the request.
    pub fn stage_vars(&self) -> &'a [(String, String)] {
        let stage = self.stage();
        match &stage.canary {
            Some(c) if self.state.canary => &c.variables,
            _ => &stage.variables,
        }
    }

    /// Bytes of a span, or nothing if it does not lie in `buf` (never panics on a view
    /// whose head was not kept).
    pub fn span(&self, s: Span) -> &'a [u8] {
        self.buf
            .get(s.start as usize..s.end as usize)
            .unwrap_or_default()
    }

    /// The first value of a header (names compared ignoring case).
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.head
            .headers
            .iter()
            .find(|h| self.span(h.name).eq_ignore_ascii_case(name))
            .map(|h| self.span(h.value))
    }

    /// The whole request path as received ("/" when the target had none).
    pub fn full_path(&self) -> &'a [u8] {
        match self.span(self.head.path) {
            b"" => b"/",
            p => p,
        }
    }

    /// The path after the stage's base path ("/" when nothing follows it). It starts
    /// with `%2F` or `%5C` when the base path was ended by one (`/prod%2Fx`: `%2Fx`).
    pub fn rest_path(&self) -> &'a [u8] {
        match self.span(self.state.rest) {
            b"" => b"/",
            p => p,
        }
    }

    pub fn query(&self) -> &'a [u8] {
        self.head.query.map_or(&b""[..], |q| self.span(q))
    }

    /// The Host without its port or trailing dot (`router::domain_name`).
    pub fn domain_name(&self) -> &'a [u8] {
        crate::router::domain_name(self.head.host.map_or(&b""[..], |h| self.span(h)))
    }

    pub fn method(&self) -> &'a [u8] {
        self.span(self.head.method_span)
    }

    pub fn protocol(&self) -> &'static [u8] {
        if self.head.minor_version == 0 {
            b"HTTP/1.0"
        } else {
            b"HTTP/1.1"
        }
    }
}

/// A `$context` variable, parsed once at config compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    AccountId,
    ApiId,
    DomainName,
    DomainPrefix,
    ExtendedRequestId,
    HttpMethod,
    SourceIp,
    UserAgent,
    IsCanaryRequest,
    ClientCertSubjectDn,
    ClientCertIssuerDn,
    ClientCertSerialNumber,
    ClientCertNotBefore,
    ClientCertNotAfter,
    ClientCertPem,
    /// The SigV4 caller of an `authorization: iam` route (empty on other routes).
    IamAccessKey,
    IamAccountId,
    IamCaller,
    IamUser,
    IamUserArn,
    /// A name API Gateway defines that has no value here (Cognito identities, the
    /// caller's organization): always empty, so configs written for AWS still load.
    Unset,
    Path,
    Protocol,
    RequestId,
    RequestTime,
    RequestTimeEpoch,
    ResourcePath,
    RouteKey,
    Stage,
}

impl Var {
    pub const NAMES: &'static [(&'static str, Var)] = &[
        ("accountId", Var::AccountId),
        ("apiId", Var::ApiId),
        ("domainName", Var::DomainName),
        ("domainPrefix", Var::DomainPrefix),
        ("extendedRequestId", Var::ExtendedRequestId),
        ("httpMethod", Var::HttpMethod),
        ("identity.sourceIp", Var::SourceIp),
        ("identity.userAgent", Var::UserAgent),
        ("identity.clientCert.subjectDN", Var::ClientCertSubjectDn),
        ("identity.clientCert.issuerDN", Var::ClientCertIssuerDn),
        (
            "identity.clientCert.serialNumber",
            Var::ClientCertSerialNumber,
        ),
        (
            "identity.clientCert.validity.notBefore",
            Var::ClientCertNotBefore,
        ),
        (
            "identity.clientCert.validity.notAfter",
            Var::ClientCertNotAfter,
        ),
        ("identity.clientCert.clientCertPem", Var::ClientCertPem),
        ("identity.accessKey", Var::IamAccessKey),
        ("identity.accountId", Var::IamAccountId),
        ("identity.caller", Var::IamCaller),
        ("identity.user", Var::IamUser),
        ("identity.userArn", Var::IamUserArn),
        ("identity.principalOrgId", Var::Unset),
        ("identity.cognitoAuthenticationProvider", Var::Unset),
        ("identity.cognitoAuthenticationType", Var::Unset),
        ("identity.cognitoIdentityId", Var::Unset),
        ("identity.cognitoIdentityPoolId", Var::Unset),
        ("isCanaryRequest", Var::IsCanaryRequest),
        ("path", Var::Path),
        ("protocol", Var::Protocol),
        ("requestId", Var::RequestId),
        ("requestTime", Var::RequestTime),
        ("requestTimeEpoch", Var::RequestTimeEpoch),
        ("resourcePath", Var::ResourcePath),
        ("routeKey", Var::RouteKey),
        ("stage", Var::Stage),
    ];

    /// Why the variable is empty whenever a Lambda authorizer runs, so that keying the
    /// authorizer on it would refuse every request 401: it names the SigV4 caller of an
    /// `authorization: iam` route (a route has one authorization), or an identity
    /// Portico never has.
    pub fn empty_for_authorizers(self) -> Option<&'static str> {
        match self {
            Var::IamAccessKey
            | Var::IamAccountId
            | Var::IamCaller
            | Var::IamUser
            | Var::IamUserArn => Some(
                "it is set only on `authorization: iam` routes, never on a Lambda authorizer's",
            ),
            Var::Unset => Some("Portico never sets it"),
            _ => None,
        }
    }

    /// The variable for a name after `$context.`, e.g. "identity.sourceIp".
    pub fn parse(name: &str) -> Option<Var> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// A resolved value; borrowed, or small enough to format on the spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Num(u64),
    Ip(IpAddr),
    /// A request time in milliseconds since the epoch, in API Gateway's CLF format.
    Time(u64),
    Bool(bool),
}

pub fn resolve<'a>(var: Var, v: &RequestView<'a>) -> Value<'a> {
    match var {
        Var::AccountId => Value::Bytes(ACCOUNT_ID.as_bytes()),
        Var::ApiId => Value::Bytes(v.api().name.as_bytes()),
        Var::DomainName => Value::Bytes(v.domain_name()),
        Var::DomainPrefix => {
            let d = v.domain_name();
            let end = d.iter().position(|&b| b == b'.').unwrap_or(d.len());
            Value::Bytes(&d[..end])
        }
        Var::RequestId | Var::ExtendedRequestId => Value::Bytes(v.request_id),
        Var::HttpMethod => Value::Bytes(v.method()),
        Var::SourceIp => Value::Ip(v.peer.ip()),
        Var::UserAgent => Value::Bytes(v.header(b"user-agent").unwrap_or_default()),
        Var::IsCanaryRequest => Value::Bool(v.state.canary),
        Var::ClientCertSubjectDn
        | Var::ClientCertIssuerDn
        | Var::ClientCertSerialNumber
        | Var::ClientCertNotBefore
        | Var::ClientCertNotAfter
        | Var::ClientCertPem => Value::Bytes(client_cert(var, v.client_cert)),
        Var::IamAccessKey
        | Var::IamAccountId
        | Var::IamCaller
        | Var::IamUser
        | Var::IamUserArn
        | Var::Unset => Value::Bytes(iam_caller(var, Some(&v.state.auth))),
        Var::Path => Value::Bytes(v.full_path()),
        Var::Protocol => Value::Bytes(v.protocol()),
        Var::RequestTime => Value::Time(v.state.time_ms()),
        Var::RequestTimeEpoch => Value::Num(v.state.time_ms()),
        Var::ResourcePath => Value::Bytes(v.route().path.as_bytes()),
        Var::RouteKey => Value::Bytes(v.route().key.as_bytes()),
        Var::Stage => Value::Bytes(v.stage().name.as_bytes()),
    }
}

/// A `$context.identity.clientCert.*` value: empty without a verified certificate.
pub fn client_cert(var: Var, cert: Option<&crate::tls::PeerCert>) -> &[u8] {
    let Some(c) = cert else { return b"" };
    let text = match var {
        Var::ClientCertSubjectDn => &c.subject_dn,
        Var::ClientCertIssuerDn => &c.issuer_dn,
        Var::ClientCertSerialNumber => &c.serial_number,
        Var::ClientCertNotBefore => &c.not_before,
        Var::ClientCertNotAfter => &c.not_after,
        Var::ClientCertPem => &c.pem,
        _ => return b"",
    };
    text.as_bytes()
}

/// A `$context.identity.*` value of the SigV4 caller (`caller` and `user` are its user
/// id, as 1.0 events carry them): empty on routes other than `authorization: iam`.
pub fn iam_caller(var: Var, auth: Option<&crate::auth::AuthState>) -> &[u8] {
    let Some(crate::auth::Identity::Iam(c)) = auth.and_then(|a| a.identity.as_ref()) else {
        return b"";
    };
    let text = match var {
        Var::IamAccessKey => &c.access_key,
        Var::IamAccountId => &c.account_id,
        Var::IamCaller | Var::IamUser => &c.user_id,
        Var::IamUserArn => &c.user_arn,
        _ => return b"",
    };
    text.as_bytes()
}

impl Value<'_> {
    /// Appends the value as text. Only `Bytes` can hold characters that need escaping in
    /// JSON or a header; the other kinds are digits, dots, colons and letters.
    pub fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::Num(n) => encode::decimal(out, n),
            // IPv4 by hand: `Display` through `fmt` was ~50 ns of every logged line.
            Value::Ip(IpAddr::V4(v4)) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    encode::decimal(out, octet.into());
                }
            }
            Value::Ip(ip) => {
                use std::io::Write;
                let _ = write!(out, "{ip}");
            }
            Value::Time(ms) => write_clf_time(out, ms / 1000),
            Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        }
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

type ClfSecond = (u64, [u8; CLF_LEN]);
const CLF_LEN: usize = 26;

thread_local! {
    /// The last second `write_clf_time` wrote on this thread, and its text: every line
    /// of a second has the same.
    static CLF_SECOND: Cell<ClfSecond> = const { Cell::new((u64::MAX, [0; CLF_LEN])) };
}

/// "22/Nov/2026:02:49:38 +0000", API Gateway's requestTime (common log format, UTC).
pub fn write_clf_time(out: &mut Vec<u8>, secs: u64) {
    let (last, text) = CLF_SECOND.get();
    if last == secs {
        out.extend_from_slice(&text);
        return;
    }
    let start = out.len();
    write_clf_time_uncached(out, secs);
    if let Ok(text) = out[start..].try_into() {
        CLF_SECOND.set((secs, text));
    }
}

fn write_clf_time_uncached(out: &mut Vec<u8>, secs: u64) {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let two = |out: &mut Vec<u8>, n: u64| {
        out.push(b'0' + (n / 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    };
    two(out, d as u64);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(m - 1) as usize]);
    out.push(b'/');
    encode::decimal(out, y as u64);
    out.push(b':');
    two(out, rem / 3600);
    out.push(b':');
    two(out, rem / 60 % 60);
    out.push(b':');
    two(out, rem % 60);
    out.extend_from_slice(b" +0000");
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), Howard Hinnant's algorithm:
/// exact for the proleptic Gregorian calendar without tables or loops.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clf(secs: u64) -> String {
        let mut out = Vec::new();
        write_clf_time(&mut out, secs);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_time_in_api_gateway_format() {
        assert_eq!(clf(0), "01/Jan/1970:00:00:00 +0000");
        // 2026-11-22T02:49:38Z
        assert_eq!(clf(1_795_315_778), "22/Nov/2026:02:49:38 +0000");
        // A leap day.
        assert_eq!(clf(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(clf(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
        // The same second again (from the cache), then the next one.
        assert_eq!(clf(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
        assert_eq!(clf(1_709_251_200), "01/Mar/2024:00:00:00 +0000");
    }

    #[test]
    fn addresses_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.0.255.1",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let mut out = Vec::new();
            Value::Ip(ip.parse().unwrap()).write(&mut out);
            assert_eq!(out, ip.as_bytes());
        }
    }

    #[test]
    fn variable_names_parse() {
        assert_eq!(Var::parse("identity.sourceIp"), Some(Var::SourceIp));
        assert_eq!(Var::parse("requestTimeEpoch"), Some(Var::RequestTimeEpoch));
        assert_eq!(Var::parse("identity"), None);
    }
}
