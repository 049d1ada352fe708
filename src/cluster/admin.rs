//! What the admin thread (and `portico check`) asks Redis directly, over a blocking
//! connection with the cluster timeout: these calls are not on a request path, and the
//! admin answer must say whether the write reached Redis.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Commands;
use serde_json::json;

use super::{scripts, Cluster};
use crate::store::{DayCount, StoredKey};

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

fn conn(c: &Cluster) -> redis::RedisResult<redis::Connection> {
    // Admin calls may do a few round trips: a little more than one request's timeout.
    connect(&c.cfg.redis, c.cfg.timeout.max(Duration::from_millis(200)))
}

pub fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
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

/// Publishes a created key to every node (they apply it within `TICK`).
pub fn put_key(c: &Cluster, k: &StoredKey) -> redis::RedisResult<()> {
    let json = json!({"sha256": hex(&k.sha256), "plan": k.plan, "created": k.created});
    redis::pipe()
        .atomic()
        .hset(c.key("keys"), &k.name, json.to_string())
        .ignore()
        .incr(c.key("keys:v"), 1)
        .ignore()
        .query(&mut conn(c)?)
}

/// Revokes a key on every node: a created key leaves `keys`, a config key joins `revoked`.
pub fn revoke_key(
    c: &Cluster,
    name: &str,
    config_digest: Option<&[u8; 32]>,
) -> redis::RedisResult<()> {
    let mut p = redis::pipe();
    p.atomic();
    match config_digest {
        Some(d) => p.hset(c.key("revoked"), name, hex(d)).ignore(),
        None => p.hdel(c.key("keys"), name).ignore(),
    };
    p.incr(c.key("keys:v"), 1).ignore().query(&mut conn(c)?)
}

/// Raises the flush generation of `api/stage` and announces it on the `flush` channel:
/// every node empties that cache on the message, or at its next sync if it missed it.
pub fn flush_cache(c: &Cluster, api: &str, stage: &str) -> redis::RedisResult<i64> {
    let mut con = conn(c)?;
    let stage = format!("{api}/{stage}");
    let g: i64 = con.hincr(c.key("cache:gen"), &stage, 1)?;
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
                        .push((format!("{k}|{}", c.node), count));
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
        let all: BTreeMap<String, u64> = con.hgetall(c.key(&format!("usage:{plan}:{day}")))?;
        let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
        for (field, n) in all {
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
