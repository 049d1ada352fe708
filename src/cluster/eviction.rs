//! Redis evicting keys at `maxmemory`. Quota counters, throttle windows and WebSocket
//! registrations carry expiry times, so under any `volatile-*` policy (ElastiCache's
//! default is `volatile-lru`) they are what Redis evicts first, while the `epoch` marker
//! that reveals a loss (`epoch`) has none and stays: a quota's counter evicted went on
//! from zero (851 admitted of 500), and an open connection's registration evicted made
//! `@connections` answer 410. Every [`LOOK_EVERY`] syncs the node reads Redis's policy and
//! its count of evicted keys (`INFO`): it warns about a policy that can evict, once per
//! policy, and says at error when keys were evicted, re-registering its connections.
//! A refused `INFO` (an ACL) is no failure of the sync.

use redis::aio::MultiplexedConnection;
use tracing::{error, warn};

/// Syncs between looks: about every 5 s.
const LOOK_EVERY: u64 = 25;

#[derive(Default)]
pub(super) struct Evictions {
    /// Syncs so far (they fail while Redis refuses writes at its maxmemory, and the look
    /// goes on: `INFO` is a read).
    syncs: u64,
    /// Redis's count of evicted keys at the last look.
    count: Option<u64>,
    /// The policy last warned about.
    policy: String,
    /// Keys were evicted, and this node has not registered its connections again yet.
    pub(super) reregister: bool,
}

/// Looks at Redis's policy and evictions at the first sync, then every [`LOOK_EVERY`];
/// sets `reregister` when keys were evicted since the last look.
pub(super) async fn look(m: &mut MultiplexedConnection, e: &mut Evictions) {
    e.syncs += 1;
    if e.syncs % LOOK_EVERY != 1 {
        return;
    }
    let read: redis::RedisResult<(String, String)> = redis::pipe()
        .cmd("INFO")
        .arg("memory")
        .cmd("INFO")
        .arg("stats")
        .query_async(m)
        .await;
    let Ok((memory, stats)) = read else {
        return;
    };
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    if let Some(policy) = field(&memory, "maxmemory_policy") {
        if policy != "noeviction" && policy != e.policy {
            warn!(%policy, "cluster: Redis's maxmemory-policy can evict keys: at its maxmemory it may drop quota counters (a quota then admits afresh) and WebSocket registrations (@connections answers 410 for open connections); set maxmemory-policy noeviction");
        }
        e.policy = policy;
    }
    let Some(count) = field(&stats, "evicted_keys").and_then(|n| n.parse::<u64>().ok()) else {
        return;
    };
    if e.count.is_some_and(|before| count > before) {
        e.reregister = true;
        error!(
            evicted = count - e.count.unwrap_or(0),
            policy = %e.policy,
            "cluster: Redis evicted keys at its maxmemory: quota counts and throttle windows may have been lost (those quotas admit afresh this period); this node registers its WebSocket connections again"
        );
    }
    e.count = Some(count);
}
