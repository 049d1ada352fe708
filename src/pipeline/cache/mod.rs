//! The response cache: one shard per worker and stage, no locks, no cross-thread traffic
//! but the flush counters and refreshed keys (docs/ARCHITECTURE.md, Shape).
//!
//! Life of a cacheable request (`serve::before`, called by `server::conn::handle` before
//! the integration runs; `serve::after` once it has):
//! 1. **Lookup** — the key (`key.rs`) is looked up in the worker's shard of the stage
//!    (`store.rs`). A live entry is a **hit**: written from the stored bytes with a fresh
//!    `age` and request id; the upstream pool is never touched.
//! 2. **Wait** — a miss for a key that another request on this worker is already fetching
//!    waits for that fetch (coalescing) and is answered from its response; if that fetch
//!    fails or is not storable, the waiter goes to the backend itself.
//! 3. **Fill** — otherwise the request goes to the backend as usual, and a [`Capture`]
//!    copies the response as the relay streams it to the client. When the whole body
//!    went through and the response is storable (`rules.rs`), it is stored and handed to
//!    the waiters. A [`serve::Fill`] guard wakes the waiters whatever happens.
//!
//! A flush (`flush.rs`) bumps an atomic that each shard compares before each lookup and
//! on the worker's tick; a client's refresh of one entry reaches the other workers' shards
//! through a lock-free queue each of them empties then too. A reload hands the same shards to the next generation when the
//! stage still has a cache; entries of routes whose config changed, or that were not
//! cached for a while, are then misses (`RouteCacheRt::tag`, `epochs.rs`).

mod capture;
mod conditional;
mod epochs;
mod flush;
mod key;
pub mod rules;
mod serve;
mod store;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

pub use capture::{Capture, Codings};
pub use epochs::forget_uncached_stages;
pub use flush::flush;
pub use rules::StageCacheRt;
pub use serve::{after, before, Fill, Lookup};
pub use store::{Entry, Inserted, Store};

use crate::config::compile::Snapshot;
use crate::metrics::cells::CacheCells;
use crate::metrics::registry;
use crate::router::StageRef;

/// One worker's caches, one shard per cached stage, indexed `[api][stage]`.
#[derive(Default)]
pub struct Caches {
    by_stage: Vec<Vec<Option<Rc<Shard>>>>,
}

impl Caches {
    /// The shards for a config generation. A stage that had a cache in `previous` keeps
    /// its shard (and entries), resized to its new share of the capacity.
    pub fn build(
        snap: &Snapshot,
        worker: usize,
        workers: usize,
        previous: Option<&Caches>,
    ) -> Caches {
        let workers = workers.max(1) as u64;
        let by_stage = snap
            .apis
            .iter()
            .map(|api| {
                api.stages
                    .iter()
                    .map(|stage| {
                        let sc = stage.cache.as_ref()?;
                        let budget = (sc.capacity / workers) as usize;
                        let kept = previous.and_then(|p| p.find(&api.name, &stage.name));
                        Some(match kept {
                            Some(shard) => {
                                shard.resize(budget);
                                shard
                            }
                            None => Rc::new(Shard::new(
                                &api.name,
                                &stage.name,
                                budget,
                                sc.flush.clone(),
                                registry().cache(worker, &api.name, &stage.name),
                                (
                                    flush::forgotten(&api.name, &stage.name, workers as usize),
                                    worker,
                                ),
                            )),
                        })
                    })
                    .collect()
            })
            .collect();
        Caches { by_stage }
    }

    fn find(&self, api: &str, stage: &str) -> Option<Rc<Shard>> {
        self.by_stage
            .iter()
            .flatten()
            .flatten()
            .find(|s| s.api == api && s.stage == stage)
            .cloned()
    }

    pub fn shard(&self, s: StageRef) -> Option<&Rc<Shard>> {
        self.by_stage
            .get(s.api as usize)?
            .get(s.stage as usize)?
            .as_ref()
    }

    /// On the worker's tick: applies flushes, so an idle worker frees its memory too.
    pub fn tick(&self) {
        for shard in self.by_stage.iter().flatten().flatten() {
            shard.sync_flush();
        }
    }
}

