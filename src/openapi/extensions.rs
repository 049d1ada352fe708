//! The document-level parts of an import: `x-amazon-apigateway-cors`,
//! `-gateway-responses`, `-endpoint-configuration`, `-api-key-source` and the root
//! extensions Portico reports rather than honours.

use serde_json::{json, Map, Value};

use super::import::{esc, static_value, Ctx};
use super::mapping::header_refused;
use super::values::{flag, typed};

/// Root extensions: CORS, gateway responses, the endpoint switch; the rest is reported.
pub(super) fn api_extensions(ctx: &mut Ctx, root: &Map<String, Value>) {
    for (k, v) in root {
        let p = format!("/{}", esc(k));
        match k.as_str() {
            "x-amazon-apigateway-cors" => {
                if typed(ctx, &p, Some(v), "an object", Value::as_object).is_none() {
                    continue;
                }
                let mut cors = Map::new();
                for (from, to) in [
                    ("allowOrigins", "allow_origins"),
                    ("allowMethods", "allow_methods"),
                    ("allowHeaders", "allow_headers"),
                    ("exposeHeaders", "expose_headers"),
                ] {
                    let fp = format!("{p}/{from}");
                    let list = typed(ctx, &fp, v.get(from), "a list", Value::as_array);
                    if let Some(list) = list {
                        let mut list = list.clone();
                        // Methods are case-sensitive to browsers (and to `check`); API
                        // Gateway takes `get` for GET.
                        if to == "allow_methods" {
                            for m in &mut list {
                                if let Some(s) = m.as_str() {
                                    *m = Value::String(s.to_ascii_uppercase());
                                }
                            }
                        }
                        cors.insert(to.into(), Value::Array(list));
                    }
                }
                if let Some(b) = v.get("allowCredentials") {
                    let b = flag(ctx, &format!("{p}/allowCredentials"), Some(b));
                    cors.insert("allow_credentials".into(), Value::Bool(b));
                }
                let age_p = format!("{p}/maxAge");
                let age = typed(ctx, &age_p, v.get("maxAge"), "seconds", Value::as_u64);
                // API Gateway's bound, which `check` holds the config to.
                let age = age.filter(|&n| {
                    let within = n <= 86_400;
                    if !within {
                        ctx.warn(&age_p, format!("{n} seconds is past 86400 (24h); ignored"));
                    }
                    within
                });
                if let Some(n) = age {
                    cors.insert("max_age".into(), json!(format!("{n}s")));
                }
                skip_refused_cors(ctx, &p, &mut cors);
                ctx.out.api.insert("cors".into(), Value::Object(cors));
            }
            "x-amazon-apigateway-gateway-responses" => {
                let Some(m) = typed(ctx, &p, Some(v), "an object", Value::as_object) else {
                    continue;
                };
                let mut out = Map::new();
                for (kind, g) in m {
                    let gp = format!("{p}/{}", esc(kind));
                    if crate::pipeline::gateway_responses::ResponseType::parse(kind).is_none() {
                        ctx.warn(gp, "unknown gateway response type; skipped");
                        continue;
                    }
                    out.insert(kind.clone(), gateway_response(ctx, &gp, g));
                }
                ctx.out
                    .api
                    .insert("gateway_responses".into(), Value::Object(out));
            }
            "x-amazon-apigateway-endpoint-configuration" => endpoint(ctx, &p, v),
            "servers" => {
                for (i, s) in v.as_array().into_iter().flatten().enumerate() {
                    if let Some(e) = s.get("x-amazon-apigateway-endpoint-configuration") {
                        let p = format!("{p}/{i}/x-amazon-apigateway-endpoint-configuration");
                        endpoint(ctx, &p, e);
                    }
                }
            }
            "x-amazon-apigateway-api-key-source" => match v.as_str() {
                Some(s) if s.eq_ignore_ascii_case("AUTHORIZER") => {
                    ctx.out
                        .api
                        .insert("api_key_source".into(), json!("authorizer"));
                }
                Some(s) if s.eq_ignore_ascii_case("HEADER") => {}
                _ => ctx.warn(p, "expected HEADER or AUTHORIZER; the x-api-key header is used"),
            },
            // As API Gateway's import: only operations' own `security` counts.
            "security" => ctx.warn(
                p,
                "root-level security is ignored, as API Gateway's import does; set it on each operation",
            ),
            "x-amazon-apigateway-binary-media-types" => ctx.warn(
                p,
                "not needed: bodies that are not text are passed as binary (base64 to Lambda) by their content type",
            ),
            "x-amazon-apigateway-request-validators"
            | "x-amazon-apigateway-request-validator"
            | "x-amazon-apigateway-importexport-version" => {}
            k if k.starts_with("x-amazon-apigateway-") => {
                ctx.warn(p, "not supported by Portico; ignored")
            }
            _ => {}
        }
    }
}

