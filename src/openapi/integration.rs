//! `x-amazon-apigateway-integration` → a Portico route's `integration`, `parameters` and
//! `response_parameters`: `http_proxy`/`http` → `http` (an upstream named after the URI's
//! authority, or `${stageVariables.x}`), `aws_proxy` with a Lambda ARN → `lambda` (the URL
//! from `lambda_functions`), `mock` → `mock`. Both parameter mapping grammars (REST's
//! `integration.request.header.x` and HTTP APIs' `overwrite:header.x`) are read.

use serde_json::{json, Map, Value};

use super::import::{esc, static_value, Ctx};
use super::mapping::{refused, value_refused};
use super::uri;

/// The Runtime Interface Emulator's URL, written when an ARN has no URL in the map.
const RIE_URL: &str = "http://127.0.0.1:9000/2015-03-31/functions/function/invocations";

pub(super) fn convert(
    ctx: &mut Ctx,
    p: &str,
    integ: &Value,
    key: &str,
    route: &mut Map<String, Value>,
) -> Option<()> {
    let path_params: Vec<String> = key
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|s| s.trim_end_matches('+').to_string())
        .collect();
    let kind = integ
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if integ.get("integrationSubtype").is_some() {
        ctx.warn(
            format!("{p}/integrationSubtype"),
            "AWS service integrations are not supported; method skipped",
        );
        return None;
    }
    let uri = match kind.as_str() {
        "http" | "http_proxy" | "aws_proxy" => uri::text(ctx, p, integ)?,
        _ => "",
    };
    let mut out = Map::new();
    let mut params = Map::new();
    match kind.as_str() {
        "http" | "http_proxy" => {
            if kind == "http" && builds_body_from_gateway(integ) {
                ctx.warn(
                    format!("{p}/requestTemplates"),
                    "the backend's body is built by a template from what the gateway knows ($context, stage variables) or never passed as sent (passthroughBehavior), and mapping templates are not applied; method skipped",
                );
                return None;
            }
            if kind == "http" && (integ.get("requestTemplates").is_some() || has_templates(integ)) {
                ctx.warn(
                    p,
                    "mapping templates are not applied: the request and response pass as with http_proxy",
                );
            }
            // Portico forwards the client's method: an httpMethod other than the
            // operation's (API Gateway's GET /x calling POST on the backend) can't be kept.
            let method = key.split_once(' ').map_or("ANY", |(m, _)| m);
            if let Some(wanted) = integ.get("httpMethod").and_then(Value::as_str) {
                if method != "ANY"
                    && !wanted.eq_ignore_ascii_case("ANY")
                    && !wanted.eq_ignore_ascii_case(method)
                {
                    ctx.warn(
                        format!("{p}/httpMethod"),
                        format!("not applied: the backend gets the client's method ({method}), not {wanted}"),
                    );
                }
            }
            let Some(uri::Parts {
                scheme,
                authority,
                path,
                query,
            }) = uri::split(ctx, p, uri)
            else {
                ctx.warn(
                    format!("{p}/uri"),
                    format!("expected an http:// or https:// URL, got {uri:?}; method skipped"),
                );
                return None;
            };
            let up = format!("{p}/uri");
            // A literal host becomes an upstream's target, which check must take; one from
            // a stage variable is check's to judge in each stage.
            let literal_host = !authority.contains("${stageVariables.");
            let why = match literal_host {
                true => uri::target_refused(scheme, authority),
                false => None,
            };
            if let Some(why) = why.or_else(|| uri::path_refused(path).map(String::from)) {
                ctx.warn(up, format!("{why}; method skipped"));
                return None;
            }
            out.insert("type".into(), json!("http"));
            let mut path = path.to_string();
            let fills = request_parameters(ctx, p, integ, &path_params, &mut path, &mut params);
            let overwrite = params.get("overwrite:path").and_then(Value::as_str);
            if let Some(name) = uri::unknown_param(&path, overwrite, &path_params) {
                ctx.warn(
                    up,
                    format!("{{{name}}} is not a parameter of the route key, and no integration.request.path mapping fills it; method skipped"),
                );
                return None;
            }
            let upstream = uri::upstream(ctx, &up, scheme, authority);
            out.insert("upstream".into(), json!(upstream));
            // `$default` sends the full request path to the backend (API Gateway's
            // `…/store/checkout` → `https://backend/store/checkout`); `http://backend/` is
            // the same URI as `http://backend` (RFC 3986 §6.2.3), and its `/` sent every
            // request to the backend's root.
            let whole_path = key == "$default" && path == "/";
            if !path.is_empty() && !whole_path {
                out.insert("path".into(), json!(path));
            }
            for pair in query.split('&').filter(|s| !s.is_empty()) {
                let Some((k, v)) = pair.split_once('=').filter(|(k, _)| !k.contains('$')) else {
                    ctx.warn(
                        up.clone(),
                        format!("query part {pair:?} can't be mapped; dropped"),
                    );
                    continue;
                };
                let v = match uri::query_value(v, &fills, &path_params) {
                    Ok(v) => v,
                    Err(name) => {
                        ctx.warn(
                            up,
                            format!("{{{name}}} in the query is not a parameter of the route key, and no integration.request.path mapping fills it; method skipped"),
                        );
                        return None;
                    }
                };
                let key = format!("overwrite:querystring.{k}");
                // A mapping sends one value per name, and none when it comes out empty:
                // said rather than lost unsaid.
                let why = refused(&key, &v, false, &path_params)
                    .or_else(|| v.is_empty().then(|| "an empty value is not sent".into()))
                    .or_else(|| {
                        params
                            .contains_key(&key)
                            .then(|| format!("{k} is given before; a mapping sends one value"))
                    });
                match why {
                    Some(why) => {
                        ctx.warn(up.clone(), format!("query part {pair:?}: {why}; dropped"))
                    }
                    None => {
                        params.insert(key, json!(v));
                    }
                }
            }
        }
        "aws_proxy" => {
            let Some(url) = lambda_url(ctx, &format!("{p}/uri"), uri) else {
                ctx.warn(
                    format!("{p}/uri"),
                    "only Lambda function ARNs are supported for aws_proxy; method skipped",
                );
                return None;
            };
            out.insert("type".into(), json!("lambda"));
            out.insert("url".into(), json!(url));
            let format = match integ.get("payloadFormatVersion") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => format!("{:.1}", n.as_f64().unwrap_or(1.0)),
                _ => "1.0".to_string(),
            };
            out.insert("payload_format".into(), json!(format));
            // A Lambda function gets the whole request: Portico maps requests to http
            // integrations only (check refuses parameters on a lambda route).
            if integ
                .get("requestParameters")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
            {
                ctx.warn(
                    format!("{p}/requestParameters"),
                    "request parameter mapping applies to http integrations (the function gets the whole request); skipped",
                );
            }
        }
        "mock" => {
            out.insert("type".into(), json!("mock"));
            super::mock::convert(ctx, p, integ, &mut out);
            // A mock's answer takes response mappings too (an export writes them here).
            status_mappings(ctx, p, integ, route);
        }
        "aws" => {
            ctx.warn(
                format!("{p}/type"),
                "AWS service integrations (type aws) are not supported; method skipped",
            );
            return None;
        }
        other => {
            ctx.warn(
                format!("{p}/type"),
                format!("unknown integration type {other:?}; method skipped"),
            );
            return None;
        }
    }
    if integ.get("tlsConfig").is_some() {
        ctx.warn(
            format!("{p}/tlsConfig"),
            "not applied: set tls (server_name, verify) on the upstream instead",
        );
    }
    if integ
        .get("cacheKeyParameters")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        ctx.warn(
            format!("{p}/cacheKeyParameters"),
            "not applied: a route's cache key is its cache.key setting",
        );
    }
    if kind != "mock" {
        // A whole number written as a float (`5000.0`, YAML's `!!float 5000`) is one; any
        // other value is left out with a warning, as an integer out of range is.
        let whole = |v: &Value| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0);
        match integ.get("timeoutInMillis") {
            None => {}
            Some(v) => match whole(v) {
                Some(ms) if (50.0..=30_000.0).contains(&ms) => {
                    out.insert("timeout".into(), json!(format!("{ms}ms")));
                }
                Some(_) => ctx.warn(
                    format!("{p}/timeoutInMillis"),
                    "outside 50–30000; the default 29 s is used",
                ),
                None => ctx.warn(
                    format!("{p}/timeoutInMillis"),
                    format!("{v} is not a whole number of milliseconds; the default 29 s is used"),
                ),
            },
        }
        response_parameters(ctx, p, integ, route);
    }
    if !params.is_empty() {
        route.insert("parameters".into(), Value::Object(params));
    }
    route.insert("integration".into(), Value::Object(out));
    Some(())
}

