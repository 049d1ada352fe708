//! A served API → OpenAPI 3.0.1, shaped like API Gateway's exports: `servers` with a
//! `basePath` variable set to the stage, paths with their parameters, request bodies
//! referring to `components.schemas`, and, as asked by `extensions`, per-operation
//! `x-amazon-apigateway-integration` (`integrations`), the request validators
//! (`validators`), the authorizers with the routes' `security` (`authorizers`), or all of
//! those plus CORS, gateway responses and the endpoint switch (`apigateway`). Importing
//! the result gives the same routes, integrations, authorizers and validation.

use serde_json::{json, Map, Value};

use crate::config::definitions::RequestValidator;
use crate::config::model::{Api, Config, Integration, PayloadFormat};

/// Which `x-amazon-apigateway-*` extensions to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    pub integrations: bool,
    pub validators: bool,
    pub authorizers: bool,
    pub apigateway: bool,
}

impl Extensions {
    /// A comma-separated list: `integrations`, `validators`, `authorizers`, `apigateway`.
    pub fn parse(list: &str) -> Result<Extensions, String> {
        let mut e = Extensions::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "integrations" => e.integrations = true,
                "validators" => e.validators = true,
                "authorizers" => e.authorizers = true,
                "apigateway" => e.apigateway = true,
                other => {
                    return Err(format!(
                        "unknown extension {other:?} (integrations, validators, authorizers, apigateway)"
                    ))
                }
            }
        }
        Ok(e)
    }
}

/// Region in the Lambda ARNs made up for functions the config names only by URL.
const REGION: &str = "us-east-1";

/// The OpenAPI document of `api` as served at `stage`.
pub fn export(
    running: &Config,
    api_name: &str,
    stage: &str,
    ext: Extensions,
) -> Result<Value, String> {
    // Text as the file writes it: a document people commit and share shows
    // `${env:NAME}`, as `GET /config` does, never the credential it stands for.
    let cfg = running.as_written.as_deref().unwrap_or(running);
    let api = cfg
        .apis
        .iter()
        .find(|(n, _)| n == api_name)
        .map(|(_, a)| a)
        .ok_or_else(|| format!("no API named {api_name:?}"))?;
    if api.protocol == crate::config::model::Protocol::Websocket {
        // Its routes are chosen per message, not by method and path: OpenAPI has no
        // shape for them, and API Gateway exports HTTP APIs only.
        return Err(format!(
            "{api_name:?} is a WebSocket API: only HTTP APIs are exported as OpenAPI"
        ));
    }
    if !api.stages.iter().any(|(n, _)| n == stage) {
        return Err(format!("API {api_name:?} has no stage {stage:?}"));
    }
    let integrations = ext.integrations || ext.apigateway;
    let validators = ext.validators || ext.apigateway;
    let authorizers = ext.authorizers || ext.apigateway;
    // The address served on (a reload keeps the running one until a restart).
    let listen = running
        .server
        .listen
        .first()
        .map_or_else(|| "127.0.0.1:8080".to_string(), |a| a.to_string());
    let base = if stage == "$default" { "" } else { stage };
    let mut server = json!({
        "url": format!("http://{listen}/{{basePath}}"),
        "variables": { "basePath": { "default": base } },
    });
    if ext.apigateway && api.disable_default_endpoint {
        server["x-amazon-apigateway-endpoint-configuration"] =
            json!({ "disableExecuteApiEndpoint": true });
    }
    let mut doc = json!({
        "openapi": "3.0.1",
        "info": { "title": api_name, "version": "1.0" },
        "servers": [server],
    });
    let mut paths = Map::new();
    let mut arns = Map::new();
    for (i, (key, route)) in api.routes.iter().enumerate() {
        let (method, path) = match key.split_once(' ') {
            Some((m, p)) => (m.to_string(), p.to_string()),
            None => ("ANY".to_string(), "/$default".to_string()),
        };
        let mut op = Map::new();
        let mut params = Vec::new();
        for seg in path.split('/') {
            // `proxy+` for `{proxy+}`, as API Gateway's exports name it: the name must be
            // the template's for the document to be valid OpenAPI.
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
            }
        }
        for r in &route.validation.required {
            if let Some((loc, name)) = r.split_once('.') {
                let loc = match loc {
                    "querystring" => "query",
                    "path" => continue,
                    other => other,
                };
                params.push(json!({"name": name, "in": loc, "required": true, "schema": {"type": "string"}}));
            }
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if !route.validation.models.is_empty() {
            let mut content = Map::new();
            for (ctype, model) in &route.validation.models {
                content.insert(
                    ctype.clone(),
                    json!({ "schema": { "$ref": format!("#/components/schemas/{model}") } }),
                );
            }
            op.insert(
                "requestBody".into(),
                json!({ "content": content, "required": true }),
            );
        }
        op.insert(
            "responses".into(),
            json!({ "default": { "description": format!("Default response for {key}") } }),
        );
        if let Some(sec) = super::security::route_security(api, route, authorizers) {
            op.insert("security".into(), sec);
        }
        if integrations {
            op.insert(
                "x-amazon-apigateway-integration".into(),
                integration(cfg, api, &method, route, i, &mut arns),
            );
        }
        if validators {
            if let Some(v) = route.validation.validator {
                op.insert(
                    "x-amazon-apigateway-request-validator".into(),
                    json!(v.name()),
                );
            }
        }
        if path == "/$default" {
            op.insert("isDefaultRoute".into(), Value::Bool(true));
        }
        let item = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        let slot = if method == "ANY" {
            "x-amazon-apigateway-any-method".to_string()
        } else {
            method.to_ascii_lowercase()
        };
        item[slot] = Value::Object(op);
    }
    doc["paths"] = Value::Object(paths);
    let mut components = Map::new();
    if !api.defs.models.is_empty() {
        let mut schemas = Map::new();
        for (name, schema) in &api.defs.models {
            let mut s = schema.clone();
            models_to_components(&mut s);
            schemas.insert(name.clone(), s);
        }
        components.insert("schemas".into(), Value::Object(schemas));
    }
    let region = cfg.iam.as_ref().map_or(REGION, |i| i.region.as_str());
    let schemes = super::security::export_schemes(api, authorizers, region, &mut arns);
    if !schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(schemes));
    }
    if !components.is_empty() {
        doc["components"] = Value::Object(components);
    }
    if validators {
        let mut all = Map::new();
        for (name, v) in RequestValidator::NAMES {
            all.insert(
                name.into(),
                json!({ "validateRequestBody": v.body(), "validateRequestParameters": v.params() }),
            );
        }
        doc["x-amazon-apigateway-request-validators"] = Value::Object(all);
    }
    if ext.apigateway {
        api_extensions(api, &mut doc);
    }
    if !arns.is_empty() {
        doc["x-portico-lambda-functions"] = Value::Object(arns);
    }
    // Integrations name `${stageVariables.x}`; without the stage's values an import
    // of this document made a config check refuses ("no variable x").
    let variables = api
        .stages
        .iter()
        .find(|(n, _)| n == stage)
        .map(|(_, s)| &s.variables);
    if let Some(vars) = variables.filter(|v| integrations && !v.is_empty()) {
        doc["x-portico-stage-variables"] = Value::Object(
            vars.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        );
    }
    redact_secrets(&mut doc, &crate::config::view::secrets_of(running));
    Ok(doc)
}

