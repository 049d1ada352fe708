//! JWT signing keys: one [`KeySource`] per issuer (and explicit `jwks_uri`), shared by
//! every worker and every config generation, so a reload keeps the keys of issuers it
//! did not change. A side thread (`portico-jwks`) takes the fetches asked for and
//! starts the due background refreshes, each on a fetch thread (`portico-jwksget`) of
//! its own, up to [`MAX_CONCURRENT_FETCHES`] at once, so a slow or unreachable issuer
//! holds up no other's: OIDC discovery (`{issuer}/.well-known/openid-configuration` →
//! `jwks_uri`), then the key set, each request bounded to 1,500 ms and 150,000 bytes
//! (API Gateway's quotas). Workers read the published [`KeySet`] with one atomic load
//! and never wait on a lock.
//!
//! Refetch rules: a key set older than [`MAX_AGE`] is refreshed in the background; a
//! token naming an unknown `kid` asks for one refetch, at most every [`COOLDOWN`] per
//! source, single-flight (concurrent askers wait for the same fetch). A failed fetch
//! keeps the last good key set serving.

// The registry's mutexes are taken when a config is compiled and by the fetching
// threads, never by a worker serving a request (a worker asks through a channel).
#![allow(clippy::disallowed_types)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine;
use crossbeam::channel::{unbounded, Receiver, Sender};
use tracing::{debug, info, warn};

use super::jwks_http::http_get;

pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1500);
pub const MAX_RESPONSE: usize = 150_000;
pub const MAX_AGE: Duration = Duration::from_secs(2 * 3600);
pub const COOLDOWN: Duration = Duration::from_secs(30);
/// Fetches under way at once. Each is for a different key source (a source has at most
/// one: `in_flight`), so up to this many issuers can stall without delaying another;
/// a config with more dead issuers than that does not start a thread for each.
pub const MAX_CONCURRENT_FETCHES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// Big-endian modulus and exponent.
    Rsa {
        n: Box<[u8]>,
        e: Box<[u8]>,
    },
    /// Uncompressed point (0x04 ‖ x ‖ y).
    Ec {
        curve: Curve,
        point: Box<[u8]>,
    },
    Ed25519(Box<[u8]>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<Box<str>>,
    /// The key's own `alg`, when the JWKS names one: a token must use exactly it.
    pub alg: Option<Box<str>>,
    pub key: KeyMaterial,
}

/// A published key set: immutable once built.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    /// Which verdicts may still be served: a worker caches a verified token with the
    /// generation of the set that verified it and serves it only while the published set
    /// has that generation. A fetched set keeps its predecessor's generation when it has
    /// every key the predecessor had (keys added: what they verified still holds) and gets
    /// a new one, unique across issuers, when a key was removed or changed, so a token the
    /// issuer's removed key signed is verified again, and refused, after the next fetch.
    pub generation: u64,
}

/// The generation `new` publishes with, following `old` (see [`KeySet::generation`]).
pub(super) fn generation_after(old: Option<&KeySet>, new: &KeySet) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    match old {
        Some(old) if old.keys.iter().all(|k| new.keys.contains(k)) => old.generation,
        _ => NEXT.fetch_add(1, Ordering::Relaxed),
    }
}

fn b64(s: &str) -> Option<Box<[u8]>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
        .map(Vec::into_boxed_slice)
}

/// A JWK integer as the number it is: leading zero octets dropped. RFC 7518 asks issuers
/// to leave them out, but some publish the zero octet Java's `BigInteger` puts before a
/// modulus (257 octets for a 2048-bit key) or leave short coordinates unpadded, and
/// verifiers that read them as numbers take them; ring refuses a modulus with a leading
/// zero, which failed every token of such an issuer as "signature is invalid".
fn unsigned(b: &[u8]) -> &[u8] {
    let zeros = b.iter().take_while(|&&x| x == 0).count();
    &b[zeros..]
}

