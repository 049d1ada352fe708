//! The `portico-cluster` thread: a current-thread tokio runtime, one multiplexed Redis
//! connection (replaced by the sync loop when it fails), the job queue and the periodic
//! sync (module doc of `cluster`). Every Redis call here has the config's timeout; a
//! failed sync or three failed leases in a row open the breaker, and the next
//! successful sync closes it.

// Cold path: the side thread's own state; workers never touch it.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis::AsyncConnectionConfig;
use tracing::{debug, error, info, warn};

use super::counters::{add_or_leave_out, give_back_quota_tokens, reconcile, seed_quotas};
use super::epoch::{lost_data, remembered_epoch, reseed_quotas};
use super::generations::{forget_generations, generation};
use super::key_writes::{at_stop, sync_keys, take_new, write_keys, KeyWrites};
use super::liveness::mono_ms;
use super::metrics::OPEN_AFTER;
use super::usage::{flush_usage, DayKey};
use super::{scripts, Cluster, Job, Kind, SharedLimit, TICK};

static HANDLE: OnceLock<Mutex<Option<JoinHandle<()>>>> = OnceLock::new();

pub fn spawn(c: Arc<Cluster>) {
    let handle = std::thread::Builder::new()
        .name("portico-cluster".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    error!(error = %e, "cluster: cannot start the side thread's runtime");
                    return;
                }
            };
            rt.block_on(run(c));
        })
        .expect("spawning the cluster thread");
    let _ = HANDLE.set(Mutex::new(Some(handle)));
}

pub fn join(_: &Cluster) {
    if let Some(h) = HANDLE.get().and_then(|m| m.lock().unwrap().take()) {
        let _ = h.join();
    }
}

/// Ticks between full re-reads of the shared keys (5 s).
const KEYS_EVERY: u64 = 25;

/// What the periodic sync remembers between ticks.
#[derive(Default)]
pub(super) struct SyncState {
    keys_version: Option<i64>,
    /// Syncs so far: keys are re-read every [`KEYS_EVERY`] even when unchanged, since a
    /// reload rebuilds the config keys from the file and this node's own store.
    ticks: u64,
    /// Flush generations were read once (the first read only records them).
    gens_seen: bool,
    published_hash: String,
    /// (plan, key, day) → count Redis has from this node.
    usage: HashMap<DayKey, u64>,
    /// Redis lost its data and has not yet taken the counts this node's state store
    /// holds for keys it has no counter for in this run (`usage::flush_usage`).
    resend_stored: bool,
    /// The `epoch` marker Redis held at the last sync (see [`lost_data`]).
    pub(super) epoch: Option<String>,
    /// The live nodes Redis listed at the last sync.
    pub(super) live: Vec<String>,
    /// Admin key changes Redis has not taken yet.
    writes: KeyWrites,
    /// After a loss: the live node count seen before it, and until when it stands.
    live_floor: (u32, u64),
    /// Redis's eviction policy and count, as last read.
    evictions: super::eviction::Evictions,
}

/// A new connection, or why there is none (for the log): a plain multiplexed
/// connection, which the sync loop replaces when it fails (`replace_connection`), to a
/// server that answered `probe::probe` like Redis. Not redis-rs's reconnecting
/// `ConnectionManager`: in redis-rs 0.32, when its reconnect failed with a parse error
/// (anything but Redis briefly on the port) it kept that failed reconnect for good and
/// handed its error to every later call, so the node stayed cut off after Redis was
/// back; and it reconnected at once, unprobed, into whatever answered.
async fn connect(c: &Cluster) -> Result<MultiplexedConnection, String> {
    let client = match redis::Client::open(c.cfg.redis.as_str()) {
        Ok(cl) => cl,
        Err(e) => {
            let redis = super::alarm::redacted(&c.cfg.redis);
            error!(error = %e, %redis, "cluster: bad Redis address");
            return Err(format!("bad Redis address: {e}"));
        }
    };
    if let redis::ConnectionAddr::Tcp(host, port) = &client.get_connection_info().addr {
        super::probe::probe(host, *port, c.cfg.timeout).await?;
    }
    // The connect and its handshake (AUTH, SELECT) within two timeouts, any later
    // answer within one.
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(c.cfg.timeout * 2)
        .set_response_timeout(c.cfg.timeout);
    let m = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    // The first connection at info; later ones (a new one after every failed sync
    // while Redis refuses the node, NOAUTH say) at debug: the breaker's lines tell.
    let redis = super::alarm::redacted(&c.cfg.redis);
    if FIRST.swap(false, Ordering::Relaxed) {
        info!(%redis, node = %c.node, "cluster: connected to Redis");
    } else {
        debug!(%redis, node = %c.node, "cluster: connected to Redis");
    }
    Ok(m)
}

