//! The traffic gate between routing and the integration: API key, throttles, quota
//! (docs/ARCHITECTURE.md, Shape and Gateway answers). Runs on every routed request, so it
//! does no IO, takes no lock and allocates nothing: local buckets are `Cell`s, the key
//! table is one atomic load, and the only cross-core writes are a CAS when a bucket leases
//! and the key's usage CASes.
//!
//! Order, most specific first: key (403) → quota peek (429 Limit Exceeded) → route,
//! stage, API, plan × key and account throttles (429 Too Many Requests) → quota count.
//! A request refused at one level gives back the tokens it took at the levels before.

use std::cell::RefCell;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use super::admission_shared::{self as shared, Fast};
use super::api_key;
use super::throttle::{KeyBuckets, LimitBuckets};
use super::usage::Periods;
use crate::cluster::Cluster;
use crate::config::traffic::{RouteTraffic, TrafficRt};
use crate::global::keys::{KeyEntry, KeyTable, PlanKey};
use crate::global::Shared;
use crate::metrics::cells::bump;
use crate::metrics::RouteCells;
use crate::router::Matched;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// One worker's side of the traffic gate that outlives config generations: its view of
/// the key table and its buckets of plan × key limits. (The buckets of route, stage, API
/// and account limits belong to the generation: `Generation::limits`.)
pub struct Local {
    pub shared: Arc<Shared>,
    keys: RefCell<Cache<Arc<ArcSwap<KeyTable>>, Arc<KeyTable>>>,
    key_buckets: KeyBuckets,
    pub(super) periods: Periods,
}

impl Local {
    pub fn new(shared: Arc<Shared>, _worker: usize) -> Self {
        Local {
            keys: RefCell::new(Cache::new(shared.keys.table().clone())),
            key_buckets: KeyBuckets::default(),
            periods: Periods::default(),
            shared,
        }
    }

    /// Whether the request presents a known, unrevoked API key that `stage` accepts (one
    /// in no plan, or in a plan that lists the stage), for features that only ask (the
    /// cache's `client_invalidation: require_api_key`) on routes that do not require one:
    /// a key refused on the stage must not flush its entries either.
    pub fn knows_key(
        &self,
        head: &crate::http1::RequestHead,
        buf: &[u8],
        stage: &crate::config::traffic::StageTraffic,
    ) -> bool {
        let mut cache = self.keys.borrow_mut();
        api_key::lookup(cache.load(), head, buf).is_some_and(|key| {
            key.plan
                .as_ref()
                .is_none_or(|plan| stage.accepts(plan.plan_id))
        })
    }
}

/// `wait_ns` `u64::MAX`: no token will come (`rate: 0`), so no `retry-after` to give.
pub(super) fn throttled(wait_ns: u64) -> Deny {
    let retry_after = if wait_ns == u64::MAX {
        0
    } else {
        wait_ns.div_ceil(1_000_000_000).clamp(1, 86_400) as u32
    };
    Deny::Throttled { retry_after }
}

/// Route, stage, API, plan × key, account: all or nothing.
#[inline]
fn throttle(
    t: &TrafficRt,
    limits: &LimitBuckets,
    keys: &KeyBuckets,
    route: &RouteTraffic,
    key: Option<&PlanKey>,
) -> Result<(), Deny> {
    limits
        .take_all(&t.pools, &route.limits)
        .map_err(throttled)?;
    if let Some(pk) = key {
        if let Err(wait) = keys.take(pk) {
            limits.refund_all(&route.limits);
            return Err(throttled(wait));
        }
    }
    if let Some(account) = t.account {
        if let Err(wait) = limits.take_all(&t.pools, &[account]) {
            limits.refund_all(&route.limits);
            if let Some(pk) = key {
                keys.refund(pk);
            }
            return Err(throttled(wait));
        }
    }
    Ok(())
}

/// Why the gateway answers a request itself instead of running its integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deny {
    /// Key missing, unknown, revoked, or not in a plan for this stage.
    Forbidden,
    /// Seconds until the refusing limit has a token again; 0: never (`rate: 0`).
    Throttled {
        retry_after: u32,
    },
    QuotaExceeded,
}

