//! Upgrade passthrough: after a backend answers an upgrade request with `101 Switching
//! Protocols`, the client connection and the upstream connection become one two-way byte
//! tunnel (WebSocket through an `http` integration, or any protocol the integration's
//! `upgrade.protocols` lists).
//!
//! Lifecycle of an upgrade request (driven by `integration::http::proxy`):
//! 1. **Offer** — the client asked `Connection: upgrade` + `Upgrade: P` on HTTP/1.1 and the
//!    integration allows some of the offered protocols: the upstream request carries
//!    `connection: upgrade` and `upgrade:` with those protocols (both are hop-by-hop, so
//!    the proxy writes them itself, `write_offer`). Otherwise the request goes on as a
//!    plain one, without them.
//! 2. **Answer** — any status but 101 is relayed as a normal response. A 101 to a request
//!    that was not offered, or one without an `Upgrade` naming an offered protocol, is a
//!    bad upstream answer (502): a backend that lets a caller pick its status code must
//!    not be able to open a raw tunnel past routing and authorizers.
//! 3. **Tunnel** — `run`, by the connection loop after the request's future has ended
//!    (`Accepted`): the 101 head goes to the client (with `connection: upgrade` and
//!    the backend's `Upgrade`), then bytes already read past either head, then whatever
//!    each side sends, until both sides have ended their stream (each end is passed on as
//!    a half-close), either side fails, or no byte moved either way for
//!    `upgrade.idle_timeout`, or the worker stops (SIGTERM: both sides are closed at once,
//!    no wait for `drain_timeout`). A config reload never ends a tunnel: it keeps the
//!    generation it started on. The upstream connection is never pooled again. Memory
//!    follows bytes in flight: the connection's request buffers go back to the worker
//!    when the tunnel opens, each direction copies through a buffer from the worker's
//!    spares, and a direction waiting on a plain socket holds none (`pump`).
//! 4. **Closed** — counted (`portico_tunnels_active`, `portico_tunnel_bytes_total`) and
//!    access-logged as one request with status 101 whose latency is the tunnel's life.

use std::cell::{Cell, UnsafeCell};
use std::io::ErrorKind;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use rustls::{ConnectionCommon, SideData};
use tracing::debug;

use crate::http1::encode;
use crate::http1::hop::{is_framing, HopByHop};
use crate::http1::parse::RequestHead;
use crate::http1::response::ResponseHead;
use crate::metrics::cells::bump;
use crate::runtime::coarse_timer::coarse_now;
use crate::runtime::socket_now::{recv_now, send_now};
use crate::runtime::workers::Driver;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use crate::tls::{Io, UpstreamIo};
use crate::upstream::pool::Lease;

/// Per-direction copy buffer while bytes move: one TLS record's plaintext.
const COPY_BUF: usize = 16 * 1024;

/// Which entries of an integration's `upgrade.protocols` the client offered (bit i:
/// entry i; entries past the 64th share the last bit). Empty: not an upgrade offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Offered(u64);

impl Offered {
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }

    fn bit(i: usize) -> u64 {
        1 << i.min(63)
    }
}

/// The index in `allowed` of protocol `token` ("websocket" or "name/version": the name
/// decides), if listed.
fn allowed_index(allowed: &[Box<[u8]>], token: &[u8]) -> Option<usize> {
    let name = token.split(|&b| b == b'/').next().unwrap_or_default();
    if name.is_empty() {
        return None;
    }
    allowed.iter().position(|a| a.eq_ignore_ascii_case(name))
}

