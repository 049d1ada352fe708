//! `@connections/{id}` on a WebSocket API's stage endpoint (what boto3's
//! `apigatewaymanagementapi` calls with `endpoint_url` set to the stage): the HTTP side;
//! the connections themselves are `connections`.

use bytes::Buf;

use super::connections;
use crate::http1::encode;
use crate::http1::parse::{BodyKind, Method};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// `@connections/{id}` on the stage endpoint.
pub(super) async fn manage(ctx: &WorkerCtx, gen: &Generation, c: &mut Conn, id: &str) -> bool {
    use connections::{Op, Reply};
    let reply = match authorize_management(c) {
        Err(r) => r,
        Ok(()) => match c.head.method {
            Method::Post => match c.head.body {
                BodyKind::Length(n) if n as usize > connections::MAX_POST => {
                    Reply::error(413, "PayloadTooLargeException", "Message too long")
                }
                BodyKind::Chunked => {
                    Reply::error(400, "BadRequestException", "Send a Content-Length")
                }
                _ => match read_body(gen, c).await {
                    Some(data) => connections::reply(
                        connections::manage_async(Some(ctx.id), id, Op::Post(data)).await,
                    ),
                    None => return false,
                },
            },
            Method::Get | Method::Head => {
                connections::reply(connections::manage_async(Some(ctx.id), id, Op::Get).await)
            }
            Method::Delete => {
                connections::reply(connections::manage_async(Some(ctx.id), id, Op::Delete).await)
            }
            _ => Reply::error(405, "MethodNotAllowedException", "Method Not Allowed"),
        },
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
    }
    if c.flush_wbuf().await.is_err() {
        return false;
    }
    // A POST's body was consumed by read_body; make discard_body a no-op for it.
    keep && c.discard_body(gen).await
}

/// Who may call `@connections` on the stage endpoint. SigV4 against `iam` principals
/// (execute-api:ManageConnections) belongs here; until that verifier exists, only callers
/// on this host (a loopback peer) are allowed, and the admin listener (token) works for
/// remote ones.
fn authorize_management(c: &Conn) -> Result<(), connections::Reply> {
    if c.peer.ip().is_loopback() {
        Ok(())
    } else {
        Err(connections::Reply::error(
            403,
            "ForbiddenException",
            "Forbidden",
        ))
    }
}

/// Reads a content-length body (at most MAX_POST) whole; consumes head and body from
/// `rbuf` and leaves the head's framing saying "no body" for `discard_body`.
async fn read_body(gen: &Generation, c: &mut Conn) -> Option<Vec<u8>> {
    let n = match c.head.body {
        BodyKind::Length(n) => n as usize,
        _ => 0,
    };
    let need = c.head.head_len + n;
    let wait = gen.snap.server.limits.header_timeout;
    while c.rbuf.len() < need {
        match monoio::time::timeout(wait, c.read_client()).await {
            Ok(Ok(k)) if k > 0 => {}
            _ => return None,
        }
    }
    let data = c.rbuf[c.head.head_len..need].to_vec();
    c.rbuf.advance(need);
    c.head.head_len = 0;
    c.head.body = BodyKind::Empty;
    Some(data)
}