static FIRST: AtomicBool = AtomicBool::new(true);

/// Failed syncs in a row after which the connection is replaced whatever the errors
/// were: a half-open TCP connection (Redis's host gone without a reset) only ever times
/// out.
const RECONNECT_AFTER: u32 = 3;

/// Whether a failed sync (`None`: it took longer than its budget) calls for a new
/// connection: at once after anything but a plain timeout or an error Redis itself
/// answered (then the connection works: Redis is slow, or said no, e.g. NOAUTH or
/// LOADING); a broken or desynchronised connection (closed, reset, garbage read) fails
/// every call after.
fn replace_connection(e: Option<&redis::RedisError>, failed_in_row: u32) -> bool {
    if failed_in_row >= RECONNECT_AFTER {
        return true;
    }
    match e {
        None => false,
        Some(e) => !e.is_timeout() && e.code().is_none(),
    }
}

async fn run(c: Arc<Cluster>) {
    // The sync loop owns the connection and publishes it; the job loop only reads it,
    // so a slow sync never holds up a lease.
    let (tx, conn) = tokio::sync::watch::channel::<Option<MultiplexedConnection>>(None);
    let listening = tokio::spawn(super::connections::listen(c.clone(), conn.clone()));
    let syncing = tokio::spawn(sync_loop(c.clone(), tx));
    loop {
        if c.stop.load(Ordering::Acquire) {
            let _ = syncing.await;
            listening.abort();
            return;
        }
        c.wake.notified().await;
        let m = conn.borrow().clone();
        while let Some(job) = c.jobs.pop() {
            match (job, &m) {
                (
                    Job::Lease {
                        limit,
                        window,
                        want,
                        reply,
                    },
                    Some(m),
                ) if c.healthy() => {
                    tokio::spawn(lease(c.clone(), m.clone(), limit, window, want, reply));
                }
                (Job::Lease { limit, reply, .. }, _) => {
                    limit.pending.store(false, Ordering::Release);
                    if let Some(r) = reply {
                        let _ = r.send(None);
                    }
                }
                (Job::Run(f), Some(m)) => {
                    tokio::spawn(f(m.clone()));
                }
                // No connection now: the job is dropped, and with it any reply channel,
                // which its caller reads as "no answer" (a registry call: 503, not 410).
                (Job::Run(_), None) => {}
            }
        }
    }
}

