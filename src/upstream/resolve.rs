//! Upstream targets by host name (`users:8080`, `https://api.internal`): looked up off the
//! hot path and published to the workers as an immutable address set.
//!
//! Lookups use the system resolver (getaddrinfo: /etc/hosts, /etc/resolv.conf, nsswitch,
//! and whatever cache the host runs), on short-lived side threads, one per name at a time
//! however many upstreams and workers use it. getaddrinfo gives no TTL, so a name is looked
//! up again every `upstreams.NAME.resolve_every` (default 30 s; the shortest wins when
//! several upstreams share a name). A DNS library with TTLs would bring its own runtime
//! and bypass nsswitch; container and Kubernetes names already come through resolv.conf.
//!
//! Each upstream has one [`Addresses`]: its endpoints (every address of every target, in
//! target order) behind an `ArcSwap`, and a version number. A worker's pool compares the
//! version with one atomic load per checkout and rebuilds its slots only when it changed.
//! A name that stops resolving keeps its last good addresses (logged at warn once per
//! change); a name that never resolved has no endpoints, so its requests answer 502.
//!
//! Lifecycle: `compile` asks for a handle ([`addresses_for`]), after [`at_load`] looked up
//! the config's new names (waiting at most `LOAD_WAIT`); the resolver thread
//! ([`spawn`]) then re-resolves what the running snapshot uses. Handles are shared across
//! reloads while the upstream's targets and checks stay the same, so pools stay too.

// Cold path: the tables are locked by the resolver thread and while a config compiles,
// never by a worker.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tracing::{info, warn};

use super::health::{self, HealthRef};
use crate::config::model::{Health, Target};

/// How long loading a config waits for its new names before going on without them.
const LOAD_WAIT: Duration = Duration::from_secs(5);

/// One address of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Index into the upstream's targets (its Host header and TLS name).
    pub target: usize,
    pub addr: SocketAddr,
}

/// An upstream's endpoints at one moment.
#[derive(Debug, Default)]
pub struct Endpoints {
    pub list: Vec<Endpoint>,
    /// Each endpoint's health-check state, indexed like `list`; empty without checks.
    pub health: Vec<HealthRef>,
}

/// One upstream's address set, shared by the resolver (writer) and the workers.
pub struct Addresses {
    upstream: String,
    targets: Vec<Target>,
    check: Option<Health>,
    every: Duration,
    version: AtomicU64,
    set: ArcSwap<Endpoints>,
}

impl std::fmt::Debug for Addresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Addresses")
            .field("upstream", &self.upstream)
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

/// Compared by identity: the same handle means the same published set.
impl PartialEq for Addresses {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Addresses {
    /// Bumped after each new set is stored.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn load(&self) -> Arc<Endpoints> {
        self.set.load_full()
    }

    /// The host names among the targets, with their ports.
    fn names(&self) -> impl Iterator<Item = (&str, u16)> {
        self.targets
            .iter()
            .filter(|t| t.addr.is_none())
            .map(|t| (t.host.as_str(), t.port))
    }

    /// Rebuilds the endpoint list from `known` answers; stores it (and bumps the version)
    /// when it changed.
    fn publish(&self, known: &dyn Fn(&str, u16) -> Vec<SocketAddr>) -> bool {
        let mut list = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            match t.addr {
                Some(addr) => list.push(Endpoint { target: i, addr }),
                None => list.extend(
                    known(&t.host, t.port)
                        .into_iter()
                        .map(|addr| Endpoint { target: i, addr }),
                ),
            }
        }
        if self.version() > 0 && self.set.load().list == list {
            return false;
        }
        let health = self.check.as_ref().map_or_else(Vec::new, |check| {
            list.iter()
                .map(|e| health::state_for(&self.upstream, e.addr, check))
                .collect()
        });
        self.set.store(Arc::new(Endpoints { list, health }));
        self.version.fetch_add(1, Ordering::AcqRel);
        true
    }
}

type Name = (String, u16);
pub type Lookup = dyn Fn(&str, u16) -> Result<Vec<SocketAddr>, String> + Send + Sync;

/// What is known about one name.
#[derive(Debug, Default)]
struct Known {
    /// The last good answer (kept when a later lookup fails).
    addrs: Vec<SocketAddr>,
    /// The last lookup's error, while it keeps failing.
    error: Option<String>,
    due: Option<Instant>,
    running: bool,
}

/// Names, their answers and the lookups in flight. One serves the process
/// ([`Resolver::global`]); tests make their own with a fake lookup.
pub struct Resolver {
    lookup: Arc<Lookup>,
    names: Mutex<HashMap<Name, Known>>,
    tx: crossbeam::channel::Sender<(Name, Result<Vec<SocketAddr>, String>)>,
    rx: crossbeam::channel::Receiver<(Name, Result<Vec<SocketAddr>, String>)>,
}

