//! Authorizer settings checked whole (`validate`): URLs, algorithms, audiences, scopes,
//! identity sources and IAM principals, each with its key path. Decoding them is
//! `config::auth`.

use super::super::auth::*;
use super::super::model::{Config, PayloadFormat};
use super::super::{ConfigError, KeyPath};
use crate::config::decode::shown;

/// Every authorizer problem in the config, with key paths.
pub fn validate(cfg: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err = |p: &KeyPath, m: String| errors.push(p.error(m));
    if let Some(iam) = &cfg.iam {
        let ip = KeyPath::root().key("iam");
        if iam.region.is_empty()
            || !iam
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            err(
                &ip.key("region"),
                format!(
                    "{} is not a region name (lowercase letters, digits and hyphens, such as us-east-1)",
                    shown(&iam.region)
                ),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (name, pr) in &iam.principals {
            let pp = ip.key("principals").key(name);
            if seen.contains(&pr.access_key_id.as_str()) {
                err(
                    &pp.key("access_key_id"),
                    "already used by another principal".into(),
                );
            }
            seen.push(&pr.access_key_id);
            if let Some(why) = unpresentable_key_id(&pr.access_key_id) {
                err(&pp.key("access_key_id"), why);
            }
            if pr.secret_access_key.is_empty() {
                err(&pp.key("secret_access_key"), "must not be empty".into());
            }
            for (list, patterns) in [("allow", &pr.allow), ("deny", &pr.deny)] {
                for (i, pattern) in patterns.iter().enumerate() {
                    if pattern.trim().is_empty() {
                        err(
                            &pp.key(list).index(i),
                            "is empty (it matches no ARN; \"*\" matches all)".into(),
                        );
                    }
                }
            }
            if pr.allow.is_empty() {
                err(
                    &pp.key("allow"),
                    "give at least one execute-api ARN pattern (\"*\" for all)".into(),
                );
            }
        }
    }
    for (api_name, api) in &cfg.apis {
        let ap = KeyPath::root().key("apis").key(api_name);
        if api.authorizers.len() > MAX_AUTHORIZERS {
            err(
                &ap.key("authorizers"),
                format!("at most {MAX_AUTHORIZERS} authorizers per API"),
            );
        }
        for (name, a) in &api.authorizers {
            let p = ap.key("authorizers").key(name);
            match a {
                Authorizer::Jwt(j) => {
                    for (key, url) in [
                        ("issuer", Some(&j.issuer)),
                        ("jwks_uri", j.jwks_uri.as_ref()),
                    ] {
                        if url.is_some_and(|u| names_stage_variable(u)) {
                            err(&p.key(key), "stage variables are not resolved in an authorizer (it serves every stage of the API): write the URL".into());
                        }
                    }
                    if let Err(e) = check_url(&j.issuer) {
                        err(&p.key("issuer"), format!("bad issuer URL: {e}"));
                    }
                    if let Some(u) = &j.jwks_uri {
                        if let Err(e) = check_url(u) {
                            err(&p.key("jwks_uri"), e);
                        }
                    }
                    if j.audience.is_empty() {
                        err(&p.key("audience"), "give at least one audience".into());
                    } else if j.audience.len() > MAX_AUDIENCES {
                        err(
                            &p.key("audience"),
                            format!("at most {MAX_AUDIENCES} audiences"),
                        );
                    }
                    for (i, aud) in j.audience.iter().enumerate() {
                        if aud.trim().is_empty() {
                            err(&p.key("audience").index(i), "is empty".into());
                        }
                    }
                    if j.leeway > MAX_LEEWAY {
                        err(
                            &p.key("leeway"),
                            "at most 10m: a longer leeway keeps expired tokens valid".into(),
                        );
                    }
                    if j.algorithms.is_empty() {
                        err(&p.key("algorithms"), "give at least one algorithm".into());
                    }
                    for (i, alg) in j.algorithms.iter().enumerate() {
                        if !JWT_ALGORITHMS.contains(&alg.as_str()) {
                            let why = if alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
                                " (never accepted: unsigned and HMAC tokens cannot be verified with an issuer's public keys)"
                            } else {
                                ""
                            };
                            err(
                                &p.key("algorithms").index(i),
                                format!(
                                    "unknown algorithm {}{why}; expected one of {}",
                                    shown(alg),
                                    JWT_ALGORITHMS.join(", ")
                                ),
                            );
                        }
                    }
                    if let Err(e) = token_source(&j.identity_source) {
                        err(&p.key("identity_source"), e);
                    }
                }
                Authorizer::Lambda(l) => {
                    if names_stage_variable(&l.url) {
                        // An authorizer is the API's, shared by its stages; the text
                        // would be called as written (a 500 for every request).
                        err(&p.key("url"), "stage variables are not resolved in an authorizer's url (it serves every stage of the API): write the function's url".into());
                    } else if let Err(e) = crate::integration::lambda::parse_url(&l.url) {
                        err(&p.key("url"), e);
                    }
                    if l.simple_responses && l.payload_format == PayloadFormat::V1 {
                        err(
                            &p.key("simple_responses"),
                            "simple responses need payload_format \"2.0\"".into(),
                        );
                    }
                    if l.result_ttl > MAX_RESULT_TTL {
                        err(&p.key("result_ttl"), "at most 3600s".into());
                    }
                    if !l.result_ttl.is_zero() && l.identity_source.is_empty() {
                        err(
                            &p.key("identity_source"),
                            "caching results (result_ttl) needs at least one identity source"
                                .into(),
                        );
                    }
                    for (i, s) in l.identity_source.iter().enumerate() {
                        match IdentitySource::parse(s) {
                            Err(e) => err(&p.key("identity_source").index(i), e),
                            // One authorizer serves every stage: a stage without the
                            // variable would answer every request 401 without a call.
                            // Reported at the stage, as routes' references are.
                            Ok(IdentitySource::StageVariable(var)) => {
                                let used_by = KeyPath::root()
                                    .key("authorizers")
                                    .key(name)
                                    .key("identity_source")
                                    .index(i);
                                for (stage_name, stage) in &api.stages {
                                    if !stage.variables.iter().any(|(n, _)| *n == var) {
                                        err(
                                            &ap.key("stages").key(stage_name).key("variables"),
                                            format!(
                                                "no variable {}, used by {used_by}",
                                                shown(&var)
                                            ),
                                        );
                                    }
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                    if l.timeout.is_zero() || l.timeout > LAMBDA_AUTHORIZER_TIMEOUT {
                        let got = super::routes::fmt_duration(l.timeout);
                        err(&p.key("timeout"), format!("between 1ms and 10s, got {got}"));
                    }
                }
            }
        }
        if api.api_key_source == ApiKeySource::Authorizer
            && !api
                .authorizers
                .iter()
                .any(|(_, a)| matches!(a, Authorizer::Lambda(_)))
        {
            err(
                &ap.key("api_key_source"),
                "\"authorizer\" needs a Lambda authorizer in the API (its usageIdentifierKey is the key)"
                    .into(),
            );
        }
        for (key, route) in &api.routes {
            let p = ap.key("routes").key(key);
            let a = &route.auth;
            let found = a
                .authorizer
                .as_ref()
                .map(|n| (n, api.authorizers.iter().find(|(k, _)| k == n)));
            if let Some((n, None)) = found {
                let known: Vec<&str> = api.authorizers.iter().map(|(k, _)| k.as_str()).collect();
                let hint = match super::super::decode::did_you_mean(n, &known) {
                    Some(k) => format!(" (did you mean {}?)", shown(k)),
                    None if known.is_empty() => " (the API has no authorizers)".into(),
                    None => format!(" (known: {})", known.join(", ")),
                };
                err(
                    &p.key("authorizer"),
                    format!("no authorizer {}{hint}", shown(n)),
                );
            }
            let is_jwt = matches!(found, Some((_, Some((_, Authorizer::Jwt(_))))));
            if !a.scopes.is_empty() && !is_jwt {
                err(
                    &p.key("authorization_scopes"),
                    "scopes need a JWT authorizer on the route".into(),
                );
            }
            for (i, scope) in a.scopes.iter().enumerate() {
                if scope.trim().is_empty() {
                    err(
                        &p.key("authorization_scopes").index(i),
                        "is empty (no token carries it)".into(),
                    );
                }
            }
            if a.scopes.len() > MAX_SCOPES {
                err(
                    &p.key("authorization_scopes"),
                    format!("at most {MAX_SCOPES} scopes"),
                );
            }
            if a.iam && cfg.iam.as_ref().is_none_or(|i| i.principals.is_empty()) {
                err(
                    &p.key("authorization"),
                    "iam authorization needs principals in the top-level `iam` section".into(),
                );
            }
            if api.protocol == super::super::model::Protocol::Websocket {
                websocket_route(
                    key,
                    a,
                    route.api_key_required,
                    found.and_then(|(_, f)| f),
                    &p,
                    &mut err,
                );
            }
            // The key is the Lambda authorizer's usageIdentifierKey and nothing else (the
            // `x-api-key` header is not read): a route without one refuses every request.
            let ws_message_route =
                api.protocol == super::super::model::Protocol::Websocket && key != "$connect";
            if route.api_key_required
                && api.api_key_source == ApiKeySource::Authorizer
                && !ws_message_route
            {
                let gives_no_key = match found {
                    None if a.iam => Some("its `authorization: iam` gives none".to_string()),
                    None => Some("it has no authorizer".to_string()),
                    Some((n, Some((_, Authorizer::Jwt(_))))) => Some(format!(
                        "its authorizer {} is a JWT authorizer, which gives none",
                        shown(n)
                    )),
                    // Lambda: its answer gives the key. Unknown: reported above.
                    Some((_, Some((_, Authorizer::Lambda(_))))) | Some((_, None)) => None,
                };
                if let Some(why) = gives_no_key {
                    err(
                        &p.key("api_key_required"),
                        format!("the API's `api_key_source: authorizer` takes the key from a Lambda authorizer's usageIdentifierKey, and {why}: every request would be refused 403, whatever x-api-key it sends; give the route a Lambda authorizer, or use api_key_source: header"),
                    );
                }
            }
            if a.none && a.authorizer.is_some() {
                err(
                    &p.key("authorization"),
                    "\"none\" beside an authorizer: the authorizer would still apply; keep one of them".into(),
                );
            }
            if a.iam && a.authorizer.is_some() {
                err(
                    &p.key("authorization"),
                    "a route uses either an authorizer or iam, not both".into(),
                );
            }
        }
    }
    errors
}

/// A WebSocket API's route: authorization and API keys happen on `$connect` only.
fn websocket_route(
    key: &str,
    a: &RouteAuth,
    api_key_required: bool,
    found: Option<&(String, Authorizer)>,
    p: &KeyPath,
    err: &mut impl FnMut(&KeyPath, String),
) {
    if key != "$connect" {
        if a.authorizer.is_some() {
            err(
                &p.key("authorizer"),
                "WebSocket APIs authorize on $connect only; move the authorizer there".into(),
            );
        }
        if a.iam {
            err(
                &p.key("authorization"),
                "WebSocket APIs authorize on $connect only; move `authorization: iam` there".into(),
            );
        }
        // A message carries no headers to hold a key, and API Gateway requires keys on
        // `$connect` only: accepted here, the setting would silently do nothing.
        if api_key_required {
            err(
                &p.key("api_key_required"),
                "WebSocket APIs check API keys on $connect only; move `api_key_required: true` there"
                    .into(),
            );
        }
    }
    // JWT authorizers on `$connect` are accepted although API Gateway has none for
    // WebSocket APIs: browsers cannot set headers on a WebSocket, so the token comes as a
    // query parameter (`$request.querystring.token`), and an OIDC token is what most
    // front ends already hold.
    let _ = found;
}

/// Whether `text` refers to a stage variable in either spelling mappings take.
fn names_stage_variable(text: &str) -> bool {
    text.contains("${stageVariables.") || text.contains("$stageVariables.")
}

/// Why no request can present `id` as its access key ID, if none can: it is the first
/// field of the SigV4 credential scope (`Credential=ID/DATE/REGION/execute-api/aws4_request`),
/// which ends at `/`; the `Authorization` header's parameters end at `,`, are trimmed,
/// and are `name=value` (`auth::sigv4::claim`); a header cannot carry a control
/// character. Such a principal was accepted, and no request could ever be its.
fn unpresentable_key_id(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("is empty: a signed request names its access key ID, so no request could be this principal's; give the ID its clients sign with".into());
    }
    // What no signed request can carry, or only a presigned URL can (`,` ends the
    // Credential parameter of an Authorization header): `=` and inner blanks survive.
    // Blanks are the header's own (space and tab), not Unicode's.
    if id.trim_matches([' ', '\t']) != id {
        return Some("starts or ends with a blank, which the Authorization header's parameters lose: no request could present it; AWS access key IDs are letters and digits".into());
    }
    let c = id
        .chars()
        .find(|c| matches!(c, '/' | ',') || c.is_control())?;
    let why = match c {
        '/' => "'/', which ends the access key ID in a SigV4 credential scope (ID/DATE/REGION/execute-api/aws4_request): no request could present it",
        ',' => "',', which ends the Credential parameter of a signed Authorization header: only a presigned URL could present it",
        _ => "a control character, which no header can carry: no request could present it",
    };
    Some(format!(
        "holds {why}; AWS access key IDs are letters and digits"
    ))
}
