//! A path whose encoded slash or backslash (`%2F`, `%5C`) backends read two ways.
//!
//! The router reads `%2F` and `%5C` as separators, as nginx, WSGI servers, Go's
//! `net/http` and IIS hand the decoded path to their routers (see
//! `router::separator_len`). Express and Go's `ServeMux` match the path as sent, where
//! `/users/a%2Fb` is one `:id`: routed as `/users/a/b`, such a request missed the guarded
//! `GET /users/{id}` and reached an open `ANY /{proxy+}`, whose Express backend served
//! its `/users/:id` handler. So a path with one is routed a second time with each such
//! escape kept inside its segment; when that reading takes another route of the same
//! stage (the same backends) that guards more than the first (another authorizer or
//! IAM, an API key the first does not ask for, or a gateway answer of its own), the
//! request is refused. A second reading that takes a route guarded no more, or one of
//! another stage or API (a custom domain's other mapping), reaches nothing unguarded.
//! The method override check asks the same for each method an override names.

use crate::auth::RouteAuthRt;
use crate::config::compile::{IntegrationRt, Snapshot};
use crate::http1::parse::{Method, Span};
use crate::router::Matched;

use super::conn::Conn;

/// Whether the request, read as Express reads its path, takes a route that guards more
/// than `m` (the router's reading).
pub(super) fn routes_two_ways(c: &Conn, snap: &Snapshot, m: &Matched) -> bool {
    let buf = &c.rbuf[..];
    one_segment_reading(c.head.path.get(buf)).is_some_and(|path| {
        let host = c.head.host.map(|s| s.get(buf));
        guarded_apart(snap, host, c.head.method, &path, m)
    })
}

/// The path with each `%2F` and `%5C` kept inside its segment, when it has one. `~2F` is
/// no separator and no escape: a segment's bytes like any other, so a parameter takes it
/// and no literal (which never holds `%2F`) matches it.
pub(super) fn one_segment_reading(path: &[u8]) -> Option<Vec<u8>> {
    let escape_at = |i: usize| {
        matches!(
            path[i..],
            [b'%', b'2', b'F' | b'f', ..] | [b'%', b'5', b'C' | b'c', ..]
        )
    };
    let mut escapes = memchr::memchr_iter(b'%', path).filter(|&i| escape_at(i));
    let first = escapes.next()?;
    let mut reading = path.to_vec();
    for i in std::iter::once(first).chain(escapes) {
        reading[i] = b'~';
    }
    Some(reading)
}

/// Whether `path` (a one-segment reading), routed as `method`, takes another route of
/// `m`'s stage that guards more than `m`'s. No route that way is no conflict: only `m`'s
/// backend is reached.
pub(super) fn guarded_apart(
    snap: &Snapshot,
    host: Option<&[u8]>,
    method: Method,
    path: &[u8],
    m: &Matched,
) -> bool {
    let whole = Span {
        start: 0,
        end: path.len() as u32,
    };
    let mut params = Vec::new();
    snap.router
        .route(path, host, method, whole, &mut params)
        .is_some_and(|other| {
            other.stage == m.stage && other.route != m.route && guards_more(snap, &other, m)
        })
}

/// Whether route `other` guards its backend's handler with something `m`'s route (of
/// the same stage) does not: another authorization (authorizer, scopes, IAM), an API
/// key `m` does not ask for, or an answer of the gateway's own (a mock, say a 403) in
/// place of the backend's.
fn guards_more(snap: &Snapshot, other: &Matched, m: &Matched) -> bool {
    let (api, stage) = (other.stage.api as usize, other.stage.stage as usize);
    let auth = |r: &Matched| {
        snap.apis[api]
            .auth
            .routes
            .get(r.route as usize)
            .unwrap_or(&RouteAuthRt::None)
    };
    let key = |r: &Matched| snap.traffic.stages[api][stage].routes[r.route as usize].key_required;
    let integration = &snap.apis[api].stages[stage].integrations[other.route as usize];
    !auth_covers(auth(m), auth(other))
        || (key(other) && !key(m))
        || !matches!(
            integration,
            IntegrationRt::Http(_) | IntegrationRt::Lambda(_)
        )
}

/// Whether every request authorization `first` lets through, `other` lets through too:
/// `other` open, the same rule, or the same JWT authorizer where `first` asks for scopes
/// all of which `other` takes (a token needs any one of a route's scopes).
fn auth_covers(first: &RouteAuthRt, other: &RouteAuthRt) -> bool {
    match (first, other) {
        (_, RouteAuthRt::None) => true,
        (
            RouteAuthRt::Jwt {
                authorizer: a,
                scopes: s,
            },
            RouteAuthRt::Jwt {
                authorizer: b,
                scopes: t,
            },
        ) if a == b => t.is_empty() || (!s.is_empty() && s.iter().all(|x| t.contains(x))),
        _ => first == other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_covers_the_same_or_a_looser_one() {
        let jwt = |authorizer: usize, scopes: &[&str]| RouteAuthRt::Jwt {
            authorizer,
            scopes: scopes.iter().map(|s| Box::from(*s)).collect(),
        };
        let lambda = RouteAuthRt::Lambda { authorizer: 0 };
        assert!(auth_covers(&RouteAuthRt::None, &RouteAuthRt::None));
        assert!(auth_covers(&lambda, &RouteAuthRt::None));
        assert!(auth_covers(&lambda, &lambda));
        assert!(!auth_covers(&RouteAuthRt::None, &lambda));
        assert!(!auth_covers(&RouteAuthRt::Iam, &lambda));
        // A token with `admin` passes a route of the same authorizer without scopes, or
        // one that takes `admin` among others.
        assert!(auth_covers(&jwt(0, &["admin"]), &jwt(0, &[])));
        assert!(auth_covers(&jwt(0, &["admin"]), &jwt(0, &["admin", "ops"])));
        assert!(!auth_covers(
            &jwt(0, &["admin", "ops"]),
            &jwt(0, &["admin"])
        ));
        assert!(!auth_covers(&jwt(0, &[]), &jwt(0, &["admin"])));
        assert!(!auth_covers(&jwt(0, &["admin"]), &jwt(1, &[])));
    }
}