/// Whether a non-proxy integration's request templates put into the body what only the
/// gateway knows (any `$context` value: the authorizer's, the caller's identity, however
/// spelled, `$context['identity']` or an alias `#set($c = $context)`; or a stage
/// variable), or its passthrough behaviour keeps the client's own body from the backend
/// (`never`, and `when_no_templates` once there are templates). Templates are not
/// applied, so the client's body would arrive instead and the client would write those
/// fields itself (`"user": "admin"`), which the backend trusts.
fn builds_body_from_gateway(integ: &Value) -> bool {
    let Some(Value::Object(templates)) = integ.get("requestTemplates") else {
        return false;
    };
    let reads_gateway = |t: &str| {
        let t = t.to_ascii_lowercase();
        ["context", "stagevariables"].iter().any(|name| {
            ["$", "${", "$!", "$!{"]
                .iter()
                .any(|sigil| t.contains(&format!("{sigil}{name}")))
        })
    };
    let passthrough = integ
        .get("passthroughBehavior")
        .and_then(Value::as_str)
        .unwrap_or("when_no_match")
        .to_ascii_lowercase();
    templates
        .values()
        .filter_map(Value::as_str)
        .any(reads_gateway)
        || (!templates.is_empty() && passthrough != "when_no_match")
}

fn has_templates(integ: &Value) -> bool {
    integ
        .get("responses")
        .and_then(Value::as_object)
        .is_some_and(|r| r.values().any(|x| x.get("responseTemplates").is_some()))
}

