//! What the admin thread (and `portico check`) asks Redis directly, over a blocking
//! connection with the cluster timeout: these calls are not on a request path, and the
//! admin answer must say whether the write reached Redis.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::Commands;
use serde_json::json;

use super::{scripts, Cluster};
use crate::store::{hex, unhex, DayCount, StoredKey};

/// A blocking connection with `timeout` on connect, reads and writes, to a server that
/// answered the probe like Redis (a blocking read times out only when no byte comes: a
/// flood on the port would be buffered for as long as it lasts).
pub fn connect(url: &str, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    if let redis::ConnectionAddr::Tcp(host, port) = &client.get_connection_info().addr {
        super::probe::probe_blocking(host, *port, timeout)?;
    }
    let conn = client.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    Ok(conn)
}

/// An admin call's error for a log line, an answer or `check`: one that timed out (the
/// blocking socket's "Resource temporarily unavailable (os error 11)") says so.
pub struct Failure<'e>(pub &'e redis::RedisError);

impl std::fmt::Display for Failure<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_timeout() {
            f.write_str("no answer in time")
        } else {
            self.0.fmt(f)
        }
    }
}

fn conn(c: &Cluster) -> redis::RedisResult<redis::Connection> {
    // Admin calls may do a few round trips: a little more than one request's timeout.
    connect(&c.cfg.redis, c.cfg.timeout.max(Duration::from_millis(200)))
}

/// A created key as Redis keeps it: its digest, never its value.
pub fn decode_key(name: &str, json: &str) -> Option<StoredKey> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(StoredKey {
        name: name.to_string(),
        sha256: unhex(v["sha256"].as_str()?)?,
        plan: v["plan"].as_str().map(str::to_string),
        created: v["created"].as_u64().unwrap_or(0),
    })
}

/// How long a fence stays: far longer than a write can be on its way to Redis (the
/// admin connection that sent it is closed when the call ends).
const FENCE_MS: u64 = 86_400_000;

/// A key change Redis has not confirmed, which the side thread writes at each sync
/// until Redis takes it, also when Redis refuses it (before re-reading the keys, and
/// correcting what it reads, so this node does not bring back what it revoked:
/// `key_writes.rs`). Kept in the state store too, so a node that stops first writes
/// it when it starts again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum KeyWrite {
    /// A create that was answered 503 although it may have landed: fence it off and
    /// remove it if it did.
    Undo {
        name: String,
        json: String,
        fence: String,
    },
    /// A revocation this node made.
    Revoke {
        name: String,
        #[serde(with = "crate::store::hex32")]
        digest: [u8; 32],
        config: bool,
    },
}

impl std::fmt::Display for KeyWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyWrite::Undo { name, .. } => write!(f, "undo the create of {name}"),
            KeyWrite::Revoke { name, .. } => write!(f, "revoke {name}"),
        }
    }
}

impl KeyWrite {
    /// Its name in the state store: the same change twice is kept once.
    pub(super) fn id(&self) -> String {
        match self {
            KeyWrite::Undo { fence, .. } => format!("undo {fence}"),
            KeyWrite::Revoke {
                name,
                digest,
                config,
            } => format!("revoke {} {name} {}", u8::from(*config), hex(digest)),
        }
    }