/// A secret the file repeats in text the document shows (an alias of the admin token as
/// a stage variable, an API key's value in a mock's body or a mapping) is shown as
/// `[redacted]`: in the values of integrations, gateway responses, authorizers and stage
/// variables, where such text is. Paths, models and status codes are the API's shape,
/// never redacted: a Redis password `password` must not turn `/password-reset` into
/// another route on the way back through `openapi import`.
fn redact_secrets(doc: &mut Value, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let redact = |v: &mut Value| crate::config::view::redact_secrets_in(v, secrets);
    for key in [
        "x-portico-stage-variables",
        "x-amazon-apigateway-gateway-responses",
        "x-portico-lambda-functions",
    ] {
        if let Some(v) = doc.get_mut(key) {
            redact(v);
        }
    }
    if let Some(v) = doc.pointer_mut("/components/securitySchemes") {
        redact(v);
    }
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|methods| methods.values_mut());
    for op in operations {
        if let Some(v) = op.get_mut("x-amazon-apigateway-integration") {
            redact(v);
        }
    }
}

fn api_extensions(api: &Api, doc: &mut Value) {
    if api.api_key_source == crate::config::auth::ApiKeySource::Authorizer {
        doc["x-amazon-apigateway-api-key-source"] = json!("AUTHORIZER");
    }
    if let Some(c) = &api.cors {
        let mut cors = json!({
            "allowOrigins": c.allow_origins,
            "allowMethods": c.allow_methods,
            "allowHeaders": c.allow_headers,
            "exposeHeaders": c.expose_headers,
            "allowCredentials": c.allow_credentials,
        });
        if let Some(age) = c.max_age {
            cors["maxAge"] = json!(age.as_secs());
        }
        doc["x-amazon-apigateway-cors"] = cors;
    }
    if !api.defs.gateway_responses.is_empty() {
        let mut out = Map::new();
        for (kind, g) in &api.defs.gateway_responses {
            let mut r = Map::new();
            if let Some(s) = g.status {
                r.insert("statusCode".into(), json!(s.to_string()));
            }
            if !g.headers.is_empty() {
                let params: Map<String, Value> = g
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            format!("gatewayresponse.header.{n}"),
                            json!(gateway_header_value(v)),
                        )
                    })
                    .collect();
                r.insert("responseParameters".into(), Value::Object(params));
            }
            if let Some(b) = &g.body {
                r.insert("responseTemplates".into(), json!({ "application/json": b }));
            }
            out.insert(kind.clone(), Value::Object(r));
        }
        doc["x-amazon-apigateway-gateway-responses"] = Value::Object(out);
    }
}

