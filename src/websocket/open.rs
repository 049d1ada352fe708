//! An open WebSocket connection (lifecycle step 3 and 4 in `session`): reading frames
//! (pings, the client's close and its vanishing handled at once, even while a message
//! is handled; messages queued in order), writing queued ones, the idle and duration
//! watchdog, then `$disconnect`.
//!
//! What an idle connection holds is kept small (API Gateway's users open many and leave
//! them quiet): the connection loop runs `run` only after the handshake's request future
//! is gone; a message's work (`deliver`) is boxed for as long as it runs; timers are the
//! worker's coarse timers; and a plain connection waits for its next frame without a read
//! buffer once `IDLE_WITH_BUFFERS` other waits on the worker hold one.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use tracing::debug;

use super::connections::{self, Live, Wake};
use super::event;
use super::frame::{self, Decoder, Event};
use super::WsApiRt;
use crate::metrics::cells::{bump, ws_close_slot};
use crate::router::StageRef;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use crate::tls::{ClientIo, Io};

/// What the handshake leaves for the open connection.
pub struct Opened {
    pub(super) stage: StageRef,
    pub(super) ectx: event::Context,
    pub(super) live: Rc<Live>,
    /// The stage's open-connection gauge, counted down at close whatever reloads happen.
    pub(super) stage_open: Arc<AtomicU64>,
}

