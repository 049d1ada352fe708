//! Authorizers: who may call a route, decided at the gateway (API Gateway's JWT and
//! Lambda REQUEST authorizers, and IAM/SigV4). This module owns the compiled authorizers
//! of each API ([`ApiAuth`], part of the config snapshot), the verdicts a request
//! carries on ([`AuthState`]), the JWKS key sources (`jwks`, shared across reloads),
//! JWT verification (`jwt`), the per-worker verdict caches (`cache`) and the metrics.
//! The per-request step that uses them is `pipeline::auth`.

pub mod cache;
pub mod event;
pub mod function_json;
pub mod jwks;
mod jwks_http;
pub mod jwt;
pub mod lambda;
pub mod metrics;
pub mod policy;
pub mod sigv4;

use std::rc::Rc;
use std::sync::Arc;

use crate::config::auth::{Authorizer, RouteAuth};
use crate::config::model;
use jwt::{JwtRt, Verified};
use lambda::{LambdaAuthRt, Verdict};
use metrics::AuthCounters;

/// Whether a query parameter's name as sent (`raw`) is `name` once percent-decoded, as
/// the integration's event and any backend's query parser read it: `%74oken=B` is a
/// second `token`, so an identity source that matched names as sent would check one
/// token while the backend reads another. No allocation: decoded as it is compared.
pub fn query_name_is(raw: &[u8], name: &[u8]) -> bool {
    if !raw.contains(&b'%') {
        return raw == name;
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let (mut i, mut j) = (0, 0);
    while i < raw.len() {
        let mut b = raw[i];
        i += 1;
        if b == b'%' && i + 1 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i]), hex(raw[i + 1])) {
                b = h << 4 | l;
                i += 2;
            }
        }
        if name.get(j) != Some(&b) {
            return false;
        }
        j += 1;
    }
    j == name.len()
}

