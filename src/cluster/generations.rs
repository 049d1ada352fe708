//! Cache flush generations: each stage's counter in Redis, raised by a node that flushes
//! its cache; a node that sees a newer one (at its sync, or in a flush message) empties
//! that stage's cache too.

// Cold path: touched by the side thread only.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tracing::info;

/// A stage's flush generation, from the periodic read or a flush message: empties the
/// stage's cache on this node when it is newer than the last one seen (`record_only`
/// at the first read: what was flushed before this node started is not its concern).
pub(super) fn generation(stage: &str, g: i64, record_only: bool) {
    let mut seen = seen_generations().lock().unwrap();
    if seen.get(stage).is_some_and(|old| *old >= g) {
        return;
    }
    seen.insert(stage.to_string(), g);
    drop(seen);
    if record_only {
        return;
    }
    if let (Some((api, st)), Some(hook)) = (stage.split_once('/'), super::flush_hook()) {
        info!(
            api,
            stage = st,
            generation = g,
            "cluster: cache flushed on another node"
        );
        hook(api, st);
    }
}

/// The newest flush generation seen of each stage.
fn seen_generations() -> &'static Mutex<HashMap<String, i64>> {
    static SEEN: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Redis lost its generations: the next ones start again from 1.
pub(super) fn forget_generations() {
    seen_generations().lock().unwrap().clear();
}
