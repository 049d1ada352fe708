//! Open WebSocket connections and the `@connections` management API.
//!
//! A connection lives on the worker that accepted it; its id says which (the first of
//! the 11 bytes behind the 16-character base64 id). Each worker keeps its connections in a
//! thread-local map, so a session and a local `@connections` call never share anything
//! with another core. A call that lands elsewhere (another worker's stage endpoint, or the
//! admin thread) goes to the owner through the owner's lock-free queue (`SegQueue`), which
//! the owner drains every `POLL` while it has connections; the answer comes back on a
//! one-shot crossbeam channel. A worker with no connections answers 410 without a queue.
//!
//! Answers follow API Gateway's model (what boto3's `apigatewaymanagementapi` parses):
//! POST 200, GET 200 `{"connectedAt","identity":{"sourceIp","userAgent"},"lastActiveAt"}`
//! (ISO-8601 UTC with milliseconds), DELETE 204 then a close 1000; 410 GoneException,
//! 413 PayloadTooLargeException (> 128 KiB), 429 LimitExceededException when the client's
//! send buffer is full (returned before anything is queued: boto3 retries 429), 403
//! ForbiddenException; each with `x-amzn-ErrorType`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Poll, Waker};
use std::time::Duration;

use base64::Engine;
use crossbeam::queue::SegQueue;

/// How often a worker with connections looks at its queue.
const POLL: Duration = Duration::from_millis(2);
/// How long a caller waits for the owning worker.
const REPLY_WAIT: Duration = Duration::from_secs(2);
/// API Gateway's PostToConnection limit.
pub const MAX_POST: usize = 128 * 1024;
/// Bytes queued for one client before posts are refused with 429.
pub const MAX_QUEUED: usize = 1024 * 1024;
/// Bytes queued for one client above which the session stops reading it until the writer
/// has sent the queue down to half of this (and the most a session reads ahead of the
/// message it is handling). What the client sends meanwhile waits in the sockets' buffers, which
/// are the kernel's: a client that sends pings or messages and reads nothing costs the
/// worker about this much, not `MAX_QUEUED` (a 1 MiB bound let any client hold ~0.9 MiB
/// of pongs). 64 KiB is two of API Gateway's 32 KiB frames: a client that reads keeps
/// the queue near empty (the writer hands each frame to the kernel as it comes), so it
/// is never held up by this; a smaller bound would save little next to the 16 KiB read
/// buffer and pause the reader at every burst of answers.
pub const READ_PAUSE: usize = 64 * 1024;
/// What a queued frame costs beside its bytes: its `Vec` and queue slot, and the
/// allocator's least block. Counted, or a client's stream of small frames to answer
/// (echoes of `{}`) held 20 times `MAX_QUEUED` as 2-byte frames.
const FRAME_OVERHEAD: usize = 64;

/// What `frame` counts against `MAX_QUEUED`.
pub fn queued_cost(frame: &[u8]) -> usize {
    frame.len() + FRAME_OVERHEAD
}
/// A connection id's first byte names its worker (`server.workers` is at most this).
const MAX_WORKERS: usize = crate::config::validate::MAX_WORKERS;

