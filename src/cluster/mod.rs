//! Several nodes, one gateway: the Redis side thread (`portico-cluster`) and what the
//! rest of the process asks of it (docs/ARCHITECTURE.md, Cluster). Owns the shared
//! limits' node budgets, the job queue to the side thread, its circuit breaker, the
//! Redis keys layout and the cluster metrics. Nothing here runs Redis IO on a worker.
//!
//! # Threads and what crosses them
//! - **Workers** (monoio) call [`Cluster::lease`]: lock-free — a `SharedLimit::take`
//!   CAS in the common case; on a dry budget they push a [`Job`] onto an
//!   `ArrayQueue` and poll a `tokio::sync::oneshot` reply every [`POLL`] from a monoio
//!   timer (a monoio waker must not be woken from another thread) for at most
//!   `cluster.timeout`. A worker never blocks its loop, and never waits at all
//!   while the breaker is open: `on_failure` decides at once.
//! - **The side thread** (`side.rs`) runs a current-thread tokio runtime with one
//!   redis-rs `MultiplexedConnection`, which its sync loop replaces when a sync fails
//!   other than by a timeout (or three in a row do). It drains the queue
//!   (each lease is its own task, so leases pipeline), and every [`TICK`] heartbeats,
//!   counts live nodes, syncs API keys and cache generations, publishes the config
//!   hash, writes usage and reconciles what was admitted while Redis was away.
//! - **The admin thread** talks to Redis itself, with a short-timeout blocking
//!   connection (`admin.rs`): key create/revoke, cluster usage, cache flush. It is not
//!   a request path, and its answers must say whether Redis took the write.
//!
//! # Public API (for features building on the cluster)
//! - [`get`] → `Option<&'static Arc<Cluster>>`: the running cluster (None: single node).
//! - [`start`]: called once by the runtime after `global::Shared::start`.
//! - [`set_config_hash`], [`config_hash`]: the served config's hash (`/health`).
//! - [`set_flush_hook`]: how the side thread empties a stage cache on this node.
//! - [`Cluster::lease`] (async, workers), [`Cluster::healthy`], [`Cluster::nodes`],
//!   [`Cluster::policy`], [`Cluster::key`] (prefixed Redis key names).
//! - [`Cluster::submit`] + [`Job::Run`]: run any async closure on the side thread with
//!   the shared `MultiplexedConnection` — the extension point for e.g. a WebSocket
//!   connection registry; `admin::connect` for blocking admin-thread calls.
//! - [`budget::SharedLimit`]: one shared limit's node budget.
//! - WebSocket connections across nodes (`connections.rs`): [`Cluster::connection_opened`],
//!   [`Cluster::connection_closed`], [`Cluster::remote_connection_call`] and
//!   [`connections::set_connections_hook`].
//!
//! # Redis keys (all under `cluster.prefix`, default `portico`)
//! `rl:<label>:<window>` leased rate tokens (label `:account`, an API's name, `api/stage`,
//! `api/stage route`, `k:<plan>:<key>`) · `q:<plan>:<key>:<period day>` leased quota
//! (':' and '%' in plan and key names escaped as %3A and %25) · `usage:<plan>:<day>` hash
//! `<key>|<node>` → that node's count (absolute, so a rewrite is idempotent; `<node>` is
//! `{name}~{random}` as the node's state store first had it, since those counts live in
//! the store) · `keys` hash name → created key · `keys:d` hash value digest → name (its
//! index: no two names get one value) · `revoked` hash name → digest · `keys:v`
//! version · `keys:fence:<node>:<ms>:<n>` a create whose answer was lost and that must
//! never land (kept a day) · `cache:gen` hash `api/stage` → flush generation · `nodes`
//! sorted set node → last heartbeat (ms, Redis's clock: `liveness.rs`) · `instances`
//! hash node → `<process id>:<ms>` (`names.rs`) · `config:hash` last published config hash ·
//! `epoch` a random marker whose loss or change tells nodes Redis lost its data ·
//! `conn:<id>` → owning node of a WebSocket connection · `conn:complete` set of the
//! nodes whose open connections are all registered · channels (pub/sub)
//! `node:<name>` per node and `flush` (`<generation> <api>/<stage>`).