/// Every [`TICK`]: connect if needed, then `sync`; its outcome opens or closes the
/// breaker, and a failure that leaves the connection suspect drops it, so the next tick
/// builds a new one (meanwhile the job loop answers leases at once with no connection:
/// no request waits on a reconnect). At stop, one last usage write.
async fn sync_loop(c: Arc<Cluster>, tx: tokio::sync::watch::Sender<Option<MultiplexedConnection>>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The marker Redis held when this node last synced, before a restart too: a Redis
    // that came back empty while the node was down is a loss all the same.
    let mut state = SyncState {
        epoch: remembered_epoch(&c),
        ..SyncState::default()
    };
    // A sync is a few round trips; it gets a few timeouts' worth.
    let budget = c.cfg.timeout * 5;
    let mut failed_in_row = 0;
    loop {
        tick.tick().await;
        super::connections::track();
        let m = tx.borrow().clone();
        if c.stop.load(Ordering::Acquire) {
            if let Some(m) = m {
                match tokio::time::timeout(
                    budget,
                    flush_usage(&c, m.clone(), &mut state.usage, &mut state.resend_stored),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    _ => error!("cluster: cannot write the final usage counts"),
                }
                match tokio::time::timeout(budget, give_back_quota_tokens(&c, m.clone())).await {
                    Ok(Ok(())) => {}
                    _ => error!("cluster: cannot give back the unspent quota tokens"),
                }
                // One last try at the key changes Redis has not taken.
                let mut m = m;
                let _ =
                    tokio::time::timeout(budget, write_keys(&c, &mut m, &mut state.writes)).await;
            }
            at_stop(&c, &mut state.writes);
            return;
        }
        let m = match m {
            Some(m) => m,
            None => match connect(&c).await {
                Ok(m) => {
                    super::connections::reconnected();
                    tx.send_replace(Some(m.clone()));
                    m
                }
                Err(cause) => {
                    c.metrics.connect_failed();
                    c.run.sync_failed();
                    c.still_down(&cause);
                    continue;
                }
            },
        };
        let (t0, start) = (Instant::now(), mono_ms());
        let r = tokio::time::timeout(budget, sync(&c, m.clone(), &mut state)).await;
        c.metrics.call(t0.elapsed(), matches!(r, Ok(Ok(()))));
        let e = match r {
            Ok(Ok(())) => {
                failed_in_row = 0;
                c.run.sync_ok(start, mono_ms());
                c.breaker_close();
                continue;
            }
            Ok(Err(e)) => Some(e),
            Err(_) => None,
        };
        if let Some(e) = e.as_ref().filter(|e| e.code().is_some()) {
            // Redis answered the sync's writes with an error (`OOM` at `maxmemory`,
            // `NOPERM`, a read-only replica) and may still answer reads: the keys are
            // read all the same. A revocation another node made in that state (a delete
            // is allowed at `maxmemory`, and it was answered 204) went unseen here until
            // Redis took writes again: the revoked key served on.
            let mut m = m;
            let read = async {
                let keys_v: Option<i64> = m.get(c.key("keys:v")).await?;
                keys_if_changed(&c, &mut m, &mut state, keys_v).await
            };
            match tokio::time::timeout(budget, read).await {
                Ok(Ok(())) => debug!(error = %e, "cluster: sync failed; the keys were read"),
                _ => debug!(error = %e, "cluster: sync failed; the keys could not be read"),
            }
        }
        failed_in_row += 1;
        c.run.sync_failed();
        let cause = match &e {
            Some(e) => format!("sync failed: {e}"),
            None => format!("sync got no answer within {budget:?}"),
        };
        debug!(%cause, "cluster: sync failed");
        if replace_connection(e.as_ref(), failed_in_row) {
            debug!("cluster: dropping the Redis connection; a new one at the next tick");
            // The last clones (leases in flight) go within `timeout`; with them the
            // connection's reader task, and what it buffered.
            tx.send_replace(None);
            failed_in_row = 0;
        }
        c.still_down(&cause);
    }
}

pub(super) fn redis_key(c: &Cluster, l: &SharedLimit, window: u32) -> String {
    c.key(&format!("{}:{window}", l.id))
}

pub(super) fn ttl_ms(l: &SharedLimit) -> u64 {
    match l.kind {
        Kind::Rate => l.window_ms * 2 + 1000,
        // A quota period is at most a month; keep its counter a little longer.
        Kind::Quota => 40 * 86_400_000,
    }
}

