//! `@connections` across the nodes of a cluster: a call for a connection this node does
//! not have goes to the node that owns it (through Redis, `cluster::connections`), a
//! call from another node runs here (`cluster_hook`), and a new connection is written
//! to the cluster's registry before its 101 goes out (`announce`).

use std::time::Duration;

use super::connections::{manage_here_async, manage_here_blocking, reply, Op, Outcome, Reply};
use crate::cluster::connections as cluster_conn;

/// In a cluster, before the connection's 101 goes out: writes its owner to the registry,
/// so that every node finds it once its client (and through it a backend) knows the id;
/// written after the 101, a post from another node could race the write and be answered
/// 410 for an open connection. Waits at most the cluster's `timeout`: when Redis is slow
/// or away the 101 goes out anyway and the write is made again after the next good sync.
pub async fn announce(id: &str) {
    if let Some(c) = crate::cluster::get() {
        let deadline = std::time::Instant::now() + c.cfg.timeout;
        poll_reply(c.connection_opened(id), deadline).await;
    }
}

/// The 101 of an announced connection did not go out.
pub fn withdraw(id: &str) {
    if let Some(c) = crate::cluster::get() {
        c.connection_closed(id);
    }
}

/// From a worker: runs on this node, else (in a cluster) on the node that owns the
/// connection, polling for the answer.
pub async fn manage_async(
    this_worker: Option<usize>,
    id: &str,
    scope: Option<&str>,
    op: Op,
) -> Outcome {
    let remote = crate::cluster::get().map(|c| (c, parts(&op)));
    let out = manage_here_async(this_worker, id, scope, op).await;
    let (Outcome::Gone, Some((c, (code, data)))) = (&out, remote) else {
        return out;
    };
    let Some(rx) = c.remote_connection_call(id, scope, code, data) else {
        return out;
    };
    let deadline = std::time::Instant::now() + cluster_conn::REMOTE_WAIT + REMOTE_SLACK;
    match poll_reply(rx, deadline).await {
        Some(Some(r)) => Outcome::Remote(from_remote(r)),
        // The registry says this node: its own answer stands.
        Some(None) => out,
        None => no_reply(),
    }
}

/// The cluster asked and no answer came: the side thread had no Redis connection to run
/// the call on (it drops one that failed, as after a Redis restart, and builds the next
/// at its next tick), or the answer did not come in time. The connection may be open on
/// another node, so 503 (retry), not the 410 this node's own search found: a 410 tells a
/// backend to forget an open connection.
fn no_reply() -> Outcome {
    Outcome::Remote(from_remote(cluster_conn::unavailable()))
}

/// Waits on a worker for the cluster side thread's reply, by polling: a worker's
/// runtime is not woken from another thread. None: no reply by `deadline`, or none to
/// come.
async fn poll_reply<T>(
    mut rx: tokio::sync::oneshot::Receiver<T>,
    deadline: std::time::Instant,
) -> Option<T> {
    loop {
        match rx.try_recv() {
            Ok(r) => return Some(r),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return None,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// From the admin thread (blocking): this node, else the owning node in a cluster. The
/// admin listener reaches every connection (no scope).
pub fn manage_blocking(id: &str, op: Op) -> Outcome {
    let remote = crate::cluster::get().map(|c| (c, parts(&op)));
    let out = manage_here_blocking(id, None, op);
    let (Outcome::Gone, Some((c, (code, data)))) = (&out, remote) else {
        return out;
    };
    match c
        .remote_connection_call(id, None, code, data)
        .map(|rx| rx.blocking_recv())
    {
        Some(Ok(Some(r))) => Outcome::Remote(from_remote(r)),
        Some(Err(_)) => no_reply(),
        Some(Ok(None)) | None => out,
    }
}

/// The cluster's side thread runs another node's call here (never forwarding it again).
pub fn cluster_hook(
    id: &str,
    scope: Option<&str>,
    op: u8,
    data: Vec<u8>,
) -> (u16, Option<&'static str>, Vec<u8>) {
    let op = match op {
        cluster_conn::OP_POST => Op::Post(data),
        cluster_conn::OP_GET => Op::Get,
        _ => Op::Delete,
    };
    let r = reply(manage_here_blocking(id, scope, op));
    (r.status, r.error_type, r.body)
}

/// The side thread's own wait, plus scheduling.
const REMOTE_SLACK: Duration = Duration::from_millis(500);

fn parts(op: &Op) -> (u8, Vec<u8>) {
    match op {
        Op::Post(d) => (cluster_conn::OP_POST, d.clone()),
        Op::Get => (cluster_conn::OP_GET, Vec::new()),
        Op::Delete => (cluster_conn::OP_DELETE, Vec::new()),
    }
}

fn from_remote(r: cluster_conn::RemoteReply) -> Reply {
    let error_type = r.error_type.as_deref().and_then(|t| {
        [
            "GoneException",
            "PayloadTooLargeException",
            "LimitExceededException",
            "ForbiddenException",
            "ServiceUnavailable",
        ]
        .into_iter()
        .find(|k| *k == t)
    });
    Reply {
        status: r.status,
        error_type,
        body: r.body,
    }
}
