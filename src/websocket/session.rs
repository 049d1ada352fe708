//! One client of a WebSocket API, from its handshake to `$disconnect`.
//!
//! Lifecycle:
//! 1. **Handshake** (`serve`): a request for a WebSocket API's stage. `@connections/{id}`
//!    paths go to the management API (`manage`); anything but a valid RFC 6455 upgrade
//!    (GET, HTTP/1.1, `Upgrade: websocket`, version 13, a 16-byte key) is answered 426 or
//!    400. The `$connect` route's authorizer (`authorize_connect`: Lambda or IAM; 401,
//!    403 or 500 refuse the handshake), then its API keys and throttles apply here; the
//!    verdict and the key go with every later event of the connection (each message
//!    passes its own route's throttles and the key's plan throttle: `deliver`).
//! 2. **$connect**: the upgrade waits for the `$connect` integration (if the route
//!    exists): a 2xx completes it (the integration's headers, e.g.
//!    `Sec-WebSocket-Protocol`, go into the 101); any other status is the answer to the
//!    handshake, a failure is 502. No permessage-deflate is negotiated.
//! 3. **Open** (`open::run`, once the handshake's request is done): registered in the worker's connection map (`connections`), so
//!    `@connections` can reach it. Three tasks share the socket: the reader decodes frames
//!    and handles each message in turn (route selection, the route's integration, its
//!    answer queued when `route_response` is on); the writer sends queued frames
//!    (answers, pongs, `@connections` posts, close frames); the watchdog closes with 1001
//!    after `limits.idle` without a data message either way or at `limits.max_duration`.
//!    Each message is routed by the config current when it arrives (a reload never closes
//!    a connection; a route removed by it sends its messages to `$default`).
//! 4. **Closing**: a close from the client is echoed at once, even while a message's
//!    integration runs; a protocol violation, an oversized frame or message, a rejected
//!    binary frame, DeleteConnection, the watchdog or a drain queue the server's close
//!    frame; the writer sends what is queued and the socket closes. When the client
//!    closed or vanished, the integration calls of its messages still finish (answers
//!    dropped). Then `$disconnect` runs (best effort: nobody hears its answer) with the
//!    close code and reason in the event.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use base64::Engine;
use bytes::Buf;

use super::call::{call, Call};
use super::connections::{self, Live};
use super::event;
use super::handshake::{
    attach, authorize_connect, connect_headers, http_connect_headers, passes_into_101, query,
    refuse,
};
use super::open::Opened;
use crate::config::compile::IntegrationRt;
use crate::http1::encode;
use crate::http1::parse::{BodyKind, Method, Span};
use crate::metrics::cells::bump;
use crate::router::{Matched, StageRef};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// Serves the request when it is for a WebSocket API's stage (None: it is not).
pub async fn dispatch(ctx: &WorkerCtx, gen: &Generation, c: &mut Conn) -> Option<bool> {
    let host = c.head.host.map(|s| s.get(&c.rbuf));
    let (stage, rest, custom_domain) = gen.snap.router.select_stage(&c.rbuf, host, c.head.path)?;
    gen.snap.apis[stage.api as usize].websocket.as_ref()?;
    Some(serve(ctx, gen, c, stage, rest, custom_domain).await)
}

