//! Hot reload. The running config is one `Arc<Snapshot>` plus a generation number. A
//! reload (SIGHUP, `POST /reload`, or a file change with `watch: true`) validates the
//! whole file first; only a valid file is compiled and published. Workers compare the
//! generation (one relaxed atomic load) before each request and on their tick, and switch
//! between requests: a request always finishes on the generation it started with. A
//! reload returns once every worker has applied it on its tick (its listeners).
//!
//! The lock here is taken only by the reloading thread and by a worker at the moment it
//! sees a new generation, never per request.

// Cold path: locked by a reload and by a worker the moment it sees a new generation, never per request.
#![allow(clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::config::compile::{compile, Snapshot};
use crate::config::view::redacted_view;
use crate::config::{check_file_text_with, read, ConfigError, ConfigErrors, KeyPath};

struct Current {
    generation: AtomicU64,
    snapshot: RwLock<Arc<Snapshot>>,
    path: PathBuf,
    /// Serialises reloads so two triggers can't interleave validate and publish.
    reloading: Mutex<()>,
}

static CURRENT: OnceLock<Current> = OnceLock::new();

/// The generation each worker has applied on its tick (listeners bound and closed),
/// one slot per worker: a reload answers only once the addresses it adds accept and the
/// ones it removes refuse, on every worker.
static APPLIED: OnceLock<Box<[AtomicU64]>> = OnceLock::new();

/// How long a reload waits for the workers to apply it before it answers anyway (a
/// worker's tick is 50 ms; one busy for longer is logged).
const APPLY_WAIT: Duration = Duration::from_secs(2);

/// Called once the worker count is known, before the workers start.
pub fn register_workers(count: usize) {
    let _ = APPLIED.set((0..count).map(|_| AtomicU64::new(0)).collect());
}

/// A worker has applied `generation`'s listeners.
pub fn applied(worker: usize, generation: u64) {
    if let Some(slot) = APPLIED.get().and_then(|a| a.get(worker)) {
        slot.store(generation, Ordering::Release);
    }
}