async fn lease(
    c: Arc<Cluster>,
    mut m: MultiplexedConnection,
    limit: Arc<SharedLimit>,
    window: u32,
    want: u32,
    reply: Option<tokio::sync::oneshot::Sender<Option<u32>>>,
) {
    let t0 = Instant::now();
    let seed = limit.take_seed(window);
    if seed > 0 {
        let add = add_or_leave_out(&c, &mut m, &limit, window, seed);
        // A counter Redis refuses (left out, said): the lease below says so and grants
        // nothing; a seed kept for it would fail every lease of the key into
        // `on_failure` (with `allow`, no limit at all).
        if !matches!(tokio::time::timeout(c.cfg.timeout, add).await, Ok(Ok(_))) {
            // Not added: kept for the next try, and this lease waits for it.
            limit.set_seed(window, seed);
            if let Some(r) = reply {
                let _ = r.send(None);
            }
            limit.pending.store(false, Ordering::Release);
            return;
        }
    }
    let mut inv = scripts::lease().prepare_invoke();
    inv.key(redis_key(&c, &limit, window))
        .key(c.key("epoch"))
        .arg(want)
        .arg(limit.limit)
        .arg(ttl_ms(&limit))
        .arg(super::epoch::leasable());
    // Past the timeout the call goes on in the background (`late.rs`): Redis runs the
    // script anyway, and its grant must reach the budget. This clone of the connection
    // waits that long; the others keep the config's timeout.
    m.set_response_timeout(super::late::LATE_WAIT);
    let mut call: super::late::Call = Box::pin(async move { inv.invoke_async(&mut m).await });
    let r: redis::RedisResult<(i64, u64)> =
        match tokio::time::timeout(c.cfg.timeout, &mut call).await {
            Ok(r) => r,
            Err(_) => {
                super::late::wait_on(c.clone(), limit.clone(), window, call);
                Err(redis::RedisError::from(std::io::Error::from(
                    std::io::ErrorKind::TimedOut,
                )))
            }
        };
    c.metrics.call(t0.elapsed(), r.is_ok());
    let mut corrupt = false;
    let got = match r {
        Ok((-1, _)) => {
            debug!(limit = %limit.id, "cluster: Redis lost its data; leases wait for this node's sync to give its counts again");
            None
        }
        Ok((-2, _)) => {
            // This key's requests are refused (fail closed) until the counter is a
            // count again or expires; the other limits go on.
            if let Some(held_back) =
                crate::metrics::log_limit::allow(("cluster: bad counter", &limit.id))
            {
                warn!(limit = %limit.id, counter = %redis_key(&c, &limit, window), held_back, "cluster: a limit's counter in Redis is not a count (changed outside Portico); nothing is granted against it");
            }
            corrupt = true;
            Some(0)
        }
        Ok((granted, used)) => {
            let granted = granted.max(0) as u64;
            c.metrics.lease(granted as u32);
            limit.adapt(used, c.nodes());
            Some(granted as u32)
        }
        Err(e) => {
            debug!(error = %e, limit = %limit.id, "cluster: lease failed");
            if c.metrics.failing.load(Ordering::Relaxed) >= OPEN_AFTER {
                c.breaker_open(&format_args!("lease failed: {e}"));
            }
            None
        }
    };
    // A corrupt counter is not a spent window: its next request asks again.
    if got == Some(0) && !corrupt {
        limit.set_spent(window);
    }
    match reply {
        Some(r) => {
            if let Err(Some(n)) = r.send(got) {
                // The worker gave up waiting: keep the tokens for the next request.
                limit.deposit(window, n);
            }
        }
        None => limit.deposit(window, got.unwrap_or(0)),
    }
    limit.pending.store(false, Ordering::Release);
}

