//! The parts of a WebSocket handshake that are not the session: the `$connect`
//! authorizer hook, what of the `$connect` answer goes into the 101 (or refuses the
//! handshake), and the client's headers and query as the CONNECT event carries them.

use super::call::Answer;
use crate::http1::encode;
use crate::router::StageRef;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// The hook where authorizers (Lambda, IAM, JWT) run on `$connect`: Ok with the
/// authorizer's context (attached to every later event of the connection), or the
/// handshake's answer (401/403/500). No authorizer is configured for WebSocket APIs yet.
pub(super) fn authorize_connect(
    _ctx: &WorkerCtx,
    _gen: &Generation,
    _c: &Conn,
    _stage: StageRef,
) -> Result<Option<serde_json::Value>, (u16, &'static str)> {
    Ok(None)
}

/// Headers of the `$connect` answer that may go into the 101 (not the ones the
/// handshake writes, nor framing or hop-by-hop ones).
pub(super) fn passes_into_101(name: &str) -> bool {
    const OWN: [&str; 9] = [
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "x-amzn-requestid",
        "apigw-requestid",
    ];
    !OWN.iter().any(|o| o.eq_ignore_ascii_case(name))
}

/// A `$connect` integration said no: its status and body are the handshake's answer.
pub(super) async fn refuse(c: &mut Conn, a: Answer) -> bool {
    c.out.status = a.status;
    c.out.integration_status = Some(a.status);
    c.wbuf.clear();
    c.wbuf.extend_from_slice(b"HTTP/1.1 ");
    encode::decimal(&mut c.wbuf, u64::from(a.status));
    c.wbuf.push(b' ');
    c.wbuf
        .extend_from_slice(encode::reason_phrase(a.status).as_bytes());
    c.wbuf.extend_from_slice(b"\r\n");
    for (name, value) in &a.headers {
        if passes_into_101(name) {
            encode::header(&mut c.wbuf, name.as_bytes(), value.as_bytes());
        }
    }
    encode::header(
        &mut c.wbuf,
        b"content-length",
        a.body.len().to_string().as_bytes(),
    );
    encode::own_head_end(&mut c.wbuf, &c.request_id, false, false);
    c.wbuf.extend_from_slice(&a.body);
    c.out.body_sent = a.body.len() as u64;
    let _ = c.flush_wbuf().await;
    false
}

/// The client's headers for the CONNECT event: as sent, without the hop-by-hop ones,
/// with X-Forwarded-For/Port/Proto as API Gateway adds them.
pub(super) fn connect_headers(c: &Conn) -> Vec<(String, String)> {
    let buf = &c.rbuf;
    let mut out: Vec<(String, String)> = c
        .head
        .headers
        .iter()
        .filter(|h| {
            let n = h.name.get(buf);
            !n.eq_ignore_ascii_case(b"connection") && !n.eq_ignore_ascii_case(b"upgrade")
        })
        .map(|h| {
            (
                String::from_utf8_lossy(h.name.get(buf)).into_owned(),
                String::from_utf8_lossy(h.value.get(buf)).into_owned(),
            )
        })
        .collect();
    let ip = String::from_utf8_lossy(c.peer_ip.as_bytes()).into_owned();
    out.push(("X-Forwarded-For".into(), ip));
    out.push(("X-Forwarded-Port".into(), c.stream.local_port().to_string()));
    let proto = if c.stream.is_tls() { "https" } else { "http" };
    out.push(("X-Forwarded-Proto".into(), proto.into()));
    out
}

/// The query string as decoded pairs.
pub(super) fn query(c: &Conn) -> Vec<(String, String)> {
    let Some(q) = c.head.query else {
        return Vec::new();
    };
    let decode = |s: &[u8]| {
        let mut out = Vec::new();
        crate::integration::lambda_event::percent_decode(s, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    q.get(&c.rbuf)
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}