/// What `check` would refuse in the imported CORS setting is left out with a warning at
/// its pointer, so the config written starts: an item that is not text, an origin or
/// header name no browser could send or match; and `allowCredentials` beside a `*`
/// origin (refused by API Gateway too), dropped rather than the origin, so the API stays
/// open to what it allowed, without credentials.
fn skip_refused_cors(ctx: &mut Ctx, p: &str, cors: &mut Map<String, Value>) {
    use crate::config::model::Cors;
    for (key, from) in [
        ("allow_origins", "allowOrigins"),
        ("allow_methods", "allowMethods"),
        ("allow_headers", "allowHeaders"),
        ("expose_headers", "exposeHeaders"),
    ] {
        let Some(Value::Array(list)) = cors.get_mut(key) else {
            continue;
        };
        let mut i = 0;
        list.retain(|item| {
            let at = format!("{p}/{from}/{i}");
            i += 1;
            // Each item judged alone, by `check`'s own rules.
            let why = match item.as_str() {
                None => Some("expected a string".to_string()),
                Some(text) => {
                    let mut one = Cors::default();
                    let only = vec![text.to_string()];
                    match key {
                        "allow_origins" => one.allow_origins = only,
                        "allow_methods" => one.allow_methods = only,
                        "allow_headers" => one.allow_headers = only,
                        _ => one.expose_headers = only,
                    }
                    let problems = crate::config::validate::cors::problems(&one);
                    problems.into_iter().next().map(|problem| problem.message)
                }
            };
            if let Some(why) = &why {
                ctx.warn(at, format!("{why}; skipped"));
            }
            why.is_none()
        });
    }
    let whole = Cors {
        allow_origins: (cors.get("allow_origins").and_then(Value::as_array))
            .map(|l| {
                l.iter()
                    .filter_map(|o| o.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        allow_credentials: cors.get("allow_credentials") == Some(&Value::Bool(true)),
        ..Cors::default()
    };
    if let Some(problem) = crate::config::validate::cors::problems(&whole).pop() {
        ctx.warn(
            format!("{p}/allowCredentials"),
            format!("{}; allowCredentials ignored", problem.message),
        );
        cors.remove("allow_credentials");
    }
}

fn endpoint(ctx: &mut Ctx, p: &str, v: &Value) {
    if typed(ctx, p, Some(v), "an object", Value::as_object).is_none() {
        return;
    }
    let off = v.get("disableExecuteApiEndpoint");
    if flag(ctx, &format!("{p}/disableExecuteApiEndpoint"), off) {
        ctx.out
            .api
            .insert("disable_default_endpoint".into(), Value::Bool(true));
    }
}

fn gateway_response(ctx: &mut Ctx, gp: &str, g: &Value) -> Value {
    use crate::pipeline::gateway_responses::Body;
    let mut out = Map::new();
    // `context.requestId` and `stageVariables.env` (REST's spelling) are
    // `$context.requestId` and `$stageVariables.env` in a Portico header value; request
    // values (`method.request.header.origin`) are not supported.
    let mut g = g.clone();
    if let Some(Value::Object(params)) = g.get_mut("responseParameters") {
        // A static value is sent as written; Portico would read a `$context` or a
        // `$stageVariables` in it as a reference (a client's User-Agent, or a stage's
        // variable, in a public error answer where the author wrote a fixed text).
        params.retain(|k, v| {
            let Some(text) = v.as_str().and_then(static_value) else {
                return true;
            };
            let reference = ["$context", "${context", "$stageVariables", "${stageVariables"]
                .iter()
                .any(|r| text.contains(r));
            if reference {
                ctx.warn(
                    format!("{gp}/responseParameters/{}", esc(k)),
                    "a static value with $context or $stageVariables would be read as a reference; skipped",
                );
            }
            !reference
        });
        for v in params.values_mut() {
            let source = v
                .as_str()
                .filter(|s| s.starts_with("context.") || s.starts_with("stageVariables."));
            if let Some(source) = source {
                let value = format!("${source}");
                if Body::compile(&value).is_ok() {
                    *v = json!(format!("'{value}'"));
                }
            }
        }
    }
    let mut headers = static_response(ctx, gp, &g, "gatewayresponse.header.", &mut out);
    // The gateway's answer always has a body: no 1xx, 204, 205 or 304 (check refuses them).
    if let Some(s) = out.get("status").and_then(Value::as_u64) {
        if !crate::http1::encode::status_with_content(s) {
            out.remove("status");
            ctx.warn(
                format!("{gp}/statusCode"),
                if (100..=599).contains(&s) {
                    format!("{s} can't carry the answer's body; the type's own status is used")
                } else {
                    format!("{s} is not an HTTP status; the type's own status is used")
                },
            );
        }
    }
    if let Some(Value::Object(t)) = g.get("responseTemplates") {
        let body = t
            .get_key_value("application/json")
            .or_else(|| t.iter().next());
        // API Gateway picks a template by the client's Accept; Portico answers with one.
        if let Some((kept, _)) = body.filter(|_| t.len() > 1) {
            for media in t.keys().filter(|m| *m != kept) {
                ctx.warn(
                    format!("{gp}/responseTemplates/{}", esc(media)),
                    format!("one template per gateway response is used, the {kept} one; this one is not"),
                );
            }
        }
        if let Some((media, b)) = body.and_then(|(k, v)| Some((k, v.as_str()?))) {
            let tp = format!("{gp}/responseTemplates/{}", esc(media));
            match Body::compile(b) {
                Ok(_) => {
                    if b.contains("#set")
                        || b.contains("#if")
                        || b.contains("$util.")
                        || b.contains("$input")
                    {
                        ctx.warn(
                            tp.clone(),
                            "VTL is not evaluated: the template is sent as written, with its $context values",
                        );
                    }
                    // Answered with the template's media type, as API Gateway does; the
                    // default is application/json, wrong for a text/html template.
                    let named = headers
                        .keys()
                        .any(|h| h.eq_ignore_ascii_case("content-type"));
                    if !named && media.contains('/') && media != "application/json" {
                        headers.insert("content-type".into(), json!(media));
                    }
                    out.insert("body".into(), json!(b));
                }
                Err(e) => ctx.warn(tp, format!("{e}; the default body is used")),
            }
        }
    }
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Object(headers));
    }
    Value::Object(out)
}

/// A fixed answer's `statusCode` (a string or a number) into `out` as `status`; returns
/// its `responseParameters` named `{header_prefix}NAME` with static values ('text') as
/// headers. Any other mapping is warned about at its pointer under `p` and skipped.
pub(super) fn static_response(
    ctx: &mut Ctx,
    p: &str,
    v: &Value,
    header_prefix: &str,
    out: &mut Map<String, Value>,
) -> Map<String, Value> {
    let status = match v.get("statusCode") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(n) => n.as_u64(),
        None => None,
    };
    if let Some(s) = status {
        out.insert("status".into(), json!(s));
    } else if let Some(s) = v.get("statusCode") {
        ctx.warn(
            format!("{p}/statusCode"),
            format!("expected a status code, got {s}; the default status is used"),
        );
    }
    let mut headers = Map::new();
    let params = v.get("responseParameters").and_then(Value::as_object);
    for (k, value) in params.into_iter().flatten() {
        let name = k.strip_prefix(header_prefix);
        match (name, value.as_str().and_then(static_value)) {
            // A header check refuses (content-length, a name with a space) is left out.
            (Some(n), Some(text)) => {
                use crate::config::validate as check;
                let refused = header_refused(n, true)
                    .or_else(|| check::header_value_problem(text))
                    .or_else(|| check::header_twin(n, headers.keys().map(String::as_str)))
                    .or_else(|| check::content_type_problem(n, text));
                match refused {
                    Some(why) => ctx.warn(
                        format!("{p}/responseParameters/{}", esc(k)),
                        format!("{why}; skipped"),
                    ),
                    None => {
                        headers.insert(n.to_string(), json!(text));
                    }
                }
            }
            _ => ctx.warn(
                format!("{p}/responseParameters/{}", esc(k)),
                "only static header values ('text') are supported; skipped",
            ),
        }
    }
    headers
}

