//! The IAM (SigV4) step of `pipeline::auth` for `authorization: iam` routes: the request
//! body is read whole (up to `max_body_bytes`; it stays in the connection buffer for the
//! integration) so its SHA-256 can be checked, then the signature is verified
//! (`auth::sigv4`) and the principal's allow/deny patterns are evaluated against the
//! request's execute-api ARN. Every refusal is a 403 with API Gateway's message and
//! `x-amzn-ErrorType`.

use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::auth::{now_secs, AuthDeny};
use super::context::ACCOUNT_ID;
use crate::auth::sigv4::{self, Input, SigError};
use crate::auth::{policy, IamCaller, Identity};
use crate::runtime::workers::Generation;
use crate::server::conn::Conn;

/// Reads the whole body (it stays in `rbuf`, behind the head, for the integration) and
/// hashes it; a chunked body is hashed decoded (it was decoded in place).
async fn body_hash(gen: &Generation, c: &mut Conn) -> Result<[u8; 32], AuthDeny> {
    let end = match c.read_whole_body(gen).await {
        Ok(end) => end,
        Err((status, message)) => {
            c.head.keep_alive = false;
            return Err(AuthDeny::Status(status, message));
        }
    };
    Ok(Sha256::digest(&c.rbuf[c.head.head_len..end]).into())
}

/// Checks the SigV4 signature of the request in `c` (its head as received; `payload`: the
/// SHA-256 of its body) against the `iam` principals.
pub(crate) fn verify_signature<'p>(
    principals: &'p sigv4::Principals,
    c: &Conn,
    payload: [u8; 32],
    now: u64,
) -> Result<&'p sigv4::PrincipalRt, SigError> {
    let buf = &c.rbuf[..];
    // An absolute-form target's authority is the request's host (RFC 9112 §3.2.2): it
    // chose the domain and API, so it is what the signed `host` must name. Judged by the
    // Host line, a request signed for a.test was served by b.test's API when sent as
    // `GET http://b.test/x` with `Host: a.test`.
    let authority = c.head.authority.map(|a| a.get(buf));
    let mut headers: Vec<(&[u8], &[u8])> = c
        .head
        .headers
        .iter()
        .map(|h| (h.name.get(buf), h.value.get(buf)))
        .map(|(n, v)| match authority {
            Some(a) if n.eq_ignore_ascii_case(b"host") => (n, a),
            _ => (n, v),
        })
        .collect();
    if let Some(a) =
        authority.filter(|_| !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"host")))
    {
        headers.push((&b"host"[..], a));
    }
    let input = Input {
        method: c.head.method_span.get(buf),
        // As sent: the head's path has had its unreserved escapes decoded.
        path: match c.raw_path.as_deref() {
            Some(sent) if !sent.is_empty() => sent,
            _ => c.head.path.get(buf),
        },
        query: c.head.query.map_or(&b""[..], |q| q.get(buf)),
        headers: &headers,
        payload,
    };
    sigv4::verify(principals, sigv4::SERVICE, &input, now)
}

/// `arn`: the resource to evaluate instead of this request's route ARN (a WebSocket
/// API's `…/{stage}/$connect`).
pub(super) async fn step(
    gen: &Generation,
    c: &mut Conn,
    arn: Option<&str>,
) -> Result<(), AuthDeny> {
    let payload = body_hash(gen, c).await?;
    let snap = &*gen.snap;
    let verified = verify_signature(&snap.iam, c, payload, now_secs());
    let buf = &c.rbuf[..];
    let api = &snap.apis[c.req.api as usize];
    let stage = &api.stages[c.req.stage as usize];
    let arn = match arn {
        Some(a) => a.to_string(),
        None => policy::arn(
            &snap.auth_region,
            ACCOUNT_ID,
            &api.name,
            &stage.name,
            policy::arn_method(
                &api.routes[c.req.route as usize].key,
                c.head.method_span.get(buf),
            ),
            c.req.rest.get(buf),
            &api.routes[c.req.route as usize].key,
        ),
    };
    let principal = match verified {
        Ok(p) => p,
        Err(e) => {
            c.req.auth.error = "the request signature was refused";
            return Err(AuthDeny::Iam(e));
        }
    };
    if !principal.policy.allows("execute-api:Invoke", &arn) {
        c.req.auth.error = "the principal is not allowed to invoke this route";
        return Err(AuthDeny::Iam(SigError::Denied {
            user: principal.user_arn.clone(),
            resource: arn,
        }));
    }
    c.req.auth.identity = Some(Identity::Iam(Rc::new(IamCaller {
        access_key: principal.access_key_id.clone(),
        account_id: principal.account_id.clone(),
        user_arn: principal.user_arn.clone(),
        user_id: principal.user_id.clone(),
    })));
    Ok(())
}
