//! Per-worker caches of authorizer verdicts, so a repeat caller costs a hash lookup, not
//! an RSA verification (or a Lambda call). [`TokenCache`] keeps verified JWTs per
//! authorizer, keyed by the token (a keyed aHash of it, seeded at random per map, picks
//! the bucket; the bytes are compared exactly): cheaper per request than a SHA-256 of a
//! 1 kB token (or a SipHash, ~120 ns of a 700-byte one), and a hash collision can never hand
//! one caller another's verdict. [`Cache`] keys Lambda verdicts
//! by a SHA-256 of the authorizer's fingerprint and the identity values. Entries expire
//! (a JWT at its `exp`, or sooner: see `pipeline::auth`; a Lambda verdict after the
//! `result_ttl` it was stored with, or the current one if a reload lowered it), and a
//! token is served only while the issuer's key set has the generation it was verified
//! with (a removed key takes its tokens' verdicts with it); a full cache first drops
//! what expired or went stale, then (verdicts) an arbitrary eighth of its entries or
//! (tokens) everything: simple bounds that keep lookups O(1).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};

/// Entries per worker per cache.
pub const CAPACITY: usize = 10_000;

pub type Key = [u8; 32];

/// The key is already a uniform hash: its first 8 bytes are the bucket hash.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
}

