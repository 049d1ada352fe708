//! The document-level and security parts of an import: `security` requirements,
//! `x-amazon-apigateway-cors`, `-gateway-responses`, `-endpoint-configuration` and the
//! root extensions Portico reports rather than honours.

use serde_json::{json, Map, Value};

use super::import::{esc, static_value, Ctx};

/// `security` requirements: the `api_key` scheme → `api_key_required`; authorizers and
/// IAM are reported, as this build does not enforce them.
pub(super) fn security(ctx: &mut Ctx, op_p: &str, op: &Value, route: &mut Map<String, Value>) {
    if let Some(auth) = op.get("x-amazon-apigateway-auth") {
        let kind = auth.get("type").and_then(Value::as_str).unwrap_or("NONE");
        if !kind.eq_ignore_ascii_case("none") {
            ctx.warn(
                format!("{op_p}/x-amazon-apigateway-auth"),
                format!("{kind} authorization imported but not enforced"),
            );
        }
    }
    let Some(reqs) = op.get("security").and_then(Value::as_array) else {
        return;
    };
    let schemes_p = if ctx.v2 {
        "/securityDefinitions"
    } else {
        "/components/securitySchemes"
    };
    for req in reqs {
        let Some(req) = req.as_object() else { continue };
        for (name, _scopes) in req {
            let scheme = ctx.doc.pointer(&format!("{schemes_p}/{}", esc(name)));
            let Some(scheme) = scheme else {
                ctx.warn(
                    format!("{op_p}/security"),
                    format!("no security scheme named {name:?}"),
                );
                continue;
            };
            if scheme.get("x-amazon-apigateway-authorizer").is_some() {
                ctx.warn(
                    format!("{op_p}/security"),
                    format!("authorizer {name:?} imported but not enforced: this build has no authorizers"),
                );
            } else if scheme.get("type").and_then(Value::as_str) == Some("apiKey") {
                route.insert("api_key_required".into(), Value::Bool(true));
            } else {
                ctx.warn(
                    format!("{op_p}/security"),
                    format!("security scheme {name:?} is not an API key or an API Gateway authorizer; not enforced"),
                );
            }
        }
    }
}

/// Root extensions: CORS, gateway responses, the endpoint switch; the rest is reported.
pub(super) fn api_extensions(ctx: &mut Ctx, root: &Map<String, Value>) {
    for (k, v) in root {
        let p = format!("/{}", esc(k));
        match k.as_str() {
            "x-amazon-apigateway-cors" => {
                let mut cors = Map::new();
                for (from, to) in [
                    ("allowOrigins", "allow_origins"),
                    ("allowMethods", "allow_methods"),
                    ("allowHeaders", "allow_headers"),
                    ("exposeHeaders", "expose_headers"),
                ] {
                    if let Some(list) = v.get(from).and_then(Value::as_array) {
                        cors.insert(to.into(), Value::Array(list.clone()));
                    }
                }
                if let Some(b) = v.get("allowCredentials").and_then(Value::as_bool) {
                    cors.insert("allow_credentials".into(), Value::Bool(b));
                }
                if let Some(n) = v.get("maxAge").and_then(Value::as_u64) {
                    cors.insert("max_age".into(), json!(format!("{n}s")));
                }
                ctx.out.api.insert("cors".into(), Value::Object(cors));
            }
            "x-amazon-apigateway-gateway-responses" => {
                let Some(m) = v.as_object() else { continue };
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
            "x-amazon-apigateway-endpoint-configuration" => endpoint(ctx, v),
            "servers" => {
                for s in v.as_array().into_iter().flatten() {
                    if let Some(e) = s.get("x-amazon-apigateway-endpoint-configuration") {
                        endpoint(ctx, e);
                    }
                }
            }
            "x-amazon-apigateway-api-key-source"
                if v.as_str().is_some_and(|s| !s.eq_ignore_ascii_case("HEADER")) =>
            {
                ctx.warn(p, "API keys are read from the x-api-key header only")
            }
            "x-amazon-apigateway-binary-media-types" => ctx.warn(
                p,
                "not needed: bodies that are not text are passed as binary (base64 to Lambda) by their content type",
            ),
            "x-amazon-apigateway-request-validators"
            | "x-amazon-apigateway-request-validator"
            | "x-amazon-apigateway-api-key-source"
            | "x-amazon-apigateway-importexport-version" => {}
            k if k.starts_with("x-amazon-apigateway-") => {
                ctx.warn(p, "not supported by Portico; ignored")
            }
            _ => {}
        }
    }
}

fn endpoint(ctx: &mut Ctx, v: &Value) {
    if v.get("disableExecuteApiEndpoint").and_then(Value::as_bool) == Some(true) {
        ctx.out
            .api
            .insert("disable_default_endpoint".into(), Value::Bool(true));
    }
}

fn gateway_response(ctx: &mut Ctx, gp: &str, g: &Value) -> Value {
    let mut out = Map::new();
    let status = match g.get("statusCode") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(v) => v.as_u64(),
        None => None,
    };
    if let Some(s) = status {
        out.insert("status".into(), json!(s));
    }
    let mut headers = Map::new();
    if let Some(Value::Object(params)) = g.get("responseParameters") {
        for (k, v) in params {
            let value = v.as_str().unwrap_or_default();
            match (
                k.strip_prefix("gatewayresponse.header."),
                static_value(value),
            ) {
                (Some(name), Some(text)) => {
                    headers.insert(name.to_string(), json!(text));
                }
                _ => ctx.warn(
                    format!("{gp}/responseParameters/{}", esc(k)),
                    "only static header values ('text') are supported; skipped",
                ),
            }
        }
    }
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Object(headers));
    }
    if let Some(Value::Object(t)) = g.get("responseTemplates") {
        let body = t.get("application/json").or_else(|| t.values().next());
        if let Some(b) = body.and_then(Value::as_str) {
            out.insert("body".into(), json!(b));
        }
    }
    Value::Object(out)
}
