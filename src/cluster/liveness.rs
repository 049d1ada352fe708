//! Which nodes are live: each sync writes this node's heartbeat into the `nodes` sorted
//! set, and a node whose heartbeat is older than [`NODE_TTL_MS`] is not counted (in
//! `limit ÷ nodes` under `on_failure: local`) and does not own connections (its
//! `@connections` entries answer 410).
//!
//! Heartbeats are scored, trimmed and read by Redis's clock (`TIME` in a script), never
//! a node's: scored by each node's own clock, a node whose clock ran 5 s ahead trimmed
//! every other node's heartbeat as expired and took them all for dead (their open
//! connections answered 410 through it, and `local` divided by the wrong count), and
//! one whose clock ran behind looked dead to the others. Scripts that call `TIME` and
//! then write are replicated by their effects, which Redis does from version 5 on.
//!
//! A stale heartbeat says its node is gone only once this node has had Redis for a
//! TTL ([`Run`]): right after Redis was away, every heartbeat is stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use redis::Script;

use super::NODE_TTL_MS;

/// Redis's clock in ms, from `TIME` (seconds, microseconds).
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS nodes, instances · ARGV node, ttl ms, instance id → {Redis's ms, live nodes,
/// what `instances` held for the node before}. Writes the heartbeat and this process's
/// entry in `instances` (`names.rs`) at Redis's time, and trims expired heartbeats.
const HEARTBEAT: &str = r"
local stamp = string.format('%.0f', now)
redis.call('ZADD', KEYS[1], stamp, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, string.format('%.0f', now - tonumber(ARGV[2])))
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local before = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ':' .. stamp)
return {now, live, before}
";

/// KEYS conn:<id>, nodes, conn:complete, epoch · ARGV ttl ms → {owner, live nodes (by
/// Redis's clock), nodes whose connections are all registered, epoch marker}: what an
/// `@connections` call needs, in one atomic read.
const WHERE: &str = r"
return {
  redis.call('GET', KEYS[1]),
  redis.call('ZRANGEBYSCORE', KEYS[2], string.format('%.0f', now - tonumber(ARGV[1])), '+inf'),
  redis.call('SMEMBERS', KEYS[3]),
  redis.call('GET', KEYS[4]),
}
";

fn heartbeat_script() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(&format!("{NOW}{HEARTBEAT}")))
}

fn where_script() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(&format!("{NOW}{WHERE}")))
}

/// What a heartbeat returned.
pub(super) struct Beat {
    /// Redis's clock when it took the heartbeat (ms).
    pub now: u64,
    /// The live nodes, this one included.
    pub live: Vec<String>,
    /// What `instances` held for this node's name before (`names::saw`).
    pub before: Option<String>,
}

/// Writes `node`'s heartbeat into `nodes` (and `instance` under its name in
/// `instances`), drops the expired ones, and lists the live nodes.
pub(super) async fn heartbeat(
    m: &mut MultiplexedConnection,
    nodes: &str,
    instances: &str,
    node: &str,
    instance: &str,
) -> redis::RedisResult<Beat> {
    let mut inv = heartbeat_script().prepare_invoke();
    inv.key(nodes).key(instances);
    inv.arg(node).arg(NODE_TTL_MS).arg(instance);
    let (now, live, before): (u64, Vec<String>, Option<String>) = inv.invoke_async(m).await?;
    Ok(Beat { now, live, before })
}

/// Where a WebSocket connection is: its owner, the live nodes, the nodes whose
/// connections are all registered, and Redis's epoch marker.
pub(super) type Where = (
    Option<String>,
    Vec<String>,
    std::collections::HashSet<String>,
    Option<String>,
);

/// Reads [`Where`] for the connection whose registry key is `conn`.
pub(super) async fn where_is(
    m: &mut MultiplexedConnection,
    conn: &str,
    nodes: &str,
    complete: &str,
    epoch: &str,
) -> redis::RedisResult<Where> {
    let mut inv = where_script().prepare_invoke();
    inv.key(conn).key(nodes).key(complete).key(epoch);
    inv.arg(NODE_TTL_MS);
    inv.invoke_async(m).await
}

/// The longest a run of good syncs may go without one (between two, or within one):
/// half the heartbeat TTL, so Redis answered this node at least twice in any TTL.
const GAP_MS: u64 = NODE_TTL_MS / 2;

/// Whether this node has had Redis long enough to take a stale heartbeat for a dead
/// node. A heartbeat goes stale when its node stops, and also when Redis was away or
/// stalled (a `SIGSTOP`, a long fsync, a failover): every node's heartbeat is then
/// stale until its next sync, and a call answered in that moment told a backend 410
/// GoneException for a connection that is open. So 410 for a stale owner only once
/// this node's syncs have gone through for [`NODE_TTL_MS`], each within [`GAP_MS`] of
/// the last: Redis was there for the owner as well, which would have heartbeat had it
/// been live. Times are this node's monotonic clock (ms since the run began, +1).
#[derive(Default)]
pub(crate) struct Run {
    /// When the current run of good syncs began (0: no run).
    up_since: AtomicU64,
    /// When the last good sync ended (0: none in this run).
    last_ok: AtomicU64,
}

impl Run {
    /// A sync went through: it began at `start` and ended at `end`.
    pub fn sync_ok(&self, start: u64, end: u64) {
        let last = self.last_ok.swap(end, Ordering::AcqRel);
        let broken =
            last == 0 || start.saturating_sub(last) > GAP_MS || end.saturating_sub(start) > GAP_MS;
        if broken || self.up_since.load(Ordering::Acquire) == 0 {
            self.up_since.store(end, Ordering::Release);
        }
    }

    /// A sync failed (or there was no connection to try one).
    pub fn sync_failed(&self) {
        self.up_since.store(0, Ordering::Release);
        self.last_ok.store(0, Ordering::Release);
    }

    /// Whether a heartbeat older than [`NODE_TTL_MS`] means its node is gone, at `now`.
    pub fn stale_means_gone(&self, now: u64) -> bool {
        let up = self.up_since.load(Ordering::Acquire);
        let last = self.last_ok.load(Ordering::Acquire);
        up != 0 && now >= up + NODE_TTL_MS && now <= last + GAP_MS
    }
}

/// This node's monotonic clock for [`Run`]: ms since its first reading, plus 1.
pub(crate) fn mono_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests;
