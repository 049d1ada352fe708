//! Usage plan keys: the limits, bucket and counters of one key in one plan, kept or
//! rebuilt as reloads change the plan, and the quota counters a reload has to recount.

use std::sync::Arc;

use super::{Keys, Registry};
use crate::cluster::SharedLimit;
use crate::config::model::Quota;
use crate::config::traffic::TrafficRt;
use crate::global::keys::PlanKey;
use crate::global::lease::GlobalPool;
use crate::global::usage::{period_start, today, UsageCells};
use crate::store::{Store, StoreError};

impl Keys {
    /// `name`'s key in `plan`: kept while the plan's limits are the same, else rebuilt
    /// around the same counters (restored from the store the first time), keeping the
    /// bucket of a throttle that did not change (and its slot, so the tokens workers
    /// leased from it stay spendable) and the shared counter of a quota that did not.
    pub(super) fn plan_key(
        &self,
        reg: &mut Registry,
        plan: &str,
        name: &str,
        store: Option<&Store>,
    ) -> Result<Option<Arc<PlanKey>>, StoreError> {
        let Some(p) = reg.plans.iter().find(|p| p.name == plan).cloned() else {
            return Ok(None);
        };
        let k = (plan.to_string(), name.to_string());
        let prev = reg.plan_keys.get(&k).cloned();
        let quota = |q: &Option<Quota>| q.as_ref().map(|q| (q.limit, q.period, q.offset));
        let same_throttle = prev.as_ref().filter(|pk| pk.throttle == p.throttle);
        let same_quota = prev
            .as_ref()
            .filter(|pk| quota(&pk.quota) == quota(&p.quota));
        if let (Some(pk), Some(_)) = (same_throttle, same_quota) {
            return Ok(Some(pk.clone()));
        }
        let usage = match reg.usage.get(&k) {
            Some(u) => u.clone(),
            None => {
                let day = today();
                let start = p
                    .quota
                    .as_ref()
                    .map_or(day, |q| period_start(day, q.period, q.offset));
                let (mut used, mut today_count) = (0, 0);
                if let Some(store) = store {
                    for c in store.usage(plan, Some(name), start.min(day), day)? {
                        used += c.count;
                        if c.day == day {
                            today_count = c.count;
                        }
                    }
                }
                let cells = Arc::new(UsageCells::restored(start, used, day, today_count));
                reg.usage.insert(k.clone(), cells.clone());
                cells
            }
        };
        // A throttle that did not change keeps its bucket (and slot, and shared limit)
        // whatever else did: a reload neither refills nor empties it (README, Hot reload).
        let (slot, pool, shared_throttle) = match same_throttle {
            Some(pk) => (pk.slot, pk.pool.clone(), pk.shared_throttle.clone()),
            None => {
                // A new bucket gets a new slot, so no worker spends tokens leased from an
                // old one.
                reg.next_slot += 1;
                let pool =
                    (p.throttle).map(|t| Arc::new(GlobalPool::new(t.rate, t.burst, self.workers)));
                let shared = self.cluster_exact.and_then(|exact| {
                    let t = p.throttle?;
                    let l = SharedLimit::plan_rate(plan, name, t.rate, t.burst, exact);
                    Some(Arc::new(l))
                });
                (reg.next_slot - 1, pool, shared)
            }
        };
        let shared_quota = match same_quota {
            Some(pk) => pk.shared_quota.clone(),
            None => self.cluster_exact.and_then(|exact| {
                let q = p.quota.as_ref()?;
                let l = SharedLimit::quota(plan, name, q.limit, exact);
                // A new limit counting in the same period (the same period and offset, or
                // another whose current period starts the same day: a week and a day on
                // the week's first day) counts on under the same Redis key: what the old
                // limit leased is this node's to spend still.
                let same_period = |old: &Quota| same_counter(old, q, today());
                if let Some(old) = prev
                    .as_ref()
                    .filter(|pk| pk.quota.as_ref().is_some_and(same_period))
                    .and_then(|pk| pk.shared_quota.as_ref())
                {
                    l.take_over(old);
                }
                Some(Arc::new(l))
            }),
        };
        let pk = Arc::new(PlanKey {
            plan_id: p.id,
            plan_name: p.name.as_str().into(),
            name: name.into(),
            slot,
            throttle: p.throttle,
            pool,
            quota: p.quota.clone(),
            usage,
            shared_throttle,
            shared_quota,
        });
        reg.plan_keys.insert(k, pk.clone());
        Ok(Some(pk))
    }
}

