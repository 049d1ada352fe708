//! WebSocket connections across nodes (and the listener of this node's channels, which
//! also carries cache flush messages to `generations::generation`): a registry in Redis (`conn:<id>` → owning node,
//! written before a connection's 101 goes out, deleted when it closes; an owner is live while its
//! heartbeat in `nodes` is fresh, so a crashed node's entries answer 410) and a channel
//! per node (`node:<name>`, Redis pub/sub) carrying `@connections` requests and their
//! replies. A node that gets a request runs it on its owning worker through the hook the
//! WebSocket module registers ([`set_connections_hook`]) and replies on the caller's
//! node channel.
//!
//! A 410 tells a backend to forget the connection, so it is only answered when the
//! connection is known gone: no entry (see below), an owner that is not live (once this
//! node has had Redis for the heartbeat TTL: right after Redis was away every
//! heartbeat is stale, `liveness::Run`), or the owner's own answer. A caller that cannot ask Redis (away, slow), whose owner is not
//! listening, that is not listening itself (the reply could not reach it), or that gets
//! no reply within [`REMOTE_WAIT`] (pub/sub is at-most-once; the owner may be slow)
//! answers 503, which boto3 retries: the connection may well be open. A post answered
//! 503 for want of a reply may have been delivered, and a retry delivers it again.
//!
//! The registry write is fire and forget, so the side thread also keeps this node's open
//! ids ([`reregister`]) and writes them all again when a write failed or was never
//! tried (Redis away), after a reconnect, when Redis lost its data, and every hour (an
//! entry lives a day; a connection may outlive it). A node that has written them all
//! is in the `conn:complete` set; an id with no entry is Gone only when every live
//! node is there (else Redis may have lost it, or not have it yet: 503).

// Cold path: the pending-reply map is touched by side-thread tasks only.
#![allow(clippy::disallowed_types)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use crossbeam::queue::SegQueue;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::liveness::mono_ms;
use super::subscription::{listeners, say_refused, Listening, NO_LISTENER, PROBE, RECHECK};
use super::{unix_ms, Cluster, Job, NODE_TTL_MS};

/// How long a caller waits for the owning node's reply.
pub const REMOTE_WAIT: Duration = Duration::from_secs(2);

/// Operation codes on the wire (and for the hook).
pub const OP_POST: u8 = 1;
pub const OP_GET: u8 = 2;
pub const OP_DELETE: u8 = 3;

/// What the owning node answered: status, `x-amzn-ErrorType`, body.
#[derive(Debug, Clone)]
pub struct RemoteReply {
    pub status: u16,
    pub error_type: Option<String>,
    pub body: Vec<u8>,
}

/// Runs one operation on a connection of *this* node (never forwarding it again) and
/// answers (status, error type, body). Blocking: called on the side thread's blocking pool.
/// `scope`: the `{api}/{stage}` endpoint the call came through (None: the admin API).
pub type ConnectionsHook = fn(
    id: &str,
    scope: Option<&str>,
    op: u8,
    data: Vec<u8>,
) -> (u16, Option<&'static str>, Vec<u8>);

static HOOK: OnceLock<ConnectionsHook> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(1);

/// Opens (true) and closes of this node's connections, from the workers (lock-free),
/// for the side thread's [`open_ids`].
static EVENTS: SegQueue<(bool, String)> = SegQueue::new();
/// This node's listener is subscribed to its channel, so a reply can reach it: a call
/// made while it is not (resubscribing after Redis restarted) would lose the owner's
/// reply, so it is not made (503).
static SUBSCRIBED: AtomicBool = AtomicBool::new(false);
/// A registry write failed or was never made: write every open id again.
static REREGISTER: AtomicBool = AtomicBool::new(true);
/// A re-registration is under way (one at a time).
static REREGISTERING: AtomicBool = AtomicBool::new(false);
/// When the last full re-registration succeeded (unix ms).
static REGISTERED_AT: AtomicU64 = AtomicU64::new(0);
/// The set of nodes whose open connections are all in the registry (`reregister`).
const COMPLETE: &str = "conn:complete";
/// How long a registry entry lives, and how often every open id is written again.
const ENTRY_TTL_S: u64 = 86_400;
const REFRESH_MS: u64 = 3_600_000;

/// What this node's sync last saw of Redis's `epoch` marker (Redis lost its data when
/// it changes): the marker, when it changed (0: the first one this node saw), and the
/// nodes that were live before the change. Until each of those is live again (it
/// has synced since, so it knows of the loss and is not `complete` until its connections
/// are written again) or [`GIVE_UP_MS`] passed, an id found nowhere may be one of theirs.
#[derive(Default)]
struct Epoch {
    marker: String,
    since: u64,
    awaited: Vec<String>,
}

fn epoch() -> &'static Mutex<Epoch> {
    static E: OnceLock<Mutex<Epoch>> = OnceLock::new();
    E.get_or_init(Mutex::default)
}

