//! The parts of a WebSocket handshake that are not the session: the `$connect`
//! authorizer (and its verdict in the connection's events), what of the `$connect`
//! answer goes into the 101 (or refuses the handshake), and the client's headers and
//! query as the CONNECT event carries them.

use serde_json::Value;

use super::call::Answer;
use super::event;
use crate::auth::{AuthState, Identity, RouteAuthRt};
use crate::http1::{encode, hop};
use crate::pipeline::auth::{AuthDeny, WsConnect};
use crate::pipeline::context::ACCOUNT_ID;
use crate::router::Matched;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// Runs the `$connect` route's authorizer (a Lambda REQUEST authorizer or IAM; the
/// pipeline's step, with the WebSocket ARN `…/{stage}/$connect` and API Gateway's
/// WebSocket authorizer event). Ok leaves the verdict in `c.req.auth` (see
/// [`attach`]); Err is the handshake's refusal (401, 403, 500), answered by the caller.
pub(super) async fn authorize_connect(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    m: &Matched,
    ectx: &event::Context,
    request_id: &str,
) -> Result<(), AuthDeny> {
    let snap = &*gen.snap;
    let api = &snap.apis[m.stage.api as usize];
    if matches!(
        api.auth.routes.get(m.route as usize),
        None | Some(RouteAuthRt::None)
    ) {
        return Ok(());
    }
    let st = &api.stages[m.stage.stage as usize];
    let arn = format!(
        "arn:aws:execute-api:{}:{}:{}/{}/$connect",
        snap.auth_region, ACCOUNT_ID, api.name, st.name
    );
    let (headers, query) = (all_headers(c), query(c));
    let build = || event::authorizer(ectx, request_id, &arn, &headers, &query, &st.variables);
    let ws = WsConnect {
        arn: arn.clone(),
        event: &build,
    };
    crate::pipeline::auth::authorize_with(ctx, gen, c, m, Some(&ws)).await
}

/// Puts the `$connect` verdict into the connection's event context: a Lambda
/// authorizer's `{"principalId", …context (stringified)…, "integrationLatency"}` as
/// `requestContext.authorizer` (API Gateway's WebSocket events carry the REST shape), an
/// IAM caller's fields in `requestContext.identity`.
pub(super) fn attach(ectx: &mut event::Context, auth: &AuthState) {
    let Some(id) = &auth.identity else { return };
    ectx.auth = Some(id.clone());
    match id {
        Identity::Lambda(v) => {
            let mut m = serde_json::Map::new();
            m.insert(
                "principalId".into(),
                v.principal_id.as_deref().map_or(Value::Null, Value::from),
            );
            for (k, val) in &v.context {
                m.insert(
                    k.to_string(),
                    val.as_deref().map_or(Value::Null, Value::from),
                );
            }
            m.insert("integrationLatency".into(), auth.latency_ms.into());
            ectx.authorizer = Some(Value::Object(m));
        }
        Identity::Iam(caller) => {
            let mut m = serde_json::Map::new();
            m.insert("accessKey".into(), caller.access_key.clone().into());
            m.insert("accountId".into(), caller.account_id.clone().into());
            m.insert("caller".into(), caller.user_id.clone().into());
            m.insert("user".into(), caller.user_id.clone().into());
            m.insert("userArn".into(), caller.user_arn.clone().into());
            ectx.iam_identity = Some(m);
        }
        Identity::Jwt(v) => {
            // The REST shape of a JWT verdict (as payload 1.0 events carry it): the
            // claims as strings, the scopes or null, and the subject as principalId.
            let claims: serde_json::Map<String, Value> = v
                .claims
                .iter()
                .map(|(k, val)| (k.to_string(), Value::from(&**val)))
                .collect();
            let principal = claims.get("sub").cloned().unwrap_or(Value::Null);
            let scopes = if v.scopes.is_empty() {
                Value::Null
            } else {
                v.scopes.iter().map(|s| Value::from(&**s)).collect()
            };
            let mut m = serde_json::Map::new();
            m.insert("principalId".into(), principal);
            m.insert("claims".into(), Value::Object(claims));
            m.insert("scopes".into(), scopes);
            m.insert("integrationLatency".into(), auth.latency_ms.into());
            ectx.authorizer = Some(Value::Object(m));
        }
    }
}

