//! `@connections/{id}` on a WebSocket API's stage endpoint (what boto3's
//! `apigatewaymanagementapi` calls with `endpoint_url` set to the stage): the HTTP side
//! and who may call it (SigV4 against `iam`);
//! the connections themselves are `connections`.

use bytes::Buf;
use sha2::{Digest, Sha256};

use super::connections;
use crate::http1::encode;
use crate::http1::parse::{BodyKind, Method};
use crate::pipeline::context::ACCOUNT_ID;
use crate::router::StageRef;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// `@connections/{id}` on the stage endpoint.
pub(super) async fn manage(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    stage: StageRef,
    id: &str,
) -> bool {
    use connections::{Op, Reply};
    // A POST's body is read before the signature is checked (the signature covers it).
    let mut data = Vec::new();
    // The body's length as sent (its chunk framing included), consumed with the head.
    let mut sent_len = 0;
    let early = match c.head.method {
        Method::Post => match c.head.body {
            BodyKind::Length(n) if n as usize > connections::MAX_POST => {
                Some(connections::too_long())
            }
            _ => match read_body(gen, c).await {
                Ok((d, sent)) if d.len() > connections::MAX_POST => {
                    // Only a chunked body gets here: its length was not known before.
                    consume_body(c, sent);
                    Some(connections::too_long())
                }
                Ok((d, sent)) => {
                    data = d;
                    sent_len = sent;
                    None
                }
                // A chunked body past the limit, left unread: the connection closes (the
                // read said so: `keep_alive` is off).
                Err(413) => Some(connections::too_long()),
                Err(400) => Some(Reply::error(400, "BadRequestException", "Bad Request")),
                Err(_) => return false,
            },
        },
        Method::Get | Method::Head | Method::Delete => None,
        _ => Some(Reply::error(
            405,
            "MethodNotAllowedException",
            "Method Not Allowed",
        )),
    };
    let reply = match early {
        Some(r) => r,
        None => {
            let allowed = authorize_management(gen, c, stage, id, &data);
            consume_body(c, sent_len);
            match allowed {
                Err(r) => r,
                Ok(()) => {
                    let op = match c.head.method {
                        Method::Post => Op::Post(data),
                        Method::Delete => Op::Delete,
                        _ => Op::Get,
                    };
                    let api = &gen.snap.apis[stage.api as usize];
                    let scope = format!("{}/{}", api.name, api.stages[stage.stage as usize].name);
                    let out = super::across_nodes::manage_async(Some(ctx.id), id, Some(&scope), op);
                    connections::reply(out.await)
                }
            }
        }
    };
    let keep = c.can_keep_alive(ctx);
    c.out.status = reply.status;
    let slot = crate::metrics::cells::ws_management_slot(reply.status);
    crate::metrics::cells::bump(&ctx.cells.ws_management[slot], 1);
    c.wbuf.clear();
    c.wbuf.extend_from_slice(b"HTTP/1.1 ");
    encode::decimal(&mut c.wbuf, u64::from(reply.status));
    c.wbuf.push(b' ');
    c.wbuf
        .extend_from_slice(encode::reason_phrase(reply.status).as_bytes());
    c.wbuf.extend_from_slice(b"\r\n");
    if let Some(t) = reply.error_type {
        encode::header(&mut c.wbuf, b"x-amzn-ErrorType", t.as_bytes());
    }
    if !reply.body.is_empty() {
        c.wbuf
            .extend_from_slice(b"content-type: application/json\r\n");
    }
    if reply.status != 204 {
        encode::header(
            &mut c.wbuf,
            b"content-length",
            reply.body.len().to_string().as_bytes(),
        );
    }
    encode::own_head_end(&mut c.wbuf, &c.request_id, keep, c.head.minor_version == 0);
    if c.head.method != Method::Head {
        c.wbuf.extend_from_slice(&reply.body);
        // The access log's responseLength.
        c.out.body_sent = reply.body.len() as u64;
    }
    if c.flush_wbuf().await.is_err() {
        return false;
    }
    // A POST's body was consumed by read_body; make discard_body a no-op for it.
    keep && c.discard_body(gen).await
}

/// Who may call `@connections` on the stage endpoint: with `iam` principals, SigV4
/// callers (service execute-api) whose patterns allow `execute-api:ManageConnections` on
/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/@connections/{id}`,
/// from anywhere; every other call gets API Gateway's 403 with its `x-amzn-ErrorType`.
/// Without principals there is nothing to sign with: callers on this host (a loopback
/// peer) only (`check` warns), and the admin listener (token) for remote ones.
fn authorize_management(
    gen: &Generation,
    c: &Conn,
    stage: StageRef,
    id: &str,
    body: &[u8],
) -> Result<(), connections::Reply> {
    use crate::auth::sigv4::SigError;
    let snap = &*gen.snap;
    let forbidden = |e: SigError| connections::Reply::error(403, e.error_type(), &e.message());
    if snap.iam.list.is_empty() {
        return if c.peer.ip().is_loopback() {
            Ok(())
        } else {
            Err(connections::Reply::error(
                403,
                "ForbiddenException",
                "Forbidden",
            ))
        };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let payload = Sha256::digest(body).into();
    let principal = crate::pipeline::auth_iam::verify_signature(&snap.iam, c, payload, now)
        .map_err(forbidden)?;
    let api = &snap.apis[stage.api as usize];
    let arn = format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{}/@connections/{}",
        snap.auth_region,
        ACCOUNT_ID,
        api.name,
        api.stages[stage.stage as usize].name,
        String::from_utf8_lossy(c.head.method_span.get(&c.rbuf)),
        id
    );
    if principal
        .policy
        .allows("execute-api:ManageConnections", &arn)
    {
        Ok(())
    } else {
        Err(connections::Reply::error(
            403,
            "AccessDeniedException",
            &format!(
                "User: {} is not authorized to perform: execute-api:ManageConnections on resource: {arn}",
                principal.user_arn
            ),
        ))
    }
}

/// Reads a body whole (a content-length one of at most MAX_POST, a chunked one of at most
/// `max_body_bytes`) and returns a copy of its content and how many bytes it took on the
/// wire; the head stays in `rbuf` (the signature check reads it) until `consume_body`. A
/// client that sent `Expect: 100-continue` gets its 100 first (it would wait for it, and
/// the call end unanswered at the header timeout).
async fn read_body(gen: &Generation, c: &mut Conn) -> Result<(Vec<u8>, usize), u16> {
    // A chunked body past MAX_POST is refused as it comes, not read to max_body_bytes
    // before the signature is even checked (it is decoded in place).
    let max = (connections::MAX_POST as u64 + 1).min(gen.snap.server.limits.max_body_bytes);
    let end = c
        .read_whole_body_within(gen, max)
        .await
        .map_err(|(status, _)| status)?;
    let sent = end - c.head.head_len;
    Ok((c.rbuf[c.head.head_len..end].to_vec(), sent))
}

/// Consumes head and body (`n` bytes as sent, read by `read_body`) from `rbuf` and
/// leaves the head's framing saying "no body" for `discard_body`. GET and DELETE:
/// nothing to do.
fn consume_body(c: &mut Conn, n: usize) {
    if c.head.method != Method::Post {
        return;
    }
    c.rbuf.advance(c.head.head_len + n);
    c.head.head_len = 0;
    c.head.body = BodyKind::Empty;
}
