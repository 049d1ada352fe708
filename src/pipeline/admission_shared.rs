//! The traffic gate's cluster half: after the node's own checks (key, local buckets),
//! every rate limit that applies and the key's quota take a token from their shared
//! limit (`cluster::SharedLimit`), in order: route, stage, API, plan × key, account,
//! quota. [`fast`] runs while the node budgets have tokens — one CAS each, no await, no
//! reference count touched; at the first dry budget, [`slow`] goes on from there and
//! may wait (at most `cluster.timeout`, without blocking the worker) for a lease. When
//! Redis is away (breaker open, timeout, full queue) `cluster.on_failure` decides at
//! once: `allow`, `deny`, or `local` (limit ÷ live nodes, counted on this node). Quota
//! admissions Redis did not see are added to it when it returns.
//!
//! Tokens taken at one level are not given back when a later level refuses: a shared
//! token is already counted in Redis, so the error is under-admission, never over.
//!
//! A WebSocket message (`quota_counts` false) passes the rate limits only: quotas count requests
//! and handshakes.

use std::sync::Arc;

use super::admission::{throttled, Deny, Local};
use crate::cluster::{unix_ms, Cluster, Leased, SharedLimit};
use crate::config::model::OnFailure;
use crate::config::traffic::{RouteTraffic, TrafficRt};
use crate::global::keys::PlanKey;

/// Where the fast path stopped: every shared limit passed, or the step whose budget
/// is dry (to go on with [`slow`]).
pub enum Fast {
    Done,
    Dry(usize),
}

/// The shared limit of step `i` (route limits, plan × key, account, quota; a missing
/// level is None) and whether it is the quota.
#[inline]
fn step<'a>(
    t: &'a TrafficRt,
    route: &RouteTraffic,
    pk: Option<&'a PlanKey>,
    i: usize,
) -> Option<&'a Arc<SharedLimit>> {
    let n = route.limits.len();
    match i.checked_sub(n) {
        None => t.shared.get(route.limits[i] as usize),
        Some(0) => pk.and_then(|pk| pk.shared_throttle.as_ref()),
        Some(1) => t.account.and_then(|a| t.shared.get(a as usize)),
        Some(2) => pk.and_then(|pk| pk.shared_quota.as_ref()),
        Some(_) => None,
    }
}

/// Steps to pass: the route's limits, plan × key, account, and the quota if it counts.
fn steps(route: &RouteTraffic, quota_counts: bool) -> usize {
    route.limits.len() + if quota_counts { 3 } else { 2 }
}

fn window(l: &SharedLimit, period: u32, now: u64) -> u32 {
    match l.kind {
        crate::cluster::Kind::Rate => l.window(now),
        crate::cluster::Kind::Quota => period,
    }
}

/// Takes from every node budget it can; no await. Counts the request when all passed
/// (unless `quota_counts` is false: a message is not counted).
#[inline]
pub fn fast(
    cl: &Cluster,
    local: &Local,
    t: &TrafficRt,
    route: &RouteTraffic,
    pk: Option<&PlanKey>,
    quota_counts: bool,
) -> Fast {
    let now = unix_ms();
    let (day, period) = local.periods.current(pk.and_then(|pk| pk.quota.as_ref()));
    for i in 0..steps(route, quota_counts) {
        if let Some(l) = step(t, route, pk, i) {
            if !cl.take_now(l, window(l, period, now)) {
                return Fast::Dry(i);
            }
        }
    }
    if let Some(pk) = pk.filter(|_| quota_counts) {
        admitted(pk, period, day);
    }
    Fast::Done
}

/// Goes on from step `from` (whose budget was dry), waiting for leases where needed.
pub async fn slow(
    cl: &Cluster,
    local: &Local,
    t: &TrafficRt,
    route: &RouteTraffic,
    pk: Option<&Arc<PlanKey>>,
    from: usize,
    quota_counts: bool,
) -> Result<(), Deny> {
    let now = unix_ms();
    let pk = pk.map(|a| &**a);
    let (day, period) = local.periods.current(pk.and_then(|pk| pk.quota.as_ref()));
    let last = steps(route, quota_counts);
    for i in from..last {
        let Some(l) = step(t, route, pk, i) else {
            continue;
        };
        match (pk, &pk.and_then(|pk| pk.quota.as_ref())) {
            (Some(pk), Some(q)) if quota_counts && i == last - 1 => {
                quota(cl, l, pk, period, q.limit, now).await?;
                // Counted (or refused) here: nothing left to add below.
                pk.usage.count_day(day);
                return Ok(());
            }
            _ => rate(cl, l, now).await?,
        }
    }
    if let Some(pk) = pk.filter(|_| quota_counts) {
        admitted(pk, period, day);
    }
    Ok(())
}

/// An admitted request in the node's own counters: the period's count (what `local`
/// falls back on) and the day's usage.
fn admitted(pk: &PlanKey, period: u32, day: u32) {
    if pk.quota.is_some() {
        pk.usage.quota_take(period, u64::MAX);
    }
    pk.usage.count_day(day);
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

/// The quota step; on success the period's node count is taken here too.
async fn quota(
    cl: &Cluster,
    l: &Arc<SharedLimit>,
    pk: &PlanKey,
    period: u32,
    limit: u64,
    now: u64,
) -> Result<(), Deny> {
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
