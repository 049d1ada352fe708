//! WebSocket connections across nodes (and the listener of this node's channels, which
//! also carries cache flush messages to `side::generation`): a registry in Redis (`conn:<id>` → owning node,
//! written when a connection opens, deleted when it closes; an owner is live while its
//! heartbeat in `nodes` is fresh, so a crashed node's entries answer 410) and a channel
//! per node (`node:<name>`, Redis pub/sub) carrying `@connections` requests and their
//! replies. A node that gets a request runs it on its owning worker through the hook the
//! WebSocket module registers ([`set_connections_hook`]) and replies on the caller's
//! node channel; a caller that gets no reply within [`REMOTE_WAIT`] answers 410.
//!
//! Pub/sub is at-most-once, which the request/reply covers: a lost request or reply
//! ends as 410 (the caller cannot tell it from a closed connection, as with AWS's Gone).

// Cold path: the pending-reply map is touched by side-thread tasks only.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tracing::{debug, warn};

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
    /// Records that this node owns connection `id` (fire and forget: a lost write makes
    /// the connection unreachable from other nodes, never from this one).
    pub fn connection_opened(&self, id: &str) {
        let (key, node) = (self.key(&format!("conn:{id}")), self.node.clone());
        self.submit(Job::Run(Box::new(move |mut m| {
            Box::pin(async move {
                // A day at most: a node that dies without cleaning up leaves no entry
                // forever (and its stale entries answer 410 anyway).
                let r: redis::RedisResult<()> = m.set_ex(key, node, 86_400).await;
                if let Err(e) = r {
                    debug!(error = %e, "cluster: cannot register a WebSocket connection");
                }
            })
        })));
    }

    pub fn connection_closed(&self, id: &str) {
        let key = self.key(&format!("conn:{id}"));
        self.submit(Job::Run(Box::new(move |mut m| {
            Box::pin(async move {
                let _: redis::RedisResult<()> = m.del(key).await;
            })
        })));
    }

    /// Sends an `@connections` operation to the node that owns `id`. The receiver gets
    /// its reply, or None (no owner, owner gone, Redis away, no reply in time): 410.
    /// None at once when Redis is away or the queue is full.
    pub fn remote_connection_call(
        self: &Arc<Self>,
        id: &str,
        scope: Option<&str>,
        op: u8,
        data: Vec<u8>,
    ) -> Option<oneshot::Receiver<Option<RemoteReply>>> {
        if !self.healthy() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let (c, id, scope) = (self.clone(), id.to_string(), scope.map(str::to_string));
        let job = Job::Run(Box::new(move |m| {
            Box::pin(async move {
                let call = call(&c, m, &id, scope.as_deref(), op, data);
                let r = tokio::time::timeout(REMOTE_WAIT, call).await;
                let _ = tx.send(r.ok().flatten());
            })
        }));
        self.submit(job).then_some(rx)
    }
}

async fn call(
    c: &Cluster,
    mut m: MultiplexedConnection,
    id: &str,
    scope: Option<&str>,
    op: u8,
    data: Vec<u8>,
) -> Option<RemoteReply> {
    let owner: Option<String> = m.get(c.key(&format!("conn:{id}"))).await.ok()?;
    let owner = owner?;
    if owner == c.node {
        return None;
    }
    let seen: Option<u64> = m.zscore(c.key("nodes"), &owner).await.ok()?;
    if seen? + NODE_TTL_MS < unix_ms() {
        return None;
    }
    let corr = SEQ.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    pending().lock().unwrap().insert(corr, tx);
    let msg = json!({"t": "req", "corr": corr, "from": c.node, "id": id, "scope": scope, "op": op, "data": b64().encode(data)});
    let sent: redis::RedisResult<i64> = m
        .publish(c.key(&format!("node:{owner}")), msg.to_string())
        .await;
    let out = match sent {
        Ok(n) if n > 0 => rx.await.ok(),
        _ => None,
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
            if matches!(subscribed, Ok(Ok(()))) {
                let mut stream = ps.into_on_message();
                while let Some(msg) = stream.next().await {
                    let Ok(text) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if msg.get_channel_name() == flush {
                        // "<generation> <api>/<stage>"
                        if let Some((g, stage)) = text.split_once(' ') {
                            super::side::generation(stage, g.parse().unwrap_or(0), false);
                        }
                    } else {
                        handle(&c, &conn, &text);
                    }
                }
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
