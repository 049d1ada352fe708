//! One client connection: read a request head, route it, run its integration, repeat.
//!
//! Lifecycle (one request at a time; pipelined requests wait in `rbuf` and are answered
//! in order):
//! 1. **Idle** — waiting for the first byte of a request: `idle_timeout` on keep-alive
//!    connections (`header_timeout` on a new one), or until the worker drains (a new one:
//!    `FRESH_GRACE` into the drain, as its request may be on its way). Nothing sent on
//!    close.
//! 2. **Head** — bytes arrived: the whole head must arrive within `header_timeout` (408 and
//!    close otherwise) and parse (`parse_request`; 400/413/414/431 and close otherwise).
//! 3. **Serve** — `handle`: the gateway answers itself (404, mock, CORS preflight, errors)
//!    or an integration (http, lambda) serves the request; either way the request body is
//!    consumed (or the connection is marked to close) so the next request starts at
//!    `rbuf[0]`.
//! 4. Back to **Idle** if both sides want keep-alive and the worker is not draining.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::Canceller;
use monoio::net::TcpStream;

use super::access::Outcome;
use super::head::HeadOutcome;
pub use super::peer_ip::PeerIp;
use crate::tls::{AcceptError, ClientIo, Io, PeerCert, Site};
use tracing::{debug, error};

use crate::config::compile::IntegrationRt;
use crate::http1::encode;
use crate::http1::parse::{BodyKind, RequestHead, Span};
use crate::http1::response::ResponseHead;
use crate::metrics::RouteCells;
use crate::pipeline::cache;
use crate::pipeline::context::RequestState;
use crate::pipeline::cors;
use crate::runtime::request_id::ID_LEN;
use crate::runtime::shutdown::{stop_requested, Drain};
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::websocket::connections;

/// Read buffer size: one read takes most request heads and small bodies whole.
pub(super) const READ_BUF: usize = 16 * 1024;
/// How long a connection accepted before a drain, that has not sent a byte yet, is still
/// waited for: many round trips, yet a preconnected socket that never sends a request
/// holds the stop for no more than this (Go's http.Server gives such ones 5 s).
pub(super) const FRESH_GRACE: Duration = Duration::from_millis(500);
/// A body the gateway does not need is read and dropped up to this size to keep the
/// connection; past it the connection closes instead (as nginx's lingering discard).
pub(super) const DISCARD_MAX: u64 = 1024 * 1024;
/// A lingering close (`Conn::linger`) lasts at most this long, and ends once the client
/// sends nothing for `LINGER_QUIET`: nginx's `lingering_time` and `lingering_timeout`.
pub(super) const LINGER_TOTAL: Duration = Duration::from_secs(30);
pub(super) const LINGER_QUIET: Duration = Duration::from_secs(5);