/// Whether the `$connect` answer's header `name` goes into the 101 or the refusal: not
/// one the handshake writes, nor framing, nor hop-by-hop (the relay's fixed list and the
/// fields the answer's own `Connection` names: they were for the hop to Portico, and a
/// backend's `Connection: x-secret` keeps `X-Secret` from the client), nor a request id.
/// (A function's own Date and Server are dropped where its answer is read, `call`.)
pub(super) fn passes_into_101(name: &[u8], answer: &[(Vec<u8>, Vec<u8>)]) -> bool {
    const OWN: [&[u8]; 4] = [
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
    ];
    !OWN.iter().any(|o| o.eq_ignore_ascii_case(name))
        && !hop::is_always(name)
        && !encode::is_request_id(name)
        && !(answer.iter())
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .any(|(_, v)| hop::connection_names(v, name))
}

/// A `$connect` integration said no: its status and body are the handshake's answer.
pub(super) async fn refuse(c: &mut Conn, a: Answer) -> bool {
    c.out.status = a.status;
    (c.out.integration_status, c.out.function_status) = a.logged_statuses();
    c.wbuf.clear();
    c.wbuf.extend_from_slice(b"HTTP/1.1 ");
    encode::decimal(&mut c.wbuf, u64::from(a.status));
    c.wbuf.push(b' ');
    c.wbuf
        .extend_from_slice(encode::reason_phrase(a.status).as_bytes());
    c.wbuf.extend_from_slice(b"\r\n");
    for (name, value) in &a.headers {
        if passes_into_101(name, &a.headers) {
            encode::header(&mut c.wbuf, name, value);
        }
    }
    // A 304 ends at its head (RFC 9110 §15.4.5), as on HTTP routes. (204 and 205, the
    // other bodiless ones, are 2xx: they complete the handshake and never come here.)
    let body: &[u8] = if a.status == 304 {
        &[]
    } else {
        encode::header(
            &mut c.wbuf,
            b"content-length",
            a.body.len().to_string().as_bytes(),
        );
        &a.body
    };
    encode::own_head_end(&mut c.wbuf, &c.request_id, false, false);
    c.wbuf.extend_from_slice(body);
    c.out.body_sent = body.len() as u64;
    let _ = c.flush_wbuf().await;
    false
}

/// The client's headers for the CONNECT event: as sent, without the hop-by-hop ones,
/// with X-Forwarded-For/Port/Proto as API Gateway adds them (the client's own values of
/// these replaced, its X-Forwarded-For with the peer's address appended), so a function
/// never sees a client's `x-forwarded-proto: https` beside the real one (nor its
/// `X_Forwarded_Proto`, which WSGI-style adapters read as the same header).
pub(super) fn connect_headers(c: &Conn) -> Vec<(String, String)> {
    headers(c, false)
}

/// The client's headers for an `http` integration's `$connect` call, as `name: value`
/// lines: those of the CONNECT event (X-Forwarded-For/Port/Proto Portico's, `_`
/// spellings of its own headers dropped, X-Real-IP the client's address as the HTTP
/// proxy writes it) without what would make the call look like the
/// handshake itself or let a client speak for Portico: hop-by-hop fields (and those
/// `Connection` names), `Sec-WebSocket-Key`, `-Version`, `-Extensions` and any other
/// `Sec-WebSocket-*` but `-Protocol` (a backend framework would take the POST for an
/// upgrade; the offered subprotocols are what a backend needs to choose one), Host,
/// Expect and the framing the call writes, and the client's own `x-amzn-connection-id`,
/// `x-amzn-route-key` and `x-amzn-event-type`.
pub(crate) fn http_connect_headers(c: &Conn) -> Vec<u8> {
    use crate::http1::same_cgi_name;
    let hop = crate::http1::hop::HopByHop::new(&c.head.headers, &c.rbuf, c.head.connection_names);
    let mut out = Vec::new();
    // As sent (values need not be UTF-8), unlike the events' strings.
    for (n, value) in client_headers(c, false) {
        let ours = [
            &b"x-amzn-connection-id"[..],
            b"x-amzn-route-key",
            b"x-amzn-event-type",
        ]
        .iter()
        .any(|own| same_cgi_name(own, n));
        let handshake = n.len() >= 14
            && n[..14].eq_ignore_ascii_case(b"sec-websocket-")
            && !n.eq_ignore_ascii_case(b"sec-websocket-protocol");
        let written = crate::integration::own_headers::written_by_proxy(n)
            || same_cgi_name(n, crate::integration::own_headers::REAL_IP);
        if ours || handshake || written || hop.drops(n) {
            continue;
        }
        encode::header(&mut out, n, value);
    }
    for (name, value) in added_headers(c) {
        encode::header(&mut out, name.as_bytes(), value.as_bytes());
    }
    // As the HTTP proxy writes it: the client's address, never the client's word for it.
    encode::header(
        &mut out,
        crate::integration::own_headers::REAL_IP,
        c.peer_ip.as_bytes(),
    );
    out
}

