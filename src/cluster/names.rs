//! Two live nodes under one `cluster.node` name (the example's `node: web-1` kept in a
//! file copied to every node): Redis sees one node, so `on_failure: local` gives each
//! the whole limit, lease chunks are sized for one, and an `@connections` call for the
//! other's connection is taken for the caller's own and answered 410. Nothing said so.
//! Each sync's heartbeat writes `instances` name → `<this process's random id>:<ms>`
//! (Redis's clock), reading what was there; another id written since this node's previous write means another live
//! process uses the name: an error in the log (at most once a minute) and in `/health`.
//! A node restarted under its name reads its former process's entry at its first sync
//! only, which is not counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::{unix_ms, Cluster};

/// This process's id among the nodes that share its name.
pub(super) fn instance() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("the OS random source");
        crate::store::hex(&b)
    })
}

/// When this node last wrote its entry, by Redis's clock (0: not yet).
static WROTE: AtomicU64 = AtomicU64::new(0);
/// When another process was last seen writing under this name (0: never).
static CLASH: AtomicU64 = AtomicU64::new(0);
/// When the log last said so.
static LOGGED: AtomicU64 = AtomicU64::new(0);

const SAY_EVERY_MS: u64 = 60_000;
/// How long a clash seen stays in `/health` after the last sighting.
const SHOWN_MS: u64 = 10_000;

/// What the heartbeat (`liveness::heartbeat`) found under this node's name in
/// `instances` (`before`) when it wrote this process's entry there at `redis_now`. Both
/// stamps are Redis's clock: two processes under one name whose clocks differ must
/// still see each other.
pub(super) fn saw(c: &Cluster, before: Option<&str>, redis_now: u64) {
    let wrote = WROTE.swap(redis_now, Ordering::AcqRel);
    let other = before
        .and_then(|b| b.split_once(':'))
        .is_some_and(|(id, ms)| {
            id != instance() && wrote != 0 && ms.parse::<u64>().is_ok_and(|ms| ms >= wrote)
        });
    let now = unix_ms();
    if other {
        CLASH.store(now, Ordering::Release);
        if LOGGED.load(Ordering::Acquire) + SAY_EVERY_MS <= now {
            LOGGED.store(now, Ordering::Release);
            tracing::error!(node = %c.node, "cluster: another live node uses this node's name (cluster.node): Redis counts them as one, so limits under on_failure: local, lease sizes and @connections across nodes are wrong; give each node its own name");
        }
    }
}

/// Whether another live process was seen under this node's name lately.
pub fn clash() -> bool {
    let seen = CLASH.load(Ordering::Acquire);
    seen != 0 && seen + SHOWN_MS > unix_ms()
}
