//! What the side thread adds to Redis's counters besides leases: the tokens a stopping
//! node gives back, the quota admissions made while Redis was away, and a node's counts
//! of a quota's new period. A counter Redis refuses (not a count: changed outside
//! Portico) is left out with a warning, so that one such key does not fail every sync.

use std::sync::atomic::Ordering;

use redis::aio::MultiplexedConnection;
use tracing::{info, warn};

use super::side::{redis_key, ttl_ms};
use super::{scripts, Cluster, SharedLimit};
use crate::global::usage::today;

/// At a stop, after the workers have ended: the quota tokens this node leased and did not
/// spend go back to Redis. Kept, they would count as used for the rest of the period (a
/// month, for a monthly quota): every restart would take a chunk out of each key's quota.
pub(super) async fn give_back_quota_tokens(
    c: &Cluster,
    mut m: MultiplexedConnection,
) -> redis::RedisResult<()> {
    let day = today();
    for (l, _, q) in c.shared.keys.shared_quotas() {
        let period = crate::global::usage::period_start(day, q.period, q.offset);
        let unspent = l.take_all(period);
        if unspent == 0 {
            continue;
        }
        let mut inv = scripts::give_back().prepare_invoke();
        inv.key(redis_key(c, &l, period)).arg(unspent);
        let _: i64 = inv.invoke_async(&mut m).await?;
    }
    Ok(())
}

/// Adds to Redis the quota admissions made while it was away.
pub(super) async fn reconcile(
    c: &Cluster,
    m: &mut MultiplexedConnection,
) -> redis::RedisResult<()> {
    let mut failed = Vec::new();
    while let Some(l) = c.unsynced.pop() {
        let window = l.unsynced_window.load(Ordering::Acquire);
        let n = l.unsynced.swap(0, Ordering::AcqRel);
        if n == 0 {
            continue;
        }
        match add_or_leave_out(c, m, &l, window, n).await {
            Ok(true) => {
                info!(limit = %l.id, admitted = n, "cluster: reconciled quota admissions made without Redis")
            }
            Ok(false) => {}
            Err(e) => {
                l.unsynced.fetch_add(n, Ordering::AcqRel);
                failed.push(l);
                for l in failed {
                    c.unsynced.push(l);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// [`add_to_counter`], but a counter Redis refuses (not a count: WRONGTYPE, not an
/// integer) is said and left out (Ok(false)): one such key failed every sync and kept the
/// breaker open for every limit. Err is a failure to reach Redis.
pub(super) async fn add_or_leave_out(
    c: &Cluster,
    m: &mut MultiplexedConnection,
    l: &SharedLimit,
    window: u32,
    n: u64,
) -> redis::RedisResult<bool> {
    match add_to_counter(c, m, l, window, n).await {
        Ok(()) => Ok(true),
        Err(e) if e.code().is_some() => {
            warn!(limit = %l.id, count = n, error = %e, "cluster: cannot add this node's count to a counter Redis refuses; left out");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Sends the counts a reload set aside for Redis (`SharedLimit::set_seed`) that no lease
/// has sent yet: a node that serves no request of the key still gives its share.
pub(super) async fn seed_quotas(
    c: &Cluster,
    m: &mut MultiplexedConnection,
) -> redis::RedisResult<()> {
    let day = today();
    for (l, _, q) in c.shared.keys.shared_quotas() {
        let period = crate::global::usage::period_start(day, q.period, q.offset);
        let n = l.take_seed(period);
        if n == 0 {
            continue;
        }
        match add_or_leave_out(c, m, &l, period, n).await {
            Ok(true) => {
                info!(limit = %l.id, count = n, "cluster: gave Redis this node's count of a quota's new period")
            }
            Ok(false) => {}
            Err(e) => {
                l.set_seed(period, n);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Adds `n` to Redis's counter of `l` for `window` (and keeps it alive as long as a
/// lease would).
pub(super) async fn add_to_counter(
    c: &Cluster,
    m: &mut MultiplexedConnection,
    l: &SharedLimit,
    window: u32,
    n: u64,
) -> redis::RedisResult<()> {
    let key = redis_key(c, l, window);
    redis::pipe()
        .incr(&key, n)
        .ignore()
        .pexpire(&key, ttl_ms(l) as i64)
        .ignore()
        .query_async(m)
        .await
}
