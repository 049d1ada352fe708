//! Flushing a stage's cache on every worker without messages or locks on the request
//! path: each cached stage has one generation counter (an atomic, shared through the
//! config snapshot). [`flush`] bumps it; a worker compares it with the value it last saw
//! before each lookup and on its 50 ms tick, and drops its entries when they differ.
//!
//! The counters are found by name here, so a flush reaches the stage whatever config
//! generation each worker is on, and the counter survives reloads. The lock below is
//! taken only when a config is compiled and by the flush call itself.

// Cold path: the counter list is locked when a generation is built and by the admin flush route; workers hold their own Arc.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

type Counters = Mutex<Vec<(String, String, Arc<AtomicU64>)>>;

fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(Counters::default)
}

/// The flush counter of an API stage, created on first use.
pub fn counter(api: &str, stage: &str) -> Arc<AtomicU64> {
    let mut all = counters().lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, c)) = all.iter().find(|(a, s, _)| a == api && s == stage) {
        return c.clone();
    }
    let c = Arc::new(AtomicU64::new(0));
    all.push((api.to_string(), stage.to_string(), c.clone()));
    c
}

/// Empties the cache of `api`'s `stage` on every worker (`POST /cache/flush?api=&stage=`).
/// Returns false when no config loaded in this process gave that stage a cache (the
/// admin route answers 404 then). Every worker drops its entries before its next lookup
/// in that stage, and within 50 ms when idle; a response being fetched while the flush
/// happens is not stored.
pub fn flush(api: &str, stage: &str) -> bool {
    let all = counters().lock().unwrap_or_else(|e| e.into_inner());
    match all.iter().find(|(a, s, _)| a == api && s == stage) {
        Some((_, _, c)) => {
            c.fetch_add(1, Ordering::Release);
            true
        }
        None => false,
    }
}

/// Entries a client's refresh (`Cache-Control: max-age=0`) dropped on one worker, for the
/// other workers of the stage to drop too: each worker has its own copy, and a refresh
/// must not leave the old answer served from the others. A lock-free queue per worker;
/// a worker empties its own before each lookup and on its tick. Rare (a client asking
/// for it, where the route allows), so each key is a small allocation.
pub struct Forgotten {
    queues: Box<[crossbeam::queue::SegQueue<ForgottenKey>]>,
}

/// A key to drop, and whether its route compresses (its other encodings go too).
type ForgottenKey = (Box<[u8]>, bool);

impl Forgotten {
    /// Tells every worker but `me` to drop `key` (and its other encodings when
    /// `compresses`).
    pub fn tell_others(&self, me: usize, key: &[u8], compresses: bool) {
        for (worker, q) in self.queues.iter().enumerate() {
            if worker != me {
                q.push((key.into(), compresses));
            }
        }
    }

    /// The next key `worker` is told to drop.
    pub fn next_for(&self, worker: usize) -> Option<ForgottenKey> {
        self.queues.get(worker)?.pop()
    }
}

type ForgottenList = Mutex<Vec<(String, String, Arc<Forgotten>)>>;

/// The forgotten-entry queues of an API stage, created on first use for `workers`
/// workers (a count that changes only with a restart).
pub fn forgotten(api: &str, stage: &str, workers: usize) -> Arc<Forgotten> {
    static ALL: OnceLock<ForgottenList> = OnceLock::new();
    let mut all = ALL
        .get_or_init(ForgottenList::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, f)) = all.iter().find(|(a, s, _)| a == api && s == stage) {
        return f.clone();
    }
    let f = Arc::new(Forgotten {
        queues: (0..workers.max(1)).map(|_| Default::default()).collect(),
    });
    all.push((api.to_string(), stage.to_string(), f.clone()));
    f
}
