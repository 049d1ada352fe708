//! Authorizer config (who may call a route): the types and their YAML decoding, kept
//! apart from the rest of the config so the keys stay additive (their checks are
//! `config::validate::auth`).
//!
//! ```yaml
//! apis.NAME.authorizers.AUTH: { type: jwt, issuer, audience, identity_source, algorithms, jwks_uri, leeway }
//! apis.NAME.authorizers.AUTH: { type: lambda, url, payload_format, simple_responses, identity_source, result_ttl, timeout }
//! apis.NAME.api_key_source: header | authorizer
//! apis.NAME.routes.KEY: { authorizer: AUTH, authorization_scopes: [..] } | { authorization: iam }
//! ```

use std::time::Duration;

use serde_yaml_ng::Value;

use super::decode::Decoder;
use super::model::PayloadFormat;
use super::KeyPath;
use crate::config::decode::shown;

/// API Gateway's quotas: audiences per authorizer, scopes per route, authorizers per API.
pub const MAX_AUDIENCES: usize = 50;
/// A JWT's clock-skew allowance is for skew, not for keeping expired tokens alive.
pub const MAX_LEEWAY: Duration = Duration::from_secs(600);
pub const MAX_SCOPES: usize = 10;
pub const MAX_AUTHORIZERS: usize = 10;
/// Lambda authorizer result cache: at most one hour (API Gateway's limit).
pub const MAX_RESULT_TTL: Duration = Duration::from_secs(3600);
/// API Gateway's Lambda authorizer timeout.
pub const LAMBDA_AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);

/// Signature algorithms a JWT authorizer may accept; RSA ones by default. `none` and the
/// HMAC family are never accepted (a public key is not a shared secret).
pub const JWT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
pub const DEFAULT_JWT_ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512"];

