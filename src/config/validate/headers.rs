//! Keys of one map that name the same header in two spellings. Header names have no case
//! (RFC 9110 §5.1), but map keys do: `overwrite:header.X-P` beside
//! `overwrite:header.x-p`, or a mock's `X-A` beside `x-a`, passed as two keys, and both
//! headers were sent.

use crate::pipeline::params::{parse_key, Target};

/// Each key of `keys` (in order) that names the same header as an earlier one, with that
/// earlier one. `header` gives what a key sets (its header name, lower-cased, and
/// whatever else tells two keys apart, such as a mapping's action), None when no header.
pub(crate) fn same_header<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    header: impl Fn(&str) -> Option<String>,
) -> Vec<(&'k str, &'k str)> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut twice = Vec::new();
    for key in keys {
        let Some(h) = header(key) else { continue };
        match seen.iter().find(|(s, _)| *s == h) {
            Some((_, first)) => twice.push((key, *first)),
            None => seen.push((h, key)),
        }
    }
    twice
}

/// What a parameter mapping key sets, for [`same_header`]: `append:` and `overwrite:` of
/// one header are two mappings, as in API Gateway.
pub(crate) fn mapped(key: &str) -> Option<String> {
    match parse_key(key)? {
        (action, Target::Header(name)) => Some(format!("{action:?} {}", name.to_ascii_lowercase())),
        _ => None,
    }
}

/// A header name, for [`same_header`].
pub(crate) fn name(key: &str) -> Option<String> {
    Some(key.to_ascii_lowercase())
}

/// The error at the second key.
pub(crate) fn message(first: &str) -> String {
    format!("names the same header as {first:?} (header names have no case), so both would be sent; keep one")
}