/// The authorizers of one API and what each route requires.
#[derive(Debug, Default)]
pub struct ApiAuth {
    pub authorizers: Vec<AuthorizerRt>,
    /// Indexed by route id.
    pub routes: Vec<RouteAuthRt>,
    /// `api_key_source: authorizer`: the API key is the Lambda authorizer's
    /// `usageIdentifierKey`, not the `x-api-key` header.
    pub key_from_authorizer: bool,
    /// `authorization: iam` routes count as the authorizer "iam".
    pub iam_counters: Arc<AuthCounters>,
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
    Lambda(LambdaAuthRt),
    /// Broken in a way only known when compiled (a function host that does not
    /// resolve): every request gets a 500.
    Misconfigured(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RouteAuthRt {
    #[default]
    None,
    Jwt {
        authorizer: usize,
        scopes: Box<[Box<str>]>,
    },
    Lambda {
        authorizer: usize,
    },
    Misconfigured {
        authorizer: usize,
    },
    /// `authorization: iam`: SigV4 by a principal of `iam`.
    Iam,
    /// Names an authorizer the API does not have: 500, never open.
    Unknown,
}

impl ApiAuth {
    pub fn compile(
        api_name: &str,
        api: &model::Api,
        upstreams: &mut Vec<crate::config::compile::UpstreamRt>,
    ) -> ApiAuth {
        let authorizers: Vec<AuthorizerRt> = api
            .authorizers
            .iter()
            .map(|(name, a)| AuthorizerRt {
                name: name.clone(),
                counters: metrics::counters(api_name, name),
                kind: match a {
                    Authorizer::Jwt(j) => AuthorizerKind::Jwt(JwtRt::compile(j)),
                    Authorizer::Lambda(l) => match LambdaAuthRt::compile(l, upstreams) {
                        Ok(rt) => AuthorizerKind::Lambda(rt),
                        Err(e) => AuthorizerKind::Misconfigured(e),
                    },
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
            key_from_authorizer: api.api_key_source
                == crate::config::auth::ApiKeySource::Authorizer,
            iam_counters: if api.routes.iter().any(|(_, r)| r.auth.iam) {
                metrics::counters(api_name, "iam")
            } else {
                Arc::default()
            },
        }
    }
}

fn route(authorizers: &[AuthorizerRt], a: &RouteAuth) -> RouteAuthRt {
    if a.iam {
        return RouteAuthRt::Iam;
    }
    let Some(name) = &a.authorizer else {
        return RouteAuthRt::None;
    };
    let Some(i) = authorizers.iter().position(|x| &x.name == name) else {
        // Validation reports it; were it ever compiled, the route fails closed.
        return RouteAuthRt::Unknown;
    };
    match authorizers[i].kind {
        AuthorizerKind::Jwt(_) => RouteAuthRt::Jwt {
            authorizer: i,
            scopes: a.scopes.iter().map(|s| s.as_str().into()).collect(),
        },
        AuthorizerKind::Lambda(_) => RouteAuthRt::Lambda { authorizer: i },
        AuthorizerKind::Misconfigured(_) => RouteAuthRt::Misconfigured { authorizer: i },
    }
}

/// Who the authorizer said the caller is.
#[derive(Debug, Clone)]
pub enum Identity {
    Jwt(Rc<Verified>),
    Lambda(Rc<Verdict>),
    Iam(Rc<IamCaller>),
}

/// The principal that signed a SigV4 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamCaller {
    pub access_key: String,
    pub account_id: String,
    pub user_arn: String,
    pub user_id: String,
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
    /// Milliseconds the Lambda authorizer took (0 when its verdict was cached): 1.0's
    /// `authorizer.integrationLatency`.
    pub latency_ms: u64,
}

impl AuthState {
    pub fn reset(&mut self) {
        self.identity = None;
        self.error = "";
        self.route_scoped = false;
        self.latency_ms = 0;
    }

    pub fn is_iam(&self) -> bool {
        matches!(self.identity, Some(Identity::Iam(_)))
    }

    /// The Lambda authorizer's `usageIdentifierKey`.
    pub fn usage_key(&self) -> Option<&str> {
        match self.identity.as_ref()? {
            Identity::Lambda(v) => v.usage_key.as_deref(),
            _ => None,
        }
    }

    /// `$context.authorizer.NAME`: `claims.X` of a JWT; `principalId` or a context key of
    /// a Lambda authorizer; `error`.
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
            Identity::Iam(c) => match name {
                "principalId" | "iam.userId" => Some(&c.user_id),
                "iam.userArn" => Some(&c.user_arn),
                "iam.accessKey" => Some(&c.access_key),
                "iam.accountId" => Some(&c.account_id),
                _ => None,
            },
            Identity::Lambda(v) => {
                if name == "principalId" {
                    return v.principal_id.as_deref();
                }
                v.context
                    .iter()
                    .find(|(k, _)| &**k == name)
                    .and_then(|(_, val)| val.as_deref())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::query_name_is;

    #[test]
    fn query_names_compare_decoded() {
        for raw in ["token", "%74oken", "%74%6F%6b%65%6E", "toke%6e"] {
            assert!(query_name_is(raw.as_bytes(), b"token"), "{raw}");
        }
        for raw in [
            "tokens",
            "toke",
            "%74oke",
            "token%",
            "t%6",
            "tok+en",
            "%2574oken",
            "",
        ] {
            assert!(!query_name_is(raw.as_bytes(), b"token"), "{raw}");
        }
        assert!(query_name_is(b"a%20b", b"a b"));
        assert!(query_name_is(b"100%", b"100%"));
        assert!(query_name_is(b"%zz", b"%zz"));
    }

    #[test]
    fn header_names_compare_as_backends_read_them() {
        use crate::http1::same_cgi_name;
        for raw in ["x-jwt", "X-JWT", "x_jwt", "X_Jwt"] {
            assert!(same_cgi_name(raw.as_bytes(), b"x-jwt"), "{raw}");
        }
        for raw in ["x-jw", "x-jwtt", "xjwt", "x.jwt"] {
            assert!(!same_cgi_name(raw.as_bytes(), b"x-jwt"), "{raw}");
        }
    }
}