/// The per-connection state that integrations work with.
pub struct Conn {
    pub stream: ClientIo,
    pub peer: SocketAddr,
    /// On TLS connections: the domain (site) the handshake was made for, as the
    /// generation of the handshake had it, and the client certificate it verified.
    pub tls_site: Option<Arc<Site>>,
    pub peer_cert: Option<Box<PeerCert>>,
    /// The peer's address as text, formatted once per connection (X-Forwarded-For).
    pub peer_ip: PeerIp,
    /// Client bytes; the current request's head starts at 0 until the handler consumes it.
    pub rbuf: BytesMut,
    /// Scratch for heads we write; reused for every request.
    pub wbuf: Vec<u8>,
    /// Upstream response bytes; reused.
    pub ubuf: BytesMut,
    pub head: RequestHead,
    pub rhead: ResponseHead,
    /// Captured route parameters, spans into `rbuf`.
    pub params: Vec<Span>,
    pub request_id: [u8; ID_LEN],
    /// What the current request leaves for metrics and the access log.
    pub out: Outcome,
    /// What the gateway decided about the current request (`$context`, canary, CORS).
    pub req: RequestState,
    /// The current request's path as sent when it held a `%` (the head's path has its
    /// unreserved escapes decoded); empty or None otherwise. SigV4 checks the bytes
    /// signed. Boxed: 8 bytes in every idle connection's task instead of 24, and only
    /// a connection that ever sent a `%` allocates it.
    pub raw_path: Option<Box<Vec<u8>>>,
    /// Request fields copied for the access log before the body moves `rbuf` on.
    pub(crate) log_scratch: Vec<u8>,
    /// Set while this request fetches a response cache entry: the relay copies the
    /// response into it as it streams past.
    pub capture: Option<Box<crate::pipeline::cache::Capture>>,
    /// Cancels the buffered read of a keep-alive wait that runs past `PARK_AFTER`.
    pub(super) canceller: Canceller,
    /// Response compression for the current request (negotiated, then decided).
    pub compress: crate::pipeline::compress::Plan,
    /// Set by a WebSocket API's handshake once the 101 is sent: the connection continues
    /// as that WebSocket connection.
    pub websocket: Option<Box<crate::websocket::open::Opened>>,
    /// Set by an `http` integration whose backend switched protocols: the connection
    /// continues as a tunnel to it, run and logged (one line, the tunnel's life as its
    /// latency) after the request's future is gone.
    pub(crate) tunnel: Option<Box<crate::integration::tunnel::Accepted>>,
    /// Begins when the listener that accepted this connection closes (a stop, or a
    /// reload that removed it): the request under way finishes, and the connection then
    /// closes, as nginx's old workers close theirs, instead of being served on a port
    /// the config no longer has.
    pub(crate) listener: Rc<Drain>,
    /// When the wait for the next head began: for a new connection that did not start
    /// with it (a TLS handshake came first), when it opened (its first head's
    /// `header_timeout` counts from here, as nginx's does); between requests, when the
    /// last answer went (`idle_timeout` counts from here, blank lines or not). A field,
    /// not a local of the wait: an idle connection's task holds that wait's frame.
    pub(super) since: Option<Instant>,
    /// The share of `max_buffered_bodies_bytes` of a body read whole, in KiB, held until
    /// its request is done: the body stays in `rbuf` while it is validated, hashed, sent
    /// to a function or a backend (`body_budget`).
    pub(super) body_held_kib: u32,
}

/// Serves a plain connection. Not `async`: its future is `serve_io`'s, without a second
/// copy of the arguments around it (an idle connection's task must stay small:
/// `server::idle`). It owns its `ctx`, so that the task can be this future with no
/// async wrapper around it (`runtime::listeners`).
pub fn serve(
    ctx: Rc<WorkerCtx>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Rc<Drain>,
) -> impl std::future::Future<Output = ()> {
    serve_io(ctx, Io::Plain(stream), peer, None, None, listener, None)
}