/// How long after a loss a node live before it is waited for: one that does not sync
/// again by then is taken for dead (as one whose heartbeat is older than `NODE_TTL_MS`
/// is at any other time).
const GIVE_UP_MS: u64 = 30_000;

/// From the sync: the epoch marker Redis holds, and the nodes it listed live at the
/// sync before.
pub(super) fn saw_epoch(now: &str, live_before: &[String]) {
    let mut e = epoch().lock().unwrap();
    if e.marker != now {
        let first = e.marker.is_empty();
        e.marker = now.to_string();
        e.since = if first { 0 } else { unix_ms() };
        e.awaited = if first {
            Vec::new()
        } else {
            live_before.to_vec()
        };
    }
}

/// Whether an id found nowhere is gone as far as a loss of Redis's data goes: this
/// node's sync has seen the marker Redis holds now, and every node live before the last
/// loss synced since (or was given up on). A node that started just before the loss
/// and is on no list gets `NODE_TTL_MS` and a second.
fn settled(now_epoch: Option<&str>, live: &[String]) -> bool {
    let e = epoch().lock().unwrap();
    let now = unix_ms();
    now_epoch == Some(e.marker.as_str())
        && e.since + NODE_TTL_MS + 1000 <= now
        && (e.since + GIVE_UP_MS <= now || e.awaited.iter().all(|n| live.contains(n)))
}

/// This node's open connection ids (side thread only).
fn open_ids() -> &'static Mutex<HashSet<String>> {
    static O: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    O.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Applies the workers' opens and closes to [`open_ids`]; every tick, so the queue
/// stays short while Redis is away.
pub(super) fn track() {
    let mut open = open_ids().lock().unwrap();
    while let Some((opened, id)) = EVENTS.pop() {
        if opened {
            open.insert(id);
        } else {
            open.remove(&id);
        }
    }
}

/// The side thread has a new connection to Redis: whatever failed meanwhile is written.
pub(super) fn reconnected() {
    REREGISTER.store(true, Ordering::Release);
}

/// After a sync: writes every open id of this node to the registry again when one
/// write may be missing (see the module doc) or Redis `lost` its data; off the sync's
/// budget (many connections must not make the sync time out and open the breaker).
/// An id closed meanwhile may be written back: its owner answers 410 for it.
pub(super) fn reregister(c: &Cluster, m: &MultiplexedConnection, lost: bool) {
    let now = unix_ms();
    let stale = now >= REGISTERED_AT.load(Ordering::Acquire) + REFRESH_MS;
    if !(lost || stale || REREGISTER.load(Ordering::Acquire)) {
        return;
    }
    // One at a time; one due meanwhile (Redis lost its data again) runs next tick.
    REREGISTER.store(true, Ordering::Release);
    if REREGISTERING.swap(true, Ordering::AcqRel) {
        return;
    }
    REREGISTER.store(false, Ordering::Release);
    track();
    let keys: Vec<String> = open_ids()
        .lock()
        .unwrap()
        .iter()
        .map(|id| c.key(&format!("conn:{id}")))
        .collect();
    let (mut m, node, timeout) = (m.clone(), c.node.clone(), c.cfg.timeout);
    let complete = c.key(COMPLETE);
    tokio::spawn(async move {
        // Unmarked first: until its writes are done, other nodes answer 503, not 410,
        // for an id they do not find.
        let unmark = m.srem::<_, _, ()>(&complete, &node);
        let mut ok = matches!(tokio::time::timeout(timeout * 4, unmark).await, Ok(Ok(())));
        for chunk in keys.chunks(500) {
            if !ok {
                break;
            }
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.set_ex(k, &node, ENTRY_TTL_S).ignore();
            }
            let r = tokio::time::timeout(timeout * 4, pipe.query_async::<()>(&mut m)).await;
            ok = matches!(r, Ok(Ok(())));
        }
        if ok {
            let mark = m.sadd::<_, _, ()>(&complete, &node);
            ok = matches!(tokio::time::timeout(timeout * 4, mark).await, Ok(Ok(())));
        }
        if ok {
            REGISTERED_AT.store(now, Ordering::Release);
        } else {
            REREGISTER.store(true, Ordering::Release);
        }
        REREGISTERING.store(false, Ordering::Release);
    });
}

