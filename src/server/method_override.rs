//! A method override that would take a request past its route's protections.
//!
//! Backends behind many frameworks (Express's and Rack's method-override, ASP.NET's
//! X-HTTP-Method) serve a POST carrying `X-HTTP-Method-Override: GET` as a GET. The
//! gateway routes, authorizes, counts and caches by the request line's method, so a POST
//! matched by an open `ANY /{proxy+}` reached the guarded `GET /admin` handler, past that
//! route's key or authorizer. A request whose override names a method that another route
//! (or no route) serves on its path is refused; one that names its own method, or a
//! method its route serves too (an `ANY` route, HEAD on a GET route), goes on as sent.

use crate::config::compile::Snapshot;
use crate::http1::parse::{is_method_override, Method};
use crate::router::Matched;

use super::conn::Conn;

/// Whether a method-override header names a method that routes this path elsewhere.
pub(super) fn leaves_route(c: &Conn, snap: &Snapshot, m: &Matched) -> bool {
    let buf = &c.rbuf[..];
    let host = c.head.host.map(|s| s.get(buf));
    // Only for requests that carry one (rare): the parser noted it.
    let mut params = Vec::new();
    c.head
        .headers
        .iter()
        .filter(|h| is_method_override(h.name.get(buf)))
        .any(|h| {
            let named = h.value.get(buf).trim_ascii().to_ascii_uppercase();
            if named == c.head.method_span.get(buf) {
                return false;
            }
            let method = Method::from_bytes(&named);
            let other = snap
                .router
                .route(buf, host, method, c.head.path, &mut params);
            !other.is_some_and(|o| o.stage == m.stage && o.route == m.route)
        })
}