impl KeySet {
    /// Parses `{"keys": [...]}`; keys of unknown types, or for encryption only, are left out.
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let list = v
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("JWKS has no \"keys\" array")?;
        let mut keys = Vec::new();
        for k in list {
            let s = |name: &str| k.get(name).and_then(|x| x.as_str());
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match s("kty") {
                Some("RSA") => match (s("n").and_then(b64), s("e").and_then(b64)) {
                    (Some(n), Some(e)) => KeyMaterial::Rsa {
                        n: unsigned(&n).into(),
                        e: unsigned(&e).into(),
                    },
                    _ => continue,
                },
                Some("EC") => {
                    let (curve, size) = match s("crv") {
                        Some("P-256") => (Curve::P256, 32),
                        Some("P-384") => (Curve::P384, 48),
                        _ => continue,
                    };
                    let (Some(x), Some(y)) = (s("x").and_then(b64), s("y").and_then(b64)) else {
                        continue;
                    };
                    let (x, y) = (unsigned(&x), unsigned(&y));
                    if x.len() > size || y.len() > size {
                        continue;
                    }
                    // Each coordinate at its field's full size, as the point encoding needs.
                    let mut point = vec![4];
                    for c in [x, y] {
                        point.resize(point.len() + size - c.len(), 0);
                        point.extend_from_slice(c);
                    }
                    KeyMaterial::Ec {
                        curve,
                        point: point.into(),
                    }
                }
                Some("OKP") if s("crv") == Some("Ed25519") => match s("x").and_then(b64) {
                    Some(x) => KeyMaterial::Ed25519(x),
                    None => continue,
                },
                _ => continue,
            };
            keys.push(Jwk {
                kid: s("kid").map(Into::into),
                alg: s("alg").map(Into::into),
                key,
            });
        }
        Ok(KeySet {
            keys,
            generation: 0,
        })
    }

    pub fn by_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.kid.as_deref() == Some(kid))
    }
}

/// Milliseconds since the first call (a monotonic clock the atomics can hold).
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// The keys of one issuer, and the state of fetching them.
#[derive(Debug)]
pub struct KeySource {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    keys: ArcSwapOption<KeySet>,
    /// Completed fetches (good or bad): a waiting request watches it move.
    attempts: AtomicU64,
    in_flight: AtomicBool,
    /// An unknown-`kid` refetch was asked for and has not completed.
    refetch_pending: AtomicBool,
    /// `now_ms` of the last fetch start, of the last refetch asked for by an unknown
    /// `kid`, and of the last good fetch (0 = never).
    last_attempt: AtomicU64,
    last_refetch: AtomicU64,
    last_success: AtomicU64,
    pub fetch_ok: AtomicU64,
    pub fetch_failed: AtomicU64,
}

impl KeySource {
    fn new(issuer: &str, jwks_uri: Option<&str>) -> Self {
        KeySource {
            issuer: issuer.to_string(),
            jwks_uri: jwks_uri.map(str::to_string),
            keys: ArcSwapOption::empty(),
            attempts: AtomicU64::new(0),
            in_flight: AtomicBool::new(false),
            refetch_pending: AtomicBool::new(false),
            last_attempt: AtomicU64::new(0),
            last_refetch: AtomicU64::new(0),
            last_success: AtomicU64::new(0),
            fetch_ok: AtomicU64::new(0),
            fetch_failed: AtomicU64::new(0),
        }
    }

    /// The published keys (None until the first fetch succeeds).
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// The published key set's generation (arc-swap's lock-free load; nothing allocated).
    pub fn generation(&self) -> Option<u64> {
        self.keys.load().as_ref().map(|k| k.generation)
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Asks the fetcher for fresh keys (a token named a key we don't have). Returns
    /// whether a fetch is now under way, so the caller may wait for it: false during the
    /// cooldown after the last such refetch has completed (so unknown-`kid` traffic costs
    /// the issuer at most one fetch per `COOLDOWN`; the first fetch and the background
    /// refresh don't count, so a rotation right after startup is still picked up).
    pub fn want_refresh(self: &Arc<Self>) -> bool {
        // `refetch_pending` is taken before `last_refetch` is written and released only
        // when the fetch is done, so "not pending, not in flight, asked recently" always
        // means the recent refetch has completed.
        if self.in_flight() || self.refetch_pending.load(Ordering::Acquire) {
            return true;
        }
        let recent = |s: &Self| {
            let last = s.last_refetch.load(Ordering::Acquire);
            last != 0 && now_ms().saturating_sub(last) < COOLDOWN.as_millis() as u64
        };
        if recent(self) {
            return false;
        }
        if self
            .refetch_pending
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return true;
        }
        if recent(self) {
            // A refetch completed between the two looks.
            self.refetch_pending.store(false, Ordering::Release);
            return false;
        }
        self.last_refetch.store(now_ms(), Ordering::Release);
        self.start_fetch()
    }

    /// Single flight: only the caller that flips `in_flight` sends the job.
    fn start_fetch(self: &Arc<Self>) -> bool {
        if self
            .in_flight
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return true;
        }
        self.last_attempt.store(now_ms(), Ordering::Release);
        registry().tx.send(self.clone()).is_ok()
    }