    /// Hands the change to the side thread, kept in the state store first: a node that
    /// stops before Redis takes it writes it when it starts again (kept in memory
    /// only, it was lost, and the key it revoked served by the other nodes for good).
    fn keep(self, c: &Cluster) {
        if let Some(store) = &c.shared.store {
            let kept = serde_json::to_vec(&self)
                .map_err(|e| e.to_string())
                .and_then(|json| {
                    store
                        .put_key_write(&self.id(), &json)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = kept {
                tracing::error!(change = %self, error = %e, "cluster: cannot keep a key change in the state store; it is lost if this node stops before Redis takes it");
            }
        }
        c.key_writes.push(self);
    }

    pub(super) fn invocation(&self, c: &Cluster) -> redis::ScriptInvocation<'static> {
        match self {
            KeyWrite::Undo { name, json, fence } => {
                let mut inv = scripts::undo_key().prepare_invoke();
                inv.key(c.key("keys")).key(c.key("keys:v")).key(fence);
                inv.key(c.key("keys:d"));
                inv.arg(name).arg(json).arg(FENCE_MS);
                inv
            }
            KeyWrite::Revoke {
                name,
                digest,
                config,
            } => {
                let mut inv = scripts::revoke_key().prepare_invoke();
                inv.key(c.key("keys"))
                    .key(c.key("keys:v"))
                    .key(c.key("revoked"))
                    .key(c.key("keys:d"));
                inv.arg(name).arg(hex(digest)).arg(u8::from(*config));
                inv
            }
        }
    }
}

/// Whether Redis may have done what a failed call asked: it did not answer anything we
/// could read (a timeout, a dropped connection, garbage). An error Redis answered (a
/// script runs whole or not at all) means it did not.
fn unsure(e: &redis::RedisError) -> bool {
    e.code().is_none()
}

/// What became of a created key in the cluster.
#[derive(Debug)]
pub enum Published {
    /// In Redis: every node serves it within a sync.
    Live,
    /// Redis has another key of that name (created on another node): nothing written.
    NameTaken,
    /// Redis has another key with that value (created on another node, at the same
    /// time or before this node read it): nothing written.
    ValueTaken,
    /// The value is a config key's that was revoked (through another node, before this
    /// node read it): nothing written.
    ValueRevoked,
    /// Not in Redis, and it never will be. `removing`: Redis took the write without
    /// saying so in time and did not answer the check either, so the write is fenced
    /// off and removed by the side thread as soon as Redis answers (nodes may honour
    /// the key until then).
    NotCreated { cause: String, removing: bool },
}

/// Publishes a created key to every node (they apply it within `TICK`). When Redis's
/// answer is lost (it may arrive after the timeout, the write done), the answer is
/// settled by reading back on a new connection: the key is live if it landed, and
/// fenced off if not, so a write still on its way cannot make a key live that the
/// admin call said was not created.
pub fn put_key(c: &Cluster, k: &StoredKey) -> Published {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let json = json!({"sha256": hex(&k.sha256), "plan": k.plan, "created": k.created}).to_string();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let fence = c.key(&format!("keys:fence:{}:{}:{n}", c.node, super::unix_ms()));
    let not_created = |e: &dyn std::fmt::Display| Published::NotCreated {
        cause: e.to_string(),
        removing: false,
    };
    let mut con = match conn(c) {
        Ok(con) => con,
        Err(e) => return not_created(&Failure(&e)),
    };
    let mut inv = scripts::create_key().prepare_invoke();
    inv.key(c.key("keys")).key(c.key("keys:v")).key(&fence);
    inv.key(c.key("keys:d")).key(c.key("revoked"));
    inv.arg(&k.name).arg(&json).arg(hex(&k.sha256));
    let e = match inv.invoke::<i64>(&mut con) {
        Ok(1) => return Published::Live,
        Ok(0) => return Published::NameTaken,
        Ok(2) => return Published::ValueTaken,
        Ok(3) => return Published::ValueRevoked,
        Ok(n) => return not_created(&format_args!("unexpected answer {n}")),
        Err(e) if !unsure(&e) => return not_created(&Failure(&e)),
        Err(e) => e,
    };
    drop(con);
    let mut check = scripts::confirm_key().prepare_invoke();
    check.key(c.key("keys")).key(&fence);
    check.arg(&k.name).arg(&json).arg(FENCE_MS);
    match conn(c).and_then(|mut con| check.invoke::<i64>(&mut con)) {
        Ok(1) => Published::Live,
        Ok(_) => not_created(&Failure(&e)),
        Err(e2) => {
            KeyWrite::Undo {
                name: k.name.clone(),
                json,
                fence,
            }
            .keep(c);
            Published::NotCreated {
                cause: format!("{}; then, checking: {}", Failure(&e), Failure(&e2)),
                removing: true,
            }
        }
    }
}

/// Whether a revocation reached every node.
#[derive(Debug)]
pub enum Revoked {
    /// In Redis: every node drops the key within a sync.
    Everywhere,
    /// Redis did not take it (why): the side thread writes it at each sync until Redis
    /// does; the other nodes honour the key until then.
    Pending(String),
}

/// Revokes a key on every node: a created key leaves `keys`, a config key joins
/// `revoked`. The write is idempotent, so a lost answer is settled by writing it again
/// on a new connection; if Redis still does not confirm, it is left to the side thread.
pub fn revoke_key(c: &Cluster, name: &str, digest: &[u8; 32], config: bool) -> Revoked {
    let w = KeyWrite::Revoke {
        name: name.to_string(),
        digest: *digest,
        config,
    };
    // Err(true, _): the write was sent (its outcome may be unknown).
    let once = || -> Result<(), (bool, redis::RedisError)> {
        let mut con = conn(c).map_err(|e| (false, e))?;
        let r = w.invocation(c).invoke::<i64>(&mut con);
        r.map(drop).map_err(|e| (true, e))
    };
    let cause = match once() {
        Ok(()) => return Revoked::Everywhere,
        Err((true, e)) if unsure(&e) => match once() {
            Ok(()) => return Revoked::Everywhere,
            Err((_, e2)) => format!("{}; then: {}", Failure(&e), Failure(&e2)),
        },
        Err((_, e)) => Failure(&e).to_string(),
    };
    w.keep(c);
    Revoked::Pending(cause)
}

/// Raises the flush generation of `api/stage` and announces it on the `flush` channel:
/// every node empties that cache on the message, or at its next sync if it missed it.
pub fn flush_cache(c: &Cluster, api: &str, stage: &str) -> redis::RedisResult<i64> {
    let mut con = conn(c)?;
    let stage = format!("{api}/{stage}");
    let g: i64 = con.hincr(c.key("cache:gen"), &stage, 1)?;
    // This node flushed already (the caller did, first): seen, its own message is not
    // taken for another node's, which flushed the cache a second time and said so.
    super::generations::generation(&stage, g, true);
    // Now rather than at the next sync; a lost message is caught by the generation.
    let _: redis::RedisResult<i64> = con.publish(c.key("flush"), format!("{g} {stage}"));
    Ok(g)
}

/// The cluster's per-day usage of a plan from `from` to `to`: every node's counts summed
/// (this node's written first, so the answer includes everything it admitted).
pub fn usage(
    c: &Cluster,
    plan: &str,
    key: Option<&str>,
    from: u32,
    to: u32,
) -> redis::RedisResult<Vec<DayCount>> {
    let mut con = conn(c)?;
    let mut own: BTreeMap<u32, Vec<(String, u64)>> = BTreeMap::new();
    for (p, k, cells) in c.shared.keys.usage_cells() {
        if p == plan {
            for (day, count) in cells.day_counts() {
                if count > 0 {
                    own.entry(day)
                        .or_default()
                        .push((format!("{k}|{}", c.usage_node), count));
                }
            }
        }
    }
    for (day, fields) in own {
        let mut inv = scripts::raise().key(c.key(&format!("usage:{plan}:{day}")));
        for (f, n) in &fields {
            inv.arg(f).arg(*n);
        }
        let _: i64 = inv.invoke(&mut con)?;
    }
    let mut rows = Vec::new();
    for day in from..=to {
        let hash = c.key(&format!("usage:{plan}:{day}"));
        let all: BTreeMap<String, String> = con.hgetall(&hash)?;
        let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
        for (field, n) in all {
            // Another node's field that is no count (written outside Portico) is left
            // out, said: read as a failure, it made every `GET /usage` of the plan 503.
            let Ok(n) = n.parse::<u64>() else {
                tracing::warn!(%hash, %field, value = %n, "cluster: a usage count in Redis is no count (changed outside Portico); left out");
                continue;
            };
            let name = field.rsplit_once('|').map_or(field.as_str(), |(k, _)| k);
            if key.is_none_or(|want| want == name) {
                *per_key.entry(name.to_string()).or_default() += n;
            }
        }
        rows.extend(per_key.into_iter().map(|(k, count)| DayCount {
            plan: plan.to_string(),
            key: k,
            day,
            count,
        }));
    }
    Ok(rows)
}

/// The config hash the cluster last published (`portico check`).
pub fn published_hash(
    url: &str,
    prefix: &str,
    timeout: Duration,
) -> redis::RedisResult<Option<String>> {
    connect(url, timeout)?.get(format!("{prefix}:config:hash"))
}
