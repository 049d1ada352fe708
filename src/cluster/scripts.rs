//! The Lua scripts: each one call, atomic in Redis, so two nodes can never both take the
//! last token or both overwrite a count.

use std::sync::OnceLock;

use redis::Script;

/// KEYS[1] counter · ARGV want, limit, ttl ms → {granted, used after}. Grants at most
/// what is left of `limit`: the sum of all grants for one key never exceeds it
/// (Sentry Relay's global limiter scheme).
const LEASE: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local room = tonumber(ARGV[2]) - used
if room <= 0 then return {0, used} end
local n = math.min(tonumber(ARGV[1]), room)
used = redis.call('INCRBY', KEYS[1], n)
if used == n then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {n, used}
";

/// KEYS[1] hash · ARGV field, count, field, count… → raises each field to its count,
/// never lowers it: a node writes its absolute per-day count, so writing it twice (a
/// retry after a lost answer) changes nothing and a late old value cannot undo a newer.
const RAISE: &str = r"
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
";

pub fn lease() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(LEASE))
}

pub fn raise() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(RAISE))
}
