//! The Lambda REQUEST authorizer step of `pipeline::auth`: identity-source values (any
//! missing or empty → 401 without calling), the per-worker result cache (by authorizer,
//! stage and values, for `result_ttl`; at most one call per identity at a time on a
//! worker), the call (the integration's Invoke-API client, 10 s at most), and the
//! verdict evaluated against this request's route ARN. A failed call, a timeout or a
//! malformed answer is a 500 and is never cached.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::auth::{lambda_cached, lambda_pending, lambda_store, now_secs, AuthDeny};
use super::context::{self, request_view, RequestView, ACCOUNT_ID};
use crate::auth::cache;
use crate::auth::lambda::{authorizer_event, parse_answer, LambdaAuthRt};
use crate::auth::{policy, AuthorizerRt, Identity};
use crate::config::auth::IdentitySource;
use crate::config::model::PayloadFormat;
use crate::integration::lambda_event;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// Appends one identity source's value (nothing when absent): every value a backend may
/// read under that name, comma-joined as API Gateway joins a repeated header or query
/// parameter. A header's `_` spelling counts (CGI, WSGI, PHP and Rack backends read
/// `X_Token` and `X-Token` as one HTTP_X_TOKEN), and so does a query name escaped or
/// repeated (PHP and Rails read the last `token`): the function judges, and the result
/// cache keys on, all of them, not the first while the backend reads another. A header
/// the event writes itself is its value there (`X-Forwarded-For` with the client's
/// address appended; `Host` an absolute-form target's authority): the client's own lines
/// alone let one caller be answered by a verdict made for another's address.
fn identity_value(s: &IdentitySource, v: &RequestView, c: &Conn, out: &mut Vec<u8>) {
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    match s {
        IdentitySource::Header(name) => {
            if let Some(own) = lambda_event::written_by_gateway(name.as_bytes()) {
                let trace = crate::integration::lambda::hop_trace(c);
                let added = lambda_event::Added {
                    port: c.stream.local_port(),
                    trace_id: &trace,
                };
                lambda_event::gateway_header_value(own, v, &added, out);
                return;
            }
            if let Some(authority) = v
                .head
                .authority
                .filter(|_| name.eq_ignore_ascii_case("host"))
            {
                out.extend_from_slice(v.span(authority));
                return;
            }
            for h in &v.head.headers {
                if crate::http1::same_cgi_name(v.span(h.name), name.as_bytes()) {
                    sep(out);
                    out.extend_from_slice(v.span(h.value));
                }
            }
        }
        IdentitySource::Query(name) => {
            for (_, val) in super::template::query_pairs(v.query())
                .filter(|(n, _)| crate::auth::query_name_is(n, name.as_bytes()))
            {
                sep(out);
                crate::http1::percent_decode(val, false, out);
            }
        }
        IdentitySource::Context(var) => context::resolve(*var, v).write(out),
        IdentitySource::StageVariable(name) => {
            if let Some((_, val)) = v.stage_vars().iter().find(|(n, _)| n == name) {
                out.extend_from_slice(val.as_bytes());
            }
        }
    }
}

/// Appends one identity source's value with its length in front; false when it is
/// missing or empty.
fn push_identity(s: &IdentitySource, v: &RequestView, c: &Conn, out: &mut Vec<u8>) -> bool {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    identity_value(s, v, c, out);
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    !out[at + 4..].trim_ascii().is_empty()
}

/// Writes the identity-source values of a request the authorizer let in, as the step
/// read them: the caller the response cache keys on (`cache::rules::Caller::Lambda`).
/// Read again there rather than kept from the step, so no connection grows by a buffer
/// (an idle connection's task is held to a size budget, server/idle.rs); it is a few
/// header or query scans into the key buffer, with no allocation (but for a header the
/// event writes itself, whose value is built as the event builds it).
pub(crate) fn write_identity(rt: &LambdaAuthRt, v: &RequestView, c: &Conn, out: &mut Vec<u8>) {
    for s in &rt.sources {
        push_identity(s, v, c, out);
    }
}

/// A WebSocket API's `$connect`: the route's ARN (`…/{stage}/$connect`, what policies
/// and IAM are evaluated against) and API Gateway's WebSocket authorizer event, built only
/// when the function is called. Its answers are read as REST-style (1.0) ones.
pub struct WsConnect<'a> {
    pub arn: String,
    pub event: &'a dyn Fn() -> Vec<u8>,
}

