//! The gateway's own answers on a client connection: `{"message": ...}` errors (or the
//! API's gateway responses), the redirect of `server.redirect_https`, and the 400 to
//! plain HTTP on a TLS listener.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use monoio::net::TcpStream;

use super::conn::Conn;
use crate::http1::encode;
use crate::http1::parse::{BodyKind, Method};
use crate::runtime::shutdown::Drain;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::tls::Io;

/// Answers plain HTTP sent to a TLS listener with nginx's 400, and logs and counts it as
/// every other unrouted 400 (it had neither). The request's bytes were read as a
/// would-be ClientHello and are gone: its line has `-` for method, path and protocol.
pub(super) async fn plain_http_on_tls(
    ctx: &WorkerCtx,
    tcp: TcpStream,
    peer: SocketAddr,
    listener: Rc<Drain>,
) {
    const MESSAGE: &str = "The plain HTTP request was sent to HTTPS port";
    let started = Instant::now();
    let gen = ctx.generation();
    let mut c = Conn::new(ctx, Io::Plain(tcp), peer, None, None, listener, None);
    c.request_id = crate::runtime::request_id::next();
    c.req.start();
    c.out.reset();
    c.log_scratch.clear();
    encode::gateway_response(&mut c.wbuf, 400, MESSAGE, &c.request_id, false, false, &[]);
    let head_end = memchr::memmem::find(&c.wbuf, b"\r\n\r\n").map_or(0, |h| h + 4);
    let body_len = (c.wbuf.len() - head_end) as u64;
    // `responseLength` is what was written.
    let written = c.flush_wbuf().await.is_ok();
    let latency = started.elapsed();
    gen.unrouted.count(400);
    gen.unrouted.duration.observe(latency);
    if gen.snap.access_log.is_some() {
        c.out.status = 400;
        c.out.error_message = MESSAGE;
        c.out.body_sent = if written { body_len } else { 0 };
        c.log(ctx, &gen, Some(started), latency);
    }
    c.park_buffers(ctx);
}

impl Conn {
    /// A gateway answer after an integration consumed the request (its head and body
    /// gone from `rbuf`) or abandoned its body.
    pub(crate) async fn answer_consumed(
        &mut self,
        ctx: &WorkerCtx,
        gen: &Generation,
        status: u16,
        message: &'static str,
    ) -> bool {
        // Nothing of the request is left in rbuf: make the answer's own discard a no-op.
        self.head.head_len = 0;
        self.head.body = BodyKind::Empty;
        self.head.expect_continue = false;
        self.answer(ctx, gen, status, message, &[]).await
    }

    /// The gateway answers for itself with `{"message": ...}` (docs/ARCHITECTURE.md,
    /// Gateway answers).
    pub async fn answer(
        &mut self,
        ctx: &WorkerCtx,
        gen: &Generation,
        status: u16,
        message: &'static str,
        extra: &[(&str, &[u8])],
    ) -> bool {
        use crate::pipeline::gateway_responses::{self as gr, ResponseType};
        if gr::applies(gen, self) {
            let t = ResponseType::classify(status, message);
            return gr::answer_as(ctx, gen, self, t, status, message, message, "", extra).await;
        }
        let keep = self.can_keep_alive(ctx);
        self.out.status = status;
        self.out.error_message = message;
        self.wbuf.clear();
        let encode = if self.head.method == Method::Head {
            encode::gateway_response_head_only
        } else {
            encode::gateway_response
        };
        encode(
            &mut self.wbuf,
            status,
            message,
            &self.request_id,
            keep,
            self.head.minor_version == 0,
            extra,
        );
        let head_end = self
            .wbuf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4);
        self.out.body_sent = (self.wbuf.len() - head_end) as u64;
        if self.send_answer(gen, keep, None).await.is_err() {
            return false;
        }
        keep && self.discard_body(gen).await
    }

    /// `server.redirect_https`: 308 to the same host and target on the first TLS port.
    pub(super) async fn redirect_to_https(&mut self, ctx: &WorkerCtx, gen: &Generation) -> bool {
        let server = &gen.snap.server;
        // An HTTP/1.0 request may have no Host: the domain TLS clients without SNI get.
        let host = match self.head.host {
            Some(h) => crate::router::strip_port(h.get(&self.rbuf)),
            None => gen
                .snap
                .tls
                .as_deref()
                .and_then(|t| t.default_name())
                .unwrap_or_default()
                .as_bytes(),
        };
        if host.is_empty() {
            return self.answer(ctx, gen, 400, "Bad Request", &[]).await;
        }
        let mut location = Vec::with_capacity(host.len() + 64);
        location.extend_from_slice(b"https://");
        location.extend_from_slice(host);
        match server.tls_listen.first().map(|a| a.port()) {
            Some(443) | None => {}
            Some(port) => {
                location.push(b':');
                encode::decimal(&mut location, u64::from(port));
            }
        }
        // `OPTIONS *` (and an empty path) redirects to the root: `*` is no URL path.
        let path = match self.head.path.get(&self.rbuf) {
            p if p.starts_with(b"/") => p,
            _ => &b"/"[..],
        };
        location.extend_from_slice(path);
        if let Some(q) = self.head.query {
            location.push(b'?');
            location.extend_from_slice(q.get(&self.rbuf));
        }
        self.answer(
            ctx,
            gen,
            308,
            "Permanent Redirect",
            &[("location", &location)],
        )
        .await
    }
}