/// Waits until every worker has applied `generation` (or a stop began: draining
/// workers no longer tick). False when one had not within `APPLY_WAIT`.
fn wait_for_workers(generation: u64) -> bool {
    let Some(workers) = APPLIED.get() else {
        return true;
    };
    let deadline = std::time::Instant::now() + APPLY_WAIT;
    loop {
        let behind = workers
            .iter()
            .filter(|w| w.load(Ordering::Acquire) < generation)
            .count();
        if behind == 0 || super::shutdown::stop_requested() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            warn!(
                generation,
                workers = behind,
                "reload: not every worker has switched yet"
            );
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Installs the first snapshot (at start).
pub fn install(path: &Path, snapshot: Arc<Snapshot>) {
    let _ = CURRENT.set(Current {
        generation: AtomicU64::new(1),
        snapshot: RwLock::new(snapshot),
        path: path.to_path_buf(),
        reloading: Mutex::new(()),
    });
}

/// The generation number of the running config (0 before `install`).
pub fn generation() -> u64 {
    CURRENT
        .get()
        .map_or(0, |c| c.generation.load(Ordering::Acquire))
}

/// The running snapshot and its generation.
pub fn current() -> Option<(u64, Arc<Snapshot>)> {
    let c = CURRENT.get()?;
    let snap = c.snapshot.read().unwrap_or_else(|e| e.into_inner());
    Some((c.generation.load(Ordering::Acquire), snap.clone()))
}

pub fn config_path() -> Option<PathBuf> {
    CURRENT.get().map(|c| c.path.clone())
}

/// A reload that took effect: its generation, and what it logged as warnings (what
/// `check` warns about, and keys that wait for a restart), each with its key path.
pub struct Reloaded {
    pub generation: u64,
    pub warnings: Vec<ConfigError>,
}

/// A reload that did not take effect: every error, and the warnings found all the same
/// (what `check` would print beside the errors), each with its key path.
pub struct Refused {
    pub errors: ConfigErrors,
    pub warnings: Vec<ConfigError>,
}

impl From<ConfigErrors> for Refused {
    fn from(errors: ConfigErrors) -> Self {
        Refused {
            errors,
            warnings: Vec::new(),
        }
    }
}

/// Re-reads the config file. On any error the running config stays and the errors are
/// returned (and logged), with the file's warnings; on success every worker switches
/// between requests.
pub fn reload() -> Result<Reloaded, Refused> {
    let Some(c) = CURRENT.get() else {
        return Err(ConfigErrors::from(ConfigError::new("", "not running")).into());
    };
    let _one_at_a_time = c.reloading.lock().unwrap_or_else(|e| e.into_inner());
    // A stop under way applies no new config (its workers and listeners are closing):
    // said, not answered "Reloaded" for addresses that never listen. nginx's master
    // ignores a reload once a quit began.
    if super::shutdown::stop_requested() {
        warn!(config = %c.path.display(), "reload refused: Portico is stopping");
        let stopping = ConfigError::new("", "Portico is stopping: the config is not reloaded");
        return Err(ConfigErrors::from(stopping).into());
    }
    let mut warnings = Vec::new();
    let result = read(&c.path).and_then(|text| {
        // As `check` warns (README: a reload warns what `check` does), a file with
        // errors too: a refused reload said only its errors, and the warnings that
        // explain some of them came one reload later. This thread is not a worker, and
        // check_names gives up after 5 s.
        let names =
            |cfg: &crate::config::Config| crate::upstream::resolve::check_names(&cfg.upstreams);
        let report = check_file_text_with(&text, &c.path, &names);
        warnings = report.warnings;
        let Some(mut cfg) = report.config else {
            return Err(ConfigErrors(report.errors));
        };
        let running = c.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone();
        let kept = keep_what_waits_for_a_restart(&running, &mut cfg, &mut warnings);
        let mut next = compile(&cfg);
        next.view = redacted_view(&text);
        for key in kept {
            keep_in_view(&mut next.view, &running.view, key);
        }
        next.config_hash = crate::cluster::hash_text(&text);
        check_compatible(&running, &next)?;
        // Unchanged limits keep their buckets: a reload neither refills nor empties them.
        next.traffic.inherit(&running.traffic);
        Ok(next)
    });
    match result {
        Ok(next) => {
            crate::config::warnings::log(&warnings);
            crate::metrics::access_log::configure(&next.server.access_log.path);
            crate::cluster::set_config_hash(next.config_hash.clone());
            let next = Arc::new(next);
            *c.snapshot.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
            // The new plans and config keys, published to the workers' key table.
            if let Some(shared) = crate::global::shared() {
                match shared.reconfigure(&next.traffic) {
                    // Known only now: created keys live in the store, not the file.
                    Ok(hidden) => {
                        crate::config::warnings::log(&hidden);
                        warnings.extend(hidden);
                    }
                    Err(e) => {
                        error!(error = %e, "reload: cannot update API keys from the state store")
                    }
                }
            }
            let generation = c.generation.fetch_add(1, Ordering::AcqRel) + 1;
            // Answered once it is in effect: a client told "Reloaded" finds the new
            // addresses listening and the removed ones closed.
            wait_for_workers(generation);
            info!(generation, config = %c.path.display(), "config reloaded");
            Ok(Reloaded {
                generation,
                warnings,
            })
        }
        Err(errors) => {
            // One record per error: a log line is one line (the writer escapes breaks).
            error!(config = %c.path.display(), count = errors.0.len(), warnings = warnings.len(), "reload refused; the running config stays");
            for e in &errors.0 {
                error!("reload refused: {e}");
            }
            crate::config::warnings::log(&warnings);
            Err(Refused { errors, warnings })
        }
    }
}

/// Keys a running process applies only at a restart: each that the file changes gets a
/// warning and keeps its running value in the next snapshot, so the snapshot always holds
/// what runs (the next reload compares with that, not with the last file: a file put
/// back to the running value warns no more) and limits are sized for the workers there
/// are. Returns the keys kept (their paths in the view, `GET /config`).
fn keep_what_waits_for_a_restart(
    running: &Snapshot,
    cfg: &mut crate::config::Config,
    warnings: &mut Vec<ConfigError>,
) -> Vec<&'static [&'static str]> {
    let mut kept: Vec<&'static [&'static str]> = Vec::new();
    let mut restart = |key: &'static [&'static str]| {
        let message = "changed, but takes effect at the next restart; the running value stays";
        warnings.push(ConfigError::new(key.join("."), message));
        kept.push(key);
    };
    if cfg.server.workers != running.server.workers {
        restart(&["server", "workers"]);
        cfg.server.workers = running.server.workers;
    }
    if cfg.server.driver != running.server.driver {
        restart(&["server", "driver"]);
        cfg.server.driver = running.server.driver;
    }
    let admin =
        |a: &Option<crate::config::model::Admin>| a.as_ref().map(|a| (a.listen, a.token.clone()));
    if admin(&cfg.admin) != admin(&running.traffic.admin) {
        restart(&["admin"]);
        cfg.admin = running.traffic.admin.clone();
    }
    if cfg.state_dir != running.traffic.state_dir {
        restart(&["state_dir"]);
        cfg.state_dir = running.traffic.state_dir.clone();
    }
    // The state store opens at start, when the config then needs one: plans or keys a
    // reload brings to a process without one count in memory only, and a restart the
    // same day gave a spent quota afresh.
    let no_store = crate::global::shared().is_some_and(|s| s.store.is_none());
    if no_store {
        for (key, added) in [
            ("usage_plans", !cfg.usage_plans.is_empty()),
            ("api_keys", !cfg.api_keys.is_empty()),
        ] {
            if added {
                warnings.push(ConfigError::new(
                    key,
                    "this process started without a state store (no plans, keys, admin or cluster then): quota counts and usage are kept in memory only until the next restart",
                ));
            }
        }
    }
    kept
}

