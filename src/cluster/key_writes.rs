//! The admin key changes Redis has not taken yet (`admin::KeyWrite`: a revocation, or
//! the undo of a create whose answer was lost), and how the side thread reads the
//! shared keys without taking those changes back.
//!
//! A pending change is written at each sync until Redis takes it, before the keys are
//! read. Redis may also refuse it with an error (NOPERM from an ACL, OOM, BUSY, a
//! read-only replica): it stays pending all the same. Dropped, the revoked key came
//! back from Redis at the next read, on every node, the revoking one included, after
//! the admin call had said this node would write it. Until Redis takes it, each read
//! of Redis's keys is corrected by the pending changes ([`mask`]), so this node keeps
//! refusing what it revoked. A refusal is logged when first seen and then once a
//! minute while it lasts, not at every sync.

// Cold path: the side thread's own state; workers never touch it.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;
use tracing::{error, info, warn};

use super::admin::{decode_key, KeyWrite};
use super::liveness::mono_ms;
use super::Cluster;
use crate::store::StoredKey;

/// While Redis keeps refusing a change, how often the log says so again.
const SAY_EVERY_MS: u64 = 60_000;

/// One change Redis has not taken.
struct Pending {
    w: KeyWrite,
    /// When Redis first refused it, and when the log last said so (monotonic ms).
    refused: Option<(u64, u64)>,
}

/// What the side thread holds of the pending changes.
#[derive(Default)]
pub(super) struct KeyWrites {
    pending: Vec<Pending>,
    /// A change arrived since the keys were last read: read them again now, so a read
    /// that raced the admin call (and brought the revoked key back) is corrected.
    pub reread: bool,
}