// Cold path: hook and hash registration happen at start and reload.
#![allow(clippy::disallowed_types)]

pub mod admin;
mod alarm;
pub mod budget;
pub mod connections;
mod counters;
mod epoch;
mod eviction;
mod generations;
mod key_writes;
mod late;
mod liveness;
mod metrics;
pub use metrics::config_info;
pub mod names;
mod probe;
mod scripts;
mod side;
mod subscription;
#[cfg(test)]
pub(crate) mod test_clock;
#[cfg(test)]
mod test_redis;
mod usage;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use crossbeam::queue::{ArrayQueue, SegQueue};
use tokio::sync::{oneshot, Notify};
use tracing::{info, warn};

pub use budget::{Kind, SharedLimit};
pub use metrics::Metrics;

use crate::config::model::{self, OnFailure};
use crate::global::Shared;

/// How often the side thread heartbeats and syncs keys, cache generations and usage:
/// the bound on how late a key change or a lost flush message reaches a node.
pub const TICK: Duration = Duration::from_millis(200);

/// How long the breaker stays open after Redis lost its data: every live node syncs (and
/// gives its counts back) within a tick of Redis answering again, a reconnect included;
/// three ticks leave room for a slow one.
pub const RESEED_GRACE: Duration = Duration::from_millis(3 * TICK.as_millis() as u64);
/// Where the state store keeps the live node count last seen (`Cluster::nodes`).
pub(crate) const NODES_SEEN: &str = "cluster.nodes_seen";
/// A node whose heartbeat is older than this is not counted in `limit ÷ nodes`.
pub const NODE_TTL_MS: u64 = 3000;
const QUEUE: usize = 4096;

/// A future the side thread runs with its connection.
pub type RunFn = Box<
    dyn FnOnce(redis::aio::MultiplexedConnection) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send,
>;

/// Work for the side thread.
pub enum Job {
    /// Lease up to `want` tokens of `limit` for `window`; the reply is the tokens
    /// granted (0: the window is used up), or None when Redis did not answer. Without a
    /// reply channel the tokens go straight into the node budget (a prefetch).
    Lease {
        limit: Arc<SharedLimit>,
        window: u32,
        want: u32,
        reply: Option<oneshot::Sender<Option<u32>>>,
    },
    /// Any async work with the shared connection (dropped while Redis is unreachable).
    Run(RunFn),
}

/// Waits for the side thread's answer until `deadline` by looking at it every
/// [`POLL`]: a monoio task cannot be woken from another thread (monoio without its
/// `sync` feature), so the worker polls rather than handing its waker to tokio.
async fn poll_reply<T>(mut rx: oneshot::Receiver<T>, deadline: std::time::Instant) -> Option<T> {
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(oneshot::error::TryRecvError::Closed) => return None,
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return None;
        }
        monoio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// How often a waiting worker looks for its lease.
pub const POLL: Duration = Duration::from_micros(250);

/// What a worker's lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leased {
    Granted,
    /// The window is used up across the cluster; the next starts in this many ms.
    Exhausted {
        retry_ms: u64,
    },
    /// Redis is unreachable, slow, or the queue is full: apply `on_failure`.
    Failed,
}

pub struct Cluster {
    pub cfg: model::Cluster,
    /// This node's name in Redis.
    pub node: String,
    /// The name its usage counts go under in Redis: `{node}~{random}` as the state
    /// store first had it. The store's counts were published under that name, and a node
    /// renamed since (another host name or listen port) would count them twice; a store
    /// that starts empty gets a new one, or Redis's higher count for the old name would
    /// hide its counts (counts are only ever raised).
    pub usage_node: String,
    pub metrics: Metrics,
    pub(crate) shared: Arc<Shared>,
    jobs: ArrayQueue<Job>,
    wake: Notify,
    /// Quota limits with admissions Redis has not counted yet.
    unsynced: SegQueue<Arc<SharedLimit>>,
    /// Admin key changes Redis has not confirmed (`admin::KeyWrite`).
    key_writes: SegQueue<admin::KeyWrite>,
    /// 0 closed (Redis answers), 1 open (it does not: nobody waits on it).
    breaker: AtomicU8,
    /// Unix ms before which the breaker stays open though Redis answers
    /// ([`Cluster::hold_breaker_open`]).
    held_open_until: AtomicU64,
    /// What the log has been told about Redis being away.
    alarm: alarm::Alarm,
    nodes: AtomicU32,
    /// How long this node has had Redis (whether a stale heartbeat is a dead node).
    pub(crate) run: liveness::Run,
    stop: AtomicBool,
}