pub fn key(fingerprint: &[u8], parts: &[&[u8]]) -> Key {
    let mut h = Sha256::new();
    h.update(fingerprint);
    for p in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// A bounded map of verdicts with the time they were stored and their expiry (seconds
/// since the epoch).
pub struct Cache<V> {
    map: HashMap<Key, (u64, u64, V), BuildHasherDefault<DigestHasher>>,
}

impl<V: Clone> Default for Cache<V> {
    fn default() -> Self {
        Cache {
            map: HashMap::default(),
        }
    }
}

impl<V: Clone> Cache<V> {
    /// The verdict, unless it has expired or is `max_age` seconds old (then it is
    /// dropped): the TTL a reload set bounds verdicts stored under the one before.
    pub fn get(&mut self, k: &Key, now: u64, max_age: u64) -> Option<V> {
        match self.map.get(k) {
            Some((at, exp, v)) if *exp > now && at.saturating_add(max_age) > now => Some(v.clone()),
            Some(_) => {
                self.map.remove(k);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, k: Key, expires: u64, v: V, now: u64) {
        if expires <= now {
            return;
        }
        if self.map.len() >= CAPACITY {
            self.map.retain(|_, (_, exp, _)| *exp > now);
            if self.map.len() >= CAPACITY {
                // Room for an eighth more, made of arbitrary entries (the map's order, by
                // digest): clearing all let a caller with 10,000 made-up identities
                // flush every other caller's verdict, each then a Lambda call again.
                let evicted: Vec<Key> = self.map.keys().take(CAPACITY / 8).copied().collect();
                for k in &evicted {
                    self.map.remove(k);
                }
            }
        }
        self.map.insert(k, (now, expires, v));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Token → (expiry, generation of the key set that verified it, verdict).
type Tokens<V> = HashMap<Box<[u8]>, (u64, u64, V), ahash::RandomState>;

/// Verified tokens of each authorizer (by fingerprint; an API has a handful).
pub struct TokenCache<V> {
    per: Vec<([u8; 32], Tokens<V>)>,
}

impl<V: Clone> Default for TokenCache<V> {
    fn default() -> Self {
        TokenCache { per: Vec::new() }
    }
}

impl<V: Clone> TokenCache<V> {
    /// The verdict, unless it has expired or was verified with a key set other than the
    /// one now published (`generation`); then it is dropped.
    pub fn get(
        &mut self,
        fingerprint: &[u8; 32],
        token: &[u8],
        now: u64,
        generation: u64,
    ) -> Option<V> {
        let (_, map) = self.per.iter_mut().find(|(f, _)| f == fingerprint)?;
        match map.get(token) {
            Some((exp, g, v)) if *exp > now && *g == generation => Some(v.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Stores a verdict verified with the key set of `generation`. One authorizer's
    /// tokens all come from one key source, so entries of another generation are stale.
    pub fn insert(
        &mut self,
        fingerprint: &[u8; 32],
        token: &[u8],
        expires: u64,
        generation: u64,
        v: V,
        now: u64,
    ) {
        if expires <= now {
            return;
        }
        let i = match self.per.iter().position(|(f, _)| f == fingerprint) {
            Some(i) => i,
            None => {
                self.per.push((*fingerprint, HashMap::default()));
                self.per.len() - 1
            }
        };
        let map = &mut self.per[i].1;
        if map.len() >= CAPACITY {
            map.retain(|_, (exp, g, _)| *exp > now && *g == generation);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(token.into(), (expires, generation, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_past_expiry_and_bounded() {
        let mut c: Cache<u32> = Cache::default();
        let k = key(b"fp", &[b"token"]);
        c.insert(k, 100, 7, 50);
        assert_eq!(c.get(&k, 99, 50), Some(7));
        assert_eq!(c.get(&k, 100, 50), None);
        assert!(c.is_empty());
        c.insert(k, 10, 1, 10);
        assert!(c.is_empty(), "already expired entries are not stored");
        assert_ne!(key(b"fp", &[b"ab", b"c"]), key(b"fp", &[b"a", b"bc"]));
        for i in 0..(CAPACITY as u64 + 5) {
            c.insert(key(b"fp", &[&i.to_le_bytes()]), 1000, 0, 0);
        }
        assert!(c.len() <= CAPACITY);
        // A flood of new identities evicts some verdicts, not all: most of those stored
        // before it are still there (it cleared them all).
        let kept = (0..CAPACITY as u64)
            .filter(|i| c.get(&key(b"fp", &[&i.to_le_bytes()]), 1, 1000).is_some())
            .count();
        assert!(kept > CAPACITY / 2, "{kept} of {CAPACITY} kept");
    }

    #[test]
    fn a_lower_ttl_bounds_verdicts_already_stored() {
        let mut c: Cache<u32> = Cache::default();
        let k = key(b"fp", &[b"token"]);
        // Stored at 50 with a TTL of 300s; a reload then lowers the TTL to 1s.
        c.insert(k, 350, 7, 50);
        assert_eq!(c.get(&k, 50, 1), Some(7));
        assert_eq!(c.get(&k, 51, 1), None);
        assert!(c.is_empty(), "dropped");
        // A raised TTL does not stretch a verdict past the expiry it was stored with.
        c.insert(k, 51, 7, 50);
        assert_eq!(c.get(&k, 51, 300), None);
    }

    #[test]
    fn tokens_per_authorizer_never_past_expiry() {
        let mut c: TokenCache<u32> = TokenCache::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        c.insert(&a, b"tok", 100, 1, 7, 50);
        assert_eq!(c.get(&a, b"tok", 99, 1), Some(7));
        assert_eq!(c.get(&b, b"tok", 99, 1), None, "another authorizer");
        assert_eq!(c.get(&a, b"tok2", 99, 1), None);
        assert_eq!(c.get(&a, b"tok", 100, 1), None);
        assert_eq!(c.get(&a, b"tok", 10, 1), None, "dropped once expired");
    }

    #[test]
    fn tokens_only_while_their_key_set_is_published() {
        let mut c: TokenCache<u32> = TokenCache::default();
        let a = [1u8; 32];
        c.insert(&a, b"tok", 100, 1, 7, 50);
        assert_eq!(c.get(&a, b"tok", 60, 1), Some(7));
        // The issuer removed a key: the set now published has another generation.
        assert_eq!(c.get(&a, b"tok", 60, 2), None);
        assert_eq!(
            c.get(&a, b"tok", 60, 1),
            None,
            "dropped, not kept for later"
        );
    }
}