/// Writes `upgrade: …` with the client's offered protocols that `allowed` lists, and
/// `connection: upgrade` (with the client's `HTTP2-Settings` for h2c), when the request
/// is an HTTP/1.1 upgrade and any is allowed.
/// Returns which allowed protocols it offered (none: the request is a plain one).
pub(crate) fn write_offer(
    allowed: &[Box<[u8]>],
    head: &RequestHead,
    buf: &[u8],
    out: &mut Vec<u8>,
) -> Offered {
    if !head.upgrade || head.minor_version != 1 || allowed.is_empty() {
        return Offered::default();
    }
    let start = out.len();
    out.extend_from_slice(b"upgrade: ");
    let mut offered = Offered::default();
    let tokens = head
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"upgrade"))
        .flat_map(|h| h.value.get(buf).split(|&b| b == b','));
    let mut h2c = false;
    for token in tokens {
        let token = token.trim_ascii();
        let Some(i) = allowed_index(allowed, token) else {
            continue;
        };
        if offered.any() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(token);
        offered.0 |= Offered::bit(i);
        h2c |= token.eq_ignore_ascii_case(b"h2c");
    }
    if !offered.any() {
        out.truncate(start);
        return offered;
    }
    // An h2c offer goes with its `HTTP2-Settings`, hop-by-hop like `Upgrade` and named in
    // `Connection` (RFC 7540 §3.2.1): a server must not switch without it, so an allowed
    // h2c upgrade never worked.
    let mut settings = head
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"http2-settings"));
    match (h2c, settings.next(), settings.next()) {
        (true, Some(one), None) => {
            out.extend_from_slice(b"\r\nconnection: upgrade, http2-settings\r\nhttp2-settings: ");
            out.extend_from_slice(one.value.get(buf));
            out.extend_from_slice(b"\r\n");
        }
        _ => out.extend_from_slice(b"\r\nconnection: upgrade\r\n"),
    }
    offered
}

/// Checks a backend's 101 to an upgrade offer: it must carry `Upgrade` naming the
/// protocol switched to, and that must be one offered (RFC 9110 §7.8, §15.2.2). Without
/// this a backend that lets a caller pick the status code (or any broken one) would turn
/// the client connection into a raw tunnel past routing and authorizers. Err: why not.
pub(crate) fn check_switch(
    allowed: &[Box<[u8]>],
    offered: Offered,
    rhead: &ResponseHead,
    buf: &[u8],
) -> Result<(), &'static str> {
    let mut named = false;
    let tokens = rhead
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"upgrade"))
        .flat_map(|h| h.value.get(buf).split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty());
    for token in tokens {
        match allowed_index(allowed, token) {
            Some(i) if offered.0 & Offered::bit(i) != 0 => named = true,
            _ => return Err("101 Switching Protocols to a protocol the client did not offer"),
        }
    }
    if named {
        Ok(())
    } else {
        Err("101 Switching Protocols without an Upgrade header")
    }
}

/// Why a tunnel ended (debug log).
#[derive(Debug, Clone, Copy)]
enum End {
    Closed,
    Idle,
    ClientError,
    UpstreamError,
    /// The worker is stopping (SIGTERM): both sides are closed at once instead of the
    /// tunnel holding the stop until `drain_timeout`.
    Drained,
}

/// An upgrade the backend accepted (its 101 is in the connection's `rhead`/`ubuf`), handed
/// by the integration to the connection loop, which runs it once the request's own future
/// is gone: that future is sized for the largest request path (several KiB), and a tunnel
/// held it for its whole life.
pub(crate) struct Accepted {
    pub(crate) upstream: UpstreamIo,
    /// Released when the tunnel ends: until then it counts as a request in flight to its
    /// target (least-connections balancing).
    pub(crate) lease: Lease,
    pub(crate) idle: Duration,
}

/// Sends the backend's 101 to the client and carries bytes both ways until the tunnel
/// ends (lifecycle step 3). The client connection never carries another request.
pub(crate) async fn run(ctx: &WorkerCtx, c: &mut Conn, accepted: Box<Accepted>) {
    let Accepted {
        upstream: mut up,
        lease,
        idle,
    } = *accepted;
    carry_until_closed(ctx, c, &mut up, idle).await;
    lease.release(None);
}