impl Deny {
    /// Counts the refusal in the route's metric cells and answers for the gateway
    /// (docs/ARCHITECTURE.md, Gateway answers); returns whether the connection goes on.
    pub async fn answer(
        self,
        ctx: &WorkerCtx,
        gen: &Generation,
        c: &mut Conn,
        cells: &RouteCells,
    ) -> bool {
        // Each with the `x-amzn-ErrorType` API Gateway's REST APIs (whose features keys,
        // plans and quotas are) send, which AWS clients and SDKs read.
        const ERROR_TYPE: &str = "x-amzn-ErrorType";
        match self {
            Deny::Forbidden => {
                let extra = [(ERROR_TYPE, &b"ForbiddenException"[..])];
                c.answer(ctx, gen, 403, "Forbidden", &extra).await
            }
            Deny::QuotaExceeded => {
                bump(&cells.quota_rejected, 1);
                let extra = [(ERROR_TYPE, &b"LimitExceededException"[..])];
                c.answer(ctx, gen, 429, "Limit Exceeded", &extra).await
            }
            Deny::Throttled { retry_after } => {
                bump(&cells.throttled, 1);
                let mut digits = [0u8; 10];
                let n = decimal(&mut digits, retry_after);
                let extra = [
                    (ERROR_TYPE, &b"TooManyRequestsException"[..]),
                    ("retry-after", &digits[..n]),
                ];
                let extra = if retry_after == 0 {
                    &extra[..1]
                } else {
                    &extra[..]
                };
                c.answer(ctx, gen, 429, "Too Many Requests", extra).await
            }
        }
    }
}

fn decimal(out: &mut [u8; 10], mut v: u32) -> usize {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = tmp.len() - i;
    out[..n].copy_from_slice(&tmp[i..]);
    n
}

/// Lets the request through, or says how the gateway refuses it. Waits (asynchronously)
/// only in a cluster, and only when a shared limit's node budget is dry.
#[inline]
pub async fn admit(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    m: &Matched,
) -> Result<(), Deny> {
    let t = &gen.snap.traffic;
    let stage = &t.stages[m.stage.api as usize][m.stage.stage as usize];
    let route = &stage.routes[m.route as usize];
    let cl = match (t.cluster.is_some(), crate::cluster::get()) {
        (true, Some(cl)) => Some(&**cl),
        _ => None,
    };
    match admit_local(ctx, gen, c, m, cl)? {
        None => Ok(()),
        // A shared limit's node budget is dry: go on, possibly waiting for a lease.
        Some((from, pk)) => {
            let cl = cl.expect("only a cluster leaves work");
            shared::slow(cl, &ctx.traffic, t, route, pk.as_ref(), from, true).await
        }
    }
}

/// The key the request presents: its `x-api-key`, or with `api_key_source: authorizer`
/// the Lambda authorizer's usageIdentifierKey.
#[inline]
fn presented<'t>(
    table: &'t KeyTable,
    gen: &Generation,
    c: &Conn,
    m: &Matched,
) -> Option<&'t KeyEntry> {
    if gen.snap.apis[m.stage.api as usize].auth.key_from_authorizer {
        let value = c.req.auth.usage_key().unwrap_or_default();
        api_key::lookup_value(table, value.as_bytes())
    } else {
        api_key::lookup(table, &c.head, &c.rbuf)
    }
}

/// What the cluster's fast path left to do: the step whose budget was dry, and the key.
type Pending = Option<(usize, Option<Arc<PlanKey>>)>;

/// The node's own checks, then in a cluster (`cl`) the shared limits' fast path, which
/// also does quotas and usage there. Returns what is left for the slow path.
#[inline]
fn admit_local(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    m: &Matched,
    cl: Option<&Cluster>,
) -> Result<Pending, Deny> {
    let local = &ctx.traffic;
    let t = &gen.snap.traffic;
    let stage = &t.stages[m.stage.api as usize][m.stage.stage as usize];
    let route = &stage.routes[m.route as usize];
    let (limits, keys) = (&gen.limits, &local.key_buckets);
    if !route.key_required {
        throttle(t, limits, keys, route, None)?;
        return Ok(
            cl.and_then(|cl| match shared::fast(cl, local, t, route, None, true) {
                Fast::Done => None,
                Fast::Dry(i) => Some((i, None)),
            }),
        );
    }
    let mut cache = local.keys.borrow_mut();
    let key = presented(cache.load(), gen, c, m).ok_or(Deny::Forbidden)?;
    // For the access log; a reference count, not a copy.
    c.out.api_key = Some(key.name.clone());
    let Some(pk) = key.plan.as_ref() else {
        throttle(t, limits, keys, route, None)?;
        return Ok(
            cl.and_then(|cl| match shared::fast(cl, local, t, route, None, true) {
                Fast::Done => None,
                Fast::Dry(i) => Some((i, None)),
            }),
        );
    };
    if !stage.accepts(pk.plan_id) {
        return Err(Deny::Forbidden);
    }
    if let Some(cl) = cl {
        throttle(t, limits, keys, route, Some(pk))?;
        // The key's reference count is touched only when the slow path needs it.
        return Ok(match shared::fast(cl, local, t, route, Some(pk), true) {
            Fast::Done => None,
            Fast::Dry(i) => Some((i, Some(pk.clone()))),
        });
    }
    let quota = pk.quota.as_ref();
    let (day, period) = local.periods.current(quota);
    if let Some(q) = quota {
        // Refusing here keeps an exhausted key from spending anyone's throttle tokens.
        if pk.usage.quota_exhausted(period, q.limit) {
            return Err(Deny::QuotaExceeded);
        }
    }
    throttle(t, limits, keys, route, Some(pk))?;
    if let Some(q) = quota {
        if !pk.usage.quota_take(period, q.limit) {
            limits.refund_all(&route.limits);
            keys.refund(pk);
            if let Some(account) = t.account {
                limits.refund_all(&[account]);
            }
            return Err(Deny::QuotaExceeded);
        }
    }
    pk.usage.count_day(day);
    Ok(None)
}