/// The connection this node's `@connections` calls go through, made on first use and
/// again after a failure: not the side thread's, whose leases and syncs must be
/// answered within `timeout`. A burst of posts (up to 128 KiB each) on that one
/// connection held them back past it, so the sync timed out and the breaker opened,
/// putting the whole node on `on_failure`; and a post Redis had delivered but answered
/// after `timeout` was answered 503. Answers here may take the call's 2 s.
fn calls() -> &'static tokio::sync::Mutex<Option<MultiplexedConnection>> {
    static M: OnceLock<tokio::sync::Mutex<Option<MultiplexedConnection>>> = OnceLock::new();
    M.get_or_init(|| tokio::sync::Mutex::new(None))
}

async fn calls_connection(c: &Cluster) -> Option<MultiplexedConnection> {
    let mut slot = calls().lock().await;
    if let Some(m) = slot.as_ref() {
        return Some(m.clone());
    }
    let client = redis::Client::open(c.cfg.redis.as_str()).ok()?;
    // Probed like every connection to Redis (see probe.rs).
    if let redis::ConnectionAddr::Tcp(host, port) = &client.get_connection_info().addr {
        super::probe::probe(host, *port, c.cfg.timeout).await.ok()?;
    }
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(c.cfg.timeout * 2)
        .set_response_timeout(REMOTE_WAIT);
    let m = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .ok()?;
    *slot = Some(m.clone());
    Some(m)
}

/// A call on the calls connection failed: the next call makes a new one.
/// Redis answered a call's PUBLISH with an error (an ACL without `publish`, a replica):
/// every call then fails alike with a 503, so it is said at error, at most once per
/// [`super::alarm::WARN_EVERY_MS`]; unsaid, an operator saw 503s and a healthy Redis.
fn publish_refused(e: &redis::RedisError) {
    static LAST_SAID: AtomicU64 = AtomicU64::new(0);
    let now = super::unix_ms();
    let last = LAST_SAID.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= super::alarm::WARN_EVERY_MS)
        && LAST_SAID
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(
            cause = %super::alarm::cause(e),
            "cluster: Redis refused to pass an @connections call to the node holding the connection; such calls are answered 503"
        );
    }
}

async fn calls_failed() {
    *calls().lock().await = None;
}

/// What a caller answers when it cannot learn where a connection is, or cannot reach
/// its owner (Redis away or slow, the owner not listening): the connection may be
/// open, so not 410; boto3 retries a 503.
pub fn unavailable() -> RemoteReply {
    RemoteReply {
        status: 503,
        error_type: Some("ServiceUnavailable".into()),
        body: serde_json::to_vec(&json!({"message": "The cluster cannot reach this connection's node now (Redis away, or that node not listening or just gone); retry"}))
            .unwrap_or_default(),
    }
}

/// What a caller answers when the live owner got the call but its reply did not come
/// within [`REMOTE_WAIT`]: it may be slow, or the reply lost; not 410.
fn no_answer() -> RemoteReply {
    RemoteReply {
        body: serde_json::to_vec(&json!({"message": "The node that holds this connection did not answer in time; retry"}))
            .unwrap_or_default(),
        ..unavailable()
    }
}

fn pending() -> &'static Mutex<HashMap<u64, oneshot::Sender<RemoteReply>>> {
    static P: OnceLock<Mutex<HashMap<u64, oneshot::Sender<RemoteReply>>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registered by the runtime (the WebSocket module sits above the cluster module).
