//! The traffic gate between routing and the integration: API key, throttles, quota
//! (DESIGN.md §1, §5). Runs on every routed request, so it does no IO, takes no lock and
//! allocates nothing: local buckets are `Cell`s, the key table is one atomic load, and
//! the only cross-core writes are a CAS when a bucket leases and the key's usage CASes.
//!
//! Order, most specific first: key (403) → quota peek (429 Limit Exceeded) → route,
//! stage, API, plan × key and account throttles (429 Too Many Requests) → quota count.
//! A request refused at one level gives back the tokens it took at the levels before.

use std::cell::RefCell;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use super::api_key;
use super::throttle::Buckets;
use super::usage::Periods;
use crate::config::compile::Snapshot;
use crate::config::traffic::{RouteTraffic, TrafficRt};
use crate::global::keys::{KeyTable, PlanKey};
use crate::global::{Refusal, Shared};
use crate::http1::conn::Conn;
use crate::router::Matched;
use crate::runtime::WorkerCtx;

/// One worker's side of the traffic gate.
pub struct Local {
    pub shared: Arc<Shared>,
    worker: usize,
    buckets: Buckets,
    keys: RefCell<Cache<Arc<ArcSwap<KeyTable>>, Arc<KeyTable>>>,
    periods: Periods,
}

impl Local {
    pub fn new(shared: Arc<Shared>, snapshot: &Snapshot, worker: usize) -> Self {
        Local {
            buckets: Buckets::new(snapshot.traffic.pools.len()),
            keys: RefCell::new(Cache::new(shared.keys.table().clone())),
            periods: Periods::default(),
            shared,
            worker,
        }
    }

    fn refuse(&self, slot: u32, why: Refusal, wait_ns: u64) -> Deny {
        let idx = slot as usize * Refusal::COUNT + why as usize;
        self.shared.refusals.incr(self.worker, idx);
        match why {
            Refusal::Forbidden => Deny::Forbidden,
            Refusal::Quota => Deny::QuotaExceeded,
            Refusal::Throttle => Deny::Throttled {
                retry_after: wait_ns.div_ceil(1_000_000_000).clamp(1, 86_400) as u32,
            },
        }
    }

    /// Route, stage, API, plan × key, account: all or nothing.
    #[inline]
    fn throttle(
        &self,
        t: &TrafficRt,
        route: &RouteTraffic,
        key: Option<&PlanKey>,
    ) -> Result<(), Deny> {
        let pools = &t.pools;
        let b = &self.buckets;
        let refused = |wait| self.refuse(route.slot, Refusal::Throttle, wait);
        b.take_all(pools, &route.limits).map_err(refused)?;
        if let Some(pk) = key {
            if let Err(wait) = b.take_key(pk) {
                b.refund_all(&route.limits);
                return Err(refused(wait));
            }
        }
        if let Some(account) = t.account {
            if let Err(wait) = b.take_one(pools, account) {
                b.refund_all(&route.limits);
                if let Some(pk) = key {
                    b.refund_key(pk);
                }
                return Err(refused(wait));
            }
        }
        Ok(())
    }

    fn untake(&self, t: &TrafficRt, route: &RouteTraffic, key: &PlanKey) {
        let b = &self.buckets;
        b.refund_all(&route.limits);
        b.refund_key(key);
        if let Some(account) = t.account {
            b.refund_all(&[account]);
        }
    }
}

/// Why the gateway answers a request itself instead of running its integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deny {
    /// Key missing, unknown, revoked, or not in a plan for this stage.
    Forbidden,
    /// Seconds until the refusing limit has a token again.
    Throttled {
        retry_after: u32,
    },
    QuotaExceeded,
}

impl Deny {
    /// Answers for the gateway (DESIGN.md §5); returns whether the connection goes on.
    pub async fn answer(self, ctx: &WorkerCtx, c: &mut Conn) -> bool {
        match self {
            Deny::Forbidden => c.answer(ctx, 403, "Forbidden", &[]).await,
            Deny::QuotaExceeded => c.answer(ctx, 429, "Limit Exceeded", &[]).await,
            Deny::Throttled { retry_after } => {
                let mut digits = [0u8; 10];
                let n = decimal(&mut digits, retry_after);
                c.answer(
                    ctx,
                    429,
                    "Too Many Requests",
                    &[("retry-after", &digits[..n])],
                )
                .await
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

/// Lets the request through, or says how the gateway refuses it.
#[inline]
pub fn admit(ctx: &WorkerCtx, c: &Conn, m: &Matched) -> Result<(), Deny> {
    let local = &ctx.traffic;
    let t = &ctx.snapshot.traffic;
    let stage = &t.stages[m.stage.api as usize][m.stage.stage as usize];
    let route = &stage.routes[m.route as usize];
    if !route.key_required {
        return local.throttle(t, route, None);
    }
    let mut cache = local.keys.borrow_mut();
    let forbidden = || local.refuse(route.slot, Refusal::Forbidden, 0);
    let key = api_key::lookup(cache.load(), &c.head, &c.rbuf).ok_or_else(forbidden)?;
    let Some(pk) = key.plan.as_deref() else {
        return local.throttle(t, route, None);
    };
    if !stage.accepts(pk.plan_id) {
        return Err(forbidden());
    }
    let quota = pk.quota.as_ref();
    let (day, period) = local.periods.current(quota);
    if let Some(q) = quota {
        // Refusing here keeps an exhausted key from spending anyone's throttle tokens.
        if pk.usage.quota_exhausted(period, q.limit) {
            return Err(local.refuse(route.slot, Refusal::Quota, 0));
        }
    }
    local.throttle(t, route, Some(pk))?;
    if let Some(q) = quota {
        if !pk.usage.quota_take(period, q.limit) {
            local.untake(t, route, pk);
            return Err(local.refuse(route.slot, Refusal::Quota, 0));
        }
    }
    pk.usage.count_day(day);
    Ok(())
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
