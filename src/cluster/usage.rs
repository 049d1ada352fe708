//! This node's per-day usage counts in Redis (`usage:<plan>:<day>`, field
//! `<key>|<node>`): written by the side thread at each sync and at a stop.

// Cold path: the side thread's own state; workers never touch it.
#![allow(clippy::disallowed_types)]

use std::collections::{HashMap, HashSet};

use redis::aio::MultiplexedConnection;
use tracing::warn;

use super::{scripts, Cluster};
use crate::global::usage::today;

/// (plan, key, day)
pub(super) type DayKey = (String, String, u32);

/// Writes this node's per-day usage counts that changed (absolute values, raised
/// only: see `scripts::RAISE`); `sent` is what Redis has from this node. What Redis has
/// not taken stays in memory for the next try, so an outage loses nothing and a retry
/// counts nothing twice. With `stored` (Redis lost its data), also the counts of today
/// and yesterday this node's state store holds for keys it has no counter for in this
/// run: keys revoked before this node started, whose counts were Redis's only copy
/// besides the store; `stored` is cleared once Redis took them.
pub(super) async fn flush_usage(
    c: &Cluster,
    mut m: MultiplexedConnection,
    sent: &mut HashMap<DayKey, u64>,
    stored: &mut bool,
) -> redis::RedisResult<()> {
    let mut counts = Vec::new();
    let mut counted = HashSet::new();
    for (plan, key, cells) in c.shared.keys.usage_cells() {
        for (day, count) in cells.day_counts() {
            counts.push(((plan.clone(), key.clone(), day), count));
        }
        counted.insert((plan, key));
    }
    if *stored {
        counts.extend(
            stored_counts(c)
                .into_iter()
                .filter(|((p, k, _), _)| !counted.contains(&(p.clone(), k.clone()))),
        );
    }
    let mut by_hash: HashMap<String, Vec<(String, u64, DayKey)>> = HashMap::new();
    for (k, count) in counts {
        if count == 0 || sent.get(&k) == Some(&count) {
            continue;
        }
        by_hash
            .entry(c.key(&format!("usage:{}:{}", k.0, k.2)))
            .or_default()
            .push((format!("{}|{}", k.1, c.usage_node), count, k));
    }
    for (hash, fields) in by_hash {
        let mut inv = scripts::raise().key(&hash);
        for (field, count, _) in &fields {
            inv.arg(field).arg(*count);
        }
        let replaced: i64 = inv.invoke_async(&mut m).await?;
        if replaced > 0 {
            warn!(%hash, replaced, "cluster: usage counts in Redis that were no count (changed outside Portico) were replaced by this node's counts");
        }
        for (_, count, k) in fields {
            sent.insert(k, count);
        }
    }
    *stored = false;
    let oldest = today().saturating_sub(1);
    sent.retain(|(_, _, day), _| *day >= oldest);
    Ok(())
}

/// This node's counts of today and yesterday in its state store, every key of every
/// plan of the config.
fn stored_counts(c: &Cluster) -> Vec<(DayKey, u64)> {
    let Some(store) = c.shared.store.as_ref() else {
        return Vec::new();
    };
    let day = today();
    let mut out = Vec::new();
    for plan in c.shared.keys.plans() {
        match store.usage(&plan.name, None, day.saturating_sub(1), day) {
            Ok(rows) => out.extend(rows.into_iter().map(|r| ((r.plan, r.key, r.day), r.count))),
            Err(e) => {
                warn!(error = %e, plan = %plan.name, "cluster: cannot read the usage counts in the store")
            }
        }
    }
    out
}