/// Runs the connection from the 101 to `$disconnect`. `gen` is the generation the
/// handshake was served on. True when the server closed and the client had neither
/// answered with its close frame nor ended its stream: it may still be sending, and the
/// socket closed now would reset, cutting the close frame off (`server::conn` lingers).
pub async fn run(ctx: &WorkerCtx, gen: &Generation, c: &mut Conn, opened: Box<Opened>) -> bool {
    let Opened {
        stage,
        ectx,
        live,
        stage_open,
    } = *opened;
    let api = &gen.snap.apis[stage.api as usize];
    let st = &api.stages[stage.stage as usize];
    let session = Session {
        peer: c.peer.ip(),
        ctx,
        gen,
        last_seen: Default::default(),
        api_name: &api.name,
        stage_name: &st.name,
        ectx: &ectx,
        live: &live,
        closing: Cell::new(None),
    };
    let ((code, reason), client_may_send) = match api.websocket.as_deref() {
        Some(ws) => session.run(c, ws).await,
        None => ((1011, String::new()), false),
    };
    connections::unregister(ctx.id, &live.id);
    let cells = &ctx.cells;
    for active in [&cells.ws_connections_active, &*stage_open] {
        active.store(
            crate::metrics::cells::read(active).saturating_sub(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    bump(&cells.ws_closes[ws_close_slot(code)], 1);
    debug!(connection = %live.id, code, reason = %reason, "WebSocket closed");
    Box::pin(session.disconnect(code, &reason)).await;
    client_may_send
}

pub(super) struct Session<'a> {
    pub(super) peer: std::net::IpAddr,
    pub(super) ctx: &'a WorkerCtx,
    /// The generation the connection opened on; messages use the current one when it
    /// still has this API and stage.
    pub(super) gen: &'a Generation,
    /// The last generation a message found this API and stage in, newer than `gen`:
    /// after a reload that removes the API, messages keep what it said last (a route
    /// removed before that must not come back from the generation the connection opened
    /// on). The worker's `removed_ws` says the same for a connection that was quiet
    /// across the reloads.
    pub(super) last_seen: std::cell::RefCell<Option<Rc<Generation>>>,
    pub(super) api_name: &'a str,
    pub(super) stage_name: &'a str,
    pub(super) ectx: &'a event::Context,
    pub(super) live: &'a Rc<Live>,
    /// Set once the close frame (or the end) is queued: (code, reason for $disconnect).
    pub(super) closing: Cell<Option<(u16, &'static str)>>,
}

/// How long a closing connection's writer may take to send what is queued and the close
/// frame before the socket is dropped (a client that stopped reading never takes them).
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// The same after DeleteConnection: API Gateway closes such a connection at once, so the
/// close frame is sent if it can be and the socket goes soon after either way.
const DELETE_GRACE: Duration = Duration::from_secs(1);

/// Read buffer of an idle TLS session (a frame header and a small message fit).
const IDLE_READ: usize = 2048;
/// Read size while a frame is arriving.
const BUSY_READ: usize = 16 * 1024;

/// Appends what the client sends next: into a small buffer while nothing is pending,
/// a larger one while a frame is partly in.
async fn read_more<S: AsyncReadRent>(
    s: &mut S,
    mut buf: BytesMut,
) -> (std::io::Result<usize>, BytesMut) {
    let want = if buf.is_empty() { IDLE_READ } else { BUSY_READ };
    if buf.capacity() - buf.len() < want / 4 {
        buf.reserve(want);
    }
    let (len, cap) = (buf.len(), buf.capacity());
    let (res, slice) = s.read(monoio::buf::SliceMut::new(buf, len, cap)).await;
    (res, slice.into_inner())
}

/// Ends both directions of a socket whose writer gave up (a TLS stream's too: its
/// close_notify could not be sent either). The socket itself is closed when the
/// connection is dropped, after `$disconnect`.
fn shut_down(fd: std::os::fd::RawFd) {
    // SAFETY: `fd` is the connection's socket, open until the connection is dropped.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// One of the worker's waits that hold a read buffer; counted down when dropped, so a
/// reader cancelled mid-read (the writer ended first) gives its place back.
struct HoldingBuffer<'a>(&'a Cell<usize>);

impl<'a> HoldingBuffer<'a> {
    fn take(count: &'a Cell<usize>) -> Option<Self> {
        (count.get() < crate::server::IDLE_WITH_BUFFERS).then(|| {
            count.set(count.get() + 1);
            HoldingBuffer(count)
        })
    }
}

impl Drop for HoldingBuffer<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A close as `$disconnect` reports it.
type Closed = (u16, String);

/// What the reader took from the client that waits for the messages before it.
enum Deferred {
    /// A message.
    Event(Event),
    /// A protocol error: close with this code and reason.
    Violation(u16, &'static str),
}

impl Deferred {
    /// What it counts against MAX_PENDING (empty messages count too).
    fn size(&self) -> usize {
        match self {
            Deferred::Event(Event::Message { data, .. }) => data.len() + 64,
            _ => 64,
        }
    }
}

/// Bytes of messages read ahead while one is being handled (then the client is not read):
/// the queue's bound, for the same reason (a client of a slow integration could make
/// each connection hold 1 MiB of its messages).
const MAX_PENDING: usize = connections::READ_PAUSE;

impl Session<'_> {
    async fn run(&self, c: &mut Conn, ws: &WsApiRt) -> (Closed, bool) {
        // Early frames that came with the handshake are in `rbuf`; every other buffer of
        // the HTTP connection goes back to the worker.
        let mut rbuf = std::mem::take(&mut c.rbuf);
        c.park_buffers(self.ctx);
        let started = Instant::now();
        // Set by the reader the moment the client closes or vanishes: how `$disconnect`
        // reports it.
        let client_close: RefCell<Option<Closed>> = RefCell::new(None);
        // The client's close frame or the end of its stream came, before or after ours.
        let client_done = Cell::new(false);
        let (idle, max) = (ws.idle, ws.max_duration);
        let limits = ws.limits;
        {
            let fd = std::os::fd::AsRawFd::as_raw_fd(c.stream.tcp());
            let stream = UnsafeCell::from_mut(&mut c.stream);
            // SAFETY: the reader only reads the client stream and the writer only writes
            // it; see integration::tunnel for why a read and a write may be in flight on
            // one stream (plain or TLS) at once. Both end with this block.
            // The reader keeps reading while a message's integration runs, so pings are
            // answered at once (a client's keepalive gives up on a pong held for a slow
            // integration), and so are the client's close and the end of its stream: the
            // connection is gone for `@connections` and the close is echoed without
            // waiting for a backend (RFC 6455 §5.5.1). Messages and a protocol error wait
            // in `inbox` and are handled in order, one at a time; those the client sent
            // before it left still go to their integrations (answers dropped), then
            // `$disconnect` comes, the connection's last event.
            let inbox: RefCell<VecDeque<Deferred>> = RefCell::new(VecDeque::new());
            // A message's integration call is under way: a close the server decides
            // (DeleteConnection, idle, max_duration) lets it finish before `$disconnect`.
            let in_flight = Cell::new(false);
            let inbox_bytes = Cell::new(0usize);
            let (arrived, taken) = (Wake::default(), Wake::default());
            let defer = |item: Deferred| {
                inbox_bytes.set(inbox_bytes.get() + item.size());
                inbox.borrow_mut().push_back(item);
                arrived.notify();
            };
            // The handling of an item is boxed while it runs: an idle connection's
            // future holds only the read side.
            let reader = async {
                let read_side = async {
                    let mut dec = Decoder::new(limits);
                    loop {
                        loop {
                            // A client that sends but doesn't read is not read either while
                            // more than READ_PAUSE is queued for it (pongs, answers, posts):
                            // TCP pushes back on it, and what it sends costs us nothing.
                            // Every ping still gets its pong (RFC 6455 §5.5.3 would allow
                            // answering only the latest, but Autobahn 2.10/2.11 check one
                            // per ping): this pause alone bounds them. Nor is a client read
                            // whose messages wait for their turn past MAX_PENDING.
                            loop {
                                if self.live.queued.get() > connections::READ_PAUSE {
                                    self.live.drained.wait().await;
                                } else if inbox_bytes.get() > MAX_PENDING {
                                    taken.wait().await;
                                } else {
                                    break;
                                }
                            }
                            match dec.next(&mut rbuf) {
                                Ok(Some(Event::Ping(data))) => {
                                    let mut out = Vec::with_capacity(data.len() + 2);
                                    frame::encode(&mut out, frame::OP_PONG, &data);
                                    self.live.push_frame(out);
                                }
                                Ok(Some(Event::Pong(_))) => {}
                                Ok(Some(Event::Close { code, reason })) => {
                                    client_done.set(true);
                                    // After the server's own close frame, the client's is
                                    // its answer: nothing to echo, the code stays ours.
                                    if self.closing.get().is_none() {
                                        let closed = self.on_close(code, reason);
                                        *client_close.borrow_mut() = Some(closed);
                                    }
                                    arrived.notify();
                                    return std::future::pending::<()>().await;
                                }
                                Ok(Some(ev)) => defer(Deferred::Event(ev)),
                                Ok(None) => break,
                                Err(v) => {
                                    defer(Deferred::Violation(v.code, v.reason));
                                    return std::future::pending::<()>().await;
                                }
                            }
                        }
                        let s = unsafe { &mut *stream.get() };
                        let _holding = if rbuf.is_empty() {
                            match self.wait_for_frame(s, &mut rbuf).await {
                                Ok(holding) => holding,
                                Err(()) => {
                                    client_done.set(true);
                                    self.vanished(&client_close);
                                    arrived.notify();
                                    return std::future::pending::<()>().await;
                                }
                            }
                        } else {
                            None
                        };
                        let (res, back) = read_more(s, std::mem::take(&mut rbuf)).await;
                        rbuf = back;
                        if !matches!(res, Ok(n) if n > 0) {
                            client_done.set(true);
                            self.vanished(&client_close);
                            arrived.notify();
                            return std::future::pending::<()>().await;
                        }
                    }
                };
                let mut read_side = std::pin::pin!(read_side);
                loop {
                    // Nor is a message handled while more than READ_PAUSE is queued for
                    // the client: an answer can be far larger than its message (an empty
                    // frame, a 120 KB mock body), so the read-ahead alone let a client
                    // that reads nothing make us hold a thousand answers. The writer
                    // wakes this loop when the queue is down to half.
                    if self.live.queued.get() > connections::READ_PAUSE
                        && self.closing.get().is_none()
                    {
                        monoio::select! {
                            _ = &mut read_side => {},
                            _ = arrived.wait() => {},
                        }
                        continue;
                    }
                    // A close the server decided (DeleteConnection, idle, max_duration)
                    // drops the messages read ahead: taken before this check, one sent
                    // after a DeleteConnection still reached the integration. Those sent
                    // before the client's own close are still handled.
                    if self.closing.get().is_some() && client_close.borrow().is_none() {
                        return;
                    }
                    let next = inbox.borrow_mut().pop_front();
                    let Some(item) = next else {
                        if self.closing.get().is_some() {
                            // The client left and every message before that is handled
                            // (or the server closed and the last message is done).
                            return;
                        }
                        monoio::select! {
                            _ = &mut read_side => {},
                            _ = arrived.wait() => {},
                        }
                        continue;
                    };
                    inbox_bytes.set(inbox_bytes.get().saturating_sub(item.size()));
                    taken.notify();
                    match item {
                        Deferred::Event(Event::Message { text, data }) => {
                            bump(&self.ctx.cells.ws_messages_in, 1);
                            self.live.last_active_ms.set(event::now_ms());
                            // Boxed: a message's integration call is a large future that
                            // an idle connection should not carry.
                            let mut work = Box::pin(self.on_message(text, data));
                            in_flight.set(true);
                            monoio::select! {
                                _ = &mut read_side => {},
                                _ = &mut work => {},
                            }
                            in_flight.set(false);
                        }
                        // The read side handles the rest itself.
                        Deferred::Event(Event::Close { .. } | Event::Ping(_) | Event::Pong(_)) => {}
                        Deferred::Violation(code, reason) => {
                            self.close_with(code, reason);
                            return;
                        }
                    }
                }
            };
            let writer = async {
                loop {
                    self.live.wake.wait().await;
                    loop {
                        let next = self.live.outbox.borrow_mut().pop_front();
                        let Some(frame) = next else { break };
                        let cost = connections::queued_cost(&frame);
                        self.live
                            .queued
                            .set(self.live.queued.get().saturating_sub(cost));
                        if matches!(frame.first(), Some(0x81 | 0x82)) {
                            bump(&self.ctx.cells.ws_messages_out, 1);
                        }
                        let s = unsafe { &mut *stream.get() };
                        if s.write_all(frame).await.0.is_err() {
                            return;
                        }
                        // Half: a paused reader then takes a batch of frames, not one
                        // frame per frame sent.
                        if self.live.queued.get() <= connections::READ_PAUSE / 2 {
                            self.live.drained.notify();
                            arrived.notify();
                        }
                    }
                    if self.closing.get().is_some() {
                        let s = unsafe { &mut *stream.get() };
                        let _ = s.shutdown().await;
                        return;
                    }
                }
            };
            let mut reader = std::pin::pin!(reader);
            let mut writer = std::pin::pin!(writer);
            let mut reading = true;
            // Once the close is decided, the writer has CLOSE_GRACE (DELETE_GRACE after
            // DeleteConnection) to send what is queued and the close frame; a client that
            // reads nothing would hold it (and up to MAX_QUEUED bytes) forever, past idle,
            // max_duration and DeleteConnection.
            let mut give_up: Option<Instant> = None;
            loop {
                if give_up.is_none() && self.closing.get().is_some() {
                    let grace = if self.live.close_requested.get() {
                        DELETE_GRACE
                    } else {
                        CLOSE_GRACE
                    };
                    give_up = Some(Instant::now() + grace);
                }
                let last = Duration::from_millis(
                    event::now_ms().saturating_sub(self.live.last_active_ms.get()),
                );
                let wait = match give_up {
                    Some(at) => at.saturating_duration_since(Instant::now()),
                    None => idle
                        .saturating_sub(last)
                        .min(max.saturating_sub(started.elapsed())),
                };
                monoio::select! {
                    _ = &mut reader, if reading => reading = false,
                    _ = &mut writer => break,
                    _ = self.ctx.timers.sleep(wait) => {
                        if give_up.is_some_and(|at| Instant::now() >= at) {
                            debug!(connection = %self.live.id, "the client took no close in time: dropped");
                            // Now, not after `$disconnect` (the socket is dropped only
                            // then): the client learns at once that it is gone.
                            shut_down(fd);
                            break;
                        }
                        let idle_for = Duration::from_millis(
                            event::now_ms().saturating_sub(self.live.last_active_ms.get()),
                        );
                        if self.closing.get().is_none()
                            && (idle_for >= idle || started.elapsed() >= max)
                        {
                            self.close_with(frame::CLOSE_GOING_AWAY, "Going away");
                        }
                    },
                    // DeleteConnection: decided here, not by the writer, which may be
                    // waiting on a client that reads nothing.
                    _ = self.live.deleted.wait(), if self.closing.get().is_none() => {
                        self.close_with(1000, "Connection Closed Normally");
                    },
                    _ = self.ctx.drain.wait(), if self.closing.get().is_none() => {
                        self.close_with(frame::CLOSE_GOING_AWAY, "Going away");
                    },
                }
            }
            if reading && (client_close.borrow().is_some() || in_flight.get()) {
                // The client left while a message was handled: the socket is done, but
                // that integration call and those of the messages sent before the close
                // finish (their answers go nowhere, as on API Gateway), so the backend
                // sees whole calls and `$disconnect` comes after them. A close the server
                // decided lets the call under way finish too (API Gateway's
                // DeleteConnection does not cancel an invocation; cut, a backend saw half
                // a request), and drops the messages read ahead. A drain does not wait.
                monoio::select! {
                    _ = &mut reader => {},
                    _ = self.ctx.drain.wait() => {},
                }
            }
        }
        self.ctx.spares.borrow_mut().put_bytes(rbuf);
        let client_may_send = !client_done.get();
        if let Some(closed) = client_close.into_inner() {
            return (closed, client_may_send);
        }
        let (code, reason) = self.closing.get().unwrap_or((1006, ""));
        ((code, reason.to_string()), client_may_send)
    }

    /// Before a read with nothing pending: a plain connection waits with a buffer while
    /// the worker has few such waits (the busy case: one read, no extra wake-up), else it
    /// gives its buffer back and waits for readability holding none. A TLS connection
    /// reads into a small buffer (rustls holds its own anyway). Err: the socket failed.
    async fn wait_for_frame(
        &self,
        s: &ClientIo,
        rbuf: &mut BytesMut,
    ) -> Result<Option<HoldingBuffer<'_>>, ()> {
        let Io::Plain(tcp) = s else {
            if rbuf.capacity() > 4 * IDLE_READ {
                let big = std::mem::replace(rbuf, BytesMut::with_capacity(IDLE_READ));
                self.ctx.spares.borrow_mut().put_bytes(big);
            }
            return Ok(None);
        };
        if let Some(holding) = HoldingBuffer::take(&self.ctx.idle_with_buffers) {
            return Ok(Some(holding));
        }
        self.ctx.spares.borrow_mut().put_bytes(std::mem::take(rbuf));
        let ready = tcp.readable(false).await;
        *rbuf = self.ctx.spares.borrow_mut().bytes();
        ready.map(|_| None).map_err(|_| ())
    }

    /// The client's stream ended without a close frame: the connection is gone now (for
    /// `@connections` too), not once a message's integration returns; nothing more is
    /// sent, so the writer ends. After the server's own close, its code stays.
    fn vanished(&self, client_close: &RefCell<Option<Closed>>) {
        if self.closing.get().is_none() {
            self.set_closing(1006, "");
            *client_close.borrow_mut() = Some((1006, String::new()));
            self.live.wake.notify();
        }
    }

    /// The close is decided: for the session and for `@connections`, whose posts would
    /// otherwise be queued behind the close frame.
    fn set_closing(&self, code: u16, reason: &'static str) {
        self.closing.set(Some((code, reason)));
        self.live.closing.set(true);
    }

    /// Queues the server's close frame; the writer sends it and ends the connection.
    pub(super) fn close_with(&self, code: u16, reason: &'static str) {
        if self.closing.get().is_some() {
            return;
        }
        self.set_closing(code, reason);
        let mut out = Vec::with_capacity(4 + reason.len());
        frame::encode_close(&mut out, code, reason);
        self.live.push_frame(out);
    }

    /// The client's close: echoed (its code only), then the connection ends.
    fn on_close(&self, code: Option<u16>, reason: String) -> Closed {
        let mut out = Vec::new();
        match code {
            Some(code) => frame::encode_close(&mut out, code, ""),
            None => frame::encode(&mut out, frame::OP_CLOSE, b""),
        }
        self.set_closing(code.unwrap_or(1005), "");
        self.live.push_frame(out);
        match code {
            Some(code) => (code, reason),
            None => (1005, "Client-side close frame status not set".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a function returns, without calling it.
    fn future_size<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle WebSocket connection costs its connection's task (2 KiB, see
    /// `server::idle`), this future boxed, the registry's `Live` and the event context's
    /// strings. The future must stay in the allocator's 2 KiB size class for the idle
    /// connection to fit in the 8 KiB the project promises; a message's work, `$disconnect`
    /// and rustls reads are boxed for that reason.
    #[test]
    fn an_open_connection_fits_its_budget() {
        let open = future_size(
            |ctx: &'static WorkerCtx,
             gen: &'static Generation,
             c: &'static mut Conn,
             o: Box<Opened>| run(ctx, gen, c, o),
        );
        assert!(open <= 2048, "an open WebSocket's future is {open} bytes");
    }
}