pub fn set_connections_hook(hook: ConnectionsHook) {
    let _ = HOOK.set(hook);
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Cluster {
    /// Records that this node owns connection `id`. The receiver hears `true` once the
    /// registry has it: the WebSocket module waits for that (within `timeout`) before the
    /// 101 goes out, so a backend that learns the id from the client can post to it
    /// through any node. A failed or unqueued write is made again after the next good
    /// sync (the connection stays reachable from this node meanwhile).
    pub fn connection_opened(&self, id: &str) -> oneshot::Receiver<bool> {
        EVENTS.push((true, id.to_string()));
        let (tx, rx) = oneshot::channel();
        if !self.healthy() {
            // The job may be dropped unrun (no connection); the next good sync writes it.
            REREGISTER.store(true, Ordering::Release);
        }
        let (key, node) = (self.key(&format!("conn:{id}")), self.node.clone());
        let queued = self.submit(Job::Run(Box::new(move |mut m| {
            Box::pin(async move {
                // A day at most: a node that dies without cleaning up leaves no entry
                // forever (and its stale entries answer 410 anyway).
                let r: redis::RedisResult<()> = m.set_ex(key, node, ENTRY_TTL_S).await;
                if let Err(e) = &r {
                    REREGISTER.store(true, Ordering::Release);
                    debug!(error = %e, "cluster: cannot register a WebSocket connection");
                }
                let _ = tx.send(r.is_ok());
            })
        })));
        if !queued {
            REREGISTER.store(true, Ordering::Release);
        }
        rx
    }

    pub fn connection_closed(&self, id: &str) {
        EVENTS.push((false, id.to_string()));
        let key = self.key(&format!("conn:{id}"));
        self.submit(Job::Run(Box::new(move |mut m| {
            Box::pin(async move {
                let _: redis::RedisResult<()> = m.del(key).await;
            })
        })));
    }

    /// Sends an `@connections` operation to the node that owns `id`. The receiver gets
    /// its reply, [`unavailable`] (Redis away or slow, the owner not listening), or None
    /// (no owner, or an owner not live): 410. [`unavailable`] at once when the
    /// breaker is open or the queue is full.
    pub fn remote_connection_call(
        self: &Arc<Self>,
        id: &str,
        scope: Option<&str>,
        op: u8,
        data: Vec<u8>,
    ) -> Option<oneshot::Receiver<Option<RemoteReply>>> {
        let (tx, rx) = oneshot::channel();
        if !self.healthy() {
            let _ = tx.send(Some(unavailable()));
            return Some(rx);
        }
        let (c, id, scope) = (self.clone(), id.to_string(), scope.map(str::to_string));
        // Encoded here, off the side thread's runtime (it runs the syncs and leases,
        // which a burst of 128 KiB posts encoded there held back past `timeout`).
        let data = b64().encode(data);
        let job = Job::Run(Box::new(move |_| {
            Box::pin(async move {
                let call = call(&c, &id, scope.as_deref(), op, data);
                let _ = tx.send(call.await);
            })
        }));
        if self.submit(job) {
            return Some(rx);
        }
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Some(unavailable()));
        Some(rx)
    }
}