/// Serves a request for a WebSocket API's stage (`rest`: the path after its base path).
/// Returns whether the connection can carry another request.
pub async fn serve(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    stage: StageRef,
    rest: Span,
    custom_domain: bool,
) -> bool {
    let handshake_started = Instant::now();
    let path = rest.get(&c.rbuf);
    // A `$default` stage's events name it, and the callback URL a function builds from
    // them (`https://{domainName}/{stage}`, API Gateway's recipe) puts it in the path.
    let api = &gen.snap.apis[stage.api as usize];
    let default_stage = api.stages[stage.stage as usize].name == "$default";
    let named = (path.strip_prefix(b"/$default")).or_else(|| path.strip_prefix(b"/%24default"));
    let management = match named.filter(|_| default_stage) {
        Some(after) => connections::id_in_path(after),
        None => connections::id_in_path(path),
    };
    if let Some(id) = management {
        return super::manage::manage(ctx, gen, c, stage, &id).await;
    }
    if !matches!(path, b"" | b"/") {
        return c.answer(ctx, gen, 404, "Not Found", &[]).await;
    }
    let buf = &c.rbuf;
    let offers_websocket = c.head.header(buf, "upgrade").is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    });
    if !c.head.upgrade || !offers_websocket {
        // A 426 names the protocol to upgrade to (RFC 9110 §15.5.22: MUST), and whoever
        // sends Upgrade lists it in Connection (§7.8).
        return c
            .answer(
                ctx,
                gen,
                426,
                "Upgrade Required",
                &[
                    ("upgrade", b"websocket"),
                    ("connection", b"upgrade"),
                    ("sec-websocket-version", b"13"),
                ],
            )
            .await;
    }
    // Each at most once (RFC 6455 §11.3.1): a second one would be read by someone else.
    let count = |name: &str| {
        c.head
            .headers
            .iter()
            .filter(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .count()
    };
    let repeated = count("sec-websocket-key") > 1 || count("sec-websocket-version") > 1;
    if repeated || c.head.header(buf, "sec-websocket-version") != Some(b"13") {
        c.head.keep_alive = false;
        return c
            .answer(
                ctx,
                gen,
                400,
                "Bad Request",
                &[("sec-websocket-version", b"13")],
            )
            .await;
    }
    let key = c
        .head
        .header(buf, "sec-websocket-key")
        .map(<[u8]>::trim_ascii);
    let key_ok = key.is_some_and(|k| {
        base64::engine::general_purpose::STANDARD
            .decode(k)
            .is_ok_and(|raw| raw.len() == 16)
    });
    if !key_ok
        || c.head.method != Method::Get
        || c.head.minor_version != 1
        || c.head.body != BodyKind::Empty
    {
        c.head.keep_alive = false;
        return c.answer(ctx, gen, 400, "Bad Request", &[]).await;
    }
    let accept = super::sha1::accept_key(key.unwrap_or_default());

    let api = &gen.snap.apis[stage.api as usize];
    let Some(ws) = api.websocket.as_deref() else {
        return c.answer(ctx, gen, 404, "Not Found", &[]).await;
    };
    let st = &api.stages[stage.stage as usize];
    let random = getrandom::u64().unwrap_or_else(|_| ctx.rng.borrow_mut().next_u64());
    let id = connections::new_id(ctx.id, random);
    let header = |name: &str| {
        c.head
            .header(&c.rbuf, name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let host = c
        .head
        .host
        .map(|h| crate::router::domain_name(h.get(&c.rbuf)))
        .unwrap_or_default();
    let mut ectx = event::Context {
        api_id: api.name.clone(),
        stage: st.name.clone(),
        domain_name: String::from_utf8_lossy(host).into_owned(),
        connection_id: id.clone(),
        connected_at_ms: event::now_ms(),
        source_ip: String::from_utf8_lossy(c.peer_ip.as_bytes()).into_owned(),
        user_agent: header("user-agent"),
        authorizer: None,
        iam_identity: None,
        auth: None,
    };
    let request_id = String::from_utf8_lossy(&c.request_id).into_owned();
    let mut key = None;
    if let Some(route) = ws.connect {
        let m = Matched {
            stage,
            route,
            rest,
            custom_domain,
        };
        c.out.served_by = Some((stage, route));
        c.req.begin(&m, false);
        // A handshake refused from here on (authorizer, key, throttle, integration) is
        // logged as the CONNECT event it was, with the connection id its authorizer and
        // integration were called with, as API Gateway logs a `$connect`.
        c.out.texts().connection_id.push_str(&id);
        let cells = &gen.route_cells[st.metric_base + route as usize];
        // As for HTTP routes: the authorizer first (an API key may come from it), then
        // API keys and throttles.
        if let Err(deny) = authorize_connect(ctx, gen, c, &m, &ectx, &request_id).await {
            c.head.keep_alive = false;
            return deny.answer(ctx, gen, c, cells).await;
        }
        attach(&mut ectx, &c.req.auth);
        if let Err(deny) = crate::pipeline::admit(ctx, gen, c, &m).await {
            return deny.answer(ctx, gen, c, cells).await;
        }
        // Its plan's throttle applies to the connection's messages too.
        key = crate::pipeline::admission::connection_key(ctx, gen, c, &m).map(Box::new);
    }

    let mut accepted_headers = Vec::new();
    // The `$connect` integration's status, and a function's `statusCode` (logged).
    let mut connect_status = None;
    let mut logged_statuses = (None, None);
    if let Some(route) = ws.connect {
        let integration = &st.integrations[route as usize];
        let lambda_event = matches!(integration, IntegrationRt::Lambda(_)).then(|| {
            event::connect(
                &ectx,
                &request_id,
                &connect_headers(c),
                &query(c),
                &st.variables,
            )
        });
        let http_headers = matches!(integration, IntegrationRt::Http(_))
            .then(|| http_connect_headers(c))
            .unwrap_or_default();
        let raw_query = c.head.query.map(|q| q.get(&c.rbuf));
        let started = Instant::now();
        let answer = call(
            gen,
            integration,
            &Call {
                route_key: "$connect",
                event_type: "CONNECT",
                connection_id: &id,
                message: b"",
                lambda_event: lambda_event.as_deref(),
                handshake: Some((raw_query, &http_headers)),
            },
        )
        .await;
        c.out.integration_time = Some(started.elapsed());
        match answer {
            Ok(a) if (200..300).contains(&a.status) => {
                connect_status = Some(a.status);
                logged_statuses = a.logged_statuses();
                accepted_headers = a.headers;
            }
            Ok(a) => return refuse(c, a).await,
            Err(e) => {
                if let Some(held_back) = crate::metrics::log_limit::allow(("ws route", "$connect"))
                {
                    tracing::warn!(connection = %id, error = %e, held_back, "WebSocket $connect integration failed");
                }
                c.out.texts().integration = e.reason;
                c.head.keep_alive = false;
                return c.answer(ctx, gen, e.status, e.message, &[]).await;
            }
        }
    }

    // The handshake is done: 101, then the socket speaks WebSocket. Its access-log line
    // and its count in `portico_requests_total` have the `$connect` integration's status
    // (200 without one), as API Gateway logs `$context.status`: the same value in both.
    c.out.status = connect_status.unwrap_or(200);
    c.wbuf.clear();
    c.wbuf.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n",
    );
    encode::header(&mut c.wbuf, b"sec-websocket-accept", accept.as_bytes());
    let mut subprotocol_chosen = false;
    for (name, value) in &accepted_headers {
        if !passes_into_101(name, &accepted_headers) {
            continue;
        }
        // RFC 6455 §4.2.2: the server picks one subprotocol the client offered; any
        // other value, or a second one, makes the client fail the handshake (Python's
        // `websockets` does), so those the `$connect` answer names are left out.
        if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
            if subprotocol_chosen || !offered_subprotocol(&c.head, &c.rbuf, value) {
                let value = String::from_utf8_lossy(value);
                tracing::warn!(connection = %id, subprotocol = %value, "the $connect answer names a subprotocol the client did not offer, or a second one; left out of the 101");
                continue;
            }
            subprotocol_chosen = true;
        }
        encode::header(&mut c.wbuf, name, value);
    }
    encode::own_head_end(&mut c.wbuf, &c.request_id, true, false);
    super::across_nodes::announce(&id).await;
    // A 101 the client is no longer there to take (it reset the connection while
    // `$connect` ran) still opens the connection, which then ends at once as vanished
    // (1006): the `$connect` integration accepted it, and its `$disconnect` is how the
    // backend learns to forget it.
    if c.flush_wbuf().await.is_err() {
        tracing::debug!(connection = %id, "the client left before its 101; $disconnect follows");
    }
    c.out.websocket_logged = true;
    super::log::write(
        ctx,
        gen,
        &ectx,
        c.peer.ip(),
        &super::log::Line {
            request_id: &request_id,
            route_key: "$connect",
            event_type: "CONNECT",
            message_id: "",
            status: c.out.status,
            latency: handshake_started.elapsed(),
            integration_latency: c.out.integration_time,
            integration_status: logged_statuses.0,
            function_status: logged_statuses.1,
            integration_error: "",
            error_message: "",
            response_length: 0,
        },
    );
    c.rbuf.advance(c.head.head_len);
    let live = Rc::new(Live {
        id: id.clone(),
        outbox: RefCell::new(VecDeque::new()),
        queued: Cell::new(0),
        wake: Default::default(),
        drained: Default::default(),
        close_requested: Cell::new(false),
        closing: Cell::new(false),
        deleted: Default::default(),
        connected_at_ms: ectx.connected_at_ms,
        last_active_ms: Cell::new(ectx.connected_at_ms),
        source_ip: ectx.source_ip.clone(),
        user_agent: ectx.user_agent.clone().unwrap_or_default(),
        key,
        scope: {
            let api = &gen.snap.apis[stage.api as usize];
            format!("{}/{}", api.name, api.stages[stage.stage as usize].name)
        },
    });
    connections::register(ctx.id, live.clone());
    bump(&ctx.cells.ws_connections_active, 1);
    // Counted down on the same cell whatever reloads happen meanwhile.
    let stage_open = gen.ws_open[stage.api as usize][stage.stage as usize].clone();
    bump(&stage_open, 1);
    // The open connection runs once this request's future is gone (`open::run`, called
    // by the connection loop), so an idle session does not carry the handshake's state.
    c.websocket = Some(Box::new(Opened {
        stage,
        ectx,
        live,
        stage_open,
    }));
    false
}

/// Whether `chosen` is one of the subprotocols the client's `Sec-WebSocket-Protocol`
/// lines offer (comma-separated tokens, compared exactly, as RFC 6455 asks).
fn offered_subprotocol(head: &crate::http1::RequestHead, buf: &[u8], chosen: &[u8]) -> bool {
    let chosen = chosen.trim_ascii();
    !chosen.is_empty()
        && head
            .headers
            .iter()
            .filter(|h| {
                h.name
                    .get(buf)
                    .eq_ignore_ascii_case(b"sec-websocket-protocol")
            })
            .flat_map(|h| h.value.get(buf).split(|&b| b == b','))
            .any(|offer| offer.trim_ascii() == chosen)
}
