//! The API key registry: which keys are live (config keys less revoked ones, plus keys
//! created through the admin API), their plan keys and usage counters. Only the admin
//! thread, the flusher and a reload take its lock; workers read the table it publishes.

// Cold path: the key registry is locked by admin calls and reloads; workers read the published table through arc-swap.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::keys::{digest, KeyEntry, KeyTable, PlanKey};
use super::usage::{today, UsageCells};
use crate::cluster::SharedLimit;
use crate::config::model::Quota;
use crate::config::traffic::{PlanRt, TrafficRt};
use crate::store::{Store, StoreError, StoredKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Admin,
}

/// What `GET /api-keys` shows: never the value.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub name: String,
    pub plan: Option<String>,
    pub source: Source,
    pub created: Option<u64>,
}

struct Active {
    info: KeyInfo,
    sha256: [u8; 32],
    /// A config key's place in `api_keys`, for warnings' key paths.
    at: Option<usize>,
}

/// A key created through the admin API, as the store (or Redis) keeps it.
impl From<StoredKey> for Active {
    fn from(k: StoredKey) -> Self {
        Active {
            info: KeyInfo {
                name: k.name,
                plan: k.plan,
                source: Source::Admin,
                created: Some(k.created),
            },
            sha256: k.sha256,
            at: None,
        }
    }
}

/// A created key joins the active ones unless a config key holds its name; then it is
/// hidden (and comes back when that config key leaves).
fn admit_created(active: &mut Vec<Active>, shadowed: &mut Vec<(String, [u8; 32])>, k: StoredKey) {
    let k = Active::from(k);
    if let Some(w) = hidden_by_config(active, &k) {
        crate::config::warnings::log(&[w]);
        shadowed.push((k.info.name, k.sha256));
        return;
    }
    active.push(k);
}