async fn call(
    c: &Cluster,
    id: &str,
    scope: Option<&str>,
    op: u8,
    data: String,
) -> Option<RemoteReply> {
    // All within REMOTE_WAIT: a Redis too slow to say where the connection is, or to
    // take the request, is unavailable (the connection may be open), and so is an
    // owner that does not answer in time. One atomic read (a script: the live nodes by
    // Redis's clock, see liveness.rs): the owner, the live nodes, and which of them
    // have every open connection registered (see `reregister`, which marks a node
    // only after its writes).
    let t = tokio::time::Instant::now() + REMOTE_WAIT;
    let keys = [
        c.key(&format!("conn:{id}")),
        c.key("nodes"),
        c.key(COMPLETE),
        c.key("epoch"),
    ];
    // Twice at most: the connection kept from an earlier call is broken after Redis
    // restarted, and only a call finds that out.
    let mut tries = 2;
    let (mut m, (owner, live, complete, now_epoch)) = loop {
        let Ok(Some(mut m)) = tokio::time::timeout_at(t, calls_connection(c)).await else {
            return Some(unavailable());
        };
        let read = super::liveness::where_is(&mut m, &keys[0], &keys[1], &keys[2], &keys[3]);
        match tokio::time::timeout_at(t, read).await {
            Ok(Ok(read)) => break (m, read),
            Ok(Err(e)) => {
                calls_failed().await;
                tries -= 1;
                if tries == 0 || e.code().is_some() {
                    return Some(unavailable());
                }
            }
            Err(_) => return Some(unavailable()),
        }
    };
    let Some(owner) = owner else {
        // No entry: gone, unless a live node may not have written its connections yet
        // (Redis lost them, or was away when they opened). After Redis lost its data
        // the live nodes are those that have synced since: a node yet to sync is missing
        // from both, hence `settled`.
        // Nor when Redis was away lately: a live node missing from `live` for a stale
        // heartbeat may have written nothing (see `liveness::Run`).
        let all = live.iter().all(|n| *n == c.node || complete.contains(n));
        let gone = all && settled(now_epoch.as_deref(), &live) && c.run.stale_means_gone(mono_ms());
        return (!gone).then(unavailable);
    };
    if owner == c.node {
        return None;
    }
    if !live.contains(&owner) {
        // Its heartbeat is stale: gone, unless Redis was away lately (then every
        // heartbeat is stale until its node's next sync, and the connection may be open).
        return (!c.run.stale_means_gone(mono_ms())).then(unavailable);
    }
    if !SUBSCRIBED.load(Ordering::Acquire) {
        return Some(unavailable());
    }
    let corr = SEQ.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    pending().lock().unwrap().insert(corr, tx);
    // The data as it is (base64 needs no JSON escaping), not through serde_json.
    let head =
        json!({"t": "req", "corr": corr, "from": c.node, "id": id, "scope": scope, "op": op})
            .to_string();
    let mut msg = String::with_capacity(head.len() + data.len() + 10);
    msg.push_str(&head[..head.len() - 1]);
    msg.push_str(",\"data\":\"");
    msg.push_str(&data);
    msg.push_str("\"}");
    let sent = tokio::time::timeout_at(
        t,
        m.publish::<_, _, i64>(c.key(&format!("node:{owner}")), msg),
    )
    .await;
    let out = match sent {
        Ok(Ok(n)) if n > 0 => match tokio::time::timeout_at(t, rx).await {
            Ok(Ok(reply)) => Some(reply),
            _ => Some(no_answer()),
        },
        Ok(Err(e)) => {
            publish_refused(&e);
            calls_failed().await;
            Some(unavailable())
        }
        // A live owner not subscribed (its listener reconnecting after a Redis restart),
        // or no answer in time: the connection may be open.
        _ => Some(unavailable()),
    };
    pending().lock().unwrap().remove(&corr);
    out
}