/// Wakes one waiting task on this thread.
#[derive(Default)]
pub struct Wake {
    flag: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Wake {
    pub fn notify(&self) {
        self.flag.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.flag.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// One open connection as its session and `@connections` see it.
pub struct Live {
    pub id: String,
    /// Encoded frames waiting for the session's writer.
    pub outbox: RefCell<VecDeque<Vec<u8>>>,
    pub queued: Cell<usize>,
    pub wake: Wake,
    /// The writer sent the queue down to half of `READ_PAUSE` (a reader waiting for that
    /// goes on).
    pub drained: Wake,
    /// DeleteConnection asked the session to close (1000).
    pub close_requested: Cell<bool>,
    /// The session has queued its close frame (or the client is gone): nothing more may
    /// be sent, so `@connections` answers 410 as for a closed connection.
    pub closing: Cell<bool>,
    /// Wakes the session's watchdog for that close: the writer may be stuck on a client
    /// that reads nothing, and the close must not wait for it.
    pub deleted: Wake,
    pub connected_at_ms: u64,
    pub last_active_ms: Cell<u64>,
    pub source_ip: String,
    pub user_agent: String,
    /// The API key `$connect` admitted it with: its plan's throttle applies to the
    /// connection's messages (boxed: most connections have none; here rather than in the
    /// session, whose future has no bytes to spare).
    pub key: Option<Box<crate::pipeline::admission::ConnectionKey>>,
    /// `{api}/{stage}`: the only stage endpoint whose `@connections` reaches it (as in
    /// API Gateway, where another API's endpoint answers 410 for the id).
    pub scope: String,
}

impl Live {
    /// Queues a message for the client: a text frame, or a binary one when `data` is
    /// not UTF-8 (a text frame must be, RFC 6455 §8.1: a client fails the connection
    /// with 1007 on one that isn't, so a backend's binary answer or a `PostToConnection`
    /// blob would cost the client its connection).
    pub fn push_message(&self, data: &[u8]) {
        let op = match std::str::from_utf8(data) {
            Ok(_) => super::frame::OP_TEXT,
            Err(_) => super::frame::OP_BINARY,
        };
        let mut frame = Vec::with_capacity(data.len() + 10);
        super::frame::encode(&mut frame, op, data);
        self.push_frame(frame);
    }

    pub fn push_frame(&self, frame: Vec<u8>) {
        self.queued.set(self.queued.get() + queued_cost(&frame));
        self.outbox.borrow_mut().push_back(frame);
        self.wake.notify();
    }
}

thread_local! {
    static LIVE: RefCell<HashMap<String, Rc<Live>>> = RefCell::new(HashMap::new());
    static POLLING: Cell<bool> = const { Cell::new(false) };
}

fn live_counts() -> &'static [AtomicUsize] {
    static COUNTS: OnceLock<Box<[AtomicUsize]>> = OnceLock::new();
    COUNTS.get_or_init(|| (0..MAX_WORKERS).map(|_| AtomicUsize::new(0)).collect())
}

fn inboxes() -> &'static [SegQueue<Command>] {
    static INBOX: OnceLock<Box<[SegQueue<Command>]>> = OnceLock::new();
    INBOX.get_or_init(|| (0..MAX_WORKERS).map(|_| SegQueue::new()).collect())
}

/// A new connection (or message) id: 16 base64 characters ending in `=` (11 bytes: the
/// worker, 32 bits from the OS random source and 48 bits of `random`). A connection id's
/// `random` comes from the OS random source too: a client that could work out another's
/// id from its own could post to it or name it to the backend. (A per-worker counter in
/// place of the 32 bits told a client how many connections and messages its worker had
/// handled between two of its own.)
pub fn new_id(worker: usize, random: u64) -> String {
    let mut raw = [0u8; 11];
    raw[0] = worker as u8;
    crate::runtime::os_random::fill(&mut raw[1..5]);
    raw[5..11].copy_from_slice(&random.to_le_bytes()[..6]);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The worker an id belongs to, if it is one of ours.
pub fn owner(id: &str) -> Option<usize> {
    if id.len() != 16 {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(id).ok()?;
    (raw.len() == 11).then_some(usize::from(raw[0]))
}

/// Registers an open connection on this worker (after its 101 went out; `announce`d
/// before).
pub fn register(worker: usize, live: Rc<Live>) {
    LIVE.with(|l| l.borrow_mut().insert(live.id.clone(), live));
    live_counts()[worker % MAX_WORKERS].fetch_add(1, Ordering::Relaxed);
    if !POLLING.with(|p| p.replace(true)) {
        monoio::spawn(poll_inbox(worker));
    }
}

pub fn unregister(worker: usize, id: &str) {
    if LIVE.with(|l| l.borrow_mut().remove(id)).is_some() {
        live_counts()[worker % MAX_WORKERS].fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = crate::cluster::get() {
            c.connection_closed(id);
        }
    }
}

async fn poll_inbox(worker: usize) {
    let inbox = &inboxes()[worker % MAX_WORKERS];
    loop {
        while let Some(cmd) = inbox.pop() {
            take_call(cmd);
        }
        if LIVE.with(|l| l.borrow().is_empty()) {
            POLLING.with(|p| p.set(false));
            // Anything that raced in is answered (as Gone) before stopping.
            while let Some(cmd) = inbox.pop() {
                let _ = cmd.reply.send(Outcome::Gone);
            }
            return;
        }
        monoio::time::sleep(POLL).await;
    }
}

/// Runs a call another thread queued for this worker and replies, unless its caller has
/// stopped waiting: it answered 503 at the deadline, and carried out now, a post the
/// caller will retry would be delivered twice, a delete reported as failed would close
/// the client.
fn take_call(cmd: Command) {
    if std::time::Instant::now() >= cmd.deadline {
        return;
    }
    let out = local(&cmd.id, cmd.scope.as_deref(), cmd.op);
    let _ = cmd.reply.send(out);
}

pub enum Op {
    Post(Vec<u8>),
    Get,
    Delete,
}

pub enum Outcome {
    Posted,
    Info(Info),
    Deleted,
    Gone,
    Full,
    /// The worker that holds the connection did not take the call within
    /// [`REPLY_WAIT`] (a long validation or a stalled host holds it): the connection is
    /// open, so 503 (retry), never the 410 that tells a backend to forget it. The call is
    /// dropped unrun.
    Unanswered,
    /// Another node's answer (a cluster): passed through as it is.
    Remote(Reply),
}

pub struct Info {
    pub connected_at_ms: u64,
    pub last_active_ms: u64,
    pub source_ip: String,
    pub user_agent: String,
}

struct Command {
    id: String,
    scope: Option<String>,
    op: Op,
    reply: crossbeam::channel::Sender<Outcome>,
    /// When the caller stops waiting: the owner drops the call after it, unrun.
    deadline: std::time::Instant,
}

/// Runs an operation on a connection of this thread's worker. `scope` (`{api}/{stage}`,
/// None from the admin listener): the stage endpoint the call came through; another
/// stage's connection is Gone to it, so a principal allowed on one stage can't reach
/// the connections of another.
fn local(id: &str, scope: Option<&str>, op: Op) -> Outcome {
    let Some(live) = LIVE.with(|l| l.borrow().get(id).cloned()) else {
        return Outcome::Gone;
    };
    if live.close_requested.get() || live.closing.get() || scope.is_some_and(|s| s != live.scope) {
        return Outcome::Gone;
    }
    match op {
        Op::Post(data) => {
            if live.queued.get() + queued_cost(&data) > MAX_QUEUED {
                return Outcome::Full;
            }
            live.last_active_ms.set(super::event::now_ms());
            live.push_message(&data);
            Outcome::Posted
        }
        Op::Get => Outcome::Info(Info {
            connected_at_ms: live.connected_at_ms,
            last_active_ms: live.last_active_ms.get(),
            source_ip: live.source_ip.clone(),
            user_agent: live.user_agent.clone(),
        }),
        Op::Delete => {
            live.close_requested.set(true);
            live.deleted.notify();
            Outcome::Deleted
        }
    }
}

/// From a worker, this node only: locally or through the owner's queue.
pub(super) async fn manage_here_async(
    this_worker: Option<usize>,
    id: &str,
    scope: Option<&str>,
    op: Op,
) -> Outcome {
    let Some(owner) = owner(id) else {
        return Outcome::Gone;
    };
    if Some(owner) == this_worker {
        return local(id, scope, op);
    }
    let deadline = std::time::Instant::now() + REPLY_WAIT;
    let Some(rx) = send(owner, id, scope, op, deadline) else {
        return Outcome::Gone;
    };
    loop {
        match rx.try_recv() {
            Ok(out) => return out,
            Err(crossbeam::channel::TryRecvError::Disconnected) => return Outcome::Gone,
            Err(crossbeam::channel::TryRecvError::Empty) => {}
        }
        if std::time::Instant::now() >= deadline {
            return Outcome::Unanswered;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// From the admin thread or the cluster's side thread (blocking), this node only.
pub(super) fn manage_here_blocking(id: &str, scope: Option<&str>, op: Op) -> Outcome {
    let Some(owner) = owner(id) else {
        return Outcome::Gone;
    };
    let deadline = std::time::Instant::now() + REPLY_WAIT;
    match send(owner, id, scope, op, deadline).map(|rx| rx.recv_deadline(deadline)) {
        Some(Ok(out)) => out,
        Some(Err(crossbeam::channel::RecvTimeoutError::Timeout)) => Outcome::Unanswered,
        Some(Err(crossbeam::channel::RecvTimeoutError::Disconnected)) | None => Outcome::Gone,
    }
}

fn send(
    owner: usize,
    id: &str,
    scope: Option<&str>,
    op: Op,
    deadline: std::time::Instant,
) -> Option<crossbeam::channel::Receiver<Outcome>> {
    if owner >= MAX_WORKERS || live_counts()[owner].load(Ordering::Relaxed) == 0 {
        return None;
    }
    let (tx, rx) = crossbeam::channel::bounded(1);
    inboxes()[owner].push(Command {
        id: id.to_string(),
        scope: scope.map(str::to_string),
        op,
        reply: tx,
        deadline,
    });
    Some(rx)
}

/// An answer to a management call: status, `x-amzn-ErrorType` (errors), JSON body.
pub struct Reply {
    pub status: u16,
    pub error_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn error(status: u16, error_type: &'static str, message: &str) -> Reply {
        Reply {
            status,
            error_type: Some(error_type),
            body: serde_json::to_vec(&serde_json::json!({ "message": message }))
                .unwrap_or_default(),
        }
    }
}

pub fn reply(out: Outcome) -> Reply {
    match out {
        Outcome::Remote(r) => r,
        Outcome::Posted => Reply {
            status: 200,
            error_type: None,
            body: Vec::new(),
        },
        Outcome::Deleted => Reply {
            status: 204,
            error_type: None,
            body: Vec::new(),
        },
        Outcome::Info(i) => Reply {
            status: 200,
            error_type: None,
            body: serde_json::to_vec(&serde_json::json!({
                "connectedAt": iso8601(i.connected_at_ms),
                "identity": { "sourceIp": i.source_ip, "userAgent": i.user_agent },
                "lastActiveAt": iso8601(i.last_active_ms),
            }))
            .unwrap_or_default(),
        },
        // An empty JSON object: boto3 reads the type from the header, and SDKs that
        // parse the body as JSON (PHP's did, on AWS's empty 410) get JSON.
        Outcome::Gone => Reply {
            status: 410,
            error_type: Some("GoneException"),
            body: b"{}".to_vec(),
        },
        Outcome::Full => Reply::error(
            429,
            "LimitExceededException",
            "The client's send buffer is full",
        ),
        Outcome::Unanswered => Reply::error(
            503,
            "ServiceUnavailable",
            "The worker holding this connection did not take the call in time; retry",
        ),
    }
}

/// The connection id in a management path: `@connections/{id}` or `%40connections/{id}`
/// after the stage's base path, percent-decoded. None: not a management path.
pub fn id_in_path(rest: &[u8]) -> Option<String> {
    let rest = rest.strip_prefix(b"/")?;
    let id = rest
        .strip_prefix(b"@connections/")
        .or_else(|| rest.strip_prefix(b"%40connections/"))?;
    let mut out = Vec::with_capacity(id.len());
    crate::http1::percent_decode(id, false, &mut out);
    String::from_utf8(out).ok()
}

/// Whether a request's raw bytes start with a POST to a management path
/// (`…/@connections/{id}` or `…/%40connections/{id}`, at any base path). For answers
/// given before the head is parsed whole: a body above the listener's own limit is
/// refused by the HTTP codec, and on the management API that refusal must still be
/// AWS's `PayloadTooLargeException`, which SDKs map to their typed error.
pub fn posts_to_management(raw: &[u8]) -> bool {
    let Some(target) = raw.strip_prefix(b"POST ") else {
        return false;
    };
    let end = target
        .iter()
        .position(|&b| matches!(b, b' ' | b'?' | b'\r' | b'\n'))
        .unwrap_or(target.len());
    let path = &target[..end];
    let at = |name: &[u8]| {
        path.windows(name.len())
            .any(|w| w.eq_ignore_ascii_case(name))
    };
    at(b"/@connections/") || at(b"/%40connections/")
}

/// The message and extra headers of the answer to a request head refused with `status`:
/// a body above `max_body_bytes` on `@connections` is still the management API's typed
/// 413 (`too_long`), which SDKs map to PayloadTooLargeException.
pub fn head_refusal(
    status: u16,
    message: &'static str,
    raw: &[u8],
) -> (&'static str, &'static [(&'static str, &'static [u8])]) {
    if status == 413 && posts_to_management(raw) {
        return (TOO_LONG.1, TOO_LONG_HEADERS);
    }
    (message, &[])
}

/// The management API's error type and message for a POST above its limits.
const TOO_LONG: (&str, &str) = ("PayloadTooLargeException", "Message too long");
const TOO_LONG_HEADERS: &[(&str, &[u8])] = &[("x-amzn-ErrorType", TOO_LONG.0.as_bytes())];

/// The answer to a POST above `MAX_POST` (or any size limit) on the management API.
pub fn too_long() -> Reply {
    Reply::error(413, TOO_LONG.0, TOO_LONG.1)
}

/// "2024-01-20T11:54:57.419Z".
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_worker() {
        let a = new_id(3, 7);
        let b = new_id(3, 7);
        // No counter shows between one id and the next.
        let raw = |id: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(id)
                .unwrap()
        };
        let (ra, rb) = (raw(&a), raw(&b));
        assert_ne!(
            u32::from_be_bytes(rb[1..5].try_into().unwrap()),
            u32::from_be_bytes(ra[1..5].try_into().unwrap()).wrapping_add(1)
        );
        assert_eq!(a.len(), 16);
        assert!(a.ends_with('='), "{a}");
        assert_ne!(a, b);
        assert_eq!(owner(&a), Some(3));
        assert_eq!(owner("short"), None);
        assert_eq!(owner("!!!!!!!!!!!!!!!="), None);
    }

    #[test]
    fn management_paths() {
        assert_eq!(
            id_in_path(b"/@connections/R1kmxc2VNjMCFIA%3D").as_deref(),
            Some("R1kmxc2VNjMCFIA=")
        );
        assert_eq!(id_in_path(b"/%40connections/a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(id_in_path(b"/"), None);
        assert_eq!(id_in_path(b"/connections/x"), None);
    }

    #[test]
    fn posts_to_management_reads_the_request_line() {
        assert!(posts_to_management(
            b"POST /prod/@connections/abc%3D HTTP/1.1\r\n"
        ));
        assert!(posts_to_management(
            b"POST /%40Connections/x?y=1 HTTP/1.1\r\n"
        ));
        assert!(!posts_to_management(
            b"GET /prod/@connections/abc HTTP/1.1\r\n"
        ));
        assert!(!posts_to_management(
            b"POST /upload?to=/@connections/ HTTP/1.1\r\n"
        ));
        assert!(!posts_to_management(
            b"POST /prod/connections/x HTTP/1.1\r\n"
        ));
    }

    #[test]
    fn a_call_its_worker_does_not_take_in_time_is_503_and_never_run() {
        // A worker index no other test uses, with a connection but no poller: stalled.
        let w = MAX_WORKERS - 1;
        live_counts()[w].fetch_add(1, Ordering::Relaxed);
        let id = new_id(w, 1);
        let started = std::time::Instant::now();
        let out = manage_here_blocking(&id, None, Op::Delete);
        assert!(started.elapsed() >= REPLY_WAIT);
        assert!(
            matches!(out, Outcome::Unanswered),
            "not 410: it may be open"
        );
        let r = reply(out);
        assert_eq!((r.status, r.error_type), (503, Some("ServiceUnavailable")));
        // When the worker gets to it, it drops it unrun (no reply: nothing was done).
        let cmd = inboxes()[w]
            .pop()
            .expect("the call waits in the worker's queue");
        let (tx, rx) = crossbeam::channel::bounded(1);
        take_call(Command { reply: tx, ..cmd });
        assert!(rx.try_recv().is_err());
        // One still awaited is run (here: Gone, no such connection on this thread).
        let (tx, rx) = crossbeam::channel::bounded(1);
        take_call(Command {
            id: id.clone(),
            scope: None,
            op: Op::Get,
            reply: tx,
            deadline: std::time::Instant::now() + REPLY_WAIT,
        });
        assert!(matches!(rx.try_recv(), Ok(Outcome::Gone)));
        live_counts()[w].fetch_sub(1, Ordering::Relaxed);
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso8601(1_705_751_697_419), "2024-01-20T11:54:57.419Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