/// The API key a WebSocket connection was admitted with on `$connect` (keys are checked
/// there only): its messages pass the key's plan throttle.
#[derive(Debug)]
pub struct ConnectionKey {
    sha256: [u8; 32],
    /// The key's plan at `$connect`, for when the key has since been revoked or left the
    /// config: the connection stays open (nothing is re-authorized), and keeps its limit.
    plan: Option<Arc<PlanKey>>,
}

/// The key a `$connect` handshake that [`admit`] let through presented, when its route
/// requires one (looked up again: once per connection, not per message).
pub fn connection_key(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &Conn,
    m: &Matched,
) -> Option<ConnectionKey> {
    let t = &gen.snap.traffic;
    let stage = &t.stages[m.stage.api as usize][m.stage.stage as usize];
    if !stage.routes[m.route as usize].key_required {
        return None;
    }
    let mut cache = ctx.traffic.keys.borrow_mut();
    let key = presented(cache.load(), gen, c, m)?;
    Some(ConnectionKey {
        sha256: key.sha256,
        plan: key.plan.clone(),
    })
}

/// Lets a WebSocket message through the throttles of the route it was routed to (`api`,
/// `stage` and `route` index `gen`): route, stage, API, the connection's plan × key (the
/// plan as the key has it now), account; all or nothing, as for requests. Quotas count
/// requests and handshakes, not messages (AWS does not say that they count messages).
/// The same buckets as requests' and the same cost: no IO, no lock, no allocation; in a
/// cluster the shared limits too, which may wait for a lease.
pub async fn admit_message(
    ctx: &WorkerCtx,
    gen: &Generation,
    (api, stage, route): (usize, usize, u32),
    key: Option<&ConnectionKey>,
) -> Result<(), Deny> {
    let t = &gen.snap.traffic;
    let rt = &t.stages[api][stage].routes[route as usize];
    let local = &ctx.traffic;
    let cl = match (t.cluster.is_some(), crate::cluster::get()) {
        (true, Some(cl)) => Some(&**cl),
        _ => None,
    };
    let pending = {
        let mut cache = local.keys.borrow_mut();
        let pk = key.and_then(|k| match cache.load().find(&k.sha256) {
            Some(entry) => entry.plan.as_ref(),
            None => k.plan.as_ref(),
        });
        throttle(t, &gen.limits, &local.key_buckets, rt, pk.map(|a| &**a))?;
        cl.and_then(
            |cl| match shared::fast(cl, local, t, rt, pk.map(|a| &**a), false) {
                Fast::Done => None,
                // The key's reference count is touched only when the slow path needs it.
                Fast::Dry(i) => Some((i, pk.cloned())),
            },
        )
    };
    match (pending, cl) {
        (Some((from, pk)), Some(cl)) => {
            shared::slow(cl, local, t, rt, pk.as_ref(), from, false).await
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_digits() {
        let mut d = [0u8; 10];
        let n = super::decimal(&mut d, 0);
        assert_eq!(&d[..n], b"0");
        let n = super::decimal(&mut d, 86_400);
        assert_eq!(&d[..n], b"86400");
        let n = super::decimal(&mut d, u32::MAX);
        assert_eq!(&d[..n], b"4294967295");
    }
}
