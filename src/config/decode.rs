//! A small hand-written decoder from `serde_yaml_ng::Value` into typed values.
//!
//! Serde's derive stops at the first error and reports positions, not key paths; users
//! want every mistake at once, each with the key path they would search for in the file.
//! So every accessor here records its error in the `Decoder` and hands back `None` (or an
//! empty collection), and the caller carries on with a default.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::yaml::{big_int, Written};
use super::{ConfigError, KeyPath};

/// The longest duration any key takes.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Looks up an environment variable; injected so tests need not touch the process env.
pub(super) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) struct Decoder<'a> {
    pub errors: Vec<ConfigError>,
    /// For an error about one key of a map (unknown, missing), shown at the map's path:
    /// its index in `errors` and the key's own path. Later checks skip what lies at or
    /// under a decode error's path; for these that is the key's, not the whole map's,
    /// so a misspelt key does not hide the problems of its siblings.
    pub about_key: Vec<(usize, String)>,
    /// Lists that lost items that failed to decode: each one's path and where its kept
    /// items stand in the file, so later checks can name them by the file's numbering.
    pub renumbered: Vec<(String, Vec<usize>)>,
    /// Errors about a key that reads as the same text as an earlier one of its map: their
    /// index in `errors`. Their path is the first key's too, whose value is read, so they
    /// explain none of the errors found in it.
    pub twice: Vec<usize>,
    /// Errors about a key no field has (or a key that is not text, in a map of fields):
    /// their index in `errors`. Their value is not read, so they explain no other error.
    pub unknown: Vec<usize>,
    /// Values that failed to decode and were replaced by a stand-in, so that the entry
    /// holding them is still checked (a route whose integration failed): their paths.
    /// What later checks find at or under them is about the stand-in.
    pub stand_ins: Vec<String>,
    /// Keys written with no value that read as "off" (`throttle:` alone, `cache: ~`),
    /// each at its path (`validate::no_value`): what a reader may take for a setting.
    pub warnings: Vec<ConfigError>,
    /// Whether a string value named `${env:...}`: only then does the config differ from
    /// its [`Decoder::as_written`] decode.
    pub read_env: bool,
    /// Text values keep their `${env:NAME}` as written (values parsed further, such as
    /// numbers, durations and addresses, are still read from the environment): the copy
    /// of the config the OpenAPI export prints, which must not hold what they point to.
    as_written: bool,
    env: EnvLookup<'a>,
    written: &'a Written,
}

/// The entries of one YAML map whose keys were checked against the known field names.
pub(super) struct Fields<'v> {
    map: Option<&'v Mapping>,
    path: KeyPath,
    /// False when the value was not a map: its error is already reported, so missing
    /// required keys inside it would only be noise.
    valid: bool,
}

impl<'v> Fields<'v> {
    /// The value of `key`; an explicit YAML null counts as absent so `health:` with
    /// nothing after it means the default.
    pub fn get(&self, key: &str) -> Option<(&'v Value, KeyPath)> {
        let v = self.map?.get(key)?;
        if v.is_null() {
            None
        } else {
            Some((v, self.path.key(key)))
        }
    }

    /// Whether `key` is written with no value (`key:` alone, `~`, `null`), which
    /// [`Fields::get`] takes as absent.
    pub fn null(&self, key: &str) -> bool {
        self.map
            .and_then(|m| m.get(key))
            .is_some_and(Value::is_null)
    }

    /// Decodes `key` if present; `None` when absent or malformed (then reported).
    pub fn opt<'e, T>(
        &self,
        d: &mut Decoder<'e>,
        key: &str,
        decode: impl FnOnce(&mut Decoder<'e>, &Value, &KeyPath) -> Option<T>,
    ) -> Option<T> {
        let (v, p) = self.get(key)?;
        decode(d, v, &p)
    }

    /// Overwrites `target` when `key` is present and well-formed, so a bad value leaves
    /// the default in place while its error is reported.
    pub fn set<'e, T>(
        &self,
        d: &mut Decoder<'e>,
        key: &str,
        target: &mut T,
        decode: impl FnOnce(&mut Decoder<'e>, &Value, &KeyPath) -> Option<T>,
    ) {
        if let Some(value) = self.opt(d, key, decode) {
            *target = value;
        }
    }