/// `run` but for the lease: returns at whichever end the tunnel meets.
async fn carry_until_closed(ctx: &WorkerCtx, c: &mut Conn, up: &mut UpstreamIo, idle: Duration) {
    c.out.integration_status = Some(101);
    c.out.status = 101;
    write_switching_head(c);
    // Bytes the backend sent right behind its 101 belong to the new protocol.
    let head_len = c.rhead.head_len;
    c.wbuf.extend_from_slice(&c.ubuf[head_len..]);
    let early_down = (c.ubuf.len() - head_len) as u64;
    c.ubuf.clear();
    if c.flush_wbuf().await.is_err() {
        return;
    }
    // Bytes the client sent behind its request (it may speak first).
    let early_up = c.rbuf.len() as u64;
    if !c.rbuf.is_empty() {
        let (res, _) = up.write_all(c.rbuf.split()).await;
        if res.is_err() {
            return;
        }
    }
    // The connection's request and response buffers are done with: the tunnel's life is
    // usually long and mostly quiet, so they go back to the worker now (the access log
    // keeps its own copy of the request's fields).
    c.rbuf.clear();
    park_request_buffers(ctx, c);

    let cells = &ctx.cells;
    bump(&cells.tunnels_active, 1);
    bump(&cells.tunnel_bytes_up, early_up);
    bump(&cells.tunnel_bytes_down, early_down);
    let up_dir = Direction::new(early_up, &cells.tunnel_bytes_up);
    let down_dir = Direction::new(early_down, &cells.tunnel_bytes_down);
    let last = Cell::new(Instant::now());
    let started = Instant::now();
    let end = {
        // Each direction reads one stream while the other direction writes it.
        // SAFETY: both futures run on this task and only ever touch a stream through
        // one operation at a time per direction: `pump` A reads `client` and writes
        // `upstream`, `pump` B the reverse. A plain TcpStream's read and write are
        // independent operations (monoio's own split halves rely on the same), and the TLS
        // stream keeps reads and writes apart: a read never starts a second socket write
        // while one is in flight (`TlsStream::flush_tls`), and neither holds rustls state
        // across an await. Neither reference outlives this block.
        let client = UnsafeCell::from_mut(&mut c.stream);
        let upstream = UnsafeCell::from_mut(up);
        let to_upstream = pump(ctx, client, upstream, &up_dir, &last);
        let to_client = pump(ctx, upstream, client, &down_dir, &last);
        carry(ctx, to_upstream, to_client, &last, idle).await
    };
    if matches!(end, End::Drained) {
        // Both peers see the end of their stream now (close_notify on TLS), not an abort.
        let _ = c.stream.shutdown().await;
        let _ = up.shutdown().await;
    }
    let active = &cells.tunnels_active;
    active.store(
        crate::metrics::cells::read(active).saturating_sub(1),
        std::sync::atomic::Ordering::Relaxed,
    );
    c.out.body_sent = down_dir.total.get();
    debug!(
        peer = %c.peer,
        end = ?end,
        up = up_dir.total.get(),
        down = down_dir.total.get(),
        secs = started.elapsed().as_secs(),
        "tunnel closed"
    );
}

/// Gives the connection's (now empty) request and response buffers to the worker's
/// spares; the connection closes after the tunnel, so nothing takes them back.
fn park_request_buffers(ctx: &WorkerCtx, c: &mut Conn) {
    let mut spares = ctx.spares.borrow_mut();
    spares.put_bytes(std::mem::take(&mut c.rbuf));
    spares.put_bytes(std::mem::take(&mut c.ubuf));
    spares.put_vec(std::mem::take(&mut c.wbuf));
    spares.put_headers(std::mem::take(&mut c.head.headers));
    spares.put_headers(std::mem::take(&mut c.rhead.headers));
}

/// One direction's byte count, kept for the access log and the tunnel's close.
struct Direction<'a> {
    total: Cell<u64>,
    metric: &'a AtomicU64,
}

impl<'a> Direction<'a> {
    fn new(early: u64, metric: &'a AtomicU64) -> Self {
        Direction {
            total: Cell::new(early),
            metric,
        }
    }
}