    /// Runs on a fetch thread.
    fn fetch(&self) {
        let started = Instant::now();
        // A panic (a bug met by an IdP's answer) is a failed fetch: unwound, it left
        // `in_flight` set and the pool's count up, and this issuer's keys (after eight
        // such, every issuer's) were never fetched again.
        let fetched =
            std::panic::catch_unwind(|| fetch_keys(&self.issuer, self.jwks_uri.as_deref()))
                .unwrap_or_else(|_| Err("the fetch panicked (a bug: the message is above)".into()));
        match fetched {
            Ok(mut set) => {
                let old = self.keys.load_full();
                let removed = old.as_ref().map_or(0, |o| {
                    o.keys.iter().filter(|k| !set.keys.contains(k)).count()
                });
                set.generation = generation_after(old.as_deref(), &set);
                info!(issuer = %self.issuer, keys = set.keys.len(), removed, ms = started.elapsed().as_millis() as u64, "JWKS fetched");
                self.keys.store(Some(Arc::new(set)));
                self.last_success.store(now_ms(), Ordering::Release);
                self.fetch_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // The last good key set (if any) keeps serving.
                warn!(issuer = %self.issuer, error = %e, "JWKS fetch failed");
                self.fetch_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.in_flight.store(false, Ordering::Release);
        self.refetch_pending.store(false, Ordering::Release);
        self.attempts.fetch_add(1, Ordering::AcqRel);
    }

    /// Background refresh: keys older than `MAX_AGE`, or none yet and the cooldown past.
    fn due(&self, now: u64) -> bool {
        let ok = self.last_success.load(Ordering::Acquire);
        let tried = self.last_attempt.load(Ordering::Acquire);
        let since_try = now.saturating_sub(tried);
        if ok == 0 {
            return since_try >= COOLDOWN.as_millis() as u64;
        }
        now.saturating_sub(ok) >= MAX_AGE.as_millis() as u64
            && since_try >= COOLDOWN.as_millis() as u64
    }
}

struct Registry {
    sources: Mutex<Vec<Arc<KeySource>>>,
    tx: Sender<Arc<KeySource>>,
    pool: Mutex<Pool>,
}

/// The fetch threads: how many run, and the fetches waiting for one.
#[derive(Default)]
struct Pool {
    running: usize,
    waiting: VecDeque<Arc<KeySource>>,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        let (tx, rx) = unbounded();
        std::thread::Builder::new()
            .name("portico-jwks".into())
            .spawn(move || fetch_loop(rx))
            .expect("spawning the JWKS fetcher");
        Registry {
            sources: Mutex::new(Vec::new()),
            tx,
            pool: Mutex::default(),
        }
    })
}

/// The key source for an issuer: the existing one (its keys kept across reloads), or a
/// new one whose first fetch starts now.
pub fn source(issuer: &str, jwks_uri: Option<&str>) -> Arc<KeySource> {
    let r = registry();
    let mut sources = r.sources.lock().unwrap();
    if let Some(s) = sources
        .iter()
        .find(|s| s.issuer == issuer && s.jwks_uri.as_deref() == jwks_uri)
    {
        return s.clone();
    }
    let s = Arc::new(KeySource::new(issuer, jwks_uri));
    sources.push(s.clone());
    drop(sources);
    s.start_fetch();
    s
}