static CLUSTER: OnceLock<Arc<Cluster>> = OnceLock::new();
static CONFIG_HASH: OnceLock<ArcSwap<String>> = OnceLock::new();
static FLUSH_HOOK: OnceLock<fn(&str, &str) -> bool> = OnceLock::new();

/// The running cluster; None on a single node.
#[inline]
pub fn get() -> Option<&'static Arc<Cluster>> {
    CLUSTER.get()
}

/// Hex SHA-256 (first 16 digits) of a config file's text.
pub fn hash_text(text: &str) -> String {
    let d = crate::global::keys::digest(text.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Records the hash of the config this node serves (start and every reload).
pub fn set_config_hash(hash: String) {
    let cell = CONFIG_HASH.get_or_init(|| ArcSwap::from_pointee(String::new()));
    cell.store(Arc::new(hash));
}

pub fn config_hash() -> Arc<String> {
    CONFIG_HASH
        .get()
        .map_or_else(|| Arc::new(String::new()), |c| c.load_full())
}

/// How this node empties one stage's cache when another node flushed it
/// (`pipeline::cache::flush`; the cluster module sits below the pipeline).
pub fn set_flush_hook(hook: fn(&str, &str) -> bool) {
    let _ = FLUSH_HOOK.set(hook);
}

pub(crate) fn flush_hook() -> Option<fn(&str, &str) -> bool> {
    FLUSH_HOOK.get().copied()
}

pub fn unix_ms() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    #[cfg(test)]
    let ms = ms.saturating_add_signed(test_clock::SKEW_MS.with(std::cell::Cell::get));
    ms
}

/// Starts the side thread for `cfg` (Redis need not be up: the breaker starts open and
/// the thread keeps trying). `listen_port` names the node when `cluster.node` is unset.
pub fn start(cfg: &model::Cluster, shared: Arc<Shared>, listen_port: u16) -> Arc<Cluster> {
    let node = cfg.node.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        format!("{host}:{listen_port}")
    });
    // A random suffix: a store that starts empty (lost, or never there) under a name
    // Redis already has counts for must not have its first counts hidden behind them.
    let mut salt = [0u8; 4];
    let _ = getrandom::fill(&mut salt);
    let first = format!("{node}~{:08x}", u32::from_be_bytes(salt));
    let pinned = shared
        .store
        .as_ref()
        .map(|s| s.pinned_name("cluster.usage_node", &first));
    let usage_node = match pinned {
        Some(Ok(name)) => name,
        Some(Err(e)) => {
            warn!(error = %e, "cluster: cannot keep this node's usage name in the store");
            first
        }
        None => first,
    };
    if !usage_node.starts_with(&format!("{node}~")) {
        info!(%node, %usage_node, "cluster: usage goes under the name this node's state store first had");
    }
    // The live nodes the last run saw (1 for a node that never reached Redis): until
    // Redis answers, `on_failure: local` divides limits by it.
    let nodes_seen = (shared.store.as_ref())
        .and_then(|s| s.remembered(NODES_SEEN).ok().flatten())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let c = Arc::new(Cluster {
        cfg: cfg.clone(),
        node,
        usage_node,
        metrics: Metrics::default(),
        shared,
        jobs: ArrayQueue::new(QUEUE),
        wake: Notify::new(),
        unsynced: SegQueue::new(),
        key_writes: SegQueue::new(),
        breaker: AtomicU8::new(1),
        held_open_until: AtomicU64::new(0),
        alarm: alarm::Alarm::default(),
        nodes: AtomicU32::new(nodes_seen),
        run: liveness::Run::default(),
        stop: AtomicBool::new(false),
    });
    let _ = CLUSTER.set(c.clone());
    key_writes::restore(&c);
    side::spawn(c.clone());
    c
}