/// The warning, at the config key's path, when a config key hides created key `k`: one
/// of the same name, or of the same value. A presented value finds one key, so two keys
/// of one value left it to the table's order which key (plan, usage) it was, while
/// `GET /api-keys` listed both. The config key wins either way; the created key comes
/// back once that config key leaves the config (or is revoked), at a reload or a start.
fn hidden_by_config(active: &[Active], k: &Active) -> Option<crate::config::ConfigError> {
    let config = || active.iter().filter(|a| a.info.source == Source::Config);
    let (a, field, what) = match config().find(|a| a.info.name == k.info.name) {
        Some(a) => (a, "name", "this name"),
        None => (
            config().find(|a| a.sha256 == k.sha256)?,
            "value",
            "this value",
        ),
    };
    Some(crate::config::ConfigError::new(
        format!("api_keys[{}].{field}", a.at.unwrap_or_default()),
        format!(
            "the key {:?} created through the admin API has {what} too; the config key wins and {:?} is not served while this key is in the config",
            k.info.name, k.info.name
        ),
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("an API key named {0:?} already exists")]
    Conflict(String),
    #[error("no API key named {0:?}")]
    NotFound(String),
    #[error("no usage plan named {0:?}")]
    UnknownPlan(String),
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why `POST /api-keys` refuses a revoked config key's value (here, and in a cluster
/// when Redis has the revocation).
pub const REVOKED_VALUE: &str =
    "that value belongs to a revoked config key, and a revoked config key's value is never \
     accepted again: give another value, or none to have one generated";

/// (plan name, key name)
type UsageKey = (String, String);

struct Registry {
    active: Vec<Active>,
    /// Created keys hidden by a config key of the same name (name, digest): revoking
    /// that name removes them too, so they cannot come back.
    shadowed: Vec<(String, [u8; 32])>,
    plans: Vec<PlanRt>,
    /// Live plan keys, rebuilt only when their plan's limits change.
    plan_keys: HashMap<UsageKey, Arc<PlanKey>>,
    /// Every usage counter of this run, revoked keys' included but for those that
    /// counted nothing (`forget_gone`).
    usage: HashMap<UsageKey, Arc<UsageCells>>,
    next_slot: u32,
}

pub struct Keys {
    table: Arc<ArcSwap<KeyTable>>,
    reg: Mutex<Registry>,
    workers: usize,
    /// `cluster.exact_below` when the config has a cluster (it cannot change on reload):
    /// plan keys then get shared limits.
    cluster_exact: Option<u64>,
    /// Admin changes in progress: a cluster read that raced one is not applied.
    pub changes: super::key_changes::KeyChanges,
}

/// The keys a config brings, less those whose value was revoked through the admin API
/// (under any name: a leaked value never returns, also not by renaming its config key),
/// with a warning for each such key.
fn config_actives(
    t: &TrafficRt,
    revoked: &[(String, [u8; 32])],
) -> (Vec<Active>, Vec<crate::config::ConfigError>) {
    let mut warnings = Vec::new();
    let mut active = Vec::new();
    for (i, k) in t.config_keys.iter().enumerate() {
        if let Some((was, _)) = revoked.iter().find(|(_, d)| *d == k.sha256) {
            warnings.push(crate::config::ConfigError::new(
                format!("api_keys[{i}].value"),
                format!(
                    "this value was revoked (as key {was:?}) through the admin API and stays refused; give the key {:?} a new value",
                    k.name
                ),
            ));
            continue;
        }
        active.push(Active {
            info: KeyInfo {
                name: k.name.clone(),
                plan: k.plan.clone(),
                source: Source::Config,
                created: None,
            },
            sha256: k.sha256,
            at: Some(i),
        });
    }
    (active, warnings)
}

impl Keys {
    /// Config keys (less those revoked through the admin API) and the keys created
    /// through it, with usage restored from the store.
    pub fn load(t: &TrafficRt, store: Option<&Store>, workers: usize) -> Result<Keys, StoreError> {
        let revoked = match store {
            Some(s) => s.revoked()?,
            None => Vec::new(),
        };
        let (mut active, refused) = config_actives(t, &revoked);
        crate::config::warnings::log(&refused);
        let mut shadowed = Vec::new();
        for k in store.map(Store::keys).transpose()?.unwrap_or_default() {
            admit_created(&mut active, &mut shadowed, k);
        }
        let keys = Keys {
            table: Arc::new(ArcSwap::from_pointee(KeyTable::default())),
            reg: Mutex::new(Registry {
                active,
                shadowed,
                plans: t.plans.clone(),
                plan_keys: HashMap::new(),
                usage: HashMap::new(),
                next_slot: 0,
            }),
            workers,
            cluster_exact: t.cluster.as_ref().map(|c| c.exact_below),
            changes: Default::default(),
        };
        let mut reg = keys.reg.lock().unwrap();
        crate::config::warnings::log(&keys.publish(&mut reg, store)?);
        drop(reg);
        Ok(keys)
    }

    /// After a reload: the new config's plans and keys (created keys stay), published
    /// at once. Counters carry over; a plan whose quota now counts other days recounts its
    /// keys' current period (`requotas`; flush first, so the store is up to date).
    /// Returns the warnings about keys, which only the store knows: config keys whose
    /// value was revoked, created keys a config key hides, and those whose plan the
    /// config does not have (the reload logs and reports them).
    pub fn reconfigure(
        &self,
        t: &TrafficRt,
        store: Option<&Store>,
    ) -> Result<Vec<crate::config::ConfigError>, StoreError> {
        let revoked = match store {
            Some(s) => s.revoked()?,
            None => Vec::new(),
        };
        let mut reg = self.reg.lock().unwrap();
        let mut created: Vec<Active> = reg
            .active
            .drain(..)
            .filter(|a| a.info.source == Source::Admin)
            .collect();
        // Created keys a config key hid are back once it leaves the config, as they are
        // at a start (which reads them from the store). In a cluster, Redis says.
        let hidden = std::mem::take(&mut reg.shadowed);
        if let (Some(store), None) = (store, self.cluster_exact) {
            for k in store.keys()? {
                if hidden.iter().any(|(n, d)| *n == k.name && *d == k.sha256) {
                    created.push(k.into());
                }
            }
        } else {
            reg.shadowed = hidden;
        }
        let (mut active, mut warnings) = config_actives(t, &revoked);
        for a in created {
            if let Some(w) = hidden_by_config(&active, &a) {
                warnings.push(w);
                reg.shadowed.retain(|(n, _)| *n != a.info.name);
                reg.shadowed.push((a.info.name, a.sha256));
            } else {
                active.push(a);
            }
        }
        reg.active = active;
        let day = today();
        let requotas = plans::requotas(&reg, t, store, day)?;
        // Recounted before the new table goes out, so its first requests find the count
        // (near) right, and again once it is out: until then workers count under the old
        // plan's period, and one whose period starts later than the new one's starts the
        // counter over. Each recount reads the day counter, which has every admission.
        for r in &requotas {
            r.cells.requota(r.start, r.closed, day);
        }
        reg.plans = t.plans.clone();
        warnings.extend(self.publish(&mut reg, store)?);
        for r in requotas {
            r.cells.requota(r.start, r.closed, day);
            if !r.seed {
                continue;
            }
            let cells = r.cells;
            // In a cluster the count is Redis's: this node's share of it goes there.
            let shared = reg
                .plan_keys
                .values()
                .filter(|pk| Arc::ptr_eq(&pk.usage, &cells));
            for l in shared.filter_map(|pk| pk.shared_quota.as_ref()) {
                let (period, used) = cells.quota_used();
                l.set_seed(period, used);
            }
        }
        Ok(warnings)
    }

    /// The table workers read (through their own `arc_swap::Cache`).
    pub fn table(&self) -> &Arc<ArcSwap<KeyTable>> {
        &self.table
    }

    pub fn plans(&self) -> Vec<PlanRt> {
        self.reg.lock().unwrap().plans.clone()
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        let reg = self.reg.lock().unwrap();
        reg.active.iter().map(|a| a.info.clone()).collect()
    }

    /// Every usage counter of this run as (plan, key, counters), revoked keys' included
    /// (their last counts still have to reach the store).
    pub fn usage_cells(&self) -> Vec<(String, String, Arc<UsageCells>)> {
        let reg = self.reg.lock().unwrap();
        reg.usage
            .iter()
            .map(|((p, k), cells)| (p.clone(), k.clone(), cells.clone()))
            .collect()
    }

    /// In a cluster, every quota shared through Redis with this node's count in it:
    /// (the shared limit, the key's counters, the plan's quota). Redis that lost its
    /// data gets these counts again (`cluster::side`).
    pub fn shared_quotas(&self) -> Vec<(Arc<SharedLimit>, Arc<UsageCells>, Quota)> {
        let reg = self.reg.lock().unwrap();
        reg.plan_keys
            .values()
            .filter_map(|pk| {
                let l = pk.shared_quota.clone()?;
                Some((l, pk.usage.clone(), pk.quota.clone()?))
            })
            .collect()
    }

    /// Creates a key (the value is generated unless given) and makes it live on every
    /// worker; returns the value, which is stored only as its digest.
    pub fn create(
        &self,
        store: &Store,
        name: &str,
        plan: Option<&str>,
        value: Option<String>,
    ) -> Result<String, KeyError> {
        if let Some(why) = name_problem(name) {
            return Err(KeyError::Invalid(why));
        }
        let value = match value {
            Some(v)
                if v.len() < 20 || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(KeyError::Invalid(
                    "value must be 20 to 128 printable ASCII characters",
                ))
            }
            Some(v) => v,
            None => generate_value(),
        };
        let sha256 = digest(value.as_bytes());
        let mut reg = self.reg.lock().unwrap();
        if let Some(p) = plan {
            if !reg.plans.iter().any(|x| x.name == p) {
                return Err(KeyError::UnknownPlan(p.to_string()));
            }
        }
        if reg.active.iter().any(|a| a.info.name == name) {
            return Err(KeyError::Conflict(name.to_string()));
        }
        // A created key hidden by a config key holds its value too: it comes back when
        // that config key goes, and a value must then find one key, not two.
        if reg.active.iter().any(|a| a.sha256 == sha256)
            || reg.shadowed.iter().any(|(_, d)| *d == sha256)
        {
            return Err(KeyError::Invalid(
                "that value is already in use by another key",
            ));
        }
        // A revoked config key's value stays refused (a leaked value never returns): it
        // was created again under another name, 201, and served on every node. The
        // store holds this node's revocations and those Redis gave it (`apply_cluster`);
        // Redis's script checks again for one made elsewhere since.
        if store.revoked()?.iter().any(|(_, d)| *d == sha256) {
            return Err(KeyError::Invalid(REVOKED_VALUE));
        }
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = StoredKey {
            name: name.to_string(),
            sha256,
            plan: plan.map(str::to_string),
            created,
        };
        store.put_key(&key)?;
        // The store's key of that name is this one now, not a hidden one.
        reg.shadowed.retain(|(n, _)| n != name);
        reg.active.push(key.into());
        self.republish(&mut reg, Some(store))?;
        Ok(value)
    }

    /// Revokes a key on every worker at once, and for good: a created key leaves the
    /// store, a config key is remembered as revoked (until its value in the config changes).
    /// Returns the digest of a created key the revoked config key hid, now deleted too
    /// (a cluster deletes it from Redis as well).
    pub fn revoke(&self, store: &Store, name: &str) -> Result<Option<[u8; 32]>, KeyError> {
        let mut reg = self.reg.lock().unwrap();
        let Some(i) = reg.active.iter().position(|a| a.info.name == name) else {
            return Err(KeyError::NotFound(name.to_string()));
        };
        match reg.active[i].info.source {
            Source::Admin => {
                store.delete_key(name)?;
            }
            Source::Config => {
                store.put_revoked(name, &reg.active[i].sha256)?;
                // A key created through the admin API under this name, shadowed by the
                // config key until now, would come back at the next start: the name is
                // revoked, not only the config's value.
                store.delete_key(name)?;
            }
        }
        let hidden = match reg.active[i].info.source {
            Source::Config => reg.shadowed.iter().find(|(n, _)| n == name).map(|s| s.1),
            Source::Admin => None,
        };
        reg.shadowed.retain(|(n, _)| n != name);
        reg.active.remove(i);
        self.republish(&mut reg, Some(store))?;
        Ok(hidden)
    }

    /// A live key's source and digest (the cluster revokes config keys by digest).
    pub fn digest_of(&self, name: &str) -> Option<(Source, [u8; 32])> {
        let reg = self.reg.lock().unwrap();
        let a = reg.active.iter().find(|a| a.info.name == name)?;
        Some((a.info.source, a.sha256))
    }

    /// In a cluster, what Redis holds is the truth for created keys and revocations:
    /// the created keys become exactly `created`, and the config keys in `revoked`
    /// (name and digest) go. Called by the cluster thread whenever the set changes, with
    /// `changes.mark()` taken before Redis was read: Ok(false) when an admin change
    /// overlapped the read, which is then not applied (read again).
    pub fn apply_cluster(
        &self,
        created: Vec<StoredKey>,
        revoked: Vec<(String, [u8; 32])>,
        store: Option<&Store>,
        read_at: u64,
    ) -> Result<bool, StoreError> {
        // Held throughout, as `create` holds it: a change that begins after the check
        // waits for this to be applied before it touches the table or the store.
        let mut reg = self.reg.lock().unwrap();
        if !self.changes.quiet_since(read_at) {
            return Ok(false);
        }
        if let Some(store) = store {
            // Redis's revocations are kept in this node's store too: a reload or a
            // restart rebuilds the config keys from the file less the store's revocations, so a config key revoked
            // through another node was live again here until the next read of Redis
            // (up to 5 s after a reload; for as long as Redis was away after a restart).
            let known = store.revoked()?;
            for (name, d) in &revoked {
                if !known.iter().any(|(n, k)| n == name && k == d) {
                    store.put_revoked(name, d)?;
                }
            }
            // Likewise the created keys are Redis's: one revoked through another node
            // was still in the store of the node that created it, and live there again
            // after a restart while Redis was away.
            let stored = store.keys()?;
            let same = |a: &StoredKey, b: &StoredKey| a.name == b.name && a.sha256 == b.sha256;
            for k in &stored {
                if !created.iter().any(|c| same(c, k)) {
                    store.delete_key(&k.name)?;
                }
            }
            for c in &created {
                if !stored.iter().any(|k| same(c, k)) {
                    store.put_key(c)?;
                }
            }
        }
        reg.active.retain(|a| match a.info.source {
            Source::Admin => false,
            Source::Config => !revoked.iter().any(|(_, d)| *d == a.sha256),
        });
        reg.shadowed.clear();
        let r = &mut *reg;
        for k in created {
            admit_created(&mut r.active, &mut r.shadowed, k);
        }
        self.republish(&mut reg, store)?;
        Ok(true)
    }

    /// [`Keys::publish`] outside a start or reload, which report its warnings
    /// themselves: logged here.
    fn republish(&self, reg: &mut Registry, store: Option<&Store>) -> Result<(), StoreError> {
        crate::config::warnings::log(&self.publish(reg, store)?);
        Ok(())
    }

    /// Builds the table from the active keys and swaps it in. Returns a warning for each
    /// key left out because its plan is not in the config (a created key whose plan a
    /// reload removed or renamed): a start logs them, a reload reports them too.
    fn publish(
        &self,
        reg: &mut Registry,
        store: Option<&Store>,
    ) -> Result<Vec<crate::config::ConfigError>, StoreError> {
        let mut warnings = Vec::new();
        let mut entries = Vec::with_capacity(reg.active.len());
        for i in 0..reg.active.len() {
            let (name, plan, sha256) = {
                let a = &reg.active[i];
                (a.info.name.clone(), a.info.plan.clone(), a.sha256)
            };
            let plan = match plan {
                Some(p) => match self.plan_key(reg, &p, &name, store)? {
                    Some(pk) => Some(pk),
                    None => {
                        warnings.push(crate::config::ConfigError::new(
                            "usage_plans",
                            format!("the API key {name:?} is in usage plan {p:?}, which the config does not have; it is refused until the config has that plan"),
                        ));
                        continue;
                    }
                },
                None => None,
            };
            entries.push(KeyEntry {
                sha256,
                name: name.into(),
                plan,
            });
        }
        self.table.store(Arc::new(KeyTable::build(entries)));
        forget_gone(reg);
        Ok(warnings)
    }
}

/// Drops what keys no longer live leave behind: their plan keys (a name created again
/// gets a new bucket), and their counters once nothing holds them and they counted
/// nothing (counts go on to the store and Redis). Kept, keys created and revoked under
/// fresh names cost some 1.3 KB each for the rest of the run.
fn forget_gone(reg: &mut Registry) {
    let live: std::collections::HashSet<(&str, &str)> = (reg.active.iter())
        .filter_map(|a| Some((a.info.plan.as_deref()?, a.info.name.as_str())))
        .collect();
    let lives = |(plan, name): &UsageKey| live.contains(&(plan.as_str(), name.as_str()));
    reg.plan_keys.retain(|k, _| lives(k));
    reg.usage.retain(|k, cells| {
        lives(k) || Arc::strong_count(cells) > 1 || cells.day_counts().iter().any(|(_, n)| *n > 0)
    });
}

/// 40 characters from [A-Za-z0-9], like API Gateway's generated keys (~238 bits).
fn generate_value() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(40);
    let mut buf = [0u8; 64];
    while out.len() < 40 {
        getrandom::fill(&mut buf).expect("the OS random source");
        // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() < 40 {
                out.push(ALPHABET[(*b % 62) as usize] as char);
            }
        }
    }
    out
}

/// What is wrong with a key's name, if anything: the rules of `POST /api-keys`, which
/// the config's `api_keys` follow too, so that every key can be revoked by name.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.chars().count() > 128 {
        return Some("name must be 1 to 128 characters");
    }
    if !addressable(name) {
        return Some(
            "name must not be . or .., start or end with a space, nor hold a slash, a backslash, a control character, or one that shows as nothing or as a space (U+200B, U+202E, U+00A0, …)",
        );
    }
    None
}

/// A name `DELETE /api-keys/{name}` can reach: the admin API refuses dot-segments and
/// splits at slashes, so a key named `..` or `a/b` could be created but never revoked.
fn addressable(name: &str) -> bool {
    name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control() || crate::config::invisible(c))
        && name.trim_matches(' ') == name
}

#[path = "registry_plans.rs"]
mod plans;

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