#[derive(Debug, Clone, PartialEq)]
pub enum Authorizer {
    Jwt(JwtAuthorizer),
    Lambda(LambdaAuthorizer),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtAuthorizer {
    /// `$request.header.NAME` or `$request.querystring.NAME`.
    pub identity_source: String,
    pub issuer: String,
    /// Given: used instead of OIDC discovery.
    pub jwks_uri: Option<String>,
    pub audience: Vec<String>,
    pub algorithms: Vec<String>,
    /// Clock skew allowed on exp/nbf/iat (default 0, as API Gateway).
    pub leeway: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LambdaAuthorizer {
    pub url: String,
    pub payload_format: PayloadFormat,
    pub simple_responses: bool,
    /// `$request.header.X`, `$request.querystring.X`, `$context.X`, `$stageVariables.X`.
    pub identity_source: Vec<String>,
    /// 0 = no caching.
    pub result_ttl: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiKeySource {
    /// The client sends `x-api-key`.
    #[default]
    Header,
    /// The Lambda authorizer's `usageIdentifierKey` names the key.
    Authorizer,
}

/// A route's `authorizer`, `authorization_scopes` and `authorization`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteAuth {
    pub authorizer: Option<String>,
    pub scopes: Vec<String>,
    /// `authorization: iam`: SigV4-signed by a principal of `iam`.
    pub iam: bool,
    /// `authorization: none` written out (refused beside an authorizer, which would
    /// still apply).
    pub none: bool,
}

/// `iam`: the region of SigV4 credential scopes and execute-api ARNs, and the principals
/// that may sign requests for `authorization: iam` routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Iam {
    pub region: String,
    pub principals: Vec<(String, Principal)>,
}

pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials: requests must carry this `X-Amz-Security-Token`.
    pub session_token: Option<String>,
    pub account_id: String,
    pub user_arn: Option<String>,
    pub user_id: Option<String>,
    /// execute-api ARN patterns (`*`, `?`); deny overrides allow.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

pub(super) fn iam(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Iam> {
    let f = d.fields(v, p, &["region", "principals"]);
    let mut iam = Iam {
        region: DEFAULT_REGION.into(),
        principals: Vec::new(),
    };
    f.set(d, "region", &mut iam.region, Decoder::string);
    if let Some((pv, pp)) = f.get("principals") {
        for (name, v, p) in d.entries(pv, &pp) {
            let f = d.fields(
                v,
                &p,
                &[
                    "access_key_id",
                    "secret_access_key",
                    "session_token",
                    "account_id",
                    "user_arn",
                    "user_id",
                    "allow",
                    "deny",
                ],
            );
            // Numbers and booleans are their text as written (`Decoder::text`), as
            // `admin.token` and an API key's value: a type error would print the secret.
            let key = f.need(d, "access_key_id", Decoder::text);
            let secret = f.need(d, "secret_access_key", Decoder::text);
            let principal = Principal {
                access_key_id: key.unwrap_or_default(),
                secret_access_key: secret.unwrap_or_default(),
                session_token: f.opt(d, "session_token", Decoder::text),
                account_id: f
                    .opt(d, "account_id", Decoder::string)
                    .unwrap_or_else(|| crate::pipeline::context::ACCOUNT_ID.into()),
                user_arn: f.opt(d, "user_arn", Decoder::string),
                user_id: f.opt(d, "user_id", Decoder::string),
                allow: f.opt(d, "allow", Decoder::strings).unwrap_or_default(),
                deny: f.opt(d, "deny", Decoder::strings).unwrap_or_default(),
            };
            iam.principals.push((name, principal));
        }
    }
    Some(iam)
}

/// The route keys this file adds.
pub const ROUTE_KEYS: &[&str] = &["authorizer", "authorization_scopes", "authorization"];

pub(super) fn route_auth(d: &mut Decoder, v: &Value, p: &KeyPath) -> RouteAuth {
    let mut a = RouteAuth::default();
    let Some(map) = v.as_mapping() else {
        return a;
    };
    if let Some(x) = map.get("authorizer").filter(|x| !x.is_null()) {
        a.authorizer = d.parsed_text(x, &p.key("authorizer"));
    }
    if let Some(x) = map.get("authorization_scopes").filter(|x| !x.is_null()) {
        a.scopes = d
            .strings(x, &p.key("authorization_scopes"))
            .unwrap_or_default();
    }
    if let Some(x) = map.get("authorization").filter(|x| !x.is_null()) {
        a.iam = d
            .choice(
                x,
                &p.key("authorization"),
                &[("iam", true), ("none", false)],
            )
            .unwrap_or(false);
        a.none = x.as_str() == Some("none");
    }
    a
}

pub(super) fn api_key_source(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<ApiKeySource> {
    d.choice(
        v,
        p,
        &[
            ("header", ApiKeySource::Header),
            ("authorizer", ApiKeySource::Authorizer),
        ],
    )
}

pub(super) fn authorizer(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Authorizer> {
    if v.is_null() {
        return None;
    }
    // An authorizer with errors is still kept by its name, with defaults in place of
    // what failed, so that routes naming it get no "no authorizer" error on top. Checks
    // of those defaults say nothing: they lie under a reported error's path.
    let kind = match v.get("type") {
        // Not a map: `fields` says so.
        _ if !v.is_mapping() => {
            d.fields(v, p, &[]);
            None
        }
        Some(t) if !t.is_null() => {
            d.choice(t, &p.key("type"), &[("jwt", "jwt"), ("lambda", "lambda")])
        }
        _ => {
            d.error(p, "missing key \"type\" (jwt or lambda)");
            None
        }
    };
    let Some(kind) = kind else {
        // Of no known type, its keys are not read (which are missing depends on the
        // type); it stands in as the kind its keys suggest (a Lambda authorizer has a
        // url), so the route checks that depend on the kind judge what was meant.
        d.stand_in(p);
        let lambda = v.get("url").is_some() && v.get("issuer").is_none();
        return Some(match lambda {
            true => Authorizer::Lambda(LambdaAuthorizer::stand_in()),
            false => Authorizer::Jwt(JwtAuthorizer::stand_in()),
        });
    };
    if kind == "jwt" {
        let f = d.fields(
            v,
            p,
            &[
                "type",
                "identity_source",
                "issuer",
                "jwks_uri",
                "audience",
                "algorithms",
                "leeway",
            ],
        );
        let issuer = f.need(d, "issuer", Decoder::string);
        let audience = f.need(d, "audience", Decoder::strings);
        let mut a = JwtAuthorizer {
            jwks_uri: f.opt(d, "jwks_uri", Decoder::string),
            ..JwtAuthorizer::stand_in()
        };
        f.set(
            d,
            "identity_source",
            &mut a.identity_source,
            Decoder::string,
        );
        f.set(d, "algorithms", &mut a.algorithms, Decoder::strings);
        f.set(d, "leeway", &mut a.leeway, Decoder::duration);
        a.issuer = issuer.unwrap_or_default();
        a.audience = audience.unwrap_or_default();
        return Some(Authorizer::Jwt(a));
    }
    let f = d.fields(
        v,
        p,
        &[
            "type",
            "url",
            "payload_format",
            "simple_responses",
            "identity_source",
            "result_ttl",
            "timeout",
        ],
    );
    let url = f.need(d, "url", Decoder::string);
    let mut a = LambdaAuthorizer::stand_in();
    f.set(
        d,
        "payload_format",
        &mut a.payload_format,
        super::load::decode_payload_format,
    );
    f.set(
        d,
        "simple_responses",
        &mut a.simple_responses,
        Decoder::bool,
    );
    f.set(d, "identity_source", &mut a.identity_source, |d, v, p| {
        // One source may be written as a plain string.
        if v.is_string() {
            d.string(v, p).map(|s| vec![s])
        } else {
            d.strings(v, p)
        }
    });
    f.set(d, "result_ttl", &mut a.result_ttl, Decoder::duration);
    f.set(d, "timeout", &mut a.timeout, Decoder::duration);
    a.url = url.unwrap_or_default();
    Some(Authorizer::Lambda(a))
}

impl JwtAuthorizer {
    /// The defaults, with no issuer or audience (which must be given).
    fn stand_in() -> JwtAuthorizer {
        JwtAuthorizer {
            identity_source: "$request.header.Authorization".into(),
            issuer: String::new(),
            jwks_uri: None,
            audience: Vec::new(),
            algorithms: DEFAULT_JWT_ALGORITHMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            leeway: Duration::ZERO,
        }
    }
}

impl LambdaAuthorizer {
    /// The defaults, with no url (which must be given).
    fn stand_in() -> LambdaAuthorizer {
        LambdaAuthorizer {
            url: String::new(),
            payload_format: PayloadFormat::V2,
            simple_responses: false,
            identity_source: Vec::new(),
            result_ttl: Duration::ZERO,
            timeout: LAMBDA_AUTHORIZER_TIMEOUT,
        }
    }
}

/// A JWT identity source: where the token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Lower-case header name.
    Header(String),
    Query(String),
}

pub fn token_source(s: &str) -> Result<TokenSource, String> {
    if let Some(h) = s.strip_prefix("$request.header.") {
        if !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Ok(TokenSource::Header(h.to_ascii_lowercase()));
        }
    } else if let Some(q) = s.strip_prefix("$request.querystring.") {
        if !q.is_empty() {
            query_name(s, q)?;
            return Ok(TokenSource::Query(q.to_string()));
        }
    }
    Err(format!(
        "{} is not a JWT identity source (expected $request.header.NAME or $request.querystring.NAME)", shown(s)
    ))
}

/// A Lambda authorizer identity source: a value of the request the cache is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// Lower-case header name (compared ignoring case).
    Header(String),
    /// Compared exactly, as API Gateway does.
    Query(String),
    Context(crate::pipeline::context::Var),
    StageVariable(String),
}

impl IdentitySource {
    pub fn parse(s: &str) -> Result<IdentitySource, String> {
        let nonempty = |n: &str| (!n.is_empty()).then(|| n.to_string());
        // WebSocket APIs write sources as route.request.header.X, stageVariables.X,
        // context.X (API Gateway's form there); both spellings mean the same.
        let s = match s.strip_prefix("route.request.") {
            Some(rest) => format!("$request.{rest}"),
            None if s.starts_with("stageVariables.") || s.starts_with("context.") => {
                format!("${s}")
            }
            None => s.to_string(),
        };
        let s = s.as_str();
        // A name no request can carry would pass `check` and then answer every request
        // 401 (the source is never present): refused here instead.
        let parsed = if let Some(h) = s.strip_prefix("$request.header.") {
            if !h.is_empty() && !crate::http1::parse::is_token(h) {
                return Err(format!(
                    "{}: {} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                    shown(s),
                    shown(h)
                ));
            }
            nonempty(h).map(|h| IdentitySource::Header(h.to_ascii_lowercase()))
        } else if let Some(q) = s.strip_prefix("$request.querystring.") {
            if !q.is_empty() {
                query_name(s, q)?;
            }
            nonempty(q).map(IdentitySource::Query)
        } else if let Some(c) = s.strip_prefix("$context.") {
            let var = crate::pipeline::context::Var::parse(c)
                .ok_or_else(|| format!("$context.{c} is not a context variable"))?;
            if let Some(why) = var.empty_for_authorizers() {
                return Err(format!(
                    "$context.{c} is always empty here ({why}), so every request would be refused 401"
                ));
            }
            Some(IdentitySource::Context(var))
        } else if let Some(v) = s.strip_prefix("$stageVariables.") {
            // Whether every stage defines it is `validate::auth`'s check.
            if !v.is_empty() && !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "{}: {} is not a stage variable name (letters, digits and _ only)",
                    shown(s),
                    shown(v)
                ));
            }
            nonempty(v).map(IdentitySource::StageVariable)
        } else {
            None
        };
        parsed.ok_or_else(|| {
            format!("{} is not an identity source (expected $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME; on WebSocket APIs also route.request.header.NAME, route.request.querystring.NAME)", shown(s))
        })
    }
}