/// The same with Connection and Upgrade, as the authorizer's event has them.
fn all_headers(c: &Conn) -> Vec<(String, String)> {
    headers(c, true)
}

fn headers(c: &Conn, hop_by_hop: bool) -> Vec<(String, String)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out: Vec<(String, String)> = client_headers(c, hop_by_hop)
        .map(|(n, v)| (text(n), text(v)))
        .collect();
    out.extend(added_headers(c).map(|(n, v)| (n.to_string(), v)));
    out
}

/// The client's headers as sent, less the X-Forwarded-For/Port/Proto and X-Amzn-Trace-Id that
/// `added_headers` replaces, the `_` spellings of Portico's own headers, and (unless
/// `hop_by_hop`) Connection and Upgrade. An absolute-form target's authority is the
/// Host (RFC 9112 §3.2.2), as in HTTP events: it chose the domain `domainName` names.
fn client_headers(c: &Conn, hop_by_hop: bool) -> impl Iterator<Item = (&[u8], &[u8])> {
    let buf = &c.rbuf;
    let authority = c.head.authority.map(|a| a.get(buf));
    c.head
        .headers
        .iter()
        .map(move |h| {
            let name = h.name.get(buf);
            match authority.filter(|_| name.eq_ignore_ascii_case(b"host")) {
                Some(authority) => (name, authority),
                None => (name, h.value.get(buf)),
            }
        })
        .filter(move |(n, _)| {
            !is_added(n)
                && !crate::integration::own_headers::underscore_spelling_of_own(n)
                && (hop_by_hop
                    || !n.eq_ignore_ascii_case(b"connection")
                        && !n.eq_ignore_ascii_case(b"upgrade"))
        })
}

fn is_added(n: &[u8]) -> bool {
    [
        &b"x-forwarded-for"[..],
        b"x-forwarded-port",
        b"x-forwarded-proto",
        b"x-amzn-trace-id",
    ]
    .iter()
    .any(|a| n.eq_ignore_ascii_case(a))
}

/// X-Forwarded-For (the client's values, then the peer), -Port and -Proto, and
/// X-Amzn-Trace-Id (the client's Root continued, or a new one), as API Gateway adds them.
fn added_headers(c: &Conn) -> [(&'static str, String); 4] {
    let buf = &c.rbuf;
    let client = c.head.continued_values(buf, "x-forwarded-for");
    let mut forwarded = Vec::new();
    crate::integration::own_headers::forwarded_for(client, c.peer_ip.as_bytes(), &mut forwarded);
    let forwarded = String::from_utf8_lossy(&forwarded).into_owned();
    let proto = if c.stream.is_tls() { "https" } else { "http" };
    let trace = crate::integration::lambda::hop_trace(c);
    [
        ("X-Forwarded-For", forwarded),
        ("X-Forwarded-Port", c.stream.local_port().to_string()),
        ("X-Forwarded-Proto", proto.to_string()),
        (
            "X-Amzn-Trace-Id",
            String::from_utf8_lossy(&trace).into_owned(),
        ),
    ]
}

/// The query string as decoded pairs.
pub(super) fn query(c: &Conn) -> Vec<(String, String)> {
    let Some(q) = c.head.query else {
        return Vec::new();
    };
    let decode = |s: &[u8]| {
        let mut out = Vec::new();
        crate::http1::percent_decode(s, false, &mut out);
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