/// Serves a connection accepted on a TLS listener: the handshake first, bounded by
/// `header_timeout` (a stalled ClientHello is a slowloris like a stalled head) and cut
/// short by a drain.
pub async fn serve_tls(
    ctx: Rc<WorkerCtx>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Rc<Drain>,
) {
    let gen = ctx.generation();
    let Some(tls) = gen.tls.clone() else {
        return;
    };
    let limit = gen.snap.server.limits.header_timeout;
    drop(gen);
    let opened = Instant::now();
    // Boxed, like a request's future: the handshake's state is large and short-lived.
    let accept = Box::pin(crate::tls::accept(&tls, stream));
    let mut accept = std::pin::pin!(monoio::time::timeout(limit, accept));
    let handshake = monoio::select! {
        r = &mut accept => r,
        // Accepted before the drain: the handshake and the request after it get
        // `FRESH_GRACE` more, as a plain connection's first request does.
        _ = ctx.drain.wait() => match monoio::time::timeout(FRESH_GRACE, &mut accept).await {
            Ok(r) => r,
            Err(_) => return,
        },
    };
    match handshake {
        Ok(Ok(done)) => {
            let stream = Io::Tls(Box::new(done.stream));
            let (site, cert) = (Some(done.site), done.peer_cert);
            serve_io(ctx, stream, peer, site, cert, listener, Some(opened)).await;
        }
        Ok(Err(AcceptError::PlainHttp(tcp))) => {
            debug!(%peer, "plain HTTP on a TLS listener");
            // Boxed: a rare ending, kept out of every TLS connection's task.
            Box::pin(super::answer::plain_http_on_tls(&ctx, tcp, peer, listener)).await;
        }
        Ok(Err(AcceptError::Closed)) => {}
        Ok(Err(AcceptError::Failed(e))) => {
            crate::metrics::cells::bump(&ctx.cells.tls_handshake_failures, 1);
            debug!(%peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            crate::metrics::cells::bump(&ctx.cells.tls_handshake_failures, 1);
            debug!(%peer, "TLS handshake timed out");
        }
    }
}

impl Conn {
    /// A connection's state. Buffers come from the worker's spares and go back there when
    /// the connection is idle or closes: nothing is allocated per connection once the
    /// worker is warm.
    pub(super) fn new(
        ctx: &WorkerCtx,
        stream: ClientIo,
        peer: SocketAddr,
        tls_site: Option<Arc<Site>>,
        peer_cert: Option<Box<PeerCert>>,
        listener: Rc<Drain>,
        opened: Option<Instant>,
    ) -> Conn {
        // An IPv4 client of a dual-stack listener ([::]) comes as ::ffff:a.b.c.d: it is
        // a.b.c.d in X-Forwarded-For, sourceIp, events and logs, as API Gateway has it
        // (and a loopback client is loopback).
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let mut spares = ctx.spares.borrow_mut();
        Conn {
            stream,
            peer,
            tls_site,
            peer_cert,
            peer_ip: PeerIp::new(peer.ip()),
            rbuf: spares.bytes(),
            wbuf: spares.vec(),
            ubuf: spares.bytes(),
            head: RequestHead::with_headers(spares.headers()),
            rhead: ResponseHead::with_headers(spares.headers()),
            params: Vec::with_capacity(8),
            request_id: [0; ID_LEN],
            out: Outcome::default(),
            req: RequestState::default(),
            raw_path: None,
            log_scratch: Vec::new(),
            capture: None,
            canceller: Canceller::new(),
            compress: crate::pipeline::compress::Plan::NONE,
            websocket: None,
            tunnel: None,
            listener,
            since: opened,
            body_held_kib: 0,
        }
    }
}

impl Drop for Conn {
    /// A connection dropped while its request ran (a stop, a task cancelled) gives its
    /// body's share back too.
    fn drop(&mut self) {
        super::body_budget::release(self.body_held_kib);
    }
}

async fn serve_io(
    ctx: Rc<WorkerCtx>,
    stream: ClientIo,
    peer: SocketAddr,
    tls_site: Option<Arc<Site>>,
    peer_cert: Option<Box<PeerCert>>,
    listener: Rc<Drain>,
    opened: Option<Instant>,
) {
    let ctx = &*ctx;
    let mut c = Conn::new(ctx, stream, peer, tls_site, peer_cert, listener, opened);
    let ending = serve_requests(ctx, &mut c).await;
    // A TLS answer that broke midway ends with a bare close, never close_notify (which
    // lingering sends): that is what tells the client its body is short.
    if ending == Ending::ClientMaySend
        && !(c.out.cut_short && c.stream.is_tls())
        && !c.out.linger_spent
    {
        // Boxed: a rare ending, kept out of every idle connection's task.
        Box::pin(c.linger(ctx)).await;
    } else if let (Io::Tls(tls), false) = (&mut c.stream, c.out.cut_short) {
        // close_notify, as nginx sends; a client that no longer reads can't hold us. Not
        // after a response that broke midway: the bare close is what tells the client.
        let _ = Box::pin(monoio::time::timeout(Duration::from_secs(1), tls.close())).await;
    }
    c.rbuf.clear();
    c.park_buffers(ctx);
}

/// How a connection's requests ended, for how it is closed.
#[derive(PartialEq)]
enum Ending {
    /// The client closed, timed out, or its last request was read whole.
    Done,
    /// We close while the client may still be sending (a request body left unread, a
    /// refused head): see `Conn::linger`.
    ClientMaySend,
}

async fn serve_requests(ctx: &WorkerCtx, c: &mut Conn) -> Ending {
    let mut fresh = true;
    loop {
        let gen = ctx.generation();
        match c.read_head(ctx, &gen, fresh).await {
            HeadOutcome::Ready => {}
            HeadOutcome::Close => return Ending::Done,
            HeadOutcome::Abandoned => {
                c.request_id = crate::runtime::request_id::next();
                c.req.start();
                // Counted in the duration histogram too: its count is the request total.
                gen.unrouted.count(400);
                gen.unrouted.duration.observe(Duration::ZERO);
                if gen.snap.access_log.is_some() {
                    c.out.reset();
                    c.out.status = 400;
                    c.out.error_message = "Bad Request";
                    c.log_scratch.clear();
                    c.log(ctx, &gen, None, Duration::ZERO);
                }
                return Ending::Done;
            }
            HeadOutcome::Fail(status, message) => {
                c.request_id = crate::runtime::request_id::next();
                c.req.start();
                debug!(status, message, peer = %c.peer, "rejected request head");
                c.wbuf.clear();
                let (message, extra) = connections::head_refusal(status, message, &c.rbuf);
                encode::gateway_response(
                    &mut c.wbuf,
                    status,
                    message,
                    &c.request_id,
                    false,
                    false,
                    extra,
                );
                let head_end = memchr::memmem::find(&c.wbuf, b"\r\n\r\n").map(|h| h + 4);
                // A HEAD's answer has no body (RFC 9112 §6.3), its head parsed or not.
                if let (true, Some(end)) = (c.rbuf.starts_with(b"HEAD "), head_end) {
                    c.wbuf.truncate(end);
                }
                let mut body_len = head_end.map_or(0, |end| c.wbuf.len() - end);
                // `responseLength` is what was written.
                if c.flush_wbuf().await.is_err() {
                    body_len = 0;
                }
                // A 408's head began `header_timeout` before its answer (its first
                // byte, or a new connection's connect): its time and latency say so.
                let latency = match status {
                    408 => gen.snap.server.limits.header_timeout,
                    _ => Duration::ZERO,
                };
                gen.unrouted.count(status);
                gen.unrouted.duration.observe(latency);
                if gen.snap.access_log.is_some() {
                    // The head did not parse, so its fields are logged as "-".
                    c.out.reset();
                    c.out.status = status;
                    c.out.body_sent = body_len as u64;
                    c.out.error_message = message;
                    // A TRACE's 405 refused a head that parsed whole: its method, path,
                    // user agent and host are known. A 431's or a 408's request line may
                    // have come whole (nginx logs it on its "Request Header Or Cookie Too
                    // Large" 400): a 408's was kept before the read it cut short
                    // (`read_head`). Other refusals' fields are not known.
                    match status {
                        405 => c.capture_for_log(),
                        408 => {}
                        431 => c.capture_request_line(),
                        _ => c.log_scratch.clear(),
                    }
                    // A 408's line is stamped when its head began, as every line is
                    // at its request's start: `requestTime + responseLatency` is its end.
                    let began = match status {
                        408 => Instant::now().checked_sub(latency),
                        _ => None,
                    };
                    c.log(ctx, &gen, began, latency);
                }
                // A 408's client sent part of a head and then nothing until
                // `header_timeout`; others may be midway through a head or body.
                return match status {
                    408 => Ending::Done,
                    _ => Ending::ClientMaySend,
                };
            }
        }
        fresh = false;
        // A reload that landed while this connection waited applies to this request.
        let gen = ctx.generation();
        c.request_id = crate::runtime::request_id::next();
        c.out.reset();
        c.req.start();
        let started = Instant::now();
        let logging = gen.snap.access_log.is_some();
        if logging {
            c.capture_for_log();
        }
        // Boxed: serving a request takes a large future (proxying, relaying, caching), and
        // keeping it out of the connection's own future is what lets an idle connection
        // cost a few hundred bytes. One allocation per request, from the worker's heap.
        let (keep, cells) = boxed(|| handle(ctx, &gen, c)).await;
        // The body is done with (a tunnel or a WebSocket session after it holds none).
        super::body_budget::release(std::mem::take(&mut c.body_held_kib));
        if let Some(accepted) = c.tunnel.take() {
            // Boxed for the same reason as `handle`, and run after it: an open tunnel
            // holds only what the tunnel needs, not the request's future.
            Box::pin(crate::integration::tunnel::run(ctx, c, accepted)).await;
        }
        // The head an integration kept apart is this request's: a next request that is
        // never routed (its 404 reads the head where `saved_head` says) got its CORS
        // origin and `$context` values from it. Dropped here, `rbuf` owns its memory again.
        c.req.saved_head = None;
        let elapsed = started.elapsed();
        cells.count(c.out.status);
        cells.duration.observe(elapsed);
        if let Some(t) = c.out.integration_time {
            cells.integration.observe(t);
        }
        if logging {
            c.log(ctx, &gen, Some(started), elapsed);
        }
        if let Some(opened) = c.websocket.take() {
            // Boxed for the same reason as `handle`, and run after it: an open WebSocket
            // holds only what the session needs.
            let client_may_send = Box::pin(crate::websocket::open::run(ctx, &gen, c, opened)).await;
            // The server closed first: its close frame and FIN are sent, and the client's
            // messages still coming are read and dropped until it closes (RFC 6455 §7.1.1).
            return match client_may_send {
                true => Ending::ClientMaySend,
                false => Ending::Done,
            };
        }
        if !keep && c.head.body != BodyKind::Empty {
            // Not kept: its body may be unread (answered early, or past DISCARD_MAX).
            return Ending::ClientMaySend;
        }
        if !keep || c.closing(ctx) {
            // Bytes the client sent past this request (pipelined behind a `Connection:
            // close` or an HTTP/1.0 one), read or waiting: closing with them unread sends
            // a reset, which destroys the answer still on its way (as nginx's lingering
            // close decides, on what is buffered or readable now). Its FIN alone is not.
            if !c.rbuf.is_empty() || c.stream.unread_waiting() {
                return Ending::ClientMaySend;
            }
            return Ending::Done;
        }
    }
}

/// `Box::pin(make())`, but with the box allocated first, so that the future can be built
/// in it: `Box::pin(handle(…))` built the request's future (several KiB) on the stack and
/// copied it into the box, about 750 instructions per request.
#[inline(always)]
fn boxed<F>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// Serves one request; returns whether the connection goes on, and the metric cells of
/// the route that served it.
async fn handle<'g>(ctx: &WorkerCtx, gen: &'g Generation, c: &mut Conn) -> (bool, &'g RouteCells) {
    let snap = &*gen.snap;
    c.compress = crate::pipeline::compress::Plan::NONE;
    let host = c.head.host.map(|s| s.get(&c.rbuf));
    if snap.server.redirect_https && !c.stream.is_tls() {
        return (c.redirect_to_https(ctx, gen).await, &gen.unrouted);
    }
    c.req.client_cert = false;
    if let (Some(tls), Some(host)) = (snap.tls.as_deref(), host) {
        // A request may not reach a mutual-TLS domain over a connection whose handshake
        // did not verify a client certificate for it (another SNI, or plain HTTP).
        let host = crate::router::strip_port(host);
        if tls.any_mutual && tls.misdirected(host, c.tls_site.as_deref()) {
            return (
                c.answer(ctx, gen, 421, "Misdirected Request", &[]).await,
                &gen.unrouted,
            );
        }
        c.req.client_cert = c.peer_cert.is_some()
            && c.tls_site
                .as_deref()
                .is_some_and(|s| tls.certificate_applies(host, s));
    }
    // A body declared too long is refused before anything reads it (after the answers
    // that come before routing, as nginx's `return` comes before its body limit); by its
    // route, below, when it has one.
    if c.body_over_limit(gen) && !c.routed(snap) {
        return (c.refuse_too_large(ctx, gen).await, &gen.unrouted);
    }
    if snap.websocket_apis {
        if let Some(keep) = crate::websocket::session::dispatch(ctx, gen, c).await {
            // The handshake counts under the `$connect` route, when there is one.
            let cells = c.out.served_by.map_or(&*gen.unrouted, |(s, r)| {
                let stage = &snap.apis[s.api as usize].stages[s.stage as usize];
                &*gen.route_cells[stage.metric_base + r as usize]
            });
            return (keep, cells);
        }
    }
    let host = c.head.host.map(|s| s.get(&c.rbuf));
    let Some(m) = snap
        .router
        .route(&c.rbuf, host, c.head.method, c.head.path, &mut c.params)
    else {
        let api = snap.router.stage_for(&c.rbuf, host, c.head.path);
        if api.is_some() {
            c.out.texts().addressed = api;
        }
        // A CORS API answers preflights even for paths it has no OPTIONS route for.
        if cors::is_preflight(&c.head, &c.rbuf) {
            if let Some(cors) = api.and_then(|s| snap.apis[s.api as usize].cors.as_deref()) {
                return (c.answer_preflight(ctx, gen, cors).await, &gen.unrouted);
            }
        }
        if let Some(stage) = api {
            if let Some(keep) =
                crate::pipeline::gateway_responses::answer_unrouted(ctx, gen, c, stage).await
            {
                return (keep, &gen.unrouted);
            }
        }
        return (
            c.answer(ctx, gen, 404, "Not Found", &[]).await,
            &gen.unrouted,
        );
    };
    let api = &snap.apis[m.stage.api as usize];
    let stage = &api.stages[m.stage.stage as usize];
    let cells = &gen.route_cells[stage.metric_base + m.route as usize];
    c.out.served_by = Some((m.stage, m.route));
    let canary = stage
        .canary
        .as_ref()
        .is_some_and(|canary| ctx.rng.borrow_mut().next_f64() * 100.0 < canary.percent);
    c.out.canary = canary;
    c.req.begin(&m, canary);
    c.compress = crate::pipeline::compress::Plan::for_request(gen, c, m.stage.api);
    if let Some(cors) = api.cors.as_deref() {
        // Preflights never reach the integration (nor key and throttle checks).
        if cors::is_preflight(&c.head, &c.rbuf) {
            return (c.answer_preflight(ctx, gen, cors).await, cells);
        }
        c.req.cors = cors.match_origin(c.head.header(&c.rbuf, "origin"));
    }
    // With the route's stage and CORS headers, as the route's other refusals.
    if super::method_override::leaves_route(c, snap, &m) {
        c.head.keep_alive = false;
        let message =
            "A method override names a method routed or authorized apart from the request's";
        return (c.answer(ctx, gen, 400, message, &[]).await, cells);
    }
    if super::encoded_slash::routes_two_ways(c, snap, &m) {
        c.head.keep_alive = false;
        let message = "An encoded slash or backslash in the path routes it two ways";
        return (c.answer(ctx, gen, 400, message, &[]).await, cells);
    }
    // Before anything reads the body or answers `Expect: 100-continue`, and with the
    // API's CORS headers and gateway responses, as a body found too long as it comes.
    if c.body_over_limit(gen) {
        return (c.refuse_too_large(ctx, gen).await, cells);
    }
    if let Err(deny) = crate::pipeline::auth::authorize(ctx, gen, c, &m).await {
        return (deny.answer(ctx, gen, c, cells).await, cells);
    }
    if let Err(deny) = crate::pipeline::admit(ctx, gen, c, &m).await {
        return (deny.answer(ctx, gen, c, cells).await, cells);
    }
    if let Some(check) = api.routes[m.route as usize].check.as_deref() {
        if let Some(keep) = crate::pipeline::validate::check(ctx, gen, c, check).await {
            return (keep, cells);
        }
    }
    let integrations = match &stage.canary {
        Some(side) if canary => &side.integrations,
        _ => &stage.integrations,
    };
    // Response cache: a hit is answered here; a miss may fetch the entry for others.
    let fill = match cache::before(ctx, gen, c, &m, &integrations[m.route as usize]).await {
        cache::Lookup::Answered(keep) => return (keep, cells),
        cache::Lookup::Miss(fill) => fill,
    };
    let keep = match &integrations[m.route as usize] {
        IntegrationRt::Mock(mock) => c.answer_mock(ctx, gen, mock).await,
        IntegrationRt::Http(h) => crate::integration::http::proxy(ctx, gen, c, h, &m).await,
        IntegrationRt::Lambda(l) => crate::integration::lambda::invoke(ctx, gen, c, l).await,
        IntegrationRt::Misconfigured(why) => {
            let route = &api.routes[m.route as usize].key;
            error!(api = %api.name, stage = %stage.name, route = %route, why = %why, "integration misconfigured");
            c.answer(ctx, gen, 500, "Internal Server Error", &[]).await
        }
    };
    if let Some(fill) = fill {
        cache::after(fill, c);
    }
    (keep, cells)
}

impl Conn {
    /// Whether this connection can go on after the gateway answers without reading the
    /// request body (it will then be read and dropped).
    pub(crate) fn can_keep_alive(&self, ctx: &WorkerCtx) -> bool {
        let discardable = match self.head.body {
            BodyKind::Empty => true,
            BodyKind::Length(n) => !self.head.expect_continue && n <= DISCARD_MAX,
            BodyKind::Chunked => !self.head.expect_continue,
        };
        self.head.keep_alive && discardable && !self.closing(ctx)
    }

    /// Whether this connection closes after the request under way: the worker drains,
    /// or the listener that accepted it closed, or a stop was asked for and the worker's
    /// drain has not begun yet (its next tick, then its listeners' close: ~100 ms in
    /// which an answer went out kept alive, and the client's next request on it met the
    /// idle close with no answer).
    pub(crate) fn closing(&self, ctx: &WorkerCtx) -> bool {
        ctx.drain.closing() || self.listener.closing() || stop_requested()
    }
}