/// The Lambda function ARN inside an invocation URI, or a bare ARN.
/// The function URL for a Lambda ARN (or an `arn:aws:apigateway:…/functions/ARN/invocations`
/// URI): from `lambda_functions`, a `${stageVariables.x}` function name as is, else the
/// local emulator's URL with a warning at `p`. None when `uri` names no Lambda function.
pub(super) fn lambda_url(ctx: &mut Ctx, p: &str, uri: &str) -> Option<String> {
    let arn = lambda_arn(uri)?;
    if let Some((_, url)) = ctx.lambdas.iter().find(|(a, _)| a == arn) {
        return Some(url.clone());
    }
    let function = arn.rsplit(":function:").next().unwrap_or_default();
    let function = function.split(':').next().unwrap_or_default();
    if function.starts_with("${stageVariables.") && function.ends_with('}') {
        return Some(function.to_string());
    }
    ctx.warn(
        p,
        format!("no URL for {arn} in lambda_functions; the local emulator's URL {RIE_URL} is used"),
    );
    Some(RIE_URL.to_string())
}

fn lambda_arn(uri: &str) -> Option<&str> {
    if let Some(rest) = uri.split_once("/functions/").map(|(_, r)| r) {
        return rest.strip_suffix("/invocations").or(Some(rest));
    }
    uri.contains(":lambda:").then_some(uri)
}