/// One worker's cache of one stage.
pub struct Shard {
    api: String,
    stage: String,
    store: RefCell<Store>,
    /// Keys being fetched by a request on this worker, and who waits for them.
    inflight: RefCell<HashMap<Rc<[u8]>, Rc<Pending>>>,
    flush: Arc<AtomicU64>,
    flush_seen: Cell<u64>,
    /// Keys other workers' clients refreshed, and this worker's number.
    forgotten: (Arc<flush::Forgotten>, usize),
    cells: Arc<CacheCells>,
    /// Reused to build keys, so a hit allocates nothing.
    scratch: RefCell<Vec<u8>>,
}

impl Shard {
    pub fn new(
        api: &str,
        stage: &str,
        budget: usize,
        flush: Arc<AtomicU64>,
        cells: Arc<CacheCells>,
        forgotten: (Arc<flush::Forgotten>, usize),
    ) -> Shard {
        let seen = flush.load(Ordering::Acquire);
        let shard = Shard {
            api: api.to_string(),
            stage: stage.to_string(),
            store: RefCell::new(Store::new(budget)),
            inflight: RefCell::new(HashMap::new()),
            flush,
            flush_seen: Cell::new(seen),
            forgotten,
            cells,
            scratch: RefCell::new(Vec::with_capacity(256)),
        };
        shard.publish();
        shard
    }

    /// Drops the entries other workers' clients refreshed, and every entry if the stage
    /// was flushed since the last look; returns the flush generation now current (a fill stores its response only if it is unchanged).
    pub fn sync_flush(&self) -> u64 {
        let (forgotten, me) = &self.forgotten;
        if let Some(first) = forgotten.next_for(*me) {
            let mut store = self.store.borrow_mut();
            let inflight = self.inflight.borrow();
            let mut next = Some(first);
            while let Some((mut key, compresses)) = next {
                serve::forget(&mut store, &inflight, &mut key, compresses);
                next = forgotten.next_for(*me);
            }
            drop((store, inflight));
            self.publish();
        }
        let g = self.flush.load(Ordering::Acquire);
        if g != self.flush_seen.get() {
            self.store.borrow_mut().clear();
            self.flush_seen.set(g);
            self.publish();
        }
        g
    }

    fn resize(&self, budget: usize) {
        let mut store = self.store.borrow_mut();
        if store.budget() != budget {
            let evicted = store.set_budget(budget);
            drop(store);
            crate::metrics::cells::bump(&self.cells.evictions, u64::from(evicted));
            self.publish();
        }
    }

    pub fn used(&self) -> usize {
        self.store.borrow().used()
    }

    pub fn len(&self) -> usize {
        self.store.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.borrow().is_empty()
    }

    /// Mirrors the store's size into the metric gauges.
    fn publish(&self) {
        let store = self.store.borrow();
        self.cells
            .bytes
            .store(store.used() as u64, Ordering::Relaxed);
        self.cells
            .entries
            .store(store.len() as u64, Ordering::Relaxed);
    }
}

/// A fetch in progress that other requests for the same key wait for.
#[derive(Default)]
struct Pending {
    /// The tag of the route fetching it (`RouteCacheRt::tag`): only its requests wait.
    tag: u64,
    /// The stage's flush generation when the fetch began: a request after a flush does
    /// not wait for an answer fetched before it.
    flush_gen: u64,
    /// A client's refresh of the key came after the fetch began (on any worker): its
    /// answer may predate the refresh, so it is not stored, and later requests don't
    /// wait for it.
    stale: Cell<bool>,
    done: Cell<bool>,
    /// The fetched response, when it was storable.
    result: RefCell<Option<Entry>>,
    wakers: RefCell<Vec<Waker>>,
}

/// The requests waiting for one fetch of `key`: the fetching request's [`serve::Fill`]
/// and its [`capture::Capture`] both hold it.
#[derive(Clone)]
struct Waiting {
    shard: Rc<Shard>,
    key: Rc<[u8]>,
    pending: Rc<Pending>,
}

impl Waiting {
    /// The fetch will fill nothing: its waiters go to the backend themselves, and later
    /// requests for the key no longer wait for it. Once only; a stored answer
    /// (`serve::after`) finishes the fetch first.
    fn release(&self) {
        let mut inflight = self.shard.inflight.borrow_mut();
        if inflight
            .get(&self.key)
            .is_some_and(|p| Rc::ptr_eq(p, &self.pending))
        {
            inflight.remove(&self.key);
        }
        drop(inflight);
        if !self.pending.done.get() {
            self.pending.finish(None);
        }
    }
}

impl Pending {
    fn finish(&self, result: Option<Entry>) {
        *self.result.borrow_mut() = result;
        self.done.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.done.get() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests;
