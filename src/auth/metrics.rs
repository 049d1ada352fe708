//! Authorizer metrics: `portico_authorizer_requests_total{api,authorizer,result}`,
//! `portico_authorizer_cache_hits_total{api,authorizer}` and
//! `portico_jwks_fetches_total{issuer,outcome}`. Counters live in a registry keyed by
//! (api, authorizer) so they keep counting across reloads.

// The registry's mutex is taken when a config is compiled and when metrics are
// rendered; requests only touch the atomics.
#![allow(clippy::disallowed_types)]

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct AuthCounters {
    pub allow: AtomicU64,
    /// 401
    pub unauthorized: AtomicU64,
    /// 403
    pub forbidden: AtomicU64,
    /// 500: the authorizer failed.
    pub error: AtomicU64,
    pub cache_hits: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Unauthorized,
    Forbidden,
    Error,
}

impl AuthCounters {
    pub fn count(&self, o: Outcome) {
        let c = match o {
            Outcome::Allow => &self.allow,
            Outcome::Unauthorized => &self.unauthorized,
            Outcome::Forbidden => &self.forbidden,
            Outcome::Error => &self.error,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }
}

type Entry = (String, String, Arc<AuthCounters>);

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

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the authorizer metrics (nothing when no authorizer was ever configured).
pub fn render(out: &mut String) {
    let r = REGISTRY.lock().unwrap();
    if !r.is_empty() {
        out.push_str("# HELP portico_authorizer_requests_total Requests decided by an authorizer, by result.\n# TYPE portico_authorizer_requests_total counter\n");
        for (api, name, c) in r.iter() {
            for (result, n) in [
                ("allow", &c.allow),
                ("unauthorized", &c.unauthorized),
                ("forbidden", &c.forbidden),
                ("error", &c.error),
            ] {
                let _ = writeln!(
                    out,
                    "portico_authorizer_requests_total{{api=\"{}\",authorizer=\"{}\",result=\"{result}\"}} {}",
                    esc(api),
                    esc(name),
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP portico_authorizer_cache_hits_total Requests decided from a worker's verdict cache.\n# TYPE portico_authorizer_cache_hits_total counter\n");
        for (api, name, c) in r.iter() {
            let _ = writeln!(
                out,
                "portico_authorizer_cache_hits_total{{api=\"{}\",authorizer=\"{}\"}} {}",
                esc(api),
                esc(name),
                c.cache_hits.load(Ordering::Relaxed)
            );
        }
    }
    drop(r);
    let sources = super::jwks::sources();
    if !sources.is_empty() {
        out.push_str("# HELP portico_jwks_fetches_total JWKS (and OIDC discovery) fetches, by outcome.\n# TYPE portico_jwks_fetches_total counter\n");
        for s in sources {
            for (outcome, n) in [("ok", &s.fetch_ok), ("error", &s.fetch_failed)] {
                let _ = writeln!(
                    out,
                    "portico_jwks_fetches_total{{issuer=\"{}\",outcome=\"{outcome}\"}} {}",
                    esc(&s.issuer),
                    n.load(Ordering::Relaxed)
                );
            }
        }
    }
}
