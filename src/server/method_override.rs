//! A method override that would take a request past its route's protections.
//!
//! Backends behind many frameworks serve a POST carrying `X-HTTP-Method-Override: GET`
//! (Express's and Rack's method-override, ASP.NET's X-HTTP-Method) or `?_method=GET`
//! (Express's `methodOverride('_method')`, Laravel, gorilla) as a GET. The gateway
//! routes, authorizes, counts and caches by the request line's method, so a POST matched
//! by an open `ANY /{proxy+}` reached the guarded `GET /admin` handler, past that route's
//! key or authorizer. A request whose override names a method that another route (or no
//! route) serves on its path is refused, and so is one naming any other method on a
//! route whose Lambda authorizer or IAM authorization judges the method (a policy
//! allowing GET on `ANY /reports/{p+}` let a GET carrying `DELETE` through); one that
//! names its own method, or a method its route serves too (an `ANY` route, HEAD on a
//! GET route) and no authorizer judges, goes on as sent. An override in a form body is
//! not read (the body is the backend's).

use crate::auth::RouteAuthRt;
use crate::config::compile::Snapshot;
use crate::http1::parse::{is_method_override, Method};
use crate::pipeline::template::query_name_is;
use crate::router::Matched;

use super::conn::Conn;

/// Whether a method override names a method that routes this path elsewhere, or that
/// the route's authorization would judge apart from the request line's.
pub(super) fn leaves_route(c: &Conn, snap: &Snapshot, m: &Matched) -> bool {
    let buf = &c.rbuf[..];
    let query = c.head.query.map_or(&b""[..], |q| q.get(buf));
    // Only requests that may carry one (rare) go further: the parser noted the headers,
    // and a query names `method` in any case (`_METHOD` to ASP.NET) or has an escape
    // (`_%6Dethod` is `_method` to Node, Go and PHP).
    let in_query = memchr::memchr(b'%', query).is_some()
        || query.windows(6).any(|w| w.eq_ignore_ascii_case(b"method"));
    if !c.head.method_override && !in_query {
        return false;
    }
    let host = c.head.host.map(|s| s.get(buf));
    // A Lambda authorizer's policy and an IAM principal's are judged for the request
    // line's method: on an `ANY` route, an override to a method they deny got past them.
    let judged_by_method = matches!(
        snap.apis[m.stage.api as usize]
            .auth
            .routes
            .get(m.route as usize),
        Some(RouteAuthRt::Lambda { .. } | RouteAuthRt::Iam)
    );
    // An override with an encoded slash: Express routes the overridden method on the
    // path read with the escape inside its segment (`POST /users/a%2Fb` with `GET` is
    // its `GET /users/:id`), which neither check alone sees.
    let one_segment = super::encoded_slash::one_segment_reading(c.head.path.get(buf));
    let mut params = Vec::new();
    let mut elsewhere = |named: &[u8]| {
        // Each element of a list (Express reads the first, others the last), without the
        // blanks and obs-text (JavaScript's trim() takes U+00A0) a framework trims.
        named.split(|&b| b == b',').any(|element| {
            let t = |b: &u8| b.is_ascii_whitespace() || !b.is_ascii();
            let start = element.iter().position(|b| !t(b)).unwrap_or(element.len());
            let end = element.iter().rposition(|b| !t(b)).map_or(start, |e| e + 1);
            let element = element[start..end].to_ascii_uppercase();
            if element.is_empty() || element == c.head.method_span.get(buf) {
                return false;
            }
            if judged_by_method {
                return true;
            }
            let method = Method::from_bytes(&element);
            if one_segment.as_ref().is_some_and(|path| {
                super::encoded_slash::guarded_apart(snap, host, method, path, m)
            }) {
                return true;
            }
            let other = snap
                .router
                .route(buf, host, method, c.head.path, &mut params);
            !other.is_some_and(|o| o.stage == m.stage && o.route == m.route)
        })
    };
    let by_header = c.head.method_override
        && c.head
            .headers
            .iter()
            .filter(|h| is_method_override(h.name.get(buf)))
            // One `Connection` names is for this hop only: not passed on.
            .filter(|h| !c.head.names_in_connection(buf, h.name.get(buf)))
            .any(|h| elsewhere(h.value.get(buf)));
    by_header
        || (in_query
            && query.split(|&b| b == b'&' || b == b';').any(|pair| {
                let (name, value) = match memchr::memchr(b'=', pair) {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                // As Express, Laravel (PHP: `+_method`, `_method%00x`, `.method`),
                // Rack or `qs` (`[_method]`) or ASP.NET (`_METHOD`) would read the name.
                if !query_name_is(name, b"_method") {
                    return false;
                }
                let mut decoded = Vec::new();
                crate::http1::percent_decode(value, true, &mut decoded);
                elsewhere(&decoded)
            }))
}