/// Request parameter mappings in either grammar → Portico's `parameters`; REST path
/// mappings rename the URI's `{name}` to the route's parameter.
fn request_parameters(
    ctx: &mut Ctx,
    p: &str,
    integ: &Value,
    path_params: &[String],
    path: &mut String,
    params: &mut Map<String, Value>,
) -> Vec<(String, Fill)> {
    let Some(Value::Object(m)) = integ.get("requestParameters") else {
        return Vec::new();
    };
    // URI path names a mapping fills, and with what: applied together at the end, so
    // mappings that swap two names do not chain. Returned for the URI's query.
    let mut fills: Vec<(String, Fill)> = Vec::new();
    for (k, v) in m {
        let kp = format!("{p}/requestParameters/{}", esc(k));
        let Some(v) = v.as_str() else {
            ctx.warn(
                kp,
                format!("Invalid format for 'requestParameters'. Expected type string for property '{k}' but got '{v}'"),
            );
            continue;
        };
        if let Some(target) = k.strip_prefix("integration.request.") {
            let Some(value) = rest_value(v) else {
                ctx.warn(kp.clone(), format!("value {v:?} can't be mapped; skipped"));
                super::authorizer_mappings::remove_instead(ctx, &kp, params, target, v);
                continue;
            };
            let (loc, name) = target.split_once('.').unwrap_or((target, ""));
            match loc {
                "path" => match v.strip_prefix("method.request.path.") {
                    // `{name}` in the URI takes the route's parameter the value names.
                    Some(from) if path_params.iter().any(|n| n == from) => {
                        fills.push((name.to_string(), Fill::Param(from.to_string())));
                    }
                    Some(_) => ctx.warn(kp, "not a path parameter of the route; skipped"),
                    None => match value_refused(&value, false, path_params) {
                        Some(why) => ctx.warn(kp, format!("{why}; skipped")),
                        None => fills.push((name.to_string(), Fill::Value(value))),
                    },
                },
                "header" | "querystring" => {
                    let key = format!("overwrite:{loc}.{name}");
                    match refused(&key, &value, false, path_params) {
                        Some(why) => {
                            ctx.warn(kp.clone(), format!("{why}; skipped"));
                            super::authorizer_mappings::remove_instead(ctx, &kp, params, target, v);
                        }
                        None => {
                            params.insert(key, json!(value));
                        }
                    }
                }
                _ => ctx.warn(kp, "unsupported mapping target; skipped"),
            }
        } else if k.contains(':') {
            // HTTP APIs' grammar is Portico's own.
            let target = k.split_once(':').map_or("", |(_, t)| t);
            if v.contains("$request.body") {
                ctx.warn(
                    kp.clone(),
                    "$request.body values are not supported; skipped",
                );
                super::authorizer_mappings::remove_instead(ctx, &kp, params, target, v);
                continue;
            }
            if let Some(why) = refused(k, v, false, path_params) {
                ctx.warn(kp.clone(), format!("{why}; skipped"));
                if !k.starts_with("remove:") {
                    super::authorizer_mappings::remove_instead(ctx, &kp, params, target, v);
                }
                continue;
            }
            params.insert(k.clone(), json!(v));
        } else {
            ctx.warn(kp, "unknown mapping key; skipped");
        }
    }
    if let Some(whole) = fill_path(path, &fills) {
        // A value other than a route parameter fills the URI path: only `overwrite:path`
        // can say that. One check would refuse (a static `..` makes a dot-segment) is
        // not made: its `{name}` stays unfilled, which skips the method.
        match refused("overwrite:path", &whole, false, path_params) {
            Some(why) => ctx.warn(
                format!("{p}/requestParameters"),
                format!("the path they make, {whole:?}, {why}; not mapped"),
            ),
            None => {
                params.insert("overwrite:path".into(), json!(whole));
                path.clear();
            }
        }
    }
    fills
}

/// What fills a `{name}` of the integration URI.
pub(super) enum Fill {
    /// The route's path parameter of this name.
    Param(String),
    /// A template value (a header, a query parameter, a static value).
    Value(String),
}

