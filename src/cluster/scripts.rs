//! The Lua scripts: each one call, atomic in Redis, so two nodes can never both take the
//! last token or both overwrite a count.

use std::sync::OnceLock;

use redis::Script;

/// KEYS[1] counter, KEYS[2] the `epoch` marker · ARGV want, limit, ttl ms, the marker
/// this node's counts are in ('' before its first sync) → {granted, used after}. Grants
/// at most what is left of `limit`: the sum of all grants for one key never exceeds it
/// (Sentry Relay's global limiter scheme). {-1, 0} when Redis lost its data since
/// (another marker, or none): the counter lacks this node's counts until its sync gives
/// them again, and a grant against it over-admitted (a FLUSHALL under load let 3 nodes
/// admit 656 of a quota of 500). {-2, 0} when the counter is no count (changed outside
/// Portico: another type, or text that is not a decimal integer of up to 15 digits without leading zeros, as
/// INCRBY would refuse `5.0`, `0x1`, ` 5`, `05` or `1e1`, which Lua's `tonumber` reads):
/// nothing is granted against it. Read as a failure, one such key opened the breaker for every limit; a
/// negative count granted past the limit.
const LEASE: &str = r"
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return {-1, 0} end
local raw = redis.pcall('GET', KEYS[1])
local used = 0
if raw then
  if type(raw) ~= 'string' or #raw > 15 or not (raw == '0' or string.find(raw, '^[1-9]%d*$')) then return {-2, 0} end
  used = tonumber(raw)
end
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
/// A field that is no count (written outside Portico: text, a fraction, a negative) is
/// replaced by the count, which is this node's own and whole; the answer is how many
/// were (the caller warns). Compared as it was, it failed the script, and with it every
/// sync of the node that writes that field: the whole node on `on_failure`.
const RAISE: &str = r"
local replaced = 0
for i = 1, #ARGV, 2 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  local cur = 0
  if raw then
    if #raw > 15 or not string.find(raw, '^%d+$') then
      cur = -1
      replaced = replaced + 1
    else
      cur = tonumber(raw)
    end
  end
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return replaced
";

/// Makes `keys:d` (value digest → name) hold exactly the digests of `keys` when the two
/// differ in size: keys written before the index existed, or an index lost alone.
/// Shared by the scripts that read the index, so every check sees it whole.
const REINDEX: &str = r"
local function reindex()
  if redis.call('HLEN', KEYS[4]) == redis.call('HLEN', KEYS[1]) then return end
  redis.call('DEL', KEYS[4])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local ok, k = pcall(cjson.decode, all[i + 1])
    if ok and type(k) == 'table' and type(k.sha256) == 'string' then
      redis.call('HSET', KEYS[4], k.sha256, all[i])
    end
  end
end
";

/// The key scripts' first step: `keys:v` (KEYS[2]) must be a count INCR takes, or the
/// script fails before it writes anything (a Lua error rolls nothing back). With the
/// INCR after the writes and failing on a value written outside Portico, a create
/// answered 503 "the key was not created" left the key in Redis (every node served it
/// once `keys:v` was fixed), and a revocation answered "not taken" was half made (the
/// key deleted, no node told to read the keys again). Checked rather than INCRed first:
/// at `maxmemory` Redis refuses a script's INCR only before its first write, and a
/// revocation's delete, allowed there, must go first to be taken at all.
const VERSION_OK: &str = r"
local function version_ok()
  local v = redis.call('GET', KEYS[2])
  return not v or (#v < 19 and (v == '0' or string.find(v, '^%-?[1-9]%d*$') ~= nil))
end
if not version_ok() then
  return redis.error_reply('ERR ' .. KEYS[2] .. ' is not a count (written outside Portico): nothing written')
end
";

/// KEYS keys, keys:v, fence, keys:d, revoked · ARGV name, json, sha256 hex → 1 written,
/// 0 the name is taken (another node's key: nothing written), 2 the value is another
/// key's (two nodes creating one value under two names at once: each node checks only
/// its own table), 3 the value is a revoked config key's (revoked through another node
/// since this one last read Redis: a leaked value never returns), -1 fenced off (this
/// write's answer was lost and the admin call already answered that the key was not
/// created: it must never land). Every check ([`VERSION_OK`] first) comes before the
/// first write.
const CREATE_KEY: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
for _, d in ipairs(redis.call('HVALS', KEYS[5])) do
  if d == ARGV[3] then return 3 end
end
reindex()
local other = redis.call('HGET', KEYS[4], ARGV[3])
if other then
  local cur = redis.call('HGET', KEYS[1], other)
  local ok, k = pcall(cjson.decode, cur or '')
  if ok and type(k) == 'table' and k.sha256 == ARGV[3] then return 2 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
";

/// KEYS keys, fence · ARGV name, json, fence ttl ms → 1 the create landed; 0 it did not,
/// and now it never will (the fence makes a create still on its way a no-op). Read after
/// a create whose answer was lost, so the admin call answers what Redis holds.
const CONFIRM_KEY: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 0
";

/// KEYS keys, keys:v, fence, keys:d · ARGV name, json, fence ttl ms → fences
/// the create off and removes the key if it landed (1) — only that very key, never
/// another of that name — and its value from the index ([`VERSION_OK`] first).
const UNDO_KEY: &str = r"
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  local d = cjson.decode(ARGV[2]).sha256
  if redis.call('HGET', KEYS[4], d) == ARGV[1] then redis.call('HDEL', KEYS[4], d) end
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
";

/// KEYS keys, keys:v, revoked, keys:d · ARGV name, sha256 hex, 1 for a config key → 1. A
/// config key joins `revoked`; a created key leaves `keys` (and its value the index) if
/// it is the one with that digest (a retry must not remove a key created later under
/// the same name). Idempotent, so it can be repeated until Redis confirms it
/// ([`VERSION_OK`] first).
const REVOKE_KEY: &str = r"
if ARGV[3] == '1' then
  if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
    redis.call('INCR', KEYS[2])
  end
  return 1
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, k = pcall(cjson.decode, cur)
  if ok and type(k) == 'table' and k.sha256 == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[1])
    if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[4], ARGV[2]) end
    redis.call('INCR', KEYS[2])
  end
end
return 1
";

/// KEYS[1] counter · ARGV n → the count after giving back `n` leased, unspent tokens,
/// never below 0 (a Redis that lost the count meanwhile).
const GIVE_BACK: &str = r"
local used = redis.call('DECRBY', KEYS[1], ARGV[1])
if used < 0 then redis.call('INCRBY', KEYS[1], -used) used = 0 end
return used
";

pub fn give_back() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(GIVE_BACK))
}

pub fn lease() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(LEASE))
}

pub fn raise() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(RAISE))
}

pub fn create_key() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(&format!("{REINDEX}{VERSION_OK}{CREATE_KEY}")))
}

pub fn confirm_key() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(CONFIRM_KEY))
}

pub fn undo_key() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(&format!("{VERSION_OK}{UNDO_KEY}")))
}

pub fn revoke_key() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| Script::new(&format!("{VERSION_OK}{REVOKE_KEY}")))
}

#[cfg(test)]
mod tests;
