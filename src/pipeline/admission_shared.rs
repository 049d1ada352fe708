//! The traffic gate's cluster half: after the node's own checks (key, local buckets),
//! every rate limit that applies and the key's quota take a token from their shared
//! limit (`cluster::SharedLimit`): a CAS on the node budget, or a wait of at most
//! `cluster.timeout` for a lease from Redis. When Redis is away (breaker open, timeout,
//! full queue) `cluster.on_failure` decides at once: `allow`, `deny`, or `local`
//! (limit ÷ live nodes, counted on this node). Quota admissions Redis did not see are
//! added to it when it returns.
//!
//! Tokens taken at one level are not given back when a later level refuses: a shared
//! token is already counted in Redis, so the error is under-admission, never over.

use std::sync::Arc;

use super::admission::{throttled, Deny, Local};
use crate::cluster::{unix_ms, Cluster, Leased, SharedLimit};
use crate::config::model::OnFailure;
use crate::config::traffic::{RouteTraffic, TrafficRt};
use crate::global::keys::PlanKey;

pub async fn admit(
    cl: &Cluster,
    local: &Local,
    t: &TrafficRt,
    route: &RouteTraffic,
    pk: Option<&Arc<PlanKey>>,
) -> Result<(), Deny> {
    let now = unix_ms();
    for &id in route.limits.iter() {
        rate(cl, &t.shared[id as usize], now).await?;
    }
    if let Some(l) = pk.and_then(|pk| pk.shared_throttle.as_ref()) {
        rate(cl, l, now).await?;
    }
    if let Some(account) = t.account {
        rate(cl, &t.shared[account as usize], now).await?;
    }
    let Some(pk) = pk else {
        return Ok(());
    };
    let (day, period) = local.periods.current(pk.quota.as_ref());
    if let (Some(l), Some(q)) = (&pk.shared_quota, &pk.quota) {
        quota(cl, l, pk, period, q.limit, now).await?;
    }
    pk.usage.count_day(day);
    Ok(())
}

async fn rate(cl: &Cluster, l: &Arc<SharedLimit>, now: u64) -> Result<(), Deny> {
    match cl.lease(l, l.window(now), now).await {
        Leased::Granted => Ok(()),
        Leased::Exhausted { retry_ms } => Err(throttled(retry_ms.saturating_mul(1_000_000))),
        Leased::Failed => match cl.policy() {
            OnFailure::Allow => Ok(()),
            OnFailure::Deny => Err(throttled(1)),
            OnFailure::Local if l.fallback_rate(cl.nodes()) => Ok(()),
            OnFailure::Local => Err(throttled(1)),
        },
    }
}

async fn quota(
    cl: &Cluster,
    l: &Arc<SharedLimit>,
    pk: &PlanKey,
    period: u32,
    limit: u64,
    now: u64,
) -> Result<(), Deny> {
    // The node's own count of the period (what `local` falls back on).
    let mine = |cap: u64| pk.usage.quota_take(period, cap);
    match cl.lease(l, period, now).await {
        Leased::Granted => {
            mine(u64::MAX);
            Ok(())
        }
        Leased::Exhausted { .. } => Err(Deny::QuotaExceeded),
        Leased::Failed => {
            let ok = match cl.policy() {
                OnFailure::Allow => mine(u64::MAX),
                OnFailure::Deny => false,
                OnFailure::Local => mine(limit / u64::from(cl.nodes())),
            };
            if !ok {
                return Err(Deny::QuotaExceeded);
            }
            cl.count_unsynced(l, period);
            Ok(())
        }
    }
}
