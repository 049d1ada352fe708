//! API keys: the lookup table every worker reads.
//!
//! Workers never see key values, only SHA-256 digests: a presented key is hashed once,
//! the first 8 bytes of its digest pick a hash bucket, and the whole digest is compared
//! in constant time. (The bucket choice depends on a hash of the secret, never on the
//! secret's bytes, so timing reveals nothing about a stored key's value.)
//!
//! The table is immutable and published through an `ArcSwap` (`registry.rs`): creating
//! or revoking a key builds a new table on the admin thread and swaps it in; each
//! worker's `arc_swap::Cache` notices the new pointer on its next lookup (one atomic
//! load), so a change is live on every worker at once, without a lock on the hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::lease::GlobalPool;
use super::usage::UsageCells;
use crate::config::model::{Quota, Throttle};

pub fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// Equality of two digests in time independent of where they differ.
#[inline]
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    // Keeps the compiler from turning the loop back into an early-exit compare.
    std::hint::black_box(diff) == 0
}

/// A key in a usage plan: its share of the plan's throttle, the plan's quota, and its
/// usage counters. The counters belong to (plan name, key name) for the whole run, so a
/// key revoked and created again, or a reload that changes the plan, goes on with the
/// same usage (re-creating a key cannot reset a quota).
#[derive(Debug)]
pub struct PlanKey {
    /// `config::traffic::plan_id` of the plan.
    pub plan_id: u64,
    pub plan_name: Arc<str>,
    pub name: Arc<str>,
    /// Index of this key's local buckets in each worker; never reused.
    pub slot: u32,
    /// The plan's throttle for this key (as configured, and its bucket). The bucket is
    /// shared with the key's next `PlanKey` when a reload changes the plan but not its
    /// throttle, so such a reload neither refills nor empties it.
    pub throttle: Option<Throttle>,
    pub pool: Option<Arc<GlobalPool>>,
    pub quota: Option<Quota>,
    pub usage: Arc<UsageCells>,
    /// In a cluster: the plan throttle and the quota shared through Redis.
    pub shared_throttle: Option<Arc<crate::cluster::SharedLimit>>,
    pub shared_quota: Option<Arc<crate::cluster::SharedLimit>>,
}

#[derive(Debug)]
pub struct KeyEntry {
    pub sha256: [u8; 32],
    pub name: Arc<str>,
    /// None: a key in no plan, valid on every stage, with no plan limits.
    pub plan: Option<Arc<PlanKey>>,
}

/// The digest is already uniformly random: its first 8 bytes are the hash.
#[derive(Default)]
struct Prefix(u64);

impl Hasher for Prefix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const NONE: u32 = u32::MAX;

#[derive(Debug, Default)]
pub struct KeyTable {
    /// Digest prefix → first entry with it; `next` chains the (astronomically rare) others.
    index: HashMap<u64, u32, BuildHasherDefault<Prefix>>,
    next: Vec<u32>,
    entries: Vec<KeyEntry>,
}

fn prefix(d: &[u8; 32]) -> u64 {
    u64::from_le_bytes(d[..8].try_into().unwrap())
}

impl KeyTable {
    pub fn build(entries: Vec<KeyEntry>) -> Self {
        let mut index = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut next = vec![NONE; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            if let Some(first) = index.insert(prefix(&e.sha256), i as u32) {
                next[i] = first;
            }
        }
        KeyTable {
            index,
            next,
            entries,
        }
    }

    #[inline]
    pub fn find(&self, sha256: &[u8; 32]) -> Option<&KeyEntry> {
        let mut i = *self.index.get(&prefix(sha256))?;
        while i != NONE {
            let e = &self.entries[i as usize];
            if ct_eq(&e.sha256, sha256) {
                return Some(e);
            }
            i = self.next[i as usize];
        }
        None
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_finds_a_difference_in_any_byte() {
        let a = digest(b"alpha");
        let mut b = a;
        assert!(ct_eq(&a, &b));
        for i in [0, 17, 31] {
            b = a;
            b[i] ^= 0x40;
            assert!(!ct_eq(&a, &b), "byte {i}");
        }
        // Constant time is by construction (no early exit, black_box on the result); a
        // timing assertion here failed on a loaded machine and proved nothing when it passed.
    }

    #[test]
    fn table_finds_by_digest_and_chains_prefix_clashes() {
        let mk = |v: &[u8], name: &str| KeyEntry {
            sha256: digest(v),
            name: name.into(),
            plan: None,
        };
        let mut clash = digest(b"a");
        clash[31] ^= 0xff; // same 8-byte prefix, different digest
        let t = KeyTable::build(vec![
            mk(b"a", "a"),
            mk(b"b", "b"),
            KeyEntry {
                sha256: clash,
                name: "clash".into(),
                plan: None,
            },
        ]);
        assert_eq!(&*t.find(&digest(b"a")).unwrap().name, "a");
        assert_eq!(&*t.find(&digest(b"b")).unwrap().name, "b");
        assert_eq!(&*t.find(&clash).unwrap().name, "clash");
        assert!(t.find(&digest(b"c")).is_none());
    }
}