impl Cluster {
    /// Whether Redis answered lately (the breaker is closed).
    #[inline]
    pub fn healthy(&self) -> bool {
        self.breaker.load(Ordering::Acquire) == 0
    }

    /// Why Redis is unreachable (the log's cause, no password), while it is.
    pub fn redis_error(&self) -> Option<String> {
        let cause = self.alarm.cause.load_full();
        (!self.healthy())
            .then_some(cause)
            .flatten()
            .map(|c| (*c).clone())
    }

    /// Redis lost its data: the breaker stays open (`on_failure` applies) for
    /// [`RESEED_GRACE`], while each node gives Redis its quota counts again at its next
    /// sync. The first node back leased against a counter that held its own count only,
    /// and admitted past a quota the nodes had spent between them.
    pub(crate) fn hold_breaker_open(&self) {
        let until = unix_ms() + RESEED_GRACE.as_millis() as u64;
        self.held_open_until.store(until, Ordering::Release);
        self.breaker_open(&"Redis lost its data; waiting for every node's quota counts");
    }

    /// Redis answered: closes the breaker (unless it is held open after a loss).
    pub(crate) fn breaker_close(&self) {
        if unix_ms() < self.held_open_until.load(Ordering::Acquire) {
            return;
        }
        if self.breaker.swap(0, Ordering::AcqRel) == 1 {
            self.alarm.cause.store(None);
            let redis = alarm::redacted(&self.cfg.redis);
            if self.alarm.closed() {
                tracing::info!(%redis, "cluster: Redis reachable, breaker closed");
            } else {
                tracing::debug!(%redis, "cluster: Redis reachable, breaker closed");
            }
        }
    }

    /// Redis failed (`cause`: the error, or what was not answered in time): opens the
    /// breaker. The opening is logged with its cause (at most one warning per
    /// `alarm::WARN_EVERY_MS`); a failure while it is open already is the side thread's
    /// business ([`Cluster::still_down`]).
    pub(crate) fn breaker_open(&self, cause: &dyn std::fmt::Display) {
        if self.breaker.swap(1, Ordering::AcqRel) == 0 {
            self.metrics.breaker_opened();
            let say = self.alarm.opened(unix_ms());
            self.say(
                say,
                cause,
                "cluster: Redis unreachable, breaker open; on_failure applies",
            );
        }
    }

    /// The side thread failed to reach Redis again: the first outage (the breaker starts
    /// open, so there is no opening to log) and a long one are logged with their cause.
    pub(crate) fn still_down(&self, cause: &dyn std::fmt::Display) {
        if self.healthy() {
            return self.breaker_open(cause);
        }
        let say = self.alarm.still_down(unix_ms());
        self.say(
            say,
            cause,
            "cluster: cannot reach Redis; on_failure applies until it answers",
        );
    }

    fn say(&self, say: alarm::Say, cause: &dyn std::fmt::Display, what: &str) {
        let redis = alarm::redacted(&self.cfg.redis);
        let cause = alarm::cause(cause);
        self.alarm.cause.store(Some(Arc::new(cause.clone())));
        match say {
            alarm::Say::Warn { quiet: 0 } => tracing::warn!(%redis, %cause, "{what}"),
            alarm::Say::Warn { quiet } => {
                tracing::warn!(%redis, %cause, unlogged_openings = quiet, "{what}")
            }
            alarm::Say::Remind { down_ms } => tracing::warn!(
                %redis,
                %cause,
                down_s = down_ms / 1000,
                "cluster: Redis still unreachable; on_failure applies"
            ),
            alarm::Say::Nothing => tracing::debug!(%redis, %cause, "cluster: Redis failed"),
        }
    }

    /// Live nodes (at least 1; the last count seen while Redis answered).
    #[inline]
    pub fn nodes(&self) -> u32 {
        self.nodes.load(Ordering::Relaxed).max(1)
    }

