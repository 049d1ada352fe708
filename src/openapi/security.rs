//! Who may call an operation, both ways. Import: security schemes
//! (`components.securitySchemes`, or `securityDefinitions`) with
//! `x-amazon-apigateway-authorizer` (`jwt`, `request`, `token`) → the API's `authorizers`;
//! `x-amazon-apigateway-authtype: awsSigv4` → `authorization: iam`; an `apiKey` scheme →
//! `api_key_required`; an operation's `security` → its route's `authorizer` and
//! `authorization_scopes`. Export writes the same shapes back.
//!
//! A method whose authorizer can't be imported is skipped, not served open: an import
//! must never make a protected route public.

use serde_json::{json, Map, Value};

use super::import::{esc, Ctx};
use super::integration::lambda_url;
use crate::config::auth::{Authorizer, DEFAULT_JWT_ALGORITHMS, LAMBDA_AUTHORIZER_TIMEOUT};
use crate::config::model::{Api, PayloadFormat, Route};

/// What a security scheme means to Portico.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scheme {
    /// Imported into `authorizers` under the scheme's name.
    Authorizer,
    /// An authorizer Portico cannot run: methods that require it are skipped.
    Unusable,
    Iam,
    ApiKey,
}

const SCHEME_PLACES: [&str; 2] = ["/components/securitySchemes", "/securityDefinitions"];

/// Imports every scheme's authorizer into `authorizers`; returns what each scheme is.
pub(super) fn schemes(ctx: &mut Ctx) -> Vec<(String, Scheme)> {
    let mut out = Vec::new();
    let mut authorizers = Map::new();
    for place in SCHEME_PLACES {
        let Some(Value::Object(m)) = ctx.doc.pointer(place).cloned() else {
            continue;
        };
        for (name, s) in m {
            let p = format!("{place}/{}", esc(&name));
            // A scheme may be a `$ref` to another; read as itself, it was no scheme
            // Portico knows and its methods were served open.
            let s = match ctx.resolve(&s) {
                Ok(s) => s.clone(),
                Err(e) => {
                    ctx.warn(p, format!("{e}; methods using this scheme are skipped"));
                    out.push((name, Scheme::Unusable));
                    continue;
                }
            };
            let authtype = s
                .get("x-amazon-apigateway-authtype")
                .and_then(Value::as_str);
            let kind = if let Some(az) = s.get("x-amazon-apigateway-authorizer") {
                match authorizer(ctx, &p, &s, az) {
                    Some(a) => {
                        authorizers.insert(name.clone(), a);
                        Scheme::Authorizer
                    }
                    None => Scheme::Unusable,
                }
            } else if authtype.is_some_and(|t| t.eq_ignore_ascii_case("awsSigv4")) {
                Scheme::Iam
            } else if let Some(t) = authtype {
                // An authorizer's type with no authorizer: read as an API key, it let
                // anyone with any key through a check meant for its own tokens.
                ctx.warn(
                    format!("{p}/x-amazon-apigateway-authtype"),
                    format!("{t:?} without an x-amazon-apigateway-authorizer; methods using this scheme are skipped"),
                );
                Scheme::Unusable
            } else if s.get("type").and_then(Value::as_str) == Some("apiKey") {
                Scheme::ApiKey
            } else if !s.get("type").is_some_and(Value::is_string) {
                ctx.warn(
                    p,
                    "a security scheme needs a type; methods using this scheme are skipped",
                );
                Scheme::Unusable
            } else {
                // `http` (bearer, basic), `oauth2`, `openIdConnect`, `mutualTLS`: a
                // protection the document asks for that no Portico authorizer enforces
                // as written; served open, a bearer-protected method was public.
                let t = s.get("type").and_then(Value::as_str).unwrap_or_default();
                ctx.warn(
                    p,
                    format!("a {t:?} scheme without an x-amazon-apigateway-authorizer is no authorizer Portico can run; methods using this scheme are skipped"),
                );
                Scheme::Unusable
            };
            out.push((name, kind));
        }
    }
    if !authorizers.is_empty() {
        ctx.out
            .api
            .insert("authorizers".into(), Value::Object(authorizers));
    }
    out
}