/// One tick: heartbeat and live nodes, API keys, cache generations, the config hash,
/// usage, and quota admissions made while Redis was away.
async fn sync(
    c: &Cluster,
    mut m: MultiplexedConnection,
    s: &mut SyncState,
) -> redis::RedisResult<()> {
    super::eviction::look(&mut m, &mut s.evictions).await;
    let beat = super::liveness::heartbeat(
        &mut m,
        &c.key("nodes"),
        &c.key("instances"),
        &c.node,
        super::names::instance(),
    )
    .await?;
    super::names::saw(c, beat.before.as_deref(), beat.now);
    let live = beat.live;
    type Read = (Option<i64>, HashMap<String, i64>, Option<String>);
    let (keys_v, gens, epoch): Read = redis::pipe()
        .get(c.key("keys:v"))
        .hgetall(c.key("cache:gen"))
        .get(c.key("epoch"))
        .query_async(&mut m)
        .await?;
    let before = s.epoch.clone();
    let lost = lost_data(c, &mut m, s, epoch).await?;
    let now = super::unix_ms();
    if lost {
        // Redis lost the other nodes' heartbeats with the rest: until they have had the
        // time a heartbeat lives to beat again, the count seen before stands. Counting
        // itself alone, a node's `local` fallback (held open after a loss) let it admit
        // a whole quota beside the others' shares (353 of 300 on two nodes).
        s.live_floor = (c.nodes(), now + super::NODE_TTL_MS);
    }
    let mut count = (live.len() as u32).max(1);
    if now < s.live_floor.1 {
        count = count.max(s.live_floor.0);
    }
    if c.nodes.swap(count, Ordering::Relaxed) != count {
        // Kept for a start while Redis is away: a node that took itself for the only one
        // gave `on_failure: local` requests the whole limit beside the others' shares.
        if let Some(store) = &c.shared.store {
            if let Err(e) = store.remember(super::NODES_SEEN, &count.to_string()) {
                warn!(error = %e, "cluster: cannot keep the live node count in the store");
            }
        }
    }
    // After `lost_data`, which hands the nodes live before a loss to the registry's
    // reader; a failed `lost_data` keeps the earlier list for the next try.
    s.live = live;
    if lost {
        forget_generations();
        s.usage.clear();
        s.resend_stored = true;
        s.published_hash.clear();
        if let Err(e) = reseed_quotas(c, &mut m).await {
            // Seen as a loss again at the next sync, and the counts given then: taken
            // for seen, they were never given, and leases went on without them.
            s.epoch = before;
            return Err(e);
        }
        c.hold_breaker_open();
        warn!("cluster: Redis lost what it held (restarted without persistence, or flushed): this node gave it its quota counts again, and writes its usage and config hash again");
    }
    if let Some(marker) = &s.epoch {
        super::epoch::set_leasable(marker);
    }
    if super::budget::SEEDS_PENDING.swap(false, Ordering::AcqRel) {
        if let Err(e) = seed_quotas(c, &mut m).await {
            super::budget::SEEDS_PENDING.store(true, Ordering::Release);
            return Err(e);
        }
    }
    write_keys(c, &mut m, &mut s.writes).await?;
    keys_if_changed(c, &mut m, s, keys_v).await?;
    // After a loss every stage in Redis was flushed since: flushing it here again is
    // harmless, missing it is not.
    let first = !s.gens_seen && !lost;
    for (stage, g) in gens {
        generation(&stage, g, first);
    }
    s.gens_seen = true;
    let hash = super::config_hash();
    if *hash != s.published_hash && !hash.is_empty() {
        let _: () = m.set(c.key("config:hash"), hash.as_str()).await?;
        s.published_hash = hash.to_string();
    }
    flush_usage(c, m.clone(), &mut s.usage, &mut s.resend_stored).await?;
    let evicted = std::mem::take(&mut s.evictions.reregister);
    super::connections::reregister(c, &m, lost || evicted);
    reconcile(c, &mut m).await
}

/// Reads Redis's keys when their version (`keys_v`, as read) moved, when admin calls
/// changed keys since the last read (`reread`), or every [`KEYS_EVERY`] syncs all the same.
async fn keys_if_changed(
    c: &Cluster,
    m: &mut MultiplexedConnection,
    s: &mut SyncState,
    keys_v: Option<i64>,
) -> redis::RedisResult<()> {
    // Admin calls' changes join the pending ones first (and set `reread`): a revocation
    // still queued, when a failed sync never reached `write_keys`, is read as made.
    take_new(c, &mut s.writes);
    let keys_v = keys_v.unwrap_or(0);
    s.ticks += 1;
    if s.keys_version != Some(keys_v) || s.ticks.is_multiple_of(KEYS_EVERY) || s.writes.reread {
        sync_keys(c, m, &mut s.writes).await?;
        s.keys_version = Some(keys_v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{ErrorKind, RedisError};

    #[test]
    fn a_connection_is_replaced_after_garbage_or_a_broken_socket_not_after_one_slow_answer() {
        let parse = RedisError::from((ErrorKind::ParseError, "parse error"));
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let slow = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let refused_by_redis = RedisError::from((ErrorKind::ResponseError, "NOAUTH"));
        assert!(replace_connection(Some(&parse), 1));
        assert!(replace_connection(Some(&reset), 1));
        for e in [Some(&slow), Some(&refused_by_redis), None] {
            assert!(!replace_connection(e, 1), "{e:?}");
            assert!(!replace_connection(e, RECONNECT_AFTER - 1), "{e:?}");
            // Failing for long, whatever the error: a half-open connection only times out.
            assert!(replace_connection(e, RECONNECT_AFTER), "{e:?}");
        }
    }
}
