//! A worker's local buckets (`global::lease`): one per limit of the running config
//! generation (indexed like `snap.traffic.pools`, rebuilt with the generation, the tokens
//! held of unchanged limits carried over), and one
//! per API key in a throttled usage plan (indexed by the key's slot, for the worker's
//! life). Each leases from its global pool when dry.

use std::cell::RefCell;

use crate::global::keys::PlanKey;
use crate::global::lease::{GlobalPool, LocalBucket};

pub struct LimitBuckets {
    buckets: Box<[LocalBucket]>,
}

impl LimitBuckets {
    pub fn new(limits: usize) -> Self {
        LimitBuckets {
            buckets: (0..limits).map(|_| LocalBucket::default()).collect(),
        }
    }

    /// The buckets of a new generation, with the tokens this worker held of each limit
    /// that did not change (`same[i]`: its index in `prev`). Dropped, they were lost to
    /// every reload: up to a batch per worker and limit, and the tokens refused requests
    /// had given back.
    pub fn carried(prev: &LimitBuckets, same: &[Option<usize>]) -> Self {
        let buckets = (same.iter())
            .map(|&old| {
                let b = LocalBucket::default();
                if let Some(old) = old.and_then(|i| prev.buckets.get(i)) {
                    b.set_held(old.held());
                    old.set_held(0);
                }
                b
            })
            .collect();
        LimitBuckets { buckets }
    }

    /// Takes a token from each limit in order; on the first refusal, gives back the
    /// ones already taken and returns the refusing pool's wait (ns).
    #[inline]
    pub fn take_all(&self, pools: &[std::sync::Arc<GlobalPool>], ids: &[u32]) -> Result<(), u64> {
        for (n, &id) in ids.iter().enumerate() {
            if let Err(wait) = self.buckets[id as usize].take(&pools[id as usize]) {
                self.refund_all(&ids[..n]);
                return Err(wait);
            }
        }
        Ok(())
    }

    #[inline]
    pub fn refund_all(&self, ids: &[u32]) {
        for &id in ids {
            self.buckets[id as usize].refund();
        }
    }
}

#[derive(Default)]
pub struct KeyBuckets {
    /// Grown when a key with a higher slot first shows up: an allocation per new key,
    /// never per request.
    buckets: RefCell<Vec<LocalBucket>>,
}

impl KeyBuckets {
    /// The plan throttle of one key (Ok when the plan has none).
    #[inline]
    pub fn take(&self, pk: &PlanKey) -> Result<(), u64> {
        let Some(pool) = &pk.pool else {
            return Ok(());
        };
        let slot = pk.slot as usize;
        if slot >= self.buckets.borrow().len() {
            self.buckets
                .borrow_mut()
                .resize_with(slot + 1, LocalBucket::default);
        }
        self.buckets.borrow()[slot].take(pool)
    }

    #[inline]
    pub fn refund(&self, pk: &PlanKey) {
        if pk.pool.is_some() {
            if let Some(b) = self.buckets.borrow().get(pk.slot as usize) {
                b.refund();
            }
        }
    }
}