/// The quota counters a reload has to recount, worked out before the new key table
/// goes out: (counters, first day of the new period, requests the store has from that
/// day to yesterday).
///
/// A quota whose `period` and `offset` stay (a new `limit`) keeps its counter as it is:
/// the counter has counted every admission up to now. Setting it from the store instead
/// lost the admissions made since the last flush (some 30 per reload at 75k r/s, each
/// one admitted past the quota). A counter that counted other days (a new period or
/// offset; a plan that gains a quota, or comes back) starts over from the store's
/// closed days and today's count ([`UsageCells::requota`]).
/// A key's quota moved to another period by a reload: its count is taken again from
/// `start` (the days before today, `closed`, from the store).
pub(super) struct Requota {
    pub cells: Arc<UsageCells>,
    pub start: u32,
    pub closed: u64,
    /// In a cluster, this node's count goes to Redis's counter of the new period.
    pub seed: bool,
}

/// Whether quotas `a` and `b` count today under one counter: their current periods start
/// the same day (Redis keys a quota's counter by its period's first day).
pub(super) fn same_counter(a: &Quota, b: &Quota, day: u32) -> bool {
    period_start(day, a.period, a.offset) == period_start(day, b.period, b.offset)
}

pub(super) fn requotas(
    reg: &Registry,
    t: &TrafficRt,
    store: Option<&Store>,
    day: u32,
) -> Result<Vec<Requota>, StoreError> {
    let mut out = Vec::new();
    let Some(store) = store else {
        return Ok(out);
    };
    for plan in &t.plans {
        let Some(q) = &plan.quota else {
            continue;
        };
        let counted =
            (reg.plans.iter().find(|p| p.name == plan.name)).and_then(|p| p.quota.as_ref());
        if counted.is_some_and(|c| (c.period, c.offset) == (q.period, q.offset)) {
            continue;
        }
        // The cluster's counter of the new period is the old one's: it has every node's
        // count already (given again, a day moved to a week on a Monday counted twice).
        let seed = !counted.is_some_and(|c| same_counter(c, q, day));
        let start = period_start(day, q.period, q.offset);
        for ((p, name), cells) in &reg.usage {
            if *p != plan.name {
                continue;
            }
            let closed = if start < day {
                let days = store.usage(p, Some(name), start, day - 1)?;
                days.iter().map(|c| c.count).sum()
            } else {
                0
            };
            out.push(Requota {
                cells: cells.clone(),
                start,
                closed,
                seed,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Period;

    #[test]
    fn quotas_whose_periods_start_the_same_day_share_a_counter() {
        let q = |period, offset| Quota {
            limit: 50,
            period,
            offset,
        };
        // 2026-12-07, a Monday and a week's first day; the 8th is not.
        let (monday, tuesday) = (20_794, 20_795);
        let (day, week) = (q(Period::Day, 0), q(Period::Week, 0));
        assert!(same_counter(&day, &week, monday));
        assert!(!same_counter(&day, &week, tuesday));
        // A week from Tuesday starts on the 8th, the day's own counter then.
        assert!(same_counter(&day, &q(Period::Week, 1), tuesday));
        // A month from the 7th (offset 6) starts that Monday too.
        assert!(same_counter(&week, &q(Period::Month, 6), monday));
    }
}
