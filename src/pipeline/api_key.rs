//! The `x-api-key` header → the key's table entry. The value is hashed once and looked
//! up by digest (constant-time compare: see `global::keys`); nothing is allocated.

use crate::global::keys::{digest, KeyEntry, KeyTable};
use crate::http1::RequestHead;

/// Header that carries the key, as in API Gateway.
pub const HEADER: &str = "x-api-key";

/// The entry of the key presented with the request; None when the header is missing,
/// empty or sent more than once, or the key is unknown or revoked (all the same 403 to
/// the client).
#[inline]
pub fn lookup<'t>(table: &'t KeyTable, head: &RequestHead, buf: &[u8]) -> Option<&'t KeyEntry> {
    let value = single(head, buf)?;
    lookup_value(table, value)
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

/// The header's value when it is sent exactly once. Two `x-api-key` lines are refused
/// rather than resolved: the gateway would vouch for one key while the backend, which
/// gets both lines, may read the other (or both) as the caller's. An `x_api_key` line
/// counts as one of them (a CGI, WSGI or PHP backend reads it as `HTTP_X_API_KEY`, joined
/// with the checked line), and is never a key of its own: API Gateway reads `x-api-key`.
#[inline]
pub fn single<'b>(head: &RequestHead, buf: &'b [u8]) -> Option<&'b [u8]> {
    let mut named = head
        .headers
        .iter()
        .filter(|h| crate::http1::same_cgi_name(h.name.get(buf), HEADER.as_bytes()));
    let first = named.next()?;
    match named.next() {
        None if first.name.get(buf).eq_ignore_ascii_case(HEADER.as_bytes()) => {
            Some(first.value.get(buf))
        }
        _ => None,
    }
}