/// Listens on this node's channel for as long as the side thread runs, reconnecting
/// when the subscription drops. `conn` is the side thread's published connection.
pub(super) async fn listen(
    c: Arc<Cluster>,
    conn: tokio::sync::watch::Receiver<Option<MultiplexedConnection>>,
) {
    let channel = c.key(&format!("node:{}", c.node));
    let flush = c.key("flush");
    // When a refused SUBSCRIBE was last said: retried every tick, said once a minute.
    let mut refusal_said: Option<std::time::Instant> = None;
    loop {
        let client = match redis::Client::open(c.cfg.redis.as_str()) {
            Ok(cl) => cl,
            Err(_) => return,
        };
        // Through the probe, like the side thread's connection: redis-rs would buffer
        // an endless answer from whatever else is on the port until the wait ends.
        let probed = match &client.get_connection_info().addr {
            redis::ConnectionAddr::Tcp(host, port) => {
                super::probe::probe(host, *port, c.cfg.timeout).await
            }
            _ => Ok(()),
        };
        if probed.is_err() {
            if c.stop.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(super::TICK).await;
            continue;
        }
        if let Ok(Ok(mut ps)) =
            tokio::time::timeout(c.cfg.timeout * 4, client.get_async_pubsub()).await
        {
            // Bounded like the connect: a server that takes the connection but never
            // answers must not hold the listener (and its reconnects) for good.
            let subscribed =
                tokio::time::timeout(c.cfg.timeout * 4, ps.subscribe(&[&channel, &flush])).await;
            let refusal = match &subscribed {
                // An answer, not a lost connection: an ACL without these channels
                // (Redis also drops a subscriber whose channels an ACL change takes away).
                Ok(Err(err)) if err.code().is_some() => Some(super::alarm::cause(err)),
                Ok(Ok(())) => match listeners(&conn, &channel, c.cfg.timeout).await {
                    Listening::Count(0) => Some(NO_LISTENER.to_string()),
                    Listening::Refused(cause) => Some(cause),
                    // Refused before and not known better now: still refused, so no
                    // "again" said for a recovery that did not happen.
                    Listening::Unknown if refusal_said.is_some() => {
                        Some("cannot tell whether Redis passes its channel to it".to_string())
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(cause) = refusal {
                say_refused(&mut refusal_said, &cause);
                // Each try opens two connections: once a second, not every tick.
                tokio::time::sleep(Duration::from_secs(1)).await;
            } else if matches!(subscribed, Ok(Ok(()))) {
                if refusal_said.take().is_some() {
                    info!("cluster: Redis takes this node's SUBSCRIBE again");
                }
                SUBSCRIBED.store(true, Ordering::Release);
                let mut stream = ps.into_on_message();
                // Asked again now and then: right after a Redis restart the check above
                // may have had no connection to ask with, and a refused SUBSCRIBE leaves
                // a connection Redis never closes, so the stream would never end.
                let mut check = tokio::time::interval(RECHECK);
                check.tick().await;
                loop {
                    let msg = tokio::select! {
                        msg = stream.next() => msg,
                        _ = check.tick() => {
                            match listeners(&conn, &channel, c.cfg.timeout).await {
                                Listening::Count(0) => say_refused(&mut refusal_said, NO_LISTENER),
                                Listening::Refused(cause) => say_refused(&mut refusal_said, &cause),
                                _ => continue,
                            }
                            break;
                        }
                    };
                    let Some(msg) = msg else {
                        break;
                    };
                    let Ok(text) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if text == PROBE {
                        continue;
                    }
                    if msg.get_channel_name() == flush {
                        // "<generation> <api>/<stage>"
                        if let Some((g, stage)) = text.split_once(' ') {
                            super::generations::generation(stage, g.parse().unwrap_or(0), false);
                        }
                    } else {
                        // Parsed off the runtime, which runs the syncs and leases:
                        // a burst of posts (128 KiB of base64 each) held them back
                        // past `timeout` on the owning node too.
                        let (c, conn) = (c.clone(), conn.clone());
                        tokio::task::spawn_blocking(move || handle(&c, &conn, &text));
                    }
                }
                SUBSCRIBED.store(false, Ordering::Release);
            }
        }
        if c.stop.load(Ordering::Acquire) {
            return;
        }
        tokio::time::sleep(super::TICK).await;
    }
}

fn handle(
    c: &Arc<Cluster>,
    conn: &tokio::sync::watch::Receiver<Option<MultiplexedConnection>>,
    text: &str,
) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let corr = v["corr"].as_u64().unwrap_or(0);
    match v["t"].as_str() {
        Some("rep") => {
            if let Some(tx) = pending().lock().unwrap().remove(&corr) {
                let _ = tx.send(RemoteReply {
                    status: v["status"].as_u64().unwrap_or(410) as u16,
                    error_type: v["error_type"].as_str().map(str::to_string),
                    body: b64()
                        .decode(v["body"].as_str().unwrap_or(""))
                        .unwrap_or_default(),
                });
            }
        }
        Some("req") => {
            let (Some(hook), Some(from), Some(id), Some(m)) = (
                HOOK.get().copied(),
                v["from"].as_str().map(str::to_string),
                v["id"].as_str().map(str::to_string),
                conn.borrow().clone(),
            ) else {
                return;
            };
            let op = v["op"].as_u64().unwrap_or(0) as u8;
            let scope = v["scope"].as_str().map(str::to_string);
            let data = b64()
                .decode(v["data"].as_str().unwrap_or(""))
                .unwrap_or_default();
            let reply_to = c.key(&format!("node:{from}"));
            tokio::spawn(async move {
                // The owning worker answers through a blocking call: off the runtime.
                let Ok((status, et, body)) =
                    tokio::task::spawn_blocking(move || hook(&id, scope.as_deref(), op, data))
                        .await
                else {
                    return;
                };
                let msg = json!({"t": "rep", "corr": corr, "status": status, "error_type": et, "body": b64().encode(body)});
                let mut m = m;
                let r: redis::RedisResult<i64> = m.publish(reply_to, msg.to_string()).await;
                if let Err(e) = r {
                    warn!(error = %e, "cluster: cannot reply to an @connections call");
                }
            });
        }
        _ => {}
    }
}
