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