/// Fills the URI path's `{name}`s (and greedy `{name+}`s) from `fills` in one pass. When
/// every fill is a route parameter, `path` becomes the template with their names and None
/// is returned; otherwise `path` is left alone and the whole path is returned as an
/// `overwrite:path` value (`${request.path.NAME}` for route parameters). `${…}` (stage
/// variables) is kept as written.
fn fill_path(path: &mut String, fills: &[(String, Fill)]) -> Option<String> {
    if fills.is_empty() {
        return None;
    }
    let (mut named, mut whole) = (String::new(), String::new());
    let mut rest = path.as_str();
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let (before, token) = (&rest[..open], &rest[open..=open + len]);
        rest = &rest[open + len + 1..];
        named.push_str(before);
        whole.push_str(before);
        let name = token[1..token.len() - 1].trim_end_matches('+');
        let stage_variable = before.ends_with('$');
        match fills.iter().find(|(n, _)| *n == name).map(|(_, f)| f) {
            Some(Fill::Param(from)) if !stage_variable => {
                named.push_str(&format!("{{{from}}}"));
                whole.push_str(&format!("${{request.path.{from}}}"));
            }
            Some(Fill::Value(value)) if !stage_variable => {
                named.push_str(token);
                whole.push_str(value);
            }
            _ if stage_variable => {
                named.push_str(token);
                whole.push_str(token);
            }
            _ => {
                named.push_str(token);
                whole.push_str(&format!("${{request.path.{name}}}"));
            }
        }
    }
    named.push_str(rest);
    whole.push_str(rest);
    if fills.iter().all(|(_, f)| matches!(f, Fill::Param(_))) {
        *path = named;
        None
    } else {
        Some(whole)
    }
}

/// A REST mapping source → a Portico template value.
fn rest_value(v: &str) -> Option<String> {
    if let Some(s) = static_value(v) {
        return Some(s.to_string());
    }
    if let Some(rest) = v.strip_prefix("method.request.") {
        let (loc, name) = rest.split_once('.')?;
        return match loc {
            "header" | "querystring" | "path" => Some(format!("${{request.{loc}.{name}}}")),
            _ => None,
        };
    }
    if let Some(name) = v.strip_prefix("context.") {
        return Some(format!("${{context.{name}}}"));
    }
    if let Some(name) = v.strip_prefix("stageVariables.") {
        return Some(format!("${{stageVariables.{name}}}"));
    }
    None
}

/// HTTP APIs' `responseParameters` (by status code) → `response_parameters`; REST's
/// `responses` selection patterns are reported.
fn response_parameters(ctx: &mut Ctx, p: &str, integ: &Value, route: &mut Map<String, Value>) {
    status_mappings(ctx, p, integ, route);
    if let Some(Value::Object(r)) = integ.get("responses") {
        let proxy = integ
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.to_ascii_lowercase().ends_with("_proxy"));
        if !proxy && !r.is_empty() {
            ctx.warn(
                format!("{p}/responses"),
                "integration responses are not applied: the backend's status and headers pass through",
            );
        }
    }
}

/// `responseParameters` by status code → the route's `response_parameters` (a mock's too:
/// its `responses` are its answer, read by `mock::convert`).
fn status_mappings(ctx: &mut Ctx, p: &str, integ: &Value, route: &mut Map<String, Value>) {
    let Some(Value::Object(m)) = integ.get("responseParameters") else {
        return;
    };
    let mut out = Map::new();
    for (status, maps) in m {
        let Some(maps) = maps.as_object() else {
            continue;
        };
        let sp = format!("{p}/responseParameters/{}", esc(status));
        if !crate::config::validate::status_key_ok(status) {
            ctx.warn(
                sp,
                "keys are status codes 200–599 of the integration's response, in three digits; skipped",
            );
            continue;
        }
        let mut kept = Map::new();
        for (k, v) in maps {
            // A mapping Portico can't apply ($response.body.id, HTTP APIs' body
            // mapping, a reserved header) is left out here, with its pointer, rather
            // than written for check to refuse the whole config.
            match v.as_str().map(|v| refused(k, v, true, &[])) {
                Some(None) => {
                    kept.insert(k.clone(), v.clone());
                }
                Some(Some(why)) => ctx.warn(format!("{sp}/{}", esc(k)), format!("{why}; skipped")),
                None => ctx.warn(format!("{sp}/{}", esc(k)), "expected a string; skipped"),
            }
        }
        if !kept.is_empty() {
            out.insert(status.clone(), Value::Object(kept));
        }
    }
    if !out.is_empty() {
        route.insert("response_parameters".into(), Value::Object(out));
    }
}