/// Refuses a query parameter name no query string carries: `&`, `=` and `#` end a name
/// there, and a space or control character cannot be in a request target.
fn query_name(source: &str, name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || "&=#".contains(c))
    {
        Some(c) => Err(format!(
            "{}: {} is not a query parameter name (it cannot hold {c:?})",
            shown(source),
            shown(name)
        )),
        None => Ok(()),
    }
}

/// Checks `http(s)://host[:port][/path]`; returns the URL without a trailing slash.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{} is not an http:// or https:// URL", shown(url)))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') || url.bytes().any(|b| b <= b' ' || b == b'#') {
        return Err(format!("{} is not a valid URL", shown(url)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::IdentitySource;

    /// WebSocket APIs' spelling of identity sources means the same as HTTP APIs'.
    #[test]
    fn websocket_identity_sources() {
        for (ws, http) in [
            ("route.request.header.Auth", "$request.header.auth"),
            (
                "route.request.querystring.token",
                "$request.querystring.token",
            ),
            ("stageVariables.v", "$stageVariables.v"),
            ("context.requestId", "$context.requestId"),
        ] {
            assert_eq!(
                IdentitySource::parse(ws),
                IdentitySource::parse(http),
                "{ws}"
            );
            assert!(IdentitySource::parse(ws).is_ok(), "{ws}");
        }
        assert!(IdentitySource::parse("route.request.body.x").is_err());
    }

    /// Names no request can carry are refused, not left to answer every request 401.
    #[test]
    fn identity_sources_a_request_can_carry() {
        for ok in [
            "$request.header.X-Api-Token",
            "$request.header.x_token",
            "$request.header.a.b~c",
            "$request.querystring.user_id",
            "$request.querystring.a%20b",
            "$request.querystring.caf\u{e9}",
            "$stageVariables.tenant_1",
            "route.request.header.Auth",
        ] {
            assert!(IdentitySource::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("$request.header.a,b", r#""a,b" is not a header name"#),
            ("$request.header.a b", r#""a b" is not a header name"#),
            ("$request.header.a:b", r#""a:b" is not a header name"#),
            ("route.request.header.a/b", r#""a/b" is not a header name"#),
            ("$request.querystring.a b", "it cannot hold ' '"),
            ("$request.querystring.a&b", "it cannot hold '&'"),
            ("$request.querystring.a=b", "it cannot hold '='"),
            ("$request.querystring.a#b", "it cannot hold '#'"),
            ("$request.querystring.a\tb", "it cannot hold '\\t'"),
            (
                "$stageVariables.a-b",
                r#""a-b" is not a stage variable name"#,
            ),
        ] {
            let e = IdentitySource::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // A JWT authorizer's query source follows the same rule.
        assert!(super::token_source("$request.querystring.a b").is_err());
        assert!(super::token_source("$request.querystring.token").is_ok());
    }
}