pub(super) async fn step(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    a: &AuthorizerRt,
    rt: &LambdaAuthRt,
    ws: Option<&WsConnect<'_>>,
) -> Result<(), AuthDeny> {
    let snap = &*gen.snap;
    let view = request_view!(c, snap, &c.rbuf);
    // Every value, length-prefixed, in one buffer: the cache key's input (one allocation
    // on the cached path).
    let mut values: Vec<u8> = Vec::with_capacity(128);
    let missing = !rt
        .sources
        .iter()
        .all(|s| push_identity(s, &view, c, &mut values));
    if missing {
        c.req.auth.error = "the identity source is missing or empty";
        return Err(AuthDeny::Unauthorized(None));
    }
    let api = &snap.apis[c.req.api as usize];
    let stage = &api.stages[c.req.stage as usize];
    let now = now_secs();
    let caching = !rt.ttl.is_zero() && !rt.sources.is_empty();
    // An authorizer belongs to one API: two APIs (or two authorizers) calling the same
    // function must not share verdicts, or a simple `true` given for one reaches the other.
    // A stage's canary is a stage of its own here: its event carries the canary's stage
    // variables, so a verdict made from them must not answer the stage's other requests.
    let side: &[u8] = if c.req.canary { b"canary" } else { b"" };
    let key = cache::key(
        &rt.fingerprint,
        &[
            api.name.as_bytes(),
            a.name.as_bytes(),
            stage.name.as_bytes(),
            side,
            &values,
        ],
    );
    let mut verdict = None;
    if caching {
        let deadline = Instant::now() + rt.call.timeout + Duration::from_millis(100);
        loop {
            match lambda_cached(&key, now, rt.ttl.as_secs()) {
                Ok(found) => {
                    verdict = found;
                    break;
                }
                // Another request of this worker is asking the function for this identity.
                Err(()) if Instant::now() < deadline => {
                    monoio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(()) => break,
            }
        }
    }
    let verdict = match verdict {
        Some(v) => {
            a.counters.hit(ctx.id);
            v
        }
        None => {
            let format = if ws.is_some() {
                PayloadFormat::V1
            } else {
                rt.format
            };
            let event = match ws {
                Some(ws) => (ws.event)(),
                None => http_event(c, snap, rt, &values).map_err(|e| {
                    warn!(authorizer = %a.name, error = %e, "cannot build the authorizer event");
                    AuthDeny::Failed
                })?,
            };
            if caching {
                lambda_pending(key, true);
            }
            let started = Instant::now();
            let answer = crate::integration::lambda::call_json(gen, c, &rt.call, &event).await;
            c.req.auth.latency_ms = started.elapsed().as_millis() as u64;
            let parsed = match &answer {
                Ok(body) => parse_answer(body, rt.simple, format),
                Err(e) => Err(e.clone()),
            };
            if caching {
                lambda_pending(key, false);
            }
            match parsed {
                Ok(v) => {
                    let v = Rc::new(v);
                    if caching {
                        lambda_store(key, now + rt.ttl.as_secs(), v.clone(), now);
                    }
                    v
                }
                Err(e) => {
                    // A WebSocket API's authorizer and a 1.0 one are REST-style: a
                    // function error whose message is exactly "Unauthorized" is API
                    // Gateway's 401, the blueprint's way to refuse a missing or bad
                    // token (any other error is a 500). The error may come as a
                    // runtime's error object without X-Amz-Function-Error too.
                    if format == PayloadFormat::V1 && unauthorized_error(&answer) {
                        c.req.auth.error = "the authorizer raised Unauthorized";
                        return Err(AuthDeny::Unauthorized(None));
                    }
                    let id = String::from_utf8_lossy(&c.request_id).into_owned();
                    warn!(authorizer = %a.name, request_id = %id, error = %e, "Lambda authorizer failed");
                    c.req.auth.error = "the authorizer failed or answered in an invalid format";
                    return Err(AuthDeny::Failed);
                }
            }
        }
    };
    let arn = || match ws {
        Some(ws) => ws.arn.clone(),
        None => route_arn(snap, c),
    };
    let allowed = verdict.allows_with(arn);
    // Kept on a deny too: API Gateway fills `$context.authorizer.*` from a Deny answer's
    // principalId and context, so an ACCESS_DENIED gateway response can say why
    // (`$context.authorizer.errorMessage`), and the access log who was refused.
    c.req.auth.identity = Some(Identity::Lambda(verdict));
    if !allowed {
        c.req.auth.error = "the authorizer denied the request";
        return Err(AuthDeny::Forbidden(None));
    }
    Ok(())
}

/// The integration's event for this request, reshaped into the authorizer's.
fn http_event(
    c: &Conn,
    snap: &crate::config::compile::Snapshot,
    rt: &LambdaAuthRt,
    values: &[u8],
) -> Result<Vec<u8>, String> {
    let view = request_view!(c, snap, &c.rbuf);
    let mut event = Vec::with_capacity(2048);
    let trace = crate::integration::lambda::hop_trace(c);
    let added = lambda_event::Added {
        port: c.stream.local_port(),
        trace_id: &trace,
    };
    lambda_event::write_event(
        &mut event,
        &view,
        rt.format,
        &lambda_event::Body::EMPTY,
        &added,
    );
    authorizer_event(&event, rt.format, &route_arn(snap, c), &split(values))
}

/// This request's `arn:aws:execute-api:…/{stage}/{METHOD}/{path}`.
fn route_arn(snap: &crate::config::compile::Snapshot, c: &Conn) -> String {
    let view = request_view!(c, snap, &c.rbuf);
    policy::arn(
        &snap.auth_region,
        ACCOUNT_ID,
        &view.api().name,
        &view.stage().name,
        policy::arn_method(&view.route().key, view.method()),
        view.rest_path(),
        &view.route().key,
    )
}

/// The length-prefixed values back as a list (for the authorizer's event).
fn split(mut joined: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while joined.len() >= 4 {
        let len = u32::from_le_bytes([joined[0], joined[1], joined[2], joined[3]]) as usize;
        out.push(joined[4..4 + len].to_vec());
        joined = &joined[4 + len..];
    }
    out
}

/// A Lambda authorizer's failed answer that is the function error `Unauthorized`.
fn unauthorized_error(answer: &Result<Vec<u8>, String>) -> bool {
    use crate::integration::lambda_response::{function_error, says_unauthorized};
    match answer {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| function_error(v.as_object()?))
            .is_some_and(|e| says_unauthorized(&e)),
        Err(e) => says_unauthorized(e),
    }
}