impl Resolver {
    pub fn new(lookup: Arc<Lookup>) -> Resolver {
        let (tx, rx) = crossbeam::channel::unbounded();
        Resolver {
            lookup,
            names: Mutex::default(),
            tx,
            rx,
        }
    }

    pub fn global() -> &'static Resolver {
        static GLOBAL: OnceLock<Resolver> = OnceLock::new();
        GLOBAL.get_or_init(|| Resolver::new(Arc::new(system_lookup)))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Name, Known>> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last good addresses of a name (empty if it never resolved).
    pub fn known(&self, host: &str, port: u16) -> Vec<SocketAddr> {
        self.table()
            .get(&(host.to_string(), port))
            .map_or_else(Vec::new, |k| k.addrs.clone())
    }

    /// Starts a lookup of every name in `wanted` that is due (never looked up, or its
    /// `every` has passed) and not already running. Returns how many started.
    pub fn start_due(&self, wanted: &[(Name, Duration)], now: Instant) -> usize {
        let mut table = self.table();
        let mut started = 0;
        for ((host, port), every) in wanted {
            let key = (host.clone(), *port);
            let k = table.entry(key.clone()).or_default();
            if k.running || k.due.is_some_and(|due| now < due) {
                continue;
            }
            k.running = true;
            k.due = Some(now + *every);
            let (lookup, tx) = (self.lookup.clone(), self.tx.clone());
            let spawned = std::thread::Builder::new()
                .name("portico-resolve".into())
                .spawn(move || {
                    let answer = lookup(&key.0, key.1);
                    let _ = tx.send((key, answer));
                });
            match spawned {
                Ok(_) => started += 1,
                Err(_) => k.running = false,
            }
        }
        started
    }

    /// Records answers that arrived, waiting up to `wait` for the first; returns how many.
    pub fn collect(&self, wait: Duration) -> usize {
        let mut got = 0;
        let mut next = self.rx.recv_timeout(wait).ok();
        while let Some((name, answer)) = next {
            self.record(name, answer);
            got += 1;
            next = self.rx.try_recv().ok();
        }
        got
    }

    fn record(&self, (host, port): Name, answer: Result<Vec<SocketAddr>, String>) {
        let mut table = self.table();
        let k = table.entry((host.clone(), port)).or_default();
        k.running = false;
        match answer {
            Ok(addrs) => {
                if addrs != k.addrs || k.error.is_some() {
                    info!(name = %host, port, addresses = ?addrs, "upstream host name resolved");
                }
                k.addrs = addrs;
                k.error = None;
            }
            Err(e) => {
                if k.error.as_ref() != Some(&e) {
                    if k.addrs.is_empty() {
                        warn!(name = %host, port, error = %e, "upstream host name does not resolve; its requests answer 502 until it does");
                    } else {
                        warn!(name = %host, port, error = %e, kept = ?k.addrs, "upstream host name no longer resolves; keeping its last good addresses");
                    }
                }
                k.error = Some(e);
            }
        }
    }

    /// Looks up every name in `wanted` that was never looked up, waiting at most `wait`
    /// for all of them; the rest stay with the resolver thread.
    pub fn resolve_new(&self, wanted: &[(Name, Duration)], wait: Duration) {
        let fresh: Vec<(Name, Duration)> = {
            let table = self.table();
            wanted
                .iter()
                .filter(|(n, _)| !table.contains_key(n))
                .cloned()
                .collect()
        };
        self.start_due(&fresh, Instant::now());
        let deadline = Instant::now() + wait;
        // The resolver thread reads the same channel and may record an answer this one
        // waits for (counting only its own, a reload waited out all 5 s): the table says
        // when every name is in, whoever recorded it.
        loop {
            let running = {
                let table = self.table();
                fresh
                    .iter()
                    .any(|(n, _)| table.get(n).is_some_and(|k| k.running))
            };
            let now = Instant::now();
            if !running || now >= deadline {
                break;
            }
            self.collect((deadline - now).min(Duration::from_millis(10)));
        }
    }

    /// One round of the resolver thread: start due lookups of the names `handles` use,
    /// record answers, publish changed sets.
    pub fn tick(&self, handles: &[Arc<Addresses>], now: Instant, wait: Duration) {
        self.start_due(&wanted(handles), now);
        self.collect(wait);
        for h in handles {
            h.publish(&|host, port| self.known(host, port));
        }
    }
}