/// Drives both directions until both ended, one failed, `idle` passed with no byte, or
/// the worker drains. Checks on the worker's coarse tick, which no deadline here minds.
async fn carry(
    ctx: &WorkerCtx,
    to_upstream: impl std::future::Future<Output = Result<(), bool>>,
    to_client: impl std::future::Future<Output = Result<(), bool>>,
    last: &Cell<Instant>,
    idle: Duration,
) -> End {
    let mut to_upstream = std::pin::pin!(to_upstream);
    let mut to_client = std::pin::pin!(to_client);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        if up_done && down_done {
            return End::Closed;
        }
        let now = Instant::now();
        let give_up = last.get() + idle;
        if now >= give_up {
            return End::Idle;
        }
        monoio::select! {
            r = &mut to_upstream, if !up_done => match r {
                Ok(()) => up_done = true,
                Err(reading) => return if reading { End::ClientError } else { End::UpstreamError },
            },
            r = &mut to_client, if !down_done => match r {
                Ok(()) => down_done = true,
                Err(reading) => return if reading { End::UpstreamError } else { End::ClientError },
            },
            // Bytes moved meanwhile: the loop sleeps again until the new `give_up`.
            _ = ctx.timers.sleep_until(give_up) => {}
            _ = ctx.drain.wait() => return End::Drained,
        }
    }
}

/// Copies `from` → `to` until `from` ends (passed on as a half-close: Ok) or an operation
/// fails (Err(true) when reading failed, Err(false) when writing did).
///
/// A plain socket is waited on holding no buffer: readiness first (io_uring PollAdd, or
/// epoll readiness), then a read that finds the bytes there, through a copy buffer from
/// the worker's spares, given back before the next wait. So a quiet tunnel holds no
/// buffer, and nothing ever has to be cancelled to give one back. (Against a cancelable
/// read that kept its buffer until the tunnel had been quiet for 500 ms: messages per
/// second the same or up to 2 % more, without its hash-set insert and remove per read.)
/// A TLS side keeps its buffer across the wait: rustls may hold plaintext that no
/// readability would announce. Under io_uring, a plain side's read after readiness and
/// the write of what it read are each one system call (`runtime::socket_now`), the
/// ring's own operations only when those would wait.
async fn pump<RC, RD, WC, WD>(
    ctx: &WorkerCtx,
    from: &UnsafeCell<Io<RC>>,
    to: &UnsafeCell<Io<WC>>,
    dir: &Direction<'_>,
    last: &Cell<Instant>,
) -> Result<(), bool>
where
    RC: DerefMut + Deref<Target = ConnectionCommon<RD>>,
    RD: SideData,
    WC: DerefMut + Deref<Target = ConnectionCommon<WD>>,
    WD: SideData,
{
    let mut buf = BytesMut::new();
    let syscalls = ctx.driver == Driver::IoUring;
    loop {
        // SAFETY: see `run`; this direction is the only reader of `from`, and readiness
        // is part of its reading.
        if let Io::Plain(tcp) = unsafe { &*from.get() } {
            if buf.capacity() > 0 {
                ctx.spares.borrow_mut().put_bytes(std::mem::take(&mut buf));
            }
            if tcp.readable(false).await.is_err() {
                return Err(true);
            }
        }
        if buf.capacity() < COPY_BUF {
            buf = take_buffer(ctx);
        }
        // SAFETY: as above.
        let mut res = match unsafe { &*from.get() } {
            Io::Plain(tcp) if syscalls => recv_now(tcp.as_raw_fd(), &mut buf),
            _ => Err(ErrorKind::WouldBlock.into()),
        };
        if matches!(&res, Err(e) if e.kind() == ErrorKind::WouldBlock) {
            // SAFETY: as above.
            let (r, back) = unsafe { &mut *from.get() }.read(buf).await;
            (res, buf) = (r, back);
        }
        let n = match res {
            Ok(0) => {
                ctx.spares.borrow_mut().put_bytes(buf);
                // SAFETY: see `run`; this direction is the only writer of `to`.
                let _ = unsafe { &mut *to.get() }.shutdown().await;
                return Ok(());
            }
            Ok(n) => n,
            Err(_) => return Err(true),
        };
        // The worker's coarse clock: idleness is checked on its tick anyway.
        last.set(coarse_now());
        // SAFETY: as above.
        let sent = match unsafe { &*to.get() } {
            Io::Plain(tcp) if syscalls => send_now(tcp.as_raw_fd(), &buf).unwrap_or(0),
            _ => 0,
        };
        if sent < n {
            // SAFETY: as above.
            let (res, back) = unsafe { &mut *to.get() }.write_all(buf.slice(sent..)).await;
            buf = back.into_inner();
            if res.is_err() {
                return Err(false);
            }
        }
        buf.clear();
        last.set(coarse_now());
        dir.total.set(dir.total.get() + n as u64);
        bump(dir.metric, n as u64);
    }
}

