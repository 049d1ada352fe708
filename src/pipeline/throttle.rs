//! A worker's local buckets: one per limit of the snapshot (indexed like
//! `traffic.limits`) and one per API key in a throttled usage plan (indexed by the key's
//! slot). Each leases from its global pool when dry (`global::lease`).

use std::cell::RefCell;

use crate::global::keys::PlanKey;
use crate::global::lease::{GlobalPool, LocalBucket};

pub struct Buckets {
    limits: Box<[LocalBucket]>,
    /// Grown when a key with a higher slot first shows up: an allocation per new key,
    /// never per request.
    keys: RefCell<Vec<LocalBucket>>,
}

impl Buckets {
    pub fn new(limits: usize) -> Self {
        Buckets {
            limits: (0..limits).map(|_| LocalBucket::default()).collect(),
            keys: RefCell::new(Vec::new()),
        }
    }

    /// Takes a token from each limit in order; on the first refusal, gives back the
    /// ones already taken and returns the refusing pool's wait (ns).
    #[inline]
    pub fn take_all(&self, pools: &[GlobalPool], ids: &[u32]) -> Result<(), u64> {
        for (n, &id) in ids.iter().enumerate() {
            if let Err(wait) = self.limits[id as usize].take(&pools[id as usize]) {
                self.refund_all(&ids[..n]);
                return Err(wait);
            }
        }
        Ok(())
    }

    #[inline]
    pub fn refund_all(&self, ids: &[u32]) {
        for &id in ids {
            self.limits[id as usize].refund();
        }
    }

    #[inline]
    pub fn take_one(&self, pools: &[GlobalPool], id: u32) -> Result<(), u64> {
        self.limits[id as usize].take(&pools[id as usize])
    }

    /// The plan throttle of one key (Ok when the plan has none).
    #[inline]
    pub fn take_key(&self, pk: &PlanKey) -> Result<(), u64> {
        let Some(pool) = &pk.pool else {
            return Ok(());
        };
        let slot = pk.slot as usize;
        if slot >= self.keys.borrow().len() {
            self.keys
                .borrow_mut()
                .resize_with(slot + 1, LocalBucket::default);
        }
        self.keys.borrow()[slot].take(pool)
    }

    #[inline]
    pub fn refund_key(&self, pk: &PlanKey) {
        if pk.pool.is_some() {
            if let Some(b) = self.keys.borrow().get(pk.slot as usize) {
                b.refund();
            }
        }
    }
}
