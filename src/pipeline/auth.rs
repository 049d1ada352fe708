//! The authorizer step, run for every routed request before its API key and throttles
//! (the key may come from the authorizer): the route's JWT authorizer (or none) decides,
//! and the verdict is left in `RequestState::auth` for the integration, parameter
//! mappings and the access log.
//!
//! JWT: a repeat token is one hash lookup in this worker's verdict cache (served only
//! while the issuer publishes the key set that verified it); a new one is verified
//! against the issuer's published key set. A token naming a key the set lacks asks the
//! JWKS fetcher for one refetch and waits for it (a timer, not a lock), so a key
//! rotation costs the first caller one fetch, not a 401.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use super::auth_lambda::WsConnect;
use crate::auth::cache::{self, Cache, TokenCache};
use crate::auth::jwks::{KeySource, FETCH_TIMEOUT, MAX_AGE};
use crate::auth::jwt::{self, JwtError, JwtRt, Verified};
use crate::auth::lambda::Verdict;
use crate::auth::metrics::Outcome;
use crate::auth::sigv4::SigError;
use crate::auth::{AuthorizerKind, AuthorizerRt, Identity, RouteAuthRt};
use crate::config::auth::TokenSource;
use crate::metrics::RouteCells;
use crate::router::Matched;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// This worker's verdict caches.
#[derive(Default)]
struct Local {
    jwt: TokenCache<Rc<Verified>>,
    lambda: Cache<Rc<Verdict>>,
    /// Lambda cache keys whose call is under way on this worker: a second request with
    /// the same identity waits for that call instead of making its own.
    pending: HashSet<cache::Key, BuildHasherDefault<cache::DigestHasher>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// A cached Lambda verdict no older than `ttl` seconds (the authorizer's `result_ttl`
/// now, which a reload may have lowered), or whether another request of this worker is
/// fetching it.
pub(super) fn lambda_cached(
    key: &cache::Key,
    now: u64,
    ttl: u64,
) -> Result<Option<Rc<Verdict>>, ()> {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        match l.lambda.get(key, now, ttl) {
            Some(v) => Ok(Some(v)),
            None if l.pending.contains(key) => Err(()),
            None => Ok(None),
        }
    })
}

/// Marks (true) or clears (false) a Lambda call under way for `key`.
pub(super) fn lambda_pending(key: cache::Key, on: bool) {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        if on {
            l.pending.insert(key);
        } else {
            l.pending.remove(&key);
        }
    })
}

pub(super) fn lambda_store(key: cache::Key, expires: u64, v: Rc<Verdict>, now: u64) {
    LOCAL.with(|l| l.borrow_mut().lambda.insert(key, expires, v, now));
}