/// Puts the running value at `key` (as the running view has it, or nothing) into the
/// next view: `GET /config` is the running config, and the file's value for a key that
/// waits for a restart does not run (nor did the admin API move to its `admin.listen`).
fn keep_in_view(view: &mut serde_json::Value, running: &serde_json::Value, key: &[&str]) {
    use serde_json::Value;
    let Some((last, parents)) = key.split_last() else {
        return;
    };
    let was = parents
        .iter()
        .try_fold(running, |v, k| v.get(k))
        .and_then(|v| v.get(last));
    let mut at = view;
    for k in parents {
        let Value::Object(map) = at else { return };
        at = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    let Value::Object(map) = at else { return };
    match was {
        Some(v) => map.insert(last.to_string(), v.clone()),
        None => map.remove(*last),
    };
}

/// What a running process can't change, and addresses someone else already holds.
fn check_compatible(running: &Snapshot, next: &Snapshot) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let was_listening = |a: &std::net::SocketAddr| {
        running.server.listen.contains(a) || running.server.tls_listen.contains(a)
    };
    let lists = [
        ("listen", &next.server.listen),
        ("tls_listen", &next.server.tls_listen),
    ];
    for (list, addrs) in lists {
        for (i, addr) in addrs.iter().enumerate() {
            if was_listening(addr) {
                continue;
            }
            if let Err(e) = super::listen_socket::address_is_free(*addr) {
                let key = KeyPath::root().key("server").key(list).index(i);
                let message = format!("cannot listen on {addr}: {e}");
                errors.push(ConfigError::new(key.to_string(), message));
            }
        }
    }
    if running.traffic.cluster != next.traffic.cluster {
        errors.push(ConfigError::new(
            "cluster",
            "cannot change while running; restart the node",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// With `watch: true`, polls the file once a second and reloads when it changed. Polling
/// needs no inotify plumbing; the stamp is the file's inode and device, size, and change
/// and modification times, so a file renamed over it is noticed even when it keeps the
/// old modification time (`cp -p`, `rsync -t`, then `mv`). A change is applied once the
/// stamp has held for one more poll: a file written in place in several writes can be
/// caught half-written, and a prefix of a config is often a valid config that serves
/// less (every API cut off after `server:`).
pub fn spawn_watcher(path: &Path) {
    let path = path.to_path_buf();
    let _ = std::thread::Builder::new()
        .name("portico-watch".into())
        .spawn(move || {
            let stamp = |p: &Path| {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(p).ok()?;
                Some((
                    m.dev(),
                    m.ino(),
                    m.len(),
                    (m.ctime(), m.ctime_nsec()),
                    m.modified().ok(),
                ))
            };
            let mut last = stamp(&path);
            let mut changed = false;
            loop {
                std::thread::sleep(Duration::from_secs(1));
                if super::shutdown::stop_requested() {
                    return;
                }
                let now = stamp(&path);
                if now != last {
                    // Still being written, perhaps: wait for it to hold still.
                    last = now;
                    changed = true;
                    continue;
                }
                if std::mem::take(&mut changed) && current().is_some_and(|(_, s)| s.watch) {
                    let _ = reload();
                }
            }
        });
}
