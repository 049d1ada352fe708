//! The decoder's text parsers: `${env:NAME}` references, durations, sizes, socket
//! addresses, and the "did you mean" for a misspelt key; and how messages show values.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_yaml_ng::Value;

use super::EnvLookup;
use crate::config::yaml::big_int;

/// Replaces every `${env:NAME}`; other `${...}` (stage variables, resolved per stage
/// later) pass through untouched. Returns every problem in the string, not just the first.
pub(in crate::config) fn expand_env<'s>(
    s: &'s str,
    env: EnvLookup,
) -> Result<Cow<'s, str>, Vec<String>> {
    const OPEN: &str = "${env:";
    if !s.contains(OPEN) {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut errors = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            errors.push(format!("unterminated ${{env:...}} in {}", shown(s)));
            rest = "";
            break;
        };
        let name = &after[..end];
        if !is_env_name(name) {
            errors.push(format!(
                "{} is not an environment variable name",
                shown(name)
            ));
        } else if let Some(value) = env(name) {
            out.push_str(&value);
        } else {
            errors.push(format!("environment variable {name} is not set"));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        Err(errors)
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits "64MiB" into (64, "MiB"); spaces between number and unit are allowed.
fn number_and_unit(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    Some((s[..digits].parse().ok()?, s[digits..].trim_start()))
}

/// `250ms`, `29s`, `10m`, `1h`; a bare number is seconds.
pub(in crate::config) fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = number_and_unit(s)?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms_per_unit)?))
}

/// `512KB` (decimal) or `64MiB` (binary); a bare number is bytes.
pub(in crate::config) fn parse_size(s: &str) -> Option<u64> {
    let (n, unit) = number_and_unit(s)?;
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

pub(in crate::config) fn parse_socket_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    let port = s.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// The closest known key within a couple of typos, for "did you mean".
pub(in crate::config) fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len().max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What kind of scalar a map key is, for a key that is not text.
pub(in crate::config) fn describe_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        _ => "number",
    }
}

/// How a value looks in "expected X, got Y".
pub(in crate::config) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => shown(s),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a map".to_string(),
        Value::Tagged(_) if big_int(v).is_some() => shown_bare(big_int(v).unwrap_or_default()),
        Value::Tagged(t) => format!("a value tagged {}", shown_bare(&t.tag.to_string())),
    }
}

/// The most characters of a value a message echoes: a 1 MiB value was echoed whole in
/// "expected a duration …, got "…"", in `check`'s output and the reload's log line.
const MAX_SHOWN: usize = 80;

/// A config value (or key) as messages show it: quoted and escaped as Rust's `{:?}`,
/// cut after [`MAX_SHOWN`] characters, with its full length: `"aaa…"… (1048576 bytes)`.
pub(crate) fn shown(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// As [`shown`], for text shown without quotes (digits, a tag).
pub(crate) fn shown_bare(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
    }
}