/// Why the authorizer refuses a request.
#[derive(Debug)]
pub enum AuthDeny {
    /// 401; the `www-authenticate` value (JWT authorizers).
    Unauthorized(Option<Vec<u8>>),
    /// 403; the `www-authenticate` value, if any.
    Forbidden(Option<Vec<u8>>),
    /// 500: the authorizer could not decide.
    Failed,
    /// 403 for a SigV4 route, with API Gateway's message and error type.
    Iam(crate::auth::sigv4::SigError),
    /// The request itself was bad (its body could not be read for the signature).
    Status(u16, &'static str),
}

impl AuthDeny {
    /// Answers for the gateway (`{"message": ...}`, or the API's gateway response for
    /// the type: UNAUTHORIZED, ACCESS_DENIED, AUTHORIZER_FAILURE,
    /// MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE); returns whether the connection
    /// goes on.
    pub async fn answer(
        self,
        ctx: &WorkerCtx,
        gen: &Generation,
        c: &mut Conn,
        _cells: &RouteCells,
    ) -> bool {
        use super::gateway_responses::{answer_as, ResponseType as T};
        let (t, status, message, log): (T, u16, String, &'static str) = match &self {
            AuthDeny::Unauthorized(_) => {
                (T::Unauthorized, 401, "Unauthorized".into(), "Unauthorized")
            }
            AuthDeny::Forbidden(_) => (T::AccessDenied, 403, "Forbidden".into(), "Forbidden"),
            AuthDeny::Failed => (
                T::AuthorizerFailure,
                500,
                "Internal Server Error".into(),
                "Internal Server Error",
            ),
            AuthDeny::Status(status, message) => (
                T::classify(*status, message),
                *status,
                (*message).into(),
                message,
            ),
            AuthDeny::Iam(e) => {
                let t = match e {
                    SigError::Missing => T::MissingAuthenticationToken,
                    SigError::Denied { .. } => T::AccessDenied,
                    _ => T::InvalidSignature,
                };
                (t, 403, e.message(), "Forbidden")
            }
        };
        let mut extra: Vec<(&str, &[u8])> = Vec::with_capacity(1);
        match &self {
            AuthDeny::Unauthorized(Some(h)) | AuthDeny::Forbidden(Some(h)) => {
                extra.push(("www-authenticate", h));
            }
            AuthDeny::Iam(e) => extra.push(("x-amzn-ErrorType", e.error_type().as_bytes())),
            _ => {}
        }
        answer_as(ctx, gen, c, t, status, &message, log, "", &extra).await
    }
}

/// Lets the request through (leaving the caller's identity in `c.req.auth`), or says
/// how the gateway refuses it.
pub async fn authorize(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    m: &Matched,
) -> Result<(), AuthDeny> {
    authorize_with(ctx, gen, c, m, None).await
}

/// The same, for a WebSocket API's `$connect` when `ws` is given (its ARN and event).
/// JWT authorizers do not apply there (validation refuses them; here they fail closed).
pub async fn authorize_with(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    m: &Matched,
    ws: Option<&WsConnect<'_>>,
) -> Result<(), AuthDeny> {
    let api = &gen.snap.apis[m.stage.api as usize];
    let Some(rule) = api.auth.routes.get(m.route as usize) else {
        return Ok(());
    };
    match rule {
        RouteAuthRt::None => Ok(()),
        RouteAuthRt::Jwt { authorizer, scopes } => {
            let a = &api.auth.authorizers[*authorizer];
            let AuthorizerKind::Jwt(rt) = &a.kind else {
                return Err(AuthDeny::Failed);
            };
            // On a WebSocket `$connect` too (Portico's addition; see websocket::handshake):
            // the handshake is an HTTP request like any other.
            let result = jwt_step(ctx.id, c, a, rt, scopes).await;
            a.counters.count(ctx.id, outcome(&result));
            result
        }
        RouteAuthRt::Lambda { authorizer } => {
            let a = &api.auth.authorizers[*authorizer];
            let AuthorizerKind::Lambda(rt) = &a.kind else {
                return Err(AuthDeny::Failed);
            };
            let result = super::auth_lambda::step(ctx, gen, c, a, rt, ws).await;
            a.counters.count(ctx.id, outcome(&result));
            result
        }
        RouteAuthRt::Iam => {
            let result = super::auth_iam::step(gen, c, ws.map(|w| w.arn.as_str())).await;
            api.auth.iam_counters.count(ctx.id, outcome(&result));
            result
        }
        RouteAuthRt::Unknown => {
            c.req.auth.error = "authorizer misconfigured";
            Err(AuthDeny::Failed)
        }
        RouteAuthRt::Misconfigured { authorizer } => {
            let a = &api.auth.authorizers[*authorizer];
            if let AuthorizerKind::Misconfigured(why) = &a.kind {
                tracing::error!(api = %api.name, authorizer = %a.name, why = %why, "authorizer misconfigured");
            }
            a.counters.count(ctx.id, Outcome::Error);
            c.req.auth.error = "authorizer misconfigured";
            Err(AuthDeny::Failed)
        }
    }
}

fn outcome(r: &Result<(), AuthDeny>) -> Outcome {
    match r {
        Ok(()) => Outcome::Allow,
        Err(AuthDeny::Unauthorized(_)) => Outcome::Unauthorized,
        Err(AuthDeny::Forbidden(_) | AuthDeny::Iam(_)) => Outcome::Forbidden,
        Err(AuthDeny::Failed | AuthDeny::Status(..)) => Outcome::Error,
    }
}

/// The token from the identity source: bare or after `Bearer ` (any case). Two of them
/// (a repeated header or query parameter, its name escaped or not) are refused as
/// malformed, as API Gateway's comma-joined value would be: the gateway would check one
/// while the backend may read the other (`X_Jwt` beside `X-Jwt` included: CGI-style
/// backends read both as `HTTP_X_JWT`). Also the caller the response cache keys on
/// (`cache::rules::Caller::Jwt`).
pub(crate) fn token<'b>(
    c: &'b Conn,
    source: &TokenSource,
) -> Result<Option<std::borrow::Cow<'b, [u8]>>, JwtError> {
    use std::borrow::Cow;
    let buf = &c.rbuf[..];
    let mut found = None;
    let mut take = |v: &'b [u8]| match found.replace(v) {
        None => Ok(()),
        Some(_) => Err(JwtError::Malformed),
    };
    match source {
        TokenSource::Header(name) => {
            for h in &c.head.headers {
                if crate::http1::same_cgi_name(h.name.get(buf), name.as_bytes()) {
                    take(h.value.get(buf))?;
                }
            }
        }
        TokenSource::Query(name) => {
            let q = c.head.query.map_or(&b""[..], |q| q.get(buf));
            for (n, v) in super::template::query_pairs(q) {
                if crate::auth::query_name_is(n, name.as_bytes()) {
                    take(v)?;
                }
            }
        }
    }
    let Some(raw) = found else { return Ok(None) };
    // A query value is percent-encoded (`?token=Bearer%20eyJ…`, a `.` sent as `%2E`), as
    // the Lambda authorizer's identity sources and events have it decoded. A `+` is a
    // space here: form encoding (Python's `requests`, a browser's form) writes
    // `Bearer+eyJ…`, and a JWT never holds a `+` (base64url and dots).
    let token = match source {
        TokenSource::Query(_) if raw.iter().any(|b| matches!(b, b'%' | b'+')) => {
            let mut decoded = Vec::with_capacity(raw.len());
            crate::http1::percent_decode(raw, true, &mut decoded);
            Cow::Owned(bare_token(&decoded).to_vec())
        }
        _ => Cow::Borrowed(bare_token(raw)),
    };
    Ok((!token.is_empty()).then_some(token))
}

