//! State the workers share across config generations (docs/ARCHITECTURE.md, Shape): API
//! keys and their usage counters, and the store behind them. (The global token pools of
//! route, stage, API and account limits live in the snapshot, `config::traffic`, one set
//! per generation.) All of it is atomics or published through atomically swapped `Arc`s;
//! the one `Mutex` (the key registry) is taken by the admin thread, the flusher and a
//! reload, never by a worker.
//!
//! Usage reaches the store write-behind: a flusher thread writes the per-day counts
//! that changed every [`FLUSH_EVERY`], and once more after the workers have drained, so
//! a clean stop loses nothing and a crash loses at most the last second.

// Cold path: the flusher handle and the last flushed counts are touched by the write-behind thread and at shutdown, never per request.
#![allow(clippy::disallowed_types)]

pub mod key_changes;
pub mod keys;
pub mod lease;
pub mod registry;
pub mod usage;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, error, info};

use crate::config::compile::Snapshot;
use crate::store::{DayCount, Store, StoreError};
use registry::Keys;

/// How often usage counts go to the store; the crash-loss bound is this plus one commit.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The running process's shared state (None before the workers start), for a reload.
pub fn shared() -> Option<&'static Arc<Shared>> {
    SHARED.get()
}

/// (plan, key, day)
type DayKey = (Arc<str>, Arc<str>, u32);

pub struct Shared {
    pub workers: usize,
    pub keys: Keys,
    pub store: Option<Store>,
    /// Last counts written, so a flush writes only what changed. The lock also keeps
    /// two flushes (the timer's and an admin request's) from interleaving.
    flushed: Mutex<HashMap<DayKey, u64>>,
    stop: AtomicBool,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Opens the store (if the config needs one), restores keys and usage, and starts
    /// the flusher. A store that cannot be read stops startup.
    pub fn start(snapshot: &Snapshot, workers: usize) -> Result<Arc<Shared>, StoreError> {
        let t = &snapshot.traffic;
        let store = if t.needs_store() {
            let s = Store::open(&t.state_dir)?;
            info!(path = %s.path().display(), "state store open");
            Some(s)
        } else {
            None
        };
        let keys = Keys::load(t, store.as_ref(), workers)?;
        let shared = Arc::new(Shared {
            workers,
            keys,
            store,
            flushed: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            flusher: Mutex::new(None),
        });
        if shared.store.is_some() {
            let s = shared.clone();
            let handle = std::thread::Builder::new()
                .name("portico-flush".into())
                .spawn(move || s.flush_loop())
                .expect("spawning the usage flusher");
            *shared.flusher.lock().unwrap() = Some(handle);
        }
        let _ = SHARED.set(shared.clone());
        Ok(shared)
    }

    fn flush_loop(&self) {
        // A fixed schedule: a slow commit does not push the next flush later.
        let mut next = Instant::now() + FLUSH_EVERY;
        let mut failing = FlushFailures::default();
        while !self.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
            if Instant::now() < next {
                continue;
            }
            next += FLUSH_EVERY;
            // Counts stay in memory and go out with the next flush that works.
            failing.note(self.flush(), Instant::now());
        }
    }

    /// Writes every per-day count that changed since the last flush.
    pub fn flush(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let mut flushed = self.flushed.lock().unwrap();
        let mut pending = Vec::new();
        for (plan, key, cells) in self.keys.usage_cells() {
            let (plan, key): (Arc<str>, Arc<str>) = (plan.into(), key.into());
            for (day, count) in cells.day_counts() {
                if count == 0 {
                    continue;
                }
                let k = (plan.clone(), key.clone(), day);
                if flushed.get(&k) != Some(&count) {
                    pending.push((k, count));
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let rows: Vec<DayCount> = pending
            .iter()
            .map(|((plan, key, day), count)| DayCount {
                plan: plan.to_string(),
                key: key.to_string(),
                day: *day,
                count: *count,
            })
            .collect();
        store.write_usage(&rows)?;
        debug!(rows = rows.len(), "usage flushed");
        flushed.extend(pending);
        // Only today and yesterday can still change.
        let oldest = usage::today().saturating_sub(1);
        flushed.retain(|(_, _, day), _| *day >= oldest);
        Ok(())
    }

    /// After a reload: the new config's plans and keys, and warnings about created keys
    /// (hidden by a config key, or in a plan the config does not have). Usage is flushed
    /// first, so a plan whose quota now counts other days recounts from an up-to-date
    /// store (`registry::requotas`).
    pub fn reconfigure(
        &self,
        t: &crate::config::traffic::TrafficRt,
    ) -> Result<Vec<crate::config::ConfigError>, StoreError> {
        self.flush()?;
        self.keys.reconfigure(t, self.store.as_ref())
    }

    /// After the workers have drained: stops the flusher and writes the final counts.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.flusher.lock().unwrap().take() {
            h.thread().unpark();
            let _ = h.join();
        }
        match self.flush() {
            Ok(()) => {}
            Err(e) => error!(error = %e, "cannot write the final usage counts"),
        }
    }
}

/// Says a usage flush failed without saying it every [`FLUSH_EVERY`] (a full disk would
/// fill the log): the first failure, a different error, and once a minute while the same
/// one goes on, with how many it did not repeat; then once that flushing works again.
#[derive(Default)]
struct FlushFailures {
    last: Option<(String, Instant)>,
    unsaid: u64,
}

impl FlushFailures {
    const REPEAT_AFTER: Duration = Duration::from_secs(60);

    fn note(&mut self, flushed: Result<(), StoreError>, now: Instant) {
        match (flushed, &self.last) {
            (Ok(()), None) => {}
            (Ok(()), Some(_)) => {
                info!("usage is written to the state store again");
                (self.last, self.unsaid) = (None, 0);
            }
            (Err(e), last) => {
                let error = e.to_string();
                let said_lately = last.as_ref().is_some_and(|(said, at)| {
                    *said == error && now.duration_since(*at) < Self::REPEAT_AFTER
                });
                if said_lately {
                    self.unsaid += 1;
                    return;
                }
                error!(
                    error = %error,
                    failures_not_logged = self.unsaid,
                    "cannot write usage to the state store (counts are kept in memory and \
                     written once it works; the same error is logged at most once a minute)"
                );
                (self.last, self.unsaid) = (Some((error, now)), 0);
            }
        }
    }
}

#[cfg(test)]
mod flush_failure_tests {
    use super::*;

    fn full(n: &str) -> Result<(), StoreError> {
        let e = std::io::Error::new(std::io::ErrorKind::StorageFull, n.to_string());
        Err(StoreError::Open("/state/portico.db".into(), e))
    }

    #[test]
    fn the_same_failure_is_said_once_a_minute_and_recovery_once() {
        let t0 = Instant::now();
        let mut f = FlushFailures::default();
        f.note(full("disk full"), t0);
        assert_eq!(f.unsaid, 0);
        for i in 1..=100 {
            f.note(full("disk full"), t0 + FLUSH_EVERY * i);
        }
        assert_eq!(f.unsaid, 100, "repeated within the minute: not said");
        f.note(full("disk full"), t0 + Duration::from_secs(61));
        assert_eq!(f.unsaid, 0, "said again after a minute");
        f.note(full("read-only"), t0 + Duration::from_secs(62));
        assert_eq!(f.last.as_ref().unwrap().1, t0 + Duration::from_secs(62));
        f.note(Ok(()), t0 + Duration::from_secs(63));
        assert!(f.last.is_none());
        f.note(full("disk full"), t0 + Duration::from_secs(64));
        assert!(f.last.as_ref().unwrap().0.contains("disk full"));
    }
}