/// One `x-amazon-apigateway-authorizer` → a Portico authorizer, or None with a warning.
fn authorizer(ctx: &mut Ctx, p: &str, scheme: &Value, az: &Value) -> Option<Value> {
    let ap = format!("{p}/x-amazon-apigateway-authorizer");
    let kind = az.get("type").and_then(Value::as_str).unwrap_or_default();
    let extra = scheme.get("x-portico-authorizer");
    let mut out = match kind.to_ascii_lowercase().as_str() {
        "jwt" => {
            let issuer = match az.pointer("/jwtConfiguration/issuer") {
                Some(Value::String(s)) => Some(s.clone()),
                None => scheme
                    .get("openIdConnectUrl")
                    .and_then(Value::as_str)
                    .map(|u| {
                        u.trim_end_matches("/.well-known/openid-configuration")
                            .into()
                    }),
                Some(_) => None,
            };
            let audience: Option<Vec<Value>> = az
                .pointer("/jwtConfiguration/audience")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && a.iter().all(Value::is_string))
                .cloned();
            let (Some(issuer), Some(audience)) = (issuer, audience) else {
                ctx.warn(
                    format!("{ap}/jwtConfiguration"),
                    "a JWT authorizer needs an issuer and an audience list of strings; methods using it are skipped",
                );
                return None;
            };
            let mut a = json!({ "type": "jwt", "issuer": issuer, "audience": audience });
            if let Some(src) = identity_sources(az).into_iter().next() {
                // One `check` refuses failed the whole API, at a key path in no file.
                if let Err(e) = crate::config::auth::token_source(&src) {
                    ctx.warn(
                        format!("{ap}/identitySource"),
                        format!("{e}; methods using this scheme are skipped"),
                    );
                    return None;
                }
                a["identity_source"] = json!(src);
            }
            a
        }
        "request" | "token" => {
            let uri = az
                .get("authorizerUri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(url) = lambda_url(ctx, &format!("{ap}/authorizerUri"), uri) else {
                ctx.warn(
                    format!("{ap}/authorizerUri"),
                    "expected a Lambda function ARN; methods using this authorizer are skipped",
                );
                return None;
            };
            let format = match az.get("authorizerPayloadFormatVersion") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => format!("{:.1}", n.as_f64().unwrap_or(1.0)),
                // REST APIs' authorizers receive the 1.0 event.
                _ => "1.0".into(),
            };
            let mut a = json!({ "type": "lambda", "url": url, "payload_format": format });
            if az.get("enableSimpleResponses").and_then(Value::as_bool) == Some(true) {
                a["simple_responses"] = json!(true);
            }
            let mut sources = identity_sources(az);
            if kind.eq_ignore_ascii_case("token") {
                if sources.is_empty() {
                    sources.push("$request.header.Authorization".into());
                }
                ctx.warn(
                    ap.clone(),
                    "a TOKEN authorizer is run as a REQUEST authorizer (payload 1.0: the token is in authorizationToken); identityValidationExpression is not applied",
                );
            }
            // One `check` refuses (a `$context` name always empty when the authorizer
            // runs, one Portico lacks): written out, the whole API failed to load at a
            // key path in no file.
            for src in &sources {
                if let Err(e) = crate::config::auth::IdentitySource::parse(src) {
                    ctx.warn(
                        format!("{ap}/identitySource"),
                        format!("{e}; methods using this scheme are skipped"),
                    );
                    return None;
                }
            }
            if !sources.is_empty() {
                a["identity_source"] = json!(sources);
            }
            if let Some(ttl) = az
                .get("authorizerResultTtlInSeconds")
                .and_then(Value::as_u64)
            {
                a["result_ttl"] = json!(format!("{ttl}s"));
            }
            a
        }
        other => {
            ctx.warn(
                format!("{ap}/type"),
                format!("{other:?} authorizers are not supported (jwt, request, token); methods using it are skipped"),
            );
            return None;
        }
    };
    // What Portico's own export adds that API Gateway has no field for.
    if let Some(Value::Object(x)) = extra {
        for k in ["jwks_uri", "algorithms", "leeway", "timeout"] {
            if let Some(v) = x.get(k) {
                out[k] = v.clone();
            }
        }
    }
    Some(out)
}

/// `identitySource` in either grammar (HTTP APIs' `$request.header.X`, REST's
/// `method.request.header.X`), as a list or comma-separated.
fn identity_sources(az: &Value) -> Vec<String> {
    let raw: Vec<&str> = match az.get("identitySource") {
        Some(Value::String(s)) => s.split(',').collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(r) = s.strip_prefix("method.request.") {
                format!("$request.{r}")
            } else if !s.starts_with('$') {
                format!("${s}")
            } else {
                s.to_string()
            }
        })
        .collect()
}

