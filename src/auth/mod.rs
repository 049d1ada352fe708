//! Authorizers: who may call a route, decided at the gateway (API Gateway's JWT and
//! Lambda REQUEST authorizers, and IAM/SigV4). This module owns the compiled authorizers
//! of each API ([`ApiAuth`], part of the config snapshot), the verdicts a request
//! carries on ([`AuthState`]), the JWKS key sources (`jwks`, shared across reloads),
//! JWT verification (`jwt`), the per-worker verdict caches (`cache`) and the metrics.
//! The per-request step that uses them is `pipeline::auth`.

pub mod cache;
pub mod event;
pub mod jwks;
pub mod jwt;
pub mod metrics;

use std::rc::Rc;
use std::sync::Arc;

use crate::config::auth::{Authorizer, RouteAuth};
use crate::config::model;
use jwt::{JwtRt, Verified};
use metrics::AuthCounters;

/// The authorizers of one API and what each route requires.
#[derive(Debug, Default)]
pub struct ApiAuth {
    pub authorizers: Vec<AuthorizerRt>,
    /// Indexed by route id.
    pub routes: Vec<RouteAuthRt>,
}

#[derive(Debug)]
pub struct AuthorizerRt {
    pub name: String,
    pub kind: AuthorizerKind,
    pub counters: Arc<AuthCounters>,
}

#[derive(Debug)]
pub enum AuthorizerKind {
    Jwt(JwtRt),
    /// Known to the config but not served by this build: every request gets a 500.
    Unsupported,
}

#[derive(Debug, Clone, Default)]
pub enum RouteAuthRt {
    #[default]
    None,
    Jwt {
        authorizer: usize,
        scopes: Box<[Box<str>]>,
    },
    Unsupported {
        authorizer: usize,
    },
}

impl ApiAuth {
    pub fn compile(api_name: &str, api: &model::Api) -> ApiAuth {
        let authorizers: Vec<AuthorizerRt> = api
            .authorizers
            .iter()
            .map(|(name, a)| AuthorizerRt {
                name: name.clone(),
                counters: metrics::counters(api_name, name),
                kind: match a {
                    Authorizer::Jwt(j) => AuthorizerKind::Jwt(JwtRt::compile(j)),
                    Authorizer::Lambda(_) => AuthorizerKind::Unsupported,
                },
            })
            .collect();
        let routes = api
            .routes
            .iter()
            .map(|(_, r)| route(&authorizers, &r.auth))
            .collect();
        ApiAuth {
            authorizers,
            routes,
        }
    }
}

fn route(authorizers: &[AuthorizerRt], a: &RouteAuth) -> RouteAuthRt {
    let Some(name) = &a.authorizer else {
        return RouteAuthRt::None;
    };
    let Some(i) = authorizers.iter().position(|x| &x.name == name) else {
        return RouteAuthRt::None;
    };
    match authorizers[i].kind {
        AuthorizerKind::Jwt(_) => RouteAuthRt::Jwt {
            authorizer: i,
            scopes: a.scopes.iter().map(|s| s.as_str().into()).collect(),
        },
        AuthorizerKind::Unsupported => RouteAuthRt::Unsupported { authorizer: i },
    }
}

/// Who the authorizer said the caller is.
#[derive(Debug, Clone)]
pub enum Identity {
    Jwt(Rc<Verified>),
}

/// What the authorizer left for the integration, mappings and the access log. Reset
/// for every request.
#[derive(Debug, Default)]
pub struct AuthState {
    pub identity: Option<Identity>,
    /// `$context.authorizer.error` ("" when none).
    pub error: &'static str,
    /// The route lists scopes: 2.0's `authorizer.jwt.scopes` is then an array, else null.
    pub route_scoped: bool,
}

impl AuthState {
    pub fn reset(&mut self) {
        self.identity = None;
        self.error = "";
        self.route_scoped = false;
    }

    /// `$context.authorizer.NAME`: `claims.X` of a JWT, `error`.
    pub fn value(&self, name: &str) -> Option<&str> {
        if name == "error" {
            return (!self.error.is_empty()).then_some(self.error);
        }
        match self.identity.as_ref()? {
            Identity::Jwt(v) => {
                let claim = name.strip_prefix("claims.")?;
                v.claims
                    .iter()
                    .find(|(k, _)| &**k == claim)
                    .map(|(_, val)| &**val)
            }
        }
    }
}
