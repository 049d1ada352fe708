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

use redis::aio::MultiplexedConnection;
use redis::Script;
use std::sync::OnceLock;

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

#[cfg(test)]
mod tests;
