//! The admin API's routes: method + path pattern → handler. A later feature adds a line
//! to [`table`] and a handler in its own file; auth, 404/405 and HEAD are handled here.
//!
//! Everything but the public routes (`/health`, `/metrics`) needs
//! `Authorization: Bearer <admin.token>`; without it the answer is 401 whatever the path,
//! so an unauthenticated client cannot even probe which routes exist.

use serde_json::json;

use super::http::{percent_decode, Request, Response};
use super::{cache, config, connections, keys, usage, AdminCtx};
use crate::global::keys::{ct_eq, digest};
use crate::http1::Method;

pub type Handler = fn(&AdminCtx, &Request, &Params) -> Response;

/// `{name}` segments captured from the path, percent-decoded.
#[derive(Debug, Default)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Route {
    pub method: Method,
    /// `/api-keys/{name}`: literal segments and whole-segment `{params}`.
    pub pattern: &'static str,
    pub public: bool,
    pub handler: Handler,
}

const fn route(method: Method, pattern: &'static str, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        public: false,
        handler,
    }
}

const fn public(method: Method, pattern: &'static str, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        public: true,
        handler,
    }
}

/// Every admin route (docs/ARCHITECTURE.md, Admin API).
pub fn table() -> Vec<Route> {
    vec![
        public(Method::Get, "/health", health),
        public(Method::Get, "/metrics", config::metrics),
        route(Method::Post, "/reload", config::reload),
        route(Method::Get, "/config", config::config),
        route(Method::Get, "/routes", config::routes),
        route(Method::Get, "/api-keys", keys::list),
        route(Method::Post, "/api-keys", keys::create),
        route(Method::Delete, "/api-keys/{name}", keys::revoke),
        route(Method::Get, "/usage", usage::get),
        route(Method::Post, "/cache/flush", cache::flush),
        route(Method::Get, "/apis/{api}/openapi", super::openapi::export),
        route(Method::Post, "/@connections/{id}", connections::post),
        route(Method::Get, "/@connections/{id}", connections::get),
        route(Method::Delete, "/@connections/{id}", connections::delete),
    ]
}

fn health(ctx: &AdminCtx, _: &Request, _: &Params) -> Response {
    // From the stop signal on the node takes no new connections: a load balancer that
    // polls this sees it fail now, not when the port refuses.
    let stopping = crate::runtime::shutdown::stop_requested();
    let mut body = json!({
        "status": if stopping { "stopping" } else { "ok" },
        "workers": ctx.workers,
        "driver": ctx.driver,
        // Nodes of one cluster serve the same file: a different hash is drift.
        "config_hash": *crate::cluster::config_hash(),
    });
    if let Some(c) = crate::cluster::get() {
        body["cluster"] = json!({
            "node": c.node,
            "redis": if c.healthy() { "up" } else { "down" },
            "nodes": c.nodes(),
        });
        // Down: why (refused, wrong password, NOAUTH, not Redis, no answer in time).
        if let Some(why) = c.redis_error() {
            body["cluster"]["redis_error"] = why.into();
        }
        if crate::cluster::names::clash() {
            body["cluster"]["name_clash"] = "another live node uses this node's name".into();
        }
    }
    Response::json(if stopping { 503 } else { 200 }, &body)
}

pub struct Router {
    routes: Vec<Route>,
    /// SHA-256 of the token: comparing digests makes the compare constant-time whatever
    /// the lengths. None: no token configured, so every private route is refused.
    token: Option<[u8; 32]>,
}

fn matches(pattern: &'static str, path: &str) -> Option<Params> {
    let mut params = Vec::new();
    let mut segs = path.strip_prefix('/')?.split('/');
    for want in pattern.strip_prefix('/')?.split('/') {
        let got = segs.next()?;
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !got.is_empty() => {
                params.push((name, percent_decode(got.as_bytes(), false)))
            }
            Some(_) => return None,
            None if want == got => {}
            None => return None,
        }
    }
    segs.next().is_none().then_some(Params(params))
}

impl Router {
    pub fn new(token: Option<&str>) -> Router {
        Router {
            routes: table(),
            token: token.map(|t| digest(t.as_bytes())),
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let (Some(token), Some(value)) = (&self.token, req.header("authorization")) else {
            return false;
        };
        // One value only: with two, which one counts would be this parser's choice, and
        // a proxy in front may have judged the other.
        if req
            .headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count()
            > 1
        {
            return false;
        }
        let presented = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &value[7..],
            _ => return false,
        };
        ct_eq(token, &digest(presented.trim_ascii()))
    }

    /// The 401 that [`Router::dispatch`] answers `req` with whatever its body, if it does:
    /// a request asking `Expect: 100-continue` gets it instead of a 100.
    pub fn refusal(&self, req: &Request) -> Option<Response> {
        let public = self
            .routes
            .iter()
            .any(|r| r.public && matches(r.pattern, &req.path).is_some());
        (!public && !self.authorized(req)).then(unauthorized)
    }

    pub fn dispatch(&self, ctx: &AdminCtx, req: &Request) -> Response {
        // HEAD is GET without the body (the server leaves it out).
        let method = match req.method {
            Method::Head => Method::Get,
            m => m,
        };
        let mut allowed: Vec<&str> = Vec::new();
        let mut public_path = false;
        for r in &self.routes {
            let Some(params) = matches(r.pattern, &req.path) else {
                continue;
            };
            public_path |= r.public;
            if r.method != method {
                allowed.push(method_name(r.method));
                // HEAD is served wherever GET is (RFC 9110: `Allow` lists both).
                if r.method == Method::Get {
                    allowed.push("HEAD");
                }
                continue;
            }
            if !r.public && !self.authorized(req) {
                return unauthorized();
            }
            // `?stage=prod&stage=beta` named two stages and acted on the first alone.
            if let Some(name) = req.repeated_query() {
                let why = format!("{name} is given more than once; give it once");
                return Response::message(400, &why);
            }
            return (r.handler)(ctx, req, &params);
        }
        if !public_path && !self.authorized(req) {
            return unauthorized();
        }
        if allowed.is_empty() {
            Response::message(404, "Not Found")
        } else {
            Response::message(405, "Method Not Allowed").with_header("allow", allowed.join(", "))
        }
    }
}

fn unauthorized() -> Response {
    Response::message(401, "Unauthorized").with_header("www-authenticate", "Bearer".into())
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Patch => "PATCH",
        Method::Trace => "TRACE",
        Method::Connect => "CONNECT",
        Method::Other => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("/health", "/health").is_some());
        assert!(matches("/health", "/health/").is_none());
        assert!(matches("/health", "/healthz").is_none());
        let p = matches("/api-keys/{name}", "/api-keys/bob%20x").unwrap();
        assert_eq!(p.get("name"), Some("bob x"));
        assert!(matches("/api-keys/{name}", "/api-keys/").is_none());
        assert!(matches("/api-keys/{name}", "/api-keys/a/b").is_none());
        assert!(matches("/api-keys", "/api-keys/a").is_none());
    }
}
