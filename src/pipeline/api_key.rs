//! The `x-api-key` header → the key's table entry. The value is hashed once and looked
//! up by digest (constant-time compare: see `global::keys`); nothing is allocated.

use crate::global::keys::{digest, KeyEntry, KeyTable};
use crate::http1::RequestHead;

/// Header that carries the key, as in API Gateway.
pub const HEADER: &str = "x-api-key";

/// The entry of the key presented with the request; None when the header is missing
/// or empty, or the key is unknown or revoked (all the same 403 to the client).
#[inline]
pub fn lookup<'t>(table: &'t KeyTable, head: &RequestHead, buf: &[u8]) -> Option<&'t KeyEntry> {
    let value = head.header(buf, HEADER)?;
    if value.is_empty() || table.is_empty() {
        return None;
    }
    table.find(&digest(value))
}

/// The entry of a key given by value (`api_key_source: authorizer`: the Lambda
/// authorizer's `usageIdentifierKey`).
#[inline]
pub fn lookup_value<'t>(table: &'t KeyTable, value: &[u8]) -> Option<&'t KeyEntry> {
    if value.is_empty() || table.is_empty() {
        return None;
    }
    table.find(&digest(value))
}