/// An operation's `security` (and REST's old `x-amazon-apigateway-auth`) → the route's
/// `authorizer`, `authorization_scopes`, `authorization: iam`, `api_key_required`.
/// False when the method must be skipped.
pub(super) fn security(
    ctx: &mut Ctx,
    schemes: &[(String, Scheme)],
    op_p: &str,
    op: &Value,
    route: &mut Map<String, Value>,
) -> bool {
    // A setting of the wrong shape skips the method: read as "no requirement", it
    // served an operation its document protects open to anyone.
    if let Some(auth) = op.get("x-amazon-apigateway-auth") {
        let ap = format!("{op_p}/x-amazon-apigateway-auth");
        match auth.get("type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("aws_iam") => {
                route.insert("authorization".into(), json!("iam"));
            }
            Some(t) if t.eq_ignore_ascii_case("none") => {}
            Some(t) => {
                ctx.warn(
                    ap,
                    format!("{t} authorization is not supported; method skipped"),
                );
                return false;
            }
            None => {
                ctx.warn(
                    ap,
                    "expected an object with a type (AWS_IAM or NONE); method skipped",
                );
                return false;
            }
        }
    }
    let sp = format!("{op_p}/security");
    let reqs = match op.get("security") {
        None => return true,
        Some(Value::Array(reqs)) => reqs,
        Some(_) => {
            ctx.warn(
                sp,
                "expected a list of security requirements ({scheme: [scopes]}); method skipped",
            );
            return false;
        }
    };
    for (i, req) in reqs.iter().enumerate() {
        let Some(req) = req.as_object() else {
            ctx.warn(
                format!("{sp}/{i}"),
                "expected a security requirement ({scheme: [scopes]}); method skipped",
            );
            return false;
        };
        // What an earlier requirement (another alternative) already set.
        let guarded_before =
            route.contains_key("authorizer") || route.contains_key("authorization");
        for (name, scopes) in req {
            if !scopes.is_array() {
                ctx.warn(
                    format!("{sp}/{i}/{}", esc(name)),
                    "expected a list of scopes; method skipped",
                );
                return false;
            }
            let guarded = route.contains_key("authorizer") || route.contains_key("authorization");
            match schemes.iter().find(|(n, _)| n == name).map(|(_, k)| k) {
                None => {
                    ctx.warn(
                        sp.clone(),
                        format!("no security scheme named {name:?}; method skipped"),
                    );
                    return false;
                }
                Some(Scheme::Unusable) => {
                    ctx.warn(
                        sp.clone(),
                        format!("authorizer {name:?} could not be imported; method skipped"),
                    );
                    return false;
                }
                // Two authorizers in one requirement must both pass: keeping one
                // would let through what the other refuses.
                Some(Scheme::Authorizer | Scheme::Iam) if guarded && !guarded_before => {
                    ctx.warn(
                        format!("{sp}/{i}"),
                        format!("{name:?} and another authorizer are both required, and a method runs one authorizer, as API Gateway; method skipped"),
                    );
                    return false;
                }
                // Alternatives (`[{a: []}, {b: []}]`): one kept is stricter, not weaker.
                Some(Scheme::Authorizer | Scheme::Iam) if guarded => ctx.warn(
                    sp.clone(),
                    format!("one authorizer per method, as API Gateway: {name:?} ignored"),
                ),
                Some(Scheme::Authorizer) => {
                    route.insert("authorizer".into(), json!(name));
                    if scopes.as_array().is_some_and(|s| !s.is_empty()) {
                        route.insert("authorization_scopes".into(), scopes.clone());
                    }
                }
                Some(Scheme::Iam) => {
                    route.insert("authorization".into(), json!("iam"));
                }
                Some(Scheme::ApiKey) => {
                    route.insert("api_key_required".into(), Value::Bool(true));
                }
            }
        }
    }
    true
}

/// Export: the name of the API-key (`base` "api_key") or IAM ("sigv4") scheme. Schemes
/// share one namespace with the authorizers, and import reads a scheme by what it is,
/// not by its name: an authorizer called `api_key` would otherwise be overwritten by (or
/// take over) the API-key requirement, swapping protections on re-import. So the name is
/// numbered (`api_key_2`, …) until no authorizer has it.
pub(super) fn scheme_name(api: &Api, base: &str) -> String {
    let mut name = base.to_string();
    for n in 2.. {
        if !api.authorizers.iter().any(|(a, _)| *a == name) {
            break;
        }
        name = format!("{base}_{n}");
    }
    name
}

/// Export: the route's `security` requirement, when it has one.
pub(super) fn route_security(api: &Api, route: &Route, with_authorizers: bool) -> Option<Value> {
    let mut req = Map::new();
    if with_authorizers {
        if let Some(a) = &route.auth.authorizer {
            req.insert(a.clone(), json!(route.auth.scopes));
        } else if route.auth.iam {
            req.insert(scheme_name(api, "sigv4"), json!([]));
        }
    }
    if route.api_key_required {
        req.insert(scheme_name(api, "api_key"), json!([]));
    }
    (!req.is_empty()).then(|| json!([req]))
}

