//! Which run of configs each cached route's entries belong to.
//!
//! A route's fingerprint (`rules::compile_route`) says what shapes its responses, but not
//! whether the route was cached all along: a reload that turned its `cache` off (or
//! removed the route) and a later one that turned it back on as before gave the same
//! fingerprint, and entries stored before the first reload were served again after the
//! second, older than the answers the backend gave in between. Workers cannot tell by
//! themselves (a busy worker may never see the generation in between), so each compiled
//! config stamps its fingerprints here, in the order configs are compiled: a route cached
//! with the fingerprint it had in the config compiled before keeps its epoch; any other
//! gets a new one. The tag entries carry is the fingerprint with its epoch.
//!
//! A config compiled but never applied (a reload that fails later) can only start new
//! epochs early: its routes' entries become misses, never the reverse.

// Cold path: locked only while a config is compiled; workers only compare the tags.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
#[cfg(not(test))]
use std::sync::Mutex;

/// Per API stage: route key → (fingerprint, epoch), as last compiled.
type Stamps = HashMap<(String, String), HashMap<String, (u64, u64)>>;

struct Epochs {
    /// None until the first config is compiled (a `static` can't build a map).
    stamps: Option<Stamps>,
    next: u64,
}

/// The process's epochs: one config lineage per process. Unit tests compile unrelated
/// configs on many threads at once, so there each test thread has its own.
#[cfg(not(test))]
fn with_epochs<R>(f: impl FnOnce(&mut Epochs) -> R) -> R {
    static EPOCHS: Mutex<Epochs> = Mutex::new(Epochs {
        stamps: None,
        next: 0,
    });
    f(&mut EPOCHS.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
fn with_epochs<R>(f: impl FnOnce(&mut Epochs) -> R) -> R {
    thread_local! {
        static EPOCHS: std::cell::RefCell<Epochs> =
            const { std::cell::RefCell::new(Epochs { stamps: None, next: 0 }) };
    }
    EPOCHS.with_borrow_mut(f)
}

/// The tags for one stage's cached routes, given as (route key, fingerprint); a route
/// left out is not cached in this config.
pub fn stamp(api: &str, stage: &str, routes: &[(&str, u64)]) -> Vec<u64> {
    with_epochs(|Epochs { stamps, next }| {
        let stamps = stamps.get_or_insert_with(HashMap::new);
        let before = stamps.remove(&(api.to_string(), stage.to_string()));
        let mut now = HashMap::with_capacity(routes.len());
        let tags = routes
            .iter()
            .map(|&(route, fingerprint)| {
                let epoch = match before.as_ref().and_then(|b| b.get(route)) {
                    Some(&(was, epoch)) if was == fingerprint => epoch,
                    _ => {
                        *next += 1;
                        *next
                    }
                };
                now.insert(route.to_string(), (fingerprint, epoch));
                let mut h = std::hash::DefaultHasher::new();
                (fingerprint, epoch).hash(&mut h);
                h.finish()
            })
            .collect();
        stamps.insert((api.to_string(), stage.to_string()), now);
        tags
    })
}

/// After a config is compiled: the stages it does not cache (its `cache` off, or the
/// stage or its API removed) lose their routes' epochs. Workers drop such a stage's
/// shard, but one that never saw that config would hand its old shard on.
pub fn forget_uncached_stages(cached: &[(&str, &str)]) {
    with_epochs(|e| {
        if let Some(stamps) = &mut e.stamps {
            stamps.retain(|(api, stage), _| cached.contains(&(api.as_str(), stage.as_str())));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{forget_uncached_stages, stamp};

    #[test]
    fn a_route_keeps_its_tag_only_while_it_stays_cached_unchanged() {
        let (api, stage) = ("epochs-test-api", "prod");
        let first = stamp(api, stage, &[("GET /a", 1), ("GET /b", 2)]);
        assert_eq!(stamp(api, stage, &[("GET /a", 1), ("GET /b", 2)]), first);
        // /b's cache off, then on again as before: a new tag; /a unchanged throughout.
        let off = stamp(api, stage, &[("GET /a", 1)]);
        assert_eq!(off[0], first[0]);
        let back = stamp(api, stage, &[("GET /a", 1), ("GET /b", 2)]);
        assert_eq!(back[0], first[0]);
        assert_ne!(back[1], first[1]);
        // A changed fingerprint and back: new tags both times.
        let changed = stamp(api, stage, &[("GET /a", 9), ("GET /b", 2)]);
        assert_ne!(changed[0], first[0]);
        let again = stamp(api, stage, &[("GET /a", 1), ("GET /b", 2)]);
        assert_ne!(again[0], first[0]);
        assert_eq!(again[1], back[1]);
        // Another stage of the same API is its own.
        let other = stamp(api, "beta", &[("GET /b", 2)]);
        assert_eq!(stamp(api, "beta", &[("GET /b", 2)]), other);
        // A config that caches neither stage (here: only another API's), then both again.
        forget_uncached_stages(&[("epochs-test-other", "prod")]);
        assert_ne!(stamp(api, "beta", &[("GET /b", 2)]), other);
        assert_ne!(
            stamp(api, stage, &[("GET /a", 1), ("GET /b", 2)])[1],
            again[1]
        );
    }
}
