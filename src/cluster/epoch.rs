//! Redis losing its data (a restart without persistence, a failover to an empty
//! replica): how the side thread notices (the `epoch` marker, remembered across restarts
//! in the state store) and how it gives Redis back this node's quota counts.

use std::sync::atomic::Ordering;

use redis::aio::MultiplexedConnection;
use tracing::warn;

use super::side::{redis_key, ttl_ms, SyncState};
use super::Cluster;
use crate::global::usage::today;

/// Whether Redis lost its data since the last sync: the `epoch` marker, a random value
/// the first node to miss it sets (`SET NX`), is gone or another. Without this a Redis
/// restarted empty granted every quota afresh mid-period (a key that had used its
/// month's requests got as many again), lost the usage of keys idle since, and its
/// flush generations starting again from 1 were older than the ones nodes had seen, so
/// other nodes ignored cache flushes. The marker a node saw is kept in its state store,
/// so one that restarted while Redis was away still sees the loss; a node with no store
/// (or a new one) only records the marker at its first sync.
pub(super) async fn lost_data(
    c: &Cluster,
    m: &mut MultiplexedConnection,
    s: &mut SyncState,
    seen: Option<String>,
) -> redis::RedisResult<bool> {
    let now = match seen {
        Some(e) => e,
        None => {
            let mut mine = [0u8; 8];
            getrandom::fill(&mut mine).expect("the OS random source");
            let key = c.key("epoch");
            let (e,): (String,) = redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(crate::store::hex(&mine))
                .arg("NX")
                .ignore()
                .get(&key)
                .query_async(m)
                .await?;
            e
        }
    };
    let lost = s.epoch.as_ref().is_some_and(|old| *old != now);
    super::connections::saw_epoch(&now, &s.live);
    if s.epoch.as_ref() != Some(&now) {
        if let Some(Err(e)) = c.shared.store.as_ref().map(|st| st.remember(EPOCH, &now)) {
            warn!(error = %e, "cluster: cannot keep Redis's epoch marker in the store");
        }
    }
    s.epoch = Some(now);
    Ok(lost)
}

/// The `epoch` marker this node's quota counts are in Redis under: set by the sync once
/// it has seen the marker and, after a loss, given Redis its counts again. Leases carry
/// it, and Redis refuses one under another marker (`scripts::LEASE`).
static LEASABLE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

pub(super) fn set_leasable(marker: &str) {
    let mut m = LEASABLE.lock().unwrap_or_else(|e| e.into_inner());
    if *m != marker {
        marker.clone_into(&mut m);
    }
}

pub(super) fn leasable() -> String {
    LEASABLE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Where the state store keeps the last `epoch` marker seen.
const EPOCH: &str = "cluster.epoch";

pub(super) fn remembered_epoch(c: &Cluster) -> Option<String> {
    let store = c.shared.store.as_ref()?;
    store.remembered(EPOCH).unwrap_or_else(|e| {
        warn!(error = %e, "cluster: cannot read Redis's last epoch marker from the store");
        None
    })
}

/// Adds this node's count in each quota's current period (and the tokens it holds for
/// it) to Redis's counter, after Redis lost them: the cluster's counter becomes the sum of the nodes' counts again.
/// Tokens leased between the loss and this sync are counted twice (under-admission,
/// never over); admissions still waiting for `reconcile` are in these counts already.
pub(super) async fn reseed_quotas(
    c: &Cluster,
    m: &mut MultiplexedConnection,
) -> redis::RedisResult<()> {
    let day = today();
    let mut pipe = redis::pipe();
    let mut any = false;
    for (l, cells, q) in c.shared.keys.shared_quotas() {
        let period = crate::global::usage::period_start(day, q.period, q.offset);
        // Cleared before the count is read, so an admission in between is counted
        // twice (under-admission), never not at all.
        if l.unsynced_window.load(Ordering::Acquire) == period {
            l.unsynced.store(0, Ordering::Release);
        }
        // Tokens this node leased and has not spent yet are Redis's count too. Read
        // before the count: a token spent in between is then in both (counted twice),
        // where read after it was in neither, and admitted past the quota.
        let held = u64::from(l.held(period));
        let (p, used) = cells.quota_used();
        let n = if p == period { used } else { 0 } + held;
        if n == 0 {
            continue;
        }
        let key = redis_key(c, &l, period);
        pipe.incr(&key, n)
            .ignore()
            .pexpire(&key, ttl_ms(&l) as i64)
            .ignore();
        any = true;
    }
    if any {
        let () = pipe.query_async(m).await?;
    }
    Ok(())
}
