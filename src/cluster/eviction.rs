//! Redis evicting keys at `maxmemory`. Quota counters, throttle windows and WebSocket
//! registrations carry expiry times, so under any `volatile-*` policy (ElastiCache's
//! default is `volatile-lru`) they are what Redis evicts first, while the `epoch` marker
//! that reveals a loss (`epoch`) has none and stays: a quota's counter evicted went on
//! from zero (851 admitted of 500), and an open connection's registration evicted made
//! `@connections` answer 410. Every [`LOOK_EVERY`] syncs the node reads Redis's policy and
//! its count of evicted keys (`INFO`): it warns about a policy that can evict (once per
//! policy, while Redis has a `maxmemory`), and says at error when keys were evicted (at
//! most once a minute, with all evicted since), re-registering its connections.
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
    /// Redis's policy at the last look.
    policy: String,
    /// The policy last warned about.
    warned: String,
    /// A refused `INFO` was said.
    unread_said: bool,
    /// When evictions were last said (ms), and how many were seen since.
    said_at: u64,
    unsaid: u64,
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
    let (memory, stats) = match read {
        Ok(texts) => texts,
        Err(err) => {
            // Only an ACL's refusal: a Redis that refuses everything (away, NOAUTH) is
            // the sync's to say.
            if err.code() == Some("NOPERM") && !e.unread_said {
                e.unread_said = true;
                warn!(cause = %super::alarm::cause(&err), "cluster: cannot read Redis's INFO (an ACL without it?): this node does not see evictions at Redis's maxmemory");
            }
            return;
        }
    };
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    let limited = field(&memory, "maxmemory").is_some_and(|m| m != "0");
    if let Some(policy) = field(&memory, "maxmemory_policy") {
        // Said once per policy, when Redis has a maxmemory to evict at (set later, it is
        // said then).
        if limited && policy != "noeviction" && policy != e.warned {
            warn!(%policy, "cluster: Redis's maxmemory-policy can evict keys: at its maxmemory it may drop {}; set maxmemory-policy noeviction", at_risk(&policy));
            e.warned.clone_from(&policy);
        }
        e.policy = policy;
    }
    let Some(count) = field(&stats, "evicted_keys").and_then(|n| n.parse::<u64>().ok()) else {
        return;
    };
    // A count lower than the last one started again (a restart, CONFIG RESETSTAT, a
    // failover to a replica): what it holds was evicted since.
    let evicted = match e.count {
        Some(before) if count > before => count - before,
        Some(before) if count < before => count,
        _ => 0,
    };
    if evicted > 0 {
        e.reregister = true;
        // Counted while unsaid, so the next message gives them all.
        e.unsaid += evicted;
        let now = super::unix_ms();
        if now.saturating_sub(e.said_at) >= super::alarm::REMIND_EVERY_MS || e.said_at == 0 {
            e.said_at = now;
            let evicted = std::mem::take(&mut e.unsaid);
            error!(
                evicted,
                policy = %e.policy,
                "cluster: Redis evicted keys at its maxmemory: {} may have been lost; this node registers its WebSocket connections again (said at most once a minute)",
                at_risk(&e.policy)
            );
        }
    }
    e.count = Some(count);
}

/// What a policy may evict of Portico's: under `volatile-*` the keys that expire; under
/// `allkeys-*` any (the least used go first: created API keys and revocations too).
fn at_risk(policy: &str) -> &'static str {
    if policy.starts_with("allkeys") {
        "any key: quota counters and throttle windows (a quota then admits afresh), WebSocket registrations (@connections answers 410 for open connections), created API keys and revocations"
    } else {
        "quota counters and throttle windows (a quota then admits afresh) and WebSocket registrations (@connections answers 410 for open connections)"
    }
}