/// An empty copy buffer of at least `COPY_BUF`, from the worker's spares when it has one.
fn take_buffer(ctx: &WorkerCtx) -> BytesMut {
    let mut buf = ctx.spares.borrow_mut().bytes();
    buf.reserve(COPY_BUF);
    buf
}

/// The 101 head for the client: the backend's status line and end-to-end headers, then
/// the two hop-by-hop fields an upgrade needs, written by us.
fn write_switching_head(c: &mut Conn) {
    let buf = &c.ubuf[..];
    let out = &mut c.wbuf;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 101 ");
    match c.rhead.reason.get(buf) {
        b"" => out.extend_from_slice(b"Switching Protocols"),
        reason => out.extend_from_slice(reason),
    }
    out.extend_from_slice(b"\r\n");
    let hop = HopByHop::new(&c.rhead.headers, buf, c.rhead.connection_names);
    let mut upgrade = false;
    for hs in &c.rhead.headers {
        let name = hs.name.get(buf);
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
            out.extend_from_slice(b"upgrade: ");
            out.extend_from_slice(hs.value.get(buf));
            out.extend_from_slice(b"\r\n");
            continue;
        }
        // The request ids are written below.
        if is_framing(name) || encode::is_request_id(name) || hop.drops(name) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(hs.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    // `check_switch` let only a 101 that names the protocol through.
    debug_assert!(upgrade);
    // As on every answer (nginx writes them on the 101s it relays too).
    encode::date_and_server(out);
    out.extend_from_slice(b"connection: upgrade\r\n");
    encode::header(out, b"x-amzn-RequestId", &c.request_id);
    encode::header(out, b"apigw-requestid", &c.request_id);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::parse::{parse_request, ParseLimits};

    fn offer(raw: &[u8], allowed: &[&str]) -> Option<String> {
        let mut head = RequestHead::new();
        let limits = ParseLimits {
            max_header_bytes: 8192,
            max_request_line: 8192,
            max_body_bytes: 1 << 20,
            max_headers: 100,
        };
        assert!(parse_request(raw, &limits, &mut head).unwrap());
        let allowed: Vec<Box<[u8]>> = allowed.iter().map(|a| a.as_bytes().into()).collect();
        let mut out = b"x".to_vec();
        let wrote = write_offer(&allowed, &head, raw, &mut out).any();
        assert_eq!(wrote, out.len() > 1, "returns whether it wrote");
        wrote.then(|| String::from_utf8(out[1..].to_vec()).unwrap())
    }

    #[test]
    fn offers_only_allowed_protocols() {
        let ws = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n";
        assert_eq!(
            offer(ws, &["websocket"]).as_deref(),
            Some("upgrade: WebSocket\r\nconnection: upgrade\r\n")
        );
        assert_eq!(offer(ws, &["h2c"]), None);
        assert_eq!(offer(ws, &[]), None);
        let two = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo/2, websocket\r\nUpgrade: h2c\r\n\r\n";
        assert_eq!(
            offer(two, &["foo", "h2c"]).as_deref(),
            Some("upgrade: foo/2, h2c\r\nconnection: upgrade\r\n")
        );
    }

    #[test]
    fn needs_connection_upgrade_and_http11() {
        let no_conn = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(offer(no_conn, &["websocket"]), None);
        let http10 = b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(offer(http10, &["websocket"]), None);
    }
}