    /// Decodes `key`, reporting it missing when absent.
    pub fn need<'e, T>(
        &self,
        d: &mut Decoder<'e>,
        key: &str,
        decode: impl FnOnce(&mut Decoder<'e>, &Value, &KeyPath) -> Option<T>,
    ) -> Option<T> {
        let (v, p) = self.required(d, key)?;
        decode(d, v, &p)
    }

    /// Like `get`, but a missing key is an error at this map's path.
    pub fn required(&self, d: &mut Decoder, key: &str) -> Option<(&'v Value, KeyPath)> {
        let got = self.get(key);
        if got.is_none() && self.valid {
            d.key_error(&self.path, key, format!("missing key \"{key}\""));
        }
        got
    }
}

impl<'a> Decoder<'a> {
    pub fn new(env: EnvLookup<'a>, written: &'a Written) -> Self {
        Decoder {
            errors: Vec::new(),
            about_key: Vec::new(),
            renumbered: Vec::new(),
            twice: Vec::new(),
            unknown: Vec::new(),
            stand_ins: Vec::new(),
            warnings: Vec::new(),
            read_env: false,
            as_written: false,
            env,
            written,
        }
    }

    /// A decoder whose text values keep `${env:NAME}` unexpanded (see `as_written`).
    pub fn as_written(env: EnvLookup<'a>, written: &'a Written) -> Self {
        Decoder {
            as_written: true,
            ..Decoder::new(env, written)
        }
    }

    /// An error about `key` of the map at `path` (missing), shown at the map's path.
    fn key_error(&mut self, path: &KeyPath, key: &str, message: String) {
        let at = path.key(key).error("").path;
        if self.error_noted(path, message) {
            self.about_key.push((self.errors.len() - 1, at));
        }
    }

    /// Notes that the value at `path` failed to decode and a stand-in takes its place.
    pub fn stand_in(&mut self, path: &KeyPath) {
        self.stand_ins.push(path.as_str().to_owned());
    }