/// The token without blanks around it and the `Bearer ` before it.
fn bare_token(raw: &[u8]) -> &[u8] {
    let raw = raw.trim_ascii();
    match raw.get(..7) {
        Some(p) if p.eq_ignore_ascii_case(b"bearer ") => raw[7..].trim_ascii_start(),
        _ => raw,
    }
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn scope_list(scopes: &[Box<str>]) -> String {
    scopes.iter().map(|s| &**s).collect::<Vec<_>>().join(" ")
}

/// `Bearer scope="…" error="invalid_token" error_description="…"` (RFC 6750 §3).
fn invalid_token(scopes: &[Box<str>], e: JwtError) -> Vec<u8> {
    format!(
        "Bearer scope=\"{}\" error=\"invalid_token\" error_description=\"{}\"",
        scope_list(scopes),
        e.description()
    )
    .into_bytes()
}

async fn jwt_step(
    worker: usize,
    c: &mut Conn,
    a: &AuthorizerRt,
    rt: &JwtRt,
    scopes: &[Box<str>],
) -> Result<(), AuthDeny> {
    let token = match token(c, &rt.token) {
        Ok(Some(t)) => t,
        Ok(None) => {
            c.req.auth.error = "no token in the identity source";
            return Err(AuthDeny::Unauthorized(Some(b"Bearer".to_vec())));
        }
        Err(e) => {
            c.req.auth.error = "two tokens in the identity source";
            return Err(AuthDeny::Unauthorized(Some(invalid_token(scopes, e))));
        }
    };
    let now = now_secs();
    let token = &*token;
    // A verdict is only as good as the key that verified it: once the issuer stops
    // publishing that key (seen at the next fetch), the set's generation moves on and the
    // token is verified again, against the keys published now.
    let published = rt.source.generation();
    let cached = published
        .and_then(|g| LOCAL.with(|l| l.borrow_mut().jwt.get(&rt.fingerprint, token, now, g)));
    let verified = match cached {
        Some(v) => {
            a.counters.hit(worker);
            v
        }
        None => match verify(token, rt, now).await {
            Ok((v, generation)) => {
                let v = Rc::new(v);
                // Never past `exp`, and no longer than the key set's refresh interval:
                // a bound on what any cached verdict can outlive.
                let expires = v.exp.min(now + MAX_AGE.as_secs());
                LOCAL.with(|l| {
                    l.borrow_mut().jwt.insert(
                        &rt.fingerprint,
                        token,
                        expires,
                        generation,
                        v.clone(),
                        now,
                    )
                });
                v
            }
            Err(e) => {
                tracing::debug!(authorizer = %a.name, error = e.description(), "JWT refused");
                c.req.auth.error = e.description();
                return Err(AuthDeny::Unauthorized(Some(invalid_token(scopes, e))));
            }
        },
    };
    if !jwt::has_scope(&verified, scopes) {
        let list = scope_list(scopes);
        c.req.auth.error = "the token lacks the route's scopes";
        return Err(AuthDeny::Forbidden(Some(
            format!(
                "Bearer scope=\"{list}\" error=\"insufficient_scope\" error_description=\"expected scopes: [{list}]\""
            )
            .into_bytes(),
        )));
    }
    c.req.auth.identity = Some(Identity::Jwt(verified));
    c.req.auth.route_scoped = !scopes.is_empty();
    Ok(())
}

/// The verdict and the generation of the key set whose key verified the signature.
async fn verify(token: &[u8], rt: &JwtRt, now: u64) -> Result<(Verified, u64), JwtError> {
    let parsed = jwt::parse(token, &rt.algorithms)?;
    let mut waited = false;
    let generation = loop {
        let keys = rt.source.keys();
        let result = match &keys {
            Some(k) => parsed.verify(k),
            None => Err(JwtError::UnknownKey),
        };
        match result {
            Err(JwtError::UnknownKey) if !waited => {
                let before = rt.source.attempts();
                if rt.source.want_refresh() {
                    wait_for_fetch(&rt.source, before).await;
                    waited = true;
                    continue;
                }
                return Err(if keys.is_none() {
                    JwtError::KeysUnavailable
                } else {
                    JwtError::UnknownKey
                });
            }
            Err(JwtError::UnknownKey) if keys.is_none() => return Err(JwtError::KeysUnavailable),
            Err(e) => return Err(e),
            // Ok means a key of `keys` verified it.
            Ok(()) => break keys.map_or(0, |k| k.generation),
        }
    };
    Ok((jwt::check_claims(parsed.payload(), rt, now)?, generation))
}

/// Waits (on a timer) until the fetcher finishes the fetch under way: discovery and key
/// set, each bounded by `FETCH_TIMEOUT`.
async fn wait_for_fetch(source: &KeySource, before: u64) {
    let deadline = Instant::now() + FETCH_TIMEOUT * 2 + Duration::from_millis(200);
    while source.attempts() == before && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
}