/// A gateway response's header value as API Gateway writes it: one `$context` or
/// `$stageVariables` reference as `context.NAME` or `stageVariables.NAME` (as import
/// reads it back), anything else as the static `'text'`. Quoted, a reference was a
/// literal that re-import refused, and the header was lost.
fn gateway_header_value(v: &str) -> String {
    let reference = v
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| v.strip_prefix('$'))
        .filter(|r| {
            ["context.", "stageVariables."].iter().any(|p| {
                r.strip_prefix(p).is_some_and(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                })
            })
        });
    match reference {
        Some(r) => r.to_string(),
        None => format!("'{v}'"),
    }
}

/// `#/models/X` → `#/components/schemas/X`, and the `models` key a model never has.
fn models_to_components(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                match (k.as_str(), &mut *c) {
                    ("$ref", Value::String(r)) => {
                        if let Some(n) = r.strip_prefix("#/models/") {
                            *r = format!("#/components/schemas/{n}");
                        }
                    }
                    _ => models_to_components(c),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(models_to_components),
        _ => {}
    }
}

fn integration(
    cfg: &Config,
    api: &Api,
    method: &str,
    route: &crate::config::model::Route,
    index: usize,
    arns: &mut Map<String, Value>,
) -> Value {
    let mut out = match &route.integration {
        Integration::Http {
            upstream,
            path,
            timeout,
            ..
        } => {
            let authority = match cfg.upstreams.iter().find(|(n, _)| n == upstream) {
                Some((_, u)) if !upstream.contains("${") => {
                    let scheme = if u.https { "https" } else { "http" };
                    let target = u
                        .targets
                        .first()
                        .map_or_else(|| upstream.clone(), |t| format!("{}:{}", t.host, t.port));
                    format!("{scheme}://{target}")
                }
                _ => format!("http://{upstream}"),
            };
            let mut v = json!({
                "type": "http_proxy",
                "httpMethod": method,
                "uri": format!("{authority}{}", path.as_deref().unwrap_or_default()),
                "payloadFormatVersion": "1.0",
                "connectionType": "INTERNET",
                "timeoutInMillis": timeout.as_millis() as u64,
            });
            if !route.parameters.is_empty() {
                let m: Map<String, Value> = route
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                v["requestParameters"] = Value::Object(m);
            }
            v
        }
        Integration::Lambda {
            url,
            payload_format,
            timeout,
        } => {
            let made_up =
                || format!("arn:aws:lambda:{REGION}:000000000000:function:portico-route-{index}");
            let arn = super::security::function_arn(api, url, made_up, arns);
            json!({
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": super::security::invocation_uri(&arn, REGION),
                "payloadFormatVersion": if *payload_format == PayloadFormat::V1 { "1.0" } else { "2.0" },
                "connectionType": "INTERNET",
                "timeoutInMillis": timeout.as_millis() as u64,
            })
        }
        Integration::Mock {
            status,
            headers,
            body,
        } => {
            let params: Map<String, Value> = headers
                .iter()
                .map(|(n, v)| {
                    (
                        format!("method.response.header.{n}"),
                        json!(format!("'{v}'")),
                    )
                })
                .collect();
            let mut default = json!({
                "statusCode": status.to_string(),
                "responseParameters": params,
            });
            // No template for no body: import gives a template's media type as the
            // content-type, and an empty mock has none. A body goes under the mock's own
            // content-type when it has one.
            if !body.is_empty() {
                let media = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                    .map_or("application/json", |(_, v)| v.as_str());
                default["responseTemplates"] = json!({ media: &**body });
            }
            json!({
                "type": "mock",
                "requestTemplates": { "application/json": "{\"statusCode\": 200}" },
                "passthroughBehavior": "when_no_match",
                "responses": { "default": default },
            })
        }
    };
    if !route.response_parameters.is_empty() {
        let m: Map<String, Value> = route
            .response_parameters
            .iter()
            .map(|(status, maps)| {
                let inner: Map<String, Value> =
                    maps.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                (status.clone(), Value::Object(inner))
            })
            .collect();
        out["responseParameters"] = Value::Object(m);
    }
    out
}