    pub fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.error_noted(path, message);
    }

    /// As [`Decoder::error`]; false when the error is not noted: the value at `path`, or
    /// one it is in, was refused for its tag already (`Written::tag_refused`): `!!set
    /// {? a}` is refused once, not again for each member's missing value.
    fn error_noted(&mut self, path: &KeyPath, message: impl Into<String>) -> bool {
        let at = path.as_str();
        let under = |p: &String| {
            at.strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        if self.written.tag_refused.iter().any(under) {
            return false;
        }
        self.errors.push(path.error(message));
        true
    }

    fn type_error(&mut self, path: &KeyPath, expected: &str, got: &Value) {
        self.error(path, format!("expected {expected}, got {}", describe(got)));
    }

    /// An integer beyond 64 bits where a number is wanted: too large (or too small) for
    /// any key, so say so rather than "expected a number".
    pub fn out_of_range(&mut self, path: &KeyPath, expected: &str, got: &Value) {
        let digits = big_int(got).unwrap_or_default();
        let which = if digits.starts_with('-') {
            "below"
        } else {
            "above"
        };
        self.error(
            path,
            format!(
                "expected {expected}, got {}, {which} what 64 bits hold",
                shown_bare(digits)
            ),
        );
    }

    /// A map with a fixed set of keys; unknown keys are errors (with a did-you-mean).
    pub fn fields<'v>(&mut self, v: &'v Value, path: &KeyPath, known: &[&str]) -> Fields<'v> {
        let map = match v {
            Value::Mapping(m) => m,
            Value::Null => {
                return Fields {
                    map: None,
                    path: path.clone(),
                    valid: true,
                }
            }
            other => {
                self.type_error(path, "a map", other);
                return Fields {
                    map: None,
                    path: path.clone(),
                    valid: false,
                };
            }
        };
        for key in map.keys() {
            match key {
                Value::String(k) if known.contains(&k.as_str()) => {}
                Value::String(k) => {
                    let meant = did_you_mean(k, known);
                    let hint = match meant {
                        Some(s) => format!(" (did you mean {}?)", shown(s)),
                        None => format!(" (expected one of: {})", known.join(", ")),
                    };
                    // The key it may have been meant as is missing in effect, unless
                    // it is there too: then its own problems are its own, and shown
                    // (`workerz: 2` beside `workers: 999` hid the latter's error).
                    let written = |m: &str| map.contains_key(Value::String(m.into()));
                    if self.error_noted(path, format!("unknown key {}{hint}", shown(k))) {
                        let i = self.errors.len() - 1;
                        if let Some(meant) = meant.filter(|m| !written(m)) {
                            self.about_key.push((i, path.key(meant).error("").path));
                        }
                        self.unknown.push(i);
                    }
                }
                other => {
                    if self.error_noted(path, format!("unknown key {}", describe(other))) {
                        self.unknown.push(self.errors.len() - 1);
                    }
                }
            }
        }
        let nulls = known
            .iter()
            .filter(|k| map.get(**k).is_some_and(Value::is_null));
        let at = path.as_str();
        for (key, why) in nulls.filter_map(|k| Some((k, super::validate::no_value(at, k)?))) {
            self.warnings.push(path.key(key).error(why));
        }
        Fields {
            map: Some(map),
            path: path.clone(),
            valid: true,
        }
    }

    /// A map with user-chosen keys, in file order. Numbers and booleans are accepted as
    /// keys because YAML reads `1:` or `true:` that way, and users mean the text (as
    /// written: `1.10:` is "1.10").
    pub fn entries<'v>(
        &mut self,
        v: &'v Value,
        path: &KeyPath,
    ) -> Vec<(String, &'v Value, KeyPath)> {
        let map = match v {
            Value::Mapping(m) => m,
            Value::Null => return Vec::new(),
            other => {
                self.type_error(path, "a map", other);
                return Vec::new();
            }
        };
        let mut out: Vec<(String, &Value, KeyPath)> = Vec::with_capacity(map.len());
        let mut read_from: Vec<&Value> = Vec::with_capacity(map.len());
        // Where each key's text is in `out`: found by a scan per key, a map of 40,000
        // models (or stage variables) took seconds to read.
        let mut index: std::collections::HashMap<String, usize> =
            std::collections::HashMap::with_capacity(map.len());
        for (k, v) in map {
            let Some(key) = self.written.key(k, path) else {
                // Shown at the map, but about its own entry only (dropped): the other
                // entries are checked as if it were not there.
                let own = format!("{} (a key that is not text)", path.as_str());
                if self.error_noted(path, format!("keys must be text, got {}", describe(k))) {
                    self.about_key.push((self.errors.len() - 1, own));
                }
                continue;
            };
            let p = path.key(&key);
            // YAML tells `200:` from `"200":` (a number, a string) and keeps both; read
            // as text they are one key, and the second was silently ignored.
            if let Some(&i) = index.get(&key) {
                let spelt = |k: &Value| match k {
                    Value::String(s) => shown(s),
                    _ => format!("{} (a {})", shown_bare(&key), describe_kind(k)),
                };
                let message = format!(
                    "this key is written twice in its map, as {} and as {}, both read as the text {} (the first one is read)",
                    spelt(read_from[i]),
                    spelt(k),
                    shown(&key)
                );
                if self.error_noted(&p, message) {
                    self.twice.push(self.errors.len() - 1);
                }
                continue;
            }
            read_from.push(k);
            index.insert(key.clone(), out.len());
            out.push((key, v, p));
        }
        out
    }

    /// A map of text to text (stage variables, headers, parameter mappings). Always
    /// `Some`: bad entries are reported and dropped. `Option` only to fit `Fields::opt`.
    pub fn text_map(&mut self, v: &Value, path: &KeyPath) -> Option<Vec<(String, String)>> {
        let entries = self.entries(v, path);
        let map = entries
            .into_iter()
            .filter_map(|(k, v, p)| Some((k, self.text(v, &p)?)));
        Some(map.collect())
    }

    /// A list of strings; always `Some`, like `text_map`.
    pub fn strings(&mut self, v: &Value, path: &KeyPath) -> Option<Vec<String>> {
        Some(self.list_of(v, path, Self::string))
    }

    /// A list of listen or target addresses; always `Some`, like `text_map`.
    pub fn addrs(&mut self, v: &Value, path: &KeyPath) -> Option<Vec<SocketAddr>> {
        Some(self.list_of(v, path, Self::socket_addr))
    }

    pub fn list<'v>(&mut self, v: &'v Value, path: &KeyPath) -> Vec<(&'v Value, KeyPath)> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (item, path.index(i)))
                .collect(),
            Value::Null => Vec::new(),
            other => {
                self.type_error(path, "a list", other);
                Vec::new()
            }
        }
    }

    /// Decodes each item of a list with `item`, dropping the ones that failed (and
    /// noting where the others stand in the file: `renumbered`).
    pub fn list_of<T>(
        &mut self,
        v: &Value,
        path: &KeyPath,
        mut item: impl FnMut(&mut Self, &Value, &KeyPath) -> Option<T>,
    ) -> Vec<T> {
        let items = self.list(v, path);
        let (mut out, mut kept) = (Vec::new(), Vec::new());
        for (i, (v, p)) in items.iter().enumerate() {
            if let Some(t) = item(self, v, p) {
                out.push(t);
                kept.push(i);
            }
        }
        if kept.len() < items.len() {
            self.renumbered.push((path.as_str().to_owned(), kept));
        }
        out
    }

    /// Expands `${env:NAME}` in a string value; errors go to `path`.
    fn expand<'s>(&mut self, s: &'s str, path: &KeyPath) -> Option<Cow<'s, str>> {
        match expand_env(s, self.env) {
            Ok(out) => Some(out),
            Err(messages) => {
                for m in messages {
                    self.error(path, m);
                }
                None
            }
        }
    }

    /// A non-string scalar may still be written as `${env:N}`; this gives its expanded
    /// text, or `None` with a type error when the value is neither.
    fn env_text(&mut self, v: &Value, path: &KeyPath, expected: &str) -> Option<String> {
        match v {
            Value::String(s) if s.contains("${env:") => self.expand(s, path).map(Cow::into_owned),
            other => {
                self.type_error(path, expected, other);
                None
            }
        }
    }

    /// A text value: with `${env:NAME}` expanded, or as written by an `as_written` decoder.
    pub fn string(&mut self, v: &Value, path: &KeyPath) -> Option<String> {
        match v {
            Value::String(s) if s.contains("${env:") => {
                self.read_env = true;
                if self.as_written {
                    return Some(s.clone());
                }
                self.expand(s, path).map(Cow::into_owned)
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.type_error(path, "a string", other);
                None
            }
        }
    }

    /// Text the caller parses into something else (an address, a count, a name another
    /// key defines): `${env:NAME}` is always expanded, as for numbers and durations.
    pub fn parsed_text(&mut self, v: &Value, path: &KeyPath) -> Option<String> {
        match v {
            Value::String(s) => self.expand(s, path).map(Cow::into_owned),
            other => {
                self.type_error(path, "a string", other);
                None
            }
        }
    }

    /// Like `string`, but numbers and booleans are taken as their text as written:
    /// `version: 1.10` in stage variables means "1.10" (`yaml/written.rs`).
    pub fn text(&mut self, v: &Value, path: &KeyPath) -> Option<String> {
        match self.written.text(v, path) {
            Some(text) => Some(text),
            None => self.string(v, path),
        }
    }

    /// A count that indexes memory (pool sizes); saturates on 32-bit targets.
    pub fn usize(&mut self, v: &Value, path: &KeyPath) -> Option<usize> {
        self.u64(v, path)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A size in bytes that indexes memory; saturates on 32-bit targets.
    pub fn usize_size(&mut self, v: &Value, path: &KeyPath) -> Option<usize> {
        self.size(v, path)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub fn bool(&mut self, v: &Value, path: &KeyPath) -> Option<bool> {
        const EXPECTED: &str = "true or false";
        if let Value::Bool(b) = v {
            return Some(*b);
        }
        let text = self.env_text(v, path, EXPECTED)?;
        match text.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.error(path, format!("expected {EXPECTED}, got {}", shown(&text)));
                None
            }
        }
    }

    pub fn u64(&mut self, v: &Value, path: &KeyPath) -> Option<u64> {
        const EXPECTED: &str = "a whole number ≥ 0";
        if big_int(v).is_some() {
            self.out_of_range(path, EXPECTED, v);
            return None;
        }
        if let Value::Number(n) = v {
            let got = n.as_u64();
            if got.is_none() {
                self.type_error(path, EXPECTED, v);
            }
            return got;
        }
        let text = self.env_text(v, path, EXPECTED)?;
        let got = text.trim().parse().ok();
        if got.is_none() {
            self.error(path, format!("expected {EXPECTED}, got {}", shown(&text)));
        }
        got
    }

    /// Any number, fractions included; range checks belong to validation.
    pub fn f64(&mut self, v: &Value, path: &KeyPath) -> Option<f64> {
        const EXPECTED: &str = "a number";
        if let Value::Number(n) = v {
            return n.as_f64();
        }
        if let Some(digits) = big_int(v) {
            return digits.parse().ok();
        }
        let text = self.env_text(v, path, EXPECTED)?;
        let got = text.trim().parse().ok();
        if got.is_none() {
            self.error(path, format!("expected {EXPECTED}, got {}", shown(&text)));
        }
        got
    }

    pub fn duration(&mut self, v: &Value, path: &KeyPath) -> Option<Duration> {
        const EXPECTED: &str = "a duration like 250ms, 29s, 10m";
        let got = self.parsed(
            v,
            path,
            EXPECTED,
            |n| Some(Duration::from_secs(n)),
            parse_duration,
        )?;
        // Timers can't hold what u64 milliseconds can: an upstream's connect_timeout of
        // 18446744073709551615ms passed `check` and panicked a worker at its first request.
        if got > MAX_DURATION {
            self.error(path, "at most 8760h (a year)");
            return None;
        }
        Some(got)
    }

    pub fn size(&mut self, v: &Value, path: &KeyPath) -> Option<u64> {
        const EXPECTED: &str = "a size like 10485760, 512KB or 64MiB";
        self.parsed(v, path, EXPECTED, Some, parse_size)
    }

    /// A value written either as a bare whole number or as text with a unit.
    fn parsed<T>(
        &mut self,
        v: &Value,
        path: &KeyPath,
        expected: &str,
        from_number: impl FnOnce(u64) -> Option<T>,
        from_text: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        if big_int(v).is_some() {
            self.out_of_range(path, expected, v);
            return None;
        }
        let got = match v {
            Value::Number(n) => n.as_u64().and_then(from_number),
            Value::String(s) => {
                let text = self.expand(s, path)?;
                let got = from_text(&text);
                if got.is_none() {
                    self.error(path, format!("expected {expected}, got {}", shown(&text)));
                }
                return got;
            }
            _ => None,
        };
        if got.is_none() {
            self.type_error(path, expected, v);
        }
        got
    }

    /// One of a fixed set of words (`auto | io_uring | epoll`).
    pub fn choice<T: Copy>(
        &mut self,
        v: &Value,
        path: &KeyPath,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let expected = format!("one of {}", names.join(", "));
        let Value::String(s) = v else {
            self.type_error(path, &expected, v);
            return None;
        };
        let text = self.expand(s, path)?;
        let got = choices.iter().find(|(n, _)| *n == text).map(|(_, t)| *t);
        if got.is_none() {
            self.error(path, format!("expected {expected}, got {}", shown(&text)));
        }
        got
    }

    /// `ip:port`, `[v6]:port` or `localhost:port`. Other host names are refused rather
    /// than resolved: a config that depends on DNS at load time loads differently on
    /// every machine, and a lookup can hang startup.
    pub fn socket_addr(&mut self, v: &Value, path: &KeyPath) -> Option<SocketAddr> {
        const EXPECTED: &str = "an address like 127.0.0.1:8080 or localhost:8080";
        let Value::String(s) = v else {
            self.type_error(path, EXPECTED, v);
            return None;
        };
        let text = self.expand(s, path)?;
        let got = parse_socket_addr(&text);
        if got.is_none() {
            self.error(path, format!("expected {EXPECTED}, got {}", shown(&text)));
        }
        got
    }
}

mod text;
pub(super) use text::{
    describe, describe_kind, did_you_mean, expand_env, parse_duration, parse_size,
    parse_socket_addr,
};
pub(crate) use text::{shown, shown_bare};

#[cfg(test)]
mod tests;
