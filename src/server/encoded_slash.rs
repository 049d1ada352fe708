//! A path whose encoded slash or backslash (`%2F`, `%5C`) backends read two ways.
//!
//! The router reads `%2F` and `%5C` as separators, as nginx, WSGI servers, Go's
//! `net/http` and IIS hand the decoded path to their routers (see
//! `router::separator_len`). Express and Go's `ServeMux` match the path as sent, where
//! `/users/a%2Fb` is one `:id`: routed as `/users/a/b`, such a request missed the guarded
//! `GET /users/{id}` and reached an open `ANY /{proxy+}`, whose Express backend served
//! its `/users/:id` handler. So a path with one is routed a second time with each such
//! escape kept inside its segment; when that reading takes another route of the same
//! stage (the same backends) that guards what the first does not need to (an
//! authorizer, IAM, an API key, or a gateway answer of its own), the request is refused.
//! A second reading that takes an open route, or one of another stage or API (a custom
//! domain's other mapping), reaches nothing the first does not guard.

use crate::auth::RouteAuthRt;
use crate::config::compile::{IntegrationRt, Snapshot};
use crate::http1::parse::Span;
use crate::router::Matched;

use super::conn::Conn;

/// Whether the path's encoded separators, read inside their segments, route the request
/// to another guarded route of `m`'s stage than `m` (the router's reading).
pub(super) fn routes_two_ways(c: &Conn, snap: &Snapshot, m: &Matched) -> bool {
    let buf = &c.rbuf[..];
    let path = c.head.path.get(buf);
    let escape_at = |i: usize| {
        matches!(
            path[i..],
            [b'%', b'2', b'F' | b'f', ..] | [b'%', b'5', b'C' | b'c', ..]
        )
    };
    if !memchr::memchr_iter(b'%', path).any(escape_at) {
        return false;
    }
    // `~2F` is no separator and no escape: a segment's bytes like any other, so a
    // parameter takes it and no literal (which never holds `%2F`) matches it.
    let mut one_segment = path.to_vec();
    for i in memchr::memchr_iter(b'%', path) {
        if escape_at(i) {
            one_segment[i] = b'~';
        }
    }
    let host = c.head.host.map(|s| s.get(buf));
    let whole = Span {
        start: 0,
        end: one_segment.len() as u32,
    };
    let mut params = Vec::new();
    snap.router
        .route(&one_segment, host, c.head.method, whole, &mut params)
        .is_some_and(|other| {
            other.stage == m.stage && other.route != m.route && guarded(snap, &other)
        })
}

/// Whether a route guards its backend's handler: an authorizer or IAM, an API key, or
/// an answer of the gateway's own (a mock, say a 403) in place of the backend's.
fn guarded(snap: &Snapshot, m: &Matched) -> bool {
    let (api, stage, route) = (
        m.stage.api as usize,
        m.stage.stage as usize,
        m.route as usize,
    );
    let auth = snap.apis[api].auth.routes.get(route);
    let key = snap.traffic.stages[api][stage].routes[route].key_required;
    let integration = &snap.apis[api].stages[stage].integrations[route];
    !matches!(auth, None | Some(RouteAuthRt::None))
        || key
        || !matches!(
            integration,
            IntegrationRt::Http(_) | IntegrationRt::Lambda(_)
        )
}