/// Every key source, for metrics.
pub fn sources() -> Vec<Arc<KeySource>> {
    match REGISTRY.get() {
        Some(r) => r.sources.lock().unwrap().clone(),
        None => Vec::new(),
    }
}

/// The `portico-jwks` thread: hands each fetch asked for to a fetch thread, and once a
/// second starts the due background refreshes the same way. It never fetches itself
/// (unless no thread can be started), so no fetch waits behind another issuer's.
fn fetch_loop(rx: Receiver<Arc<KeySource>>) {
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(s) => run(s),
            Err(crossbeam::channel::RecvTimeoutError::Timeout) => {
                let now = now_ms();
                let mut sources = registry().sources.lock().unwrap();
                // A source only the registry holds is no running config's (a reload
                // removed its authorizer, or changed its issuer or `jwks_uri`): it is
                // dropped, not refetched for ever (every 30 s while it failed). A reload
                // builds the new config's sources while the old one still holds its own,
                // so an issuer it keeps keeps its keys.
                sources.retain(|s| Arc::strong_count(s) > 1);
                let due: Vec<_> = sources
                    .iter()
                    .filter(|s| !s.in_flight() && s.due(now))
                    .cloned()
                    .collect();
                drop(sources);
                for s in due {
                    if s.in_flight
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        s.last_attempt.store(now_ms(), Ordering::Release);
                        run(s);
                    }
                }
            }
            Err(_) => return,
        }
    }
}

/// Starts `s`'s fetch on a fetch thread, or queues it while `MAX_CONCURRENT_FETCHES`
/// run (the first to finish takes it). `s` is `in_flight`, so it is queued once.
fn run(s: Arc<KeySource>) {
    let r = registry();
    let mut pool = r.pool.lock().unwrap();
    if pool.running >= MAX_CONCURRENT_FETCHES {
        pool.waiting.push_back(s);
        return;
    }
    pool.running += 1;
    drop(pool);
    let job = s.clone();
    let spawned = std::thread::Builder::new()
        .name("portico-jwksget".into())
        .spawn(move || fetch_thread(job));
    if let Err(e) = spawned {
        // Fetched late rather than never: `in_flight` would otherwise stay set and no
        // refetch of this issuer could start again.
        warn!(error = %e, "cannot start a JWKS fetch thread; fetching on portico-jwks");
        r.pool.lock().unwrap().running -= 1;
        s.fetch();
    }
}

/// A fetch thread: its fetch, then any waiting ones; it ends when none wait.
fn fetch_thread(first: Arc<KeySource>) {
    let mut next = Some(first);
    while let Some(s) = next {
        s.fetch();
        let mut pool = registry().pool.lock().unwrap();
        next = pool.waiting.pop_front();
        if next.is_none() {
            pool.running -= 1;
        }
    }
}

/// Discovery (unless `jwks_uri` is given), then the key set.
pub fn fetch_keys(issuer: &str, jwks_uri: Option<&str>) -> Result<KeySet, String> {
    let uri = match jwks_uri {
        Some(u) => u.to_string(),
        None => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let doc = http_get(&url).map_err(|e| format!("discovery {url}: {e}"))?;
            let v: serde_json::Value = serde_json::from_slice(&doc)
                .map_err(|e| format!("discovery {url}: not JSON: {e}"))?;
            // OpenID Connect Discovery §4.3: the document's issuer MUST be the one it
            // was fetched for, else nothing in it may be used.
            let named = v.get("issuer").and_then(|i| i.as_str());
            if named != Some(issuer) {
                return Err(format!(
                    "discovery {url}: its issuer is {}, not {issuer:?}",
                    named.map_or("missing".to_string(), |n| format!("{n:?}"))
                ));
            }
            let uri = v
                .get("jwks_uri")
                .and_then(|u| u.as_str())
                .ok_or_else(|| format!("discovery {url}: no jwks_uri"))?;
            crate::config::auth::check_url(uri).map_err(|e| format!("discovery {url}: {e}"))?;
            uri.to_string()
        }
    };
    debug!(%issuer, %uri, "fetching JWKS");
    let body = http_get(&uri).map_err(|e| format!("{uri}: {e}"))?;
    KeySet::parse(&body).map_err(|e| format!("{uri}: {e}"))
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