/// Every name the handles use, each with the shortest `every` asking for it.
fn wanted(handles: &[Arc<Addresses>]) -> Vec<(Name, Duration)> {
    let mut out: Vec<(Name, Duration)> = Vec::new();
    for h in handles {
        for (host, port) in h.names() {
            match out.iter_mut().find(|(n, _)| n.0 == host && n.1 == port) {
                Some((_, every)) => *every = (*every).min(h.every),
                None => out.push(((host.to_string(), port), h.every)),
            }
        }
    }
    out
}

/// getaddrinfo, TCP addresses only, duplicates removed (order kept).
pub fn system_lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in (host, port).to_socket_addrs().map_err(|e| e.to_string())? {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err("no addresses".to_string());
    }
    Ok(addrs)
}

/// Handles made so far, held weakly: a handle lives as long as a snapshot uses it.
fn handles() -> &'static Mutex<Vec<Weak<Addresses>>> {
    static HANDLES: OnceLock<Mutex<Vec<Weak<Addresses>>>> = OnceLock::new();
    HANDLES.get_or_init(Default::default)
}

/// The address set of an upstream: the running one when nothing that decides it changed
/// (so a reload keeps the worker pools), else a new one published from what the global
/// resolver knows now.
pub fn addresses_for(
    upstream: &str,
    targets: &[Target],
    check: Option<&Health>,
    every: Duration,
) -> Arc<Addresses> {
    let mut all = handles().lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    let same = |h: &Addresses| {
        h.upstream == upstream
            && h.targets == targets
            && h.check.as_ref() == check
            && h.every == every
    };
    if let Some(h) = all.iter().filter_map(Weak::upgrade).find(|h| same(h)) {
        return h;
    }
    let h = Arc::new(Addresses {
        upstream: upstream.to_string(),
        targets: targets.to_vec(),
        check: check.cloned(),
        every,
        version: AtomicU64::new(0),
        set: ArcSwap::from_pointee(Endpoints::default()),
    });
    let r = Resolver::global();
    h.publish(&|host, port| r.known(host, port));
    all.push(Arc::downgrade(&h));
    h
}

/// Looks up the config's names that were never looked up, before it is compiled.
pub fn at_load(upstreams: &[(String, crate::config::model::Upstream)]) {
    let mut wanted: Vec<(Name, Duration)> = Vec::new();
    for (_, u) in upstreams {
        for t in u.targets.iter().filter(|t| t.addr.is_none()) {
            wanted.push(((t.host.clone(), t.port), u.resolve_every));
        }
    }
    if !wanted.is_empty() {
        Resolver::global().resolve_new(&wanted, LOAD_WAIT);
    }
}

/// `portico check`: a warning, with its key path, for each target name that does not
/// resolve now. Lookups run in parallel, at most `LOAD_WAIT` in all.
pub fn check_names(
    upstreams: &[(String, crate::config::model::Upstream)],
) -> Vec<crate::config::ConfigError> {
    use crate::config::KeyPath;
    let (tx, rx) = crossbeam::channel::unbounded();
    let mut asked = 0;
    for (name, u) in upstreams {
        for (i, t) in u.targets.iter().enumerate() {
            if t.addr.is_some() {
                continue;
            }
            let path = KeyPath::root()
                .key("upstreams")
                .key(name)
                .key("targets")
                .index(i);
            let (host, port, tx) = (t.host.clone(), t.port, tx.clone());
            asked += 1;
            std::thread::spawn(move || {
                let _ = tx.send((path, host.clone(), system_lookup(&host, port)));
            });
        }
    }
    let deadline = Instant::now() + LOAD_WAIT;
    let mut out = Vec::new();
    for _ in 0..asked {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((path, host, Err(e))) => out.push(path.error(format!(
                "{host:?} does not resolve ({e}); `run` starts anyway and answers 502 for this target until it does"
            ))),
            Ok(_) => {}
            Err(_) => {
                out.push(crate::config::ConfigError::new(
                    "upstreams",
                    "some host names did not resolve within 5s",
                ));
                break;
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The thread that keeps the running config's names resolved, until stop.
pub fn spawn() {
    let spawned = std::thread::Builder::new()
        .name("portico-resolver".into())
        .spawn(|| {
            let r = Resolver::global();
            while !crate::runtime::shutdown::stop_requested() {
                if let Some((_, snap)) = crate::runtime::reload::current() {
                    let handles: Vec<Arc<Addresses>> =
                        snap.upstreams.iter().map(|u| u.addrs.clone()).collect();
                    r.tick(&handles, Instant::now(), Duration::from_millis(250));
                } else {
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the resolver thread; upstream host names keep their first addresses");
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
