//! The admin listener: plain std sockets and threads, off the workers' cores and
//! independent of their monoio driver.
//!
//! Lifecycle of a connection: accepted by the listener thread, it is *reading* —
//! non-blocking, watched with every other reading connection by one poll(2) — until its
//! whole request (head and body) is there; then it is *answered* on a short-lived thread
//! of its own, and closed. A reading connection costs a socket and the bytes it sent,
//! never a thread, and it has one deadline for the whole request (408 when it passes,
//! however steadily it trickles bytes). When [`MAX_READING`] connections are reading, a
//! new one takes the place of the oldest. So slow or idle clients cannot hold what
//! `/health` and `/metrics` need: their requests arrive whole in one packet and are
//! answered at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::http::{
    awaiting_body, head_alone, parse, Refused, Request, Response, MAX_REQUEST_BYTES,
};
use super::routes::Router;
use super::AdminCtx;
use crate::http1::Method;

/// Connections still sending their request.
const MAX_READING: usize = 256;
/// Requests being answered at once (handlers are quick: this bounds threads, not work).
/// `/health` is not counted: a burst of slow handlers (forty `POST /reload`) made it
/// answer 503, and a load balancer took the node out.
const MAX_ANSWERING: usize = 32;
/// Answers being written at once, each for up to [`WRITE_DEADLINE`], and their bytes;
/// past either, an answer gets one write the socket takes at once. Writing held an
/// answering slot: forty clients that never read a multi-megabyte `/metrics` made
/// `/health` answer 503; and writers without a byte bound held 256 copies of a 5 MB
/// `/metrics` (2.3 GB) for clients that never read them.
const MAX_WRITING: usize = 256;
const MAX_WRITING_BYTES: usize = 64 << 20;
/// From accept to the last byte of the request.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// For writing the whole answer to a client that does not read it.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// The longest poll(2) wait, so a stop is noticed even if the wake-up connect fails.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A running admin listener; [`AdminHandle::stop`] closes it.
pub struct AdminHandle {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds the admin address (failing startup if it is taken) and serves on a thread.
pub fn start(ctx: AdminCtx, addr: SocketAddr) -> std::io::Result<AdminHandle> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    // A missing admin.token is among the config's warnings (config::warnings).
    let router = Router::new(ctx.token.as_deref());
    let state = Arc::new((ctx, router, Counts::default()));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("portico-admin".into())
        .spawn(move || listen(listener, state, flag))?;
    info!(%addr, "admin API listening");
    Ok(AdminHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}

impl AdminHandle {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the poll.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The context, the routes, and what is being answered.
type State = Arc<(AdminCtx, Router, Counts)>;

#[derive(Default)]
struct Counts {
    /// Requests being handled (`/health` not counted).
    answering: AtomicUsize,
    /// Answers being written, and their bytes.
    writers: AtomicUsize,
    bytes: AtomicUsize,
}

/// A connection whose request is not complete yet.
struct Reading {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    /// The head is whole and was judged before the body (a 100 if asked, or a refusal).
    head_judged: bool,
    /// Refused on its head and answered: what it still sends is read and dropped (so the
    /// refusal is not lost to a reset), until it closes or the deadline.
    discarding: bool,
}

enum Step {
    More,
    Closed,
    /// The whole request, or the answer it gets without being served.
    Done(Result<Request, Response>),
}

impl Reading {
    /// Reads what has arrived, without blocking.
    fn read_available(&mut self, router: &Router) -> Step {
        let mut chunk = [0u8; 4096];
        if self.discarding {
            return loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => break Step::Closed,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break Step::More,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break Step::Closed,
                }
            };
        }
        let mut eof = false;
        while self.buf.len() < MAX_REQUEST_BYTES + chunk.len() {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Step::Closed,
            }
        }
        match parse(&self.buf) {
            Ok(Some(req)) => Step::Done(Ok(req)),
            // Without a valid token the answer is 401 whatever else is wrong after the
            // head (a chunked body's 411 told a client without one what the path takes).
            Err(refused) => Step::Done(Err(head_alone(&self.buf)
                .and_then(|head| router.refusal(&head))
                .unwrap_or_else(|| refusal(&self.buf, refused)))),
            Ok(None) if eof => Step::Closed,
            Ok(None) => self.ask_for_body(router),
        }
    }

    /// Once the head is whole and the body is still coming: a request refused on its head
    /// (401: no valid token) gets the refusal at once, as nginx does, and its body is not
    /// kept (buffering up to 1 MiB of it for each of 256 connections let a client without
    /// the token make the listener hold ~290 MB); one that will be read and sent `Expect:
    /// 100-continue` (curl for a body over 1 KiB) gets `100 Continue`. (Too large a
    /// Content-Length is refused by `parse` already.)
    fn ask_for_body(&mut self, router: &Router) -> Step {
        if self.head_judged {
            return Step::More;
        }
        let Some((head, expects_continue)) = awaiting_body(&self.buf) else {
            return Step::More;
        };
        self.head_judged = true;
        if let Some(refusal) = router.refusal(&head) {
            // Best effort on a non-blocking socket: nothing was written yet, so a short
            // answer fits.
            let _ = self.stream.write(&refusal.encode(false));
            let _ = self.stream.shutdown(Shutdown::Write);
            self.buf = Vec::new();
            self.discarding = true;
            return Step::More;
        }
        if expects_continue {
            // A client that gets nothing sends its body after its own wait anyway.
            let _ = self.stream.write(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        Step::More
    }
}

/// The answer to a request the reader refused. A body above the admin listener's limit on
/// `@connections` is the management API's typed 413 (boto3 raises
/// `PayloadTooLargeException` for it, as for one above 128 KiB), not a generic one.
fn refusal(buf: &[u8], (status, message): Refused) -> Response {
    if status == 413 && crate::websocket::connections::posts_to_management(buf) {
        return super::connections::answer(crate::websocket::connections::too_long());
    }
    Response::message(status, message)
}

/// The listener thread: accepts, reads every unfinished request, hands whole ones on.
fn listen(listener: TcpListener, state: State, stop: Arc<AtomicBool>) {
    let mut reading: Vec<Reading> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let pollfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    while !stop.load(Ordering::Acquire) {
        fds.clear();
        fds.push(pollfd(listener.as_raw_fd()));
        fds.extend(reading.iter().map(|r| pollfd(r.stream.as_raw_fd())));
        let now = Instant::now();
        let wait = reading
            .iter()
            .map(|r| r.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT);
        // Rounded up, so a deadline is not polled for again just before it passes.
        let timeout = wait.as_millis() as libc::c_int + 1;
        // SAFETY: `fds` is a live, initialised array of `fds.len()` pollfd structs that
        // poll(2) only reads and writes within; nothing else touches it meanwhile.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                warn!(error = %e, "admin listener: poll failed");
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let mut still = Vec::with_capacity(reading.len());
        for (mut r, fd) in reading.drain(..).zip(&fds[1..]) {
            let step = if fd.revents != 0 {
                r.read_available(&state.1)
            } else {
                Step::More
            };
            match step {
                Step::Done(req) => answer(&state, r.stream, req),
                Step::Closed => {}
                Step::More if now >= r.deadline && r.discarding => {}
                Step::More if now >= r.deadline => {
                    debug!("admin request not received within the deadline");
                    let timeout = Response::message(408, "Request Timeout");
                    // Best effort on a non-blocking socket: a small answer fits.
                    let _ = r.stream.write(&timeout.encode(false));
                }
                Step::More => still.push(r),
            }
        }
        reading = still;
        if fds[0].revents != 0 {
            accept_all(&listener, &mut reading);
        }
    }
}

fn accept_all(listener: &TcpListener, reading: &mut Vec<Reading>) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if reading.len() >= MAX_READING {
                    let oldest = (0..reading.len())
                        .min_by_key(|&i| reading[i].deadline)
                        .expect("the list is full");
                    reading.swap_remove(oldest);
                    debug!(%peer, "admin listener full: closed the oldest unfinished request");
                }
                reading.push(Reading {
                    stream,
                    buf: Vec::new(),
                    deadline: Instant::now() + REQUEST_DEADLINE,
                    head_judged: false,
                    discarding: false,
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the error.
                warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(50));
                return;
            }
        }
    }
}