    pub fn policy(&self) -> OnFailure {
        self.cfg.on_failure
    }

    /// `<prefix>:<name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.cfg.prefix)
    }

    /// Queues a job for the side thread; false when the queue is full or stopping.
    pub fn submit(&self, job: Job) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.jobs.push(job).is_err() {
            return false;
        }
        self.wake.notify_one();
        true
    }

    /// Takes one token of `limit` for `window` from the node budget, if it has one (no
    /// wait); asks the side thread for the next chunk when the budget runs low, so
    /// steady traffic never finds it dry.
    #[inline]
    pub fn take_now(&self, limit: &Arc<SharedLimit>, window: u32) -> bool {
        let Some(left) = limit.take(window) else {
            return false;
        };
        if !limit.exact
            && left < limit.chunk() / 2 + 1
            && self.healthy()
            && !limit.pending.swap(true, Ordering::AcqRel)
        {
            self.submit_lease(limit, window, None);
        }
        true
    }

    /// Takes one token of `limit` for `window` (a rate window or a quota period's first
    /// day): from the node budget when it has one, else by waiting (asynchronously, at
    /// most `cluster.timeout`) for a lease from Redis. Waiters share one lease in flight
    /// per limit (exact limits excepted: one token per request is the point), and a
    /// window Redis said is used up is refused without asking again.
    pub async fn lease(&self, limit: &Arc<SharedLimit>, window: u32, unix_ms: u64) -> Leased {
        let deadline = std::time::Instant::now() + self.cfg.timeout;
        let exhausted = || Leased::Exhausted {
            retry_ms: match limit.kind {
                Kind::Rate => limit.ms_until_next(window, unix_ms),
                Kind::Quota => 86_400_000,
            },
        };
        loop {
            if self.take_now(limit, window) {
                return Leased::Granted;
            }
            if limit.is_spent(window) {
                return exhausted();
            }
            if !self.healthy() {
                return Leased::Failed;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                self.lease_failed();
                return Leased::Failed;
            }
            if !limit.exact && limit.pending.swap(true, Ordering::AcqRel) {
                // Another request's lease is on its way: look again shortly.
                monoio::time::sleep(POLL.min(deadline - now)).await;
                continue;
            }
            let (tx, rx) = oneshot::channel();
            if !self.submit_lease(limit, window, Some(tx)) {
                return Leased::Failed;
            }
            return match poll_reply(rx, deadline).await {
                Some(Some(n)) if n > 0 => {
                    limit.deposit(window, n - 1);
                    Leased::Granted
                }
                // The side thread marked the window spent (not for a counter that is
                // no count: the next request asks again, so deleting it is enough).
                Some(Some(_)) => exhausted(),
                _ => {
                    self.lease_failed();
                    Leased::Failed
                }
            };
        }
    }

    /// A worker gave up on a lease: enough of these in a row open the breaker, so the
    /// next requests do not wait at all (the side thread's next good sync closes it).
    fn lease_failed(&self) {
        if self.metrics.lease_timeout() >= metrics::OPEN_AFTER {
            self.breaker_open(&format_args!(
                "{} leases in a row got no answer within {:?}",
                metrics::OPEN_AFTER,
                self.cfg.timeout
            ));
        }
    }

    fn submit_lease(
        &self,
        limit: &Arc<SharedLimit>,
        window: u32,
        reply: Option<oneshot::Sender<Option<u32>>>,
    ) -> bool {
        let job = Job::Lease {
            limit: limit.clone(),
            window,
            want: limit.chunk(),
            reply,
        };
        let ok = self.submit(job);
        if !ok {
            limit.pending.store(false, Ordering::Release);
        }
        ok
    }

    /// Remembers a quota admission Redis has not counted (Redis away, `allow`/`local`).
    pub fn count_unsynced(&self, limit: &Arc<SharedLimit>, window: u32) {
        if limit.count_unsynced(window) {
            self.unsynced.push(limit.clone());
        }
    }

    /// Stops the side thread after a last usage write (at shutdown).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
        side::join(self);
    }
}
