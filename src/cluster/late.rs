//! Lease replies that come after `cluster.timeout`. The LEASE script is not taken back
//! when the node stops waiting: Redis runs it when it gets to it (after a stall, a slow
//! fork, a SIGSTOP), and its counter goes up by the grant. Dropped, that grant was never
//! deposited: for a quota, tokens lost for the whole period (six 150 ms stalls with
//! `timeout: 50ms` lost 34 of a quota's 250: Redis counted 250, `/usage` said 34 were
//! left, and the key was refused). So a lease whose reply is late is waited for on, in
//! the background, and what it granted goes into the node budget when it comes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::{Cluster, SharedLimit};

/// How long a late lease reply is waited for (the lease's connection clone gets it as
/// its response timeout: a connection the sync loop replaced meanwhile stays open that
/// long, for the replies on their way on it). A stall longer than this still loses the
/// grants of the leases sent into it.
pub(super) const LATE_WAIT: Duration = Duration::from_secs(30);

/// Late replies waited for at once, at most: bounds the side thread's memory (one small
/// task each) when Redis stalls under load. Leases stop while the breaker is open, so
/// this is reached only by many limits running dry in the same stall.
const MAX_LATE: usize = 4096;

static LATE: AtomicUsize = AtomicUsize::new(0);

/// A lease call (the LEASE script's reply: granted, used after).
pub(super) type Call = Pin<Box<dyn Future<Output = redis::RedisResult<(i64, u64)>> + Send>>;

/// Waits on for `call`, whose reply did not come within the timeout, in a task of its
/// own, and deposits what it granted into `limit`'s budget for `window` (the budget
/// drops it if that window is over: a rate window's tokens cannot be spent later, and
/// Redis's counter of it is gone with it). False when too many wait already: the reply
/// is dropped, said at warn (at most once a second).
pub(super) fn wait_on(c: Arc<Cluster>, limit: Arc<SharedLimit>, window: u32, call: Call) -> bool {
    if LATE.fetch_add(1, Ordering::AcqRel) >= MAX_LATE {
        LATE.fetch_sub(1, Ordering::AcqRel);
        if let Some(held_back) =
            crate::metrics::log_limit::allow(("cluster: late leases", "dropped"))
        {
            warn!(limit = %limit.id, held_back, "cluster: too many lease replies late at once; this one's grant, if Redis makes it, is not used (the limit admits that much less in this window)");
        }
        return false;
    }
    tokio::spawn(async move {
        settle(&c, &limit, window, call.await);
        LATE.fetch_sub(1, Ordering::AcqRel);
    });
    true
}

/// What a late reply grants goes into the budget; a used-up window is remembered as
/// such. A reply of another kind (Redis lost its data, a corrupt counter) or none at
/// all grants nothing, as on time.
fn settle(c: &Cluster, limit: &SharedLimit, window: u32, r: redis::RedisResult<(i64, u64)>) {
    match r {
        Ok((granted, used)) if granted > 0 => {
            let granted = granted.min(i64::from(u32::MAX)) as u32;
            c.metrics.lease(granted);
            limit.adapt(used, c.nodes());
            limit.deposit(window, granted);
            debug!(limit = %limit.id, granted, "cluster: a late lease reply came; its tokens are kept");
        }
        Ok((0, _)) => limit.set_spent(window),
        Ok(_) => {}
        Err(e) => debug!(limit = %limit.id, error = %e, "cluster: a late lease reply never came"),
    }
}