/// `x-amazon-apigateway-api-key-source: AUTHORIZER` without a Lambda authorizer to give
/// the keys, and no route that requires one: API Gateway takes it, `check` refuses it,
/// so the import made a config that could not load for a setting nothing reads. Left
/// out with a warning. With a route that requires a key it stays, and `check` refuses
/// that route (API Gateway would answer its every request 403): served from `x-api-key`
/// instead, it would take keys the API never took.
pub(super) fn keys_from_authorizer_needs_one(ctx: &mut Ctx, routes: &Map<String, Value>) {
    if ctx.out.api.get("api_key_source").and_then(Value::as_str) != Some("authorizer") {
        return;
    }
    let lambda = ctx
        .out
        .api
        .get("authorizers")
        .and_then(Value::as_object)
        .is_some_and(|a| {
            a.values()
                .any(|v| v.get("type").and_then(Value::as_str) == Some("lambda"))
        });
    let keyed = routes
        .values()
        .any(|r| r.get("api_key_required") == Some(&Value::Bool(true)));
    if !lambda && !keyed {
        ctx.out.api.remove("api_key_source");
        ctx.warn(
            "/x-amazon-apigateway-api-key-source",
            "AUTHORIZER, but no Lambda authorizer gives keys and no operation requires one: ignored",
        );
    }
}
