//! Authorizer metrics: `portico_authorizer_requests_total{api,authorizer,result}`,
//! `portico_authorizer_cache_hits_total{api,authorizer}` and
//! `portico_jwks_fetches_total{issuer,outcome}`. Counters live in a registry keyed by
//! (api, authorizer) so they keep counting across reloads. Each worker counts in its own
//! cache-line-aligned slot (by worker id), so workers never write the same line; a
//! scrape sums the slots.

// The registry's mutex is taken when a config is compiled and when metrics are
// rendered; requests only touch the atomics.
#![allow(clippy::disallowed_types)]

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::names;

/// Slots per counter set; workers beyond this share slots (still exact: the adds are
/// atomic read-modify-writes).
const SLOTS: usize = 64;

#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Slot {
    pub allow: AtomicU64,
    /// 401
    pub unauthorized: AtomicU64,
    /// 403
    pub forbidden: AtomicU64,
    /// 500: the authorizer failed.
    pub error: AtomicU64,
    pub cache_hits: AtomicU64,
}

#[derive(Debug)]
pub struct AuthCounters {
    slots: Box<[Slot]>,
}

impl Default for AuthCounters {
    fn default() -> Self {
        AuthCounters {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Unauthorized,
    Forbidden,
    Error,
}

impl AuthCounters {
    /// Counts a decision made on worker `worker`.
    pub fn count(&self, worker: usize, o: Outcome) {
        let s = &self.slots[worker % SLOTS];
        let c = match o {
            Outcome::Allow => &s.allow,
            Outcome::Unauthorized => &s.unauthorized,
            Outcome::Forbidden => &s.forbidden,
            Outcome::Error => &s.error,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn hit(&self, worker: usize) {
        self.slots[worker % SLOTS]
            .cache_hits
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The sum over workers of one counter.
    pub fn total(&self, field: impl Fn(&Slot) -> &AtomicU64) -> u64 {
        self.slots
            .iter()
            .map(|s| field(s).load(Ordering::Relaxed))
            .sum()
    }
}

type Entry = (String, String, Arc<AuthCounters>);
/// One counter of a slot.
type Field = fn(&Slot) -> &AtomicU64;

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

pub fn counters(api: &str, authorizer: &str) -> Arc<AuthCounters> {
    let mut r = REGISTRY.lock().unwrap();
    if let Some((_, _, c)) = r.iter().find(|(a, n, _)| a == api && n == authorizer) {
        return c.clone();
    }
    let c = Arc::new(AuthCounters::default());
    r.push((api.to_string(), authorizer.to_string(), c.clone()));
    c
}

/// Appends the authorizer metrics (nothing when no authorizer was ever configured).
pub fn render(out: &mut String) {
    let r = REGISTRY.lock().unwrap();
    if !r.is_empty() {
        let _ = writeln!(
            out,
            "# HELP {n} Requests decided by an authorizer, by result.\n# TYPE {n} counter",
            n = names::AUTHORIZER_REQUESTS_TOTAL
        );
        for (api, name, c) in r.iter() {
            let fields: [(&str, Field); 4] = [
                ("allow", |s| &s.allow),
                ("unauthorized", |s| &s.unauthorized),
                ("forbidden", |s| &s.forbidden),
                ("error", |s| &s.error),
            ];
            for (result, field) in fields {
                let _ = writeln!(
                    out,
                    "{}{{api=\"{}\",authorizer=\"{}\",result=\"{result}\"}} {}",
                    names::AUTHORIZER_REQUESTS_TOTAL,
                    crate::metrics::registry::escape(api),
                    crate::metrics::registry::escape(name),
                    c.total(field)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP {n} Requests decided from a worker's verdict cache.\n# TYPE {n} counter",
            n = names::AUTHORIZER_CACHE_HITS_TOTAL
        );
        for (api, name, c) in r.iter() {
            let _ = writeln!(
                out,
                "{}{{api=\"{}\",authorizer=\"{}\"}} {}",
                names::AUTHORIZER_CACHE_HITS_TOTAL,
                crate::metrics::registry::escape(api),
                crate::metrics::registry::escape(name),
                c.total(|s| &s.cache_hits)
            );
        }
    }
    drop(r);
    let sources = super::jwks::sources();
    if !sources.is_empty() {
        let _ = writeln!(
            out,
            "# HELP {n} JWKS (and OIDC discovery) fetches, by outcome.\n# TYPE {n} counter",
            n = names::JWKS_FETCHES_TOTAL
        );
        // One series per issuer: two sources of one issuer (discovered and a given
        // `jwks_uri`) wrote two series with the same labels, and Prometheus drops one.
        let mut by_issuer: std::collections::BTreeMap<&str, [u64; 2]> = Default::default();
        for s in &sources {
            let n = by_issuer.entry(&s.issuer).or_default();
            n[0] += s.fetch_ok.load(Ordering::Relaxed);
            n[1] += s.fetch_failed.load(Ordering::Relaxed);
        }
        for (issuer, n) in by_issuer {
            for (outcome, n) in [("ok", n[0]), ("error", n[1])] {
                let _ = writeln!(
                    out,
                    "{}{{issuer=\"{}\",outcome=\"{outcome}\"}} {n}",
                    names::JWKS_FETCHES_TOTAL,
                    crate::metrics::registry::escape(issuer),
                );
            }
        }
    }
}