/// Writes the pending changes, oldest first, before the keys are read: a revocation this
/// node made must reach Redis before this node takes Redis's keys as the truth again.
/// One Redis refuses stays pending (and the sync goes on); a failure that is not
/// Redis's answer (timeout, broken connection) fails the sync, the rest kept.
pub(super) async fn write_keys(
    c: &Cluster,
    m: &mut MultiplexedConnection,
    s: &mut KeyWrites,
) -> redis::RedisResult<()> {
    take_new(c, s);
    let mut i = 0;
    while i < s.pending.len() {
        let p = &mut s.pending[i];
        match p.w.invocation(c).invoke_async::<i64>(m).await {
            Ok(_) => {
                match p.refused {
                    Some((since, _)) => info!(
                        change = %p.w,
                        refused_for_s = (mono_ms() - since) / 1000,
                        "cluster: key change written to Redis, which had refused it"
                    ),
                    None => info!(change = %p.w, "cluster: key change written to Redis"),
                }
                forget(c, &p.w);
                s.pending.remove(i);
            }
            Err(e) if e.code().is_some() => {
                let now = mono_ms();
                match &mut p.refused {
                    None => {
                        p.refused = Some((now, now));
                        error!(change = %p.w, error = %e, "cluster: Redis refused a key change; this node refuses the key meanwhile and writes the change again at each sync");
                    }
                    Some((since, said)) if now >= *said + SAY_EVERY_MS => {
                        *said = now;
                        error!(change = %p.w, error = %e, refused_for_s = (now - *since) / 1000, "cluster: Redis still refuses a key change; the other nodes honour the key until it takes it");
                    }
                    Some(_) => {}
                }
                i += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Redis took `w`: the state store need not keep it.
fn forget(c: &Cluster, w: &KeyWrite) {
    if let Some(Err(e)) = c
        .shared
        .store
        .as_ref()
        .map(|st| st.delete_key_write(&w.id()))
    {
        warn!(change = %w, error = %e, "cluster: cannot remove a key change Redis took from the state store; it is written again at the next start (harmless: the write is idempotent)");
    }
}

/// At start: the key changes the state store kept because Redis had not taken them
/// when this node last ran. Queued before the side thread starts, so its first sync
/// writes them before it reads Redis's keys.
pub(super) fn restore(c: &Cluster) {
    let Some(store) = &c.shared.store else {
        return;
    };
    let kept = match store.key_writes() {
        Ok(kept) => kept,
        Err(e) => {
            error!(error = %e, "cluster: cannot read the key changes Redis had not taken from the state store");
            return;
        }
    };
    for (id, json) in kept {
        match serde_json::from_slice::<KeyWrite>(&json) {
            Ok(w) => {
                info!(change = %w, "cluster: a key change Redis had not taken when this node stopped; writing it now");
                c.key_writes.push(w);
            }
            Err(e) => {
                error!(%id, error = %e, "cluster: unreadable key change in the state store; skipped")
            }
        }
    }
}

/// At stop, after a last try: says which changes Redis has not taken, and that the
/// state store keeps them for the next start (or that they are lost, without one).
pub(super) fn at_stop(c: &Cluster, s: &mut KeyWrites) {
    while let Some(w) = c.key_writes.pop() {
        s.pending.push(Pending { w, refused: None });
    }
    let kept: Vec<String> = match c.shared.store.as_ref().map(|st| st.key_writes()) {
        Some(Ok(kept)) => kept.into_iter().map(|(id, _)| id).collect(),
        _ => Vec::new(),
    };
    for p in &s.pending {
        if kept.contains(&p.w.id()) {
            warn!(change = %p.w, "cluster: stopping before Redis took a key change; the state store keeps it and this node writes it when it starts again (the other nodes honour the key meanwhile)");
        } else {
            error!(change = %p.w, "cluster: stopping before Redis took a key change, and it is not in the state store: lost (revoke the key again through another node)");
        }
    }
}

/// The admin calls' changes since the last look join the pending ones.
pub(super) fn take_new(c: &Cluster, s: &mut KeyWrites) {
    while let Some(w) = c.key_writes.pop() {
        s.pending.push(Pending { w, refused: None });
        s.reread = true;
    }
}

/// Makes this node's key table what Redis says (created keys, revoked config keys),
/// corrected by the changes Redis has not taken (the caller has taken up the queued ones:
/// `take_new`; a sync that failed before `write_keys` reads the keys all the same, and a
/// revocation still queued was undone by what Redis held).
pub(super) async fn sync_keys(
    c: &Cluster,
    m: &mut MultiplexedConnection,
    s: &mut KeyWrites,
) -> redis::RedisResult<()> {
    let read_at = c.shared.keys.changes.mark();
    let (created, revoked): (HashMap<String, String>, HashMap<String, String>) = redis::pipe()
        .hgetall(c.key("keys"))
        .hgetall(c.key("revoked"))
        .query_async(m)
        .await?;
    let mut created = created
        .into_iter()
        .filter_map(|(name, json)| decode_key(&name, &json))
        .collect();
    let mut revoked = revoked
        .into_iter()
        .filter_map(|(name, hex)| Some((name, crate::store::unhex(&hex)?)))
        .collect();
    mask(s.pending.iter().map(|p| &p.w), &mut created, &mut revoked);
    match c
        .shared
        .keys
        .apply_cluster(created, revoked, c.shared.store.as_ref(), read_at)
    {
        // An admin change overlapped the read: it may lack a key just created here.
        Ok(false) => s.reread = true,
        Ok(true) => s.reread = false,
        Err(e) => {
            warn!(error = %e, "cluster: cannot apply the shared API keys");
            s.reread = false;
        }
    }
    Ok(())
}

/// Redis's keys as they will be once it takes `pending`: a revoked created key (or an
/// undone create) is left out, a revoked config key is revoked.
fn mask<'a>(
    pending: impl Iterator<Item = &'a KeyWrite>,
    created: &mut Vec<StoredKey>,
    revoked: &mut Vec<(String, [u8; 32])>,
) {
    for w in pending {
        match w {
            KeyWrite::Revoke {
                name,
                digest,
                config: false,
            } => created.retain(|k| !(k.name == *name && k.sha256 == *digest)),
            KeyWrite::Revoke {
                name,
                digest,
                config: true,
            } => {
                if !revoked.iter().any(|(n, d)| n == name && d == digest) {
                    revoked.push((name.clone(), *digest));
                }
            }
            KeyWrite::Undo { name, json, .. } => {
                if let Some(k) = decode_key(name, json) {
                    created.retain(|c| !(c.name == k.name && c.sha256 == k.sha256));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, d: u8) -> StoredKey {
        StoredKey {
            name: name.into(),
            sha256: [d; 32],
            plan: None,
            created: 1,
        }
    }

    /// What the state store keeps reads back as the same change (`restore`).
    #[test]
    fn a_kept_change_reads_back_as_it_was() {
        let w = KeyWrite::Revoke {
            name: "a b".into(),
            digest: [0xab; 32],
            config: true,
        };
        let json = serde_json::to_vec(&w).unwrap();
        let back: KeyWrite = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.id(), w.id());
        assert_eq!(w.id(), format!("revoke 1 a b {}", "ab".repeat(32)));
    }

    #[test]
    fn pending_changes_hold_over_what_redis_still_says() {
        let undo = KeyWrite::Undo {
            name: "u".into(),
            json: format!(
                r#"{{"sha256":"{}","plan":null,"created":1}}"#,
                "03".repeat(32)
            ),
            fence: "f".into(),
        };
        let pending = [
            KeyWrite::Revoke {
                name: "a".into(),
                digest: [1; 32],
                config: false,
            },
            KeyWrite::Revoke {
                name: "cfg".into(),
                digest: [9; 32],
                config: true,
            },
            undo,
        ];
        // `a` of another value (created again since) and `u` of another value stay.
        let mut created = vec![key("a", 1), key("a2", 1), key("b", 2), key("u", 3)];
        created.push(key("u2", 4));
        let mut revoked = vec![("old".to_string(), [5; 32])];
        mask(pending.iter(), &mut created, &mut revoked);
        let names: Vec<&str> = created.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a2", "b", "u2"]);
        assert_eq!(revoked, [("old".into(), [5; 32]), ("cfg".into(), [9; 32])]);
        let mut other = vec![key("a", 7), key("u", 8)];
        mask(pending.iter(), &mut other, &mut revoked);
        assert_eq!(other.len(), 2, "another key of that name is not touched");
        assert_eq!(revoked.len(), 2, "no duplicate revocation");
    }
}