/// The ARN an export names the function at `url` by: the config's own
/// (`lambda_functions`), else a made-up one. Either is listed with its URL in `arns`
/// (`x-portico-lambda-functions`): an import of the export then calls the same function
/// (one named in `lambda_functions` came back as the local emulator's default URL).
pub(super) fn function_arn(
    api: &Api,
    url: &str,
    made_up: impl FnOnce() -> String,
    arns: &mut Map<String, Value>,
) -> String {
    let arn = (api.defs.lambda_functions.iter())
        .find(|(_, u)| u == url)
        .map_or_else(made_up, |(a, _)| a.clone());
    arns.insert(arn.clone(), json!(url));
    arn
}

/// Export: the schemes the routes refer to (`api_key`, `sigv4`, see [`scheme_name`];
/// one per authorizer). Lambda authorizers the config names only by URL get a made-up ARN
/// (`function_arn`).
pub(super) fn export_schemes(
    api: &Api,
    with_authorizers: bool,
    region: &str,
    arns: &mut Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    if api.routes.iter().any(|(_, r)| r.api_key_required) {
        out.insert(
            scheme_name(api, "api_key"),
            json!({ "type": "apiKey", "name": "x-api-key", "in": "header" }),
        );
    }
    if !with_authorizers {
        return out;
    }
    if api.routes.iter().any(|(_, r)| r.auth.iam) {
        out.insert(
            scheme_name(api, "sigv4"),
            json!({ "type": "apiKey", "name": "Authorization", "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4" }),
        );
    }
    for (name, a) in &api.authorizers {
        let mut extra = Map::new();
        let scheme = match a {
            Authorizer::Jwt(j) => {
                if let Some(u) = &j.jwks_uri {
                    extra.insert("jwks_uri".into(), json!(u));
                }
                if j.algorithms
                    .iter()
                    .map(String::as_str)
                    .ne(DEFAULT_JWT_ALGORITHMS.iter().copied())
                {
                    extra.insert("algorithms".into(), json!(j.algorithms));
                }
                if !j.leeway.is_zero() {
                    extra.insert(
                        "leeway".into(),
                        json!(format!("{}ms", j.leeway.as_millis())),
                    );
                }
                // `flows` as API Gateway's own exports write it: an `oauth2` scheme
                // without one is not valid OpenAPI 3.0.
                json!({ "type": "oauth2", "flows": {}, "x-amazon-apigateway-authorizer": {
                    "type": "jwt",
                    "identitySource": j.identity_source,
                    "jwtConfiguration": { "issuer": j.issuer, "audience": j.audience },
                } })
            }
            Authorizer::Lambda(l) => {
                if l.timeout != LAMBDA_AUTHORIZER_TIMEOUT {
                    extra.insert(
                        "timeout".into(),
                        json!(format!("{}ms", l.timeout.as_millis())),
                    );
                }
                let made_up = || {
                    format!(
                        "arn:aws:lambda:{region}:000000000000:function:portico-authorizer-{name}"
                    )
                };
                let arn = function_arn(api, &l.url, made_up, arns);
                let header = l
                    .identity_source
                    .iter()
                    .find_map(|s| s.strip_prefix("$request.header."))
                    .unwrap_or("Unused");
                let mut az = json!({
                    "type": "request",
                    "identitySource": l.identity_source.join(", "),
                    "authorizerUri": invocation_uri(&arn, region),
                    "authorizerPayloadFormatVersion": if l.payload_format == PayloadFormat::V1 { "1.0" } else { "2.0" },
                    "authorizerResultTtlInSeconds": l.result_ttl.as_secs(),
                });
                if l.simple_responses {
                    az["enableSimpleResponses"] = json!(true);
                }
                json!({ "type": "apiKey", "name": header, "in": "header",
                        "x-amazon-apigateway-authtype": "custom",
                        "x-amazon-apigateway-authorizer": az })
            }
        };
        let mut scheme = scheme;
        if !extra.is_empty() {
            scheme["x-portico-authorizer"] = Value::Object(extra);
        }
        out.insert(name.clone(), scheme);
    }
    out
}

/// API Gateway's invocation URI of a Lambda function, in the function's own region.
pub(super) fn invocation_uri(arn: &str, default_region: &str) -> String {
    let region = arn
        .strip_prefix("arn:aws:lambda:")
        .and_then(|r| r.split(':').next())
        .filter(|r| !r.is_empty())
        .unwrap_or(default_region);
    format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations")
}