/// Answers a whole request on a thread of its own.
fn answer(state: &State, mut stream: TcpStream, req: Result<Request, Response>) {
    let counts = &state.2;
    let counted = !matches!(&req, Ok(r) if r.path == "/health");
    if counted && counts.answering.fetch_add(1, Ordering::AcqRel) >= MAX_ANSWERING {
        counts.answering.fetch_sub(1, Ordering::AcqRel);
        let _ = stream.write(&Response::message(503, "Service Unavailable").encode(false));
        return;
    }
    let state2 = state.clone();
    let spawned = std::thread::Builder::new()
        .name("portico-admin-conn".into())
        .spawn(move || {
            // The slot is given back even if a handler panics: a slot lost per panic
            // left every admin route, `/health` included, answering 503 for good after
            // MAX_ANSWERING of them.
            struct Slot(State, bool);
            impl Drop for Slot {
                fn drop(&mut self) {
                    if self.1 {
                        self.0 .2.answering.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
            let slot = Slot(state2, counted);
            let bytes = respond(&slot.0, req);
            let state = slot.0.clone();
            drop(slot);
            write_within_budget(&state.2, stream, &bytes);
        });
    if spawned.is_err() && counted {
        counts.answering.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Writes the answer for up to [`WRITE_DEADLINE`] while the writers and their bytes are
/// within bounds (or it is the only one), else as much as the socket takes at once.
fn write_within_budget(counts: &Counts, mut stream: TcpStream, bytes: &[u8]) {
    let writers = counts.writers.fetch_add(1, Ordering::AcqRel);
    let held = counts.bytes.fetch_add(bytes.len(), Ordering::AcqRel);
    // One answer is always written whole, however large (the `/metrics` of 100,000
    // routes is over the byte bound by itself).
    if writers < MAX_WRITING && (held == 0 || held + bytes.len() <= MAX_WRITING_BYTES) {
        let _ = write_by(stream, bytes, Instant::now() + WRITE_DEADLINE);
    } else if stream.set_nonblocking(true).is_ok() {
        let _ = stream.write(bytes);
    }
    counts.bytes.fetch_sub(bytes.len(), Ordering::AcqRel);
    counts.writers.fetch_sub(1, Ordering::AcqRel);
}

/// The answer's bytes.
fn respond(state: &State, req: Result<Request, Response>) -> Vec<u8> {
    let (ctx, router, ..) = &**state;
    let (resp, head_only) = match req {
        Ok(req) => {
            // A handler's bug answers 500 rather than closing the connection unanswered.
            let dispatched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                router.dispatch(ctx, &req)
            }));
            let resp = dispatched.unwrap_or_else(|_| {
                tracing::error!(path = %req.path, "admin: the handler panicked");
                Response::message(500, "Internal Server Error")
            });
            debug!(method = ?req.method, path = %req.path, status = resp.status, "admin request");
            (resp, req.method == Method::Head)
        }
        Err(refused) => (refused, false),
    };
    resp.encode(head_only)
}

/// Writes all of `bytes` before `deadline` (not per write: a client reading a byte at a
/// time does not get to hold the thread).
fn write_by(mut stream: TcpStream, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
