//! Request validation, as API Gateway's request validators: required parameters first
//! (present and not blank, reported in API Gateway's order: headers, path, query string,
//! each by name), then the body against the route's JSON Schema model for the request's
//! content type (no `Content-Type` counts as `application/json`, an empty body as `{}`).
//!
//! Models are compiled once when the config loads ([`BodyModel`]); a request's body is
//! first scanned against the model in one pass (`body_scan`, for models of the common
//! keywords; a yes ends it), else parsed onto a reused tape (`json_body`, no allocation)
//! and checked by the validator compiled for it; only an invalid body is parsed again
//! into a `Value` for the detail. The body is read whole only on routes
//! that validate bodies, up to `max_body_bytes`, and stays in the connection buffer for
//! the integration, which then finds it already there.

use std::sync::Arc;

use super::body_scan::ModelScan;
use super::gateway_responses::{self, ResponseType};
use super::json_body::{BodyJson, Tape};
use crate::config::definitions::RouteValidation;
use crate::http1::parse::BodyKind;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use jsonschema::Draft;
use serde_json::Value;

/// Where a required parameter is looked for; the order is API Gateway's report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loc {
    Header,
    Path,
    Query,
}

/// `header.NAME`, `querystring.NAME` or `path.NAME`.
pub fn parse_param(s: &str) -> Option<(Loc, &str)> {
    let (loc, name) = s.split_once('.')?;
    let loc = match loc {
        "header" => Loc::Header,
        "querystring" => Loc::Query,
        "path" => Loc::Path,
        _ => return None,
    };
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some((loc, name))
}

/// A route's compiled checks.
#[derive(Debug)]
pub struct RouteCheck {
    /// Sorted in report order; empty when the validator does not check parameters.
    params: Box<[(Loc, Box<str>, usize)]>,
    /// Lower-case content type (`$default`: any) → model; empty: no body check.
    bodies: Box<[(Box<str>, Arc<BodyModel>)]>,
}

/// A model compiled up to three times: as a one-pass scanner of the body's bytes when it
/// uses only the keywords that reads (the quick yes most valid bodies get), for the body's
/// tape (the general path, no allocation) and for `serde_json::Value` (bodies the tape
/// leaves aside, and the detail of what is wrong with an invalid one).
#[derive(Debug)]
pub struct BodyModel {
    pub scan: Option<ModelScan>,
    pub tape: jsonschema::Validator<BodyJson>,
    pub value: jsonschema::Validator,
}

impl BodyModel {
    pub fn compile(name: &str, models: &[(String, Value)]) -> Result<BodyModel, String> {
        let value = compile_model(name, models)?;
        let scan = ModelScan::compile(name, models);
        Ok(BodyModel {
            scan,
            tape: compile_model_for::<BodyJson>(name, models)?,
            value,
        })
    }

    /// Whether `body` is JSON the model accepts: an empty body is `{}`.
    pub fn accepts(&self, body: &[u8]) -> bool {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        if self.scan.as_ref().is_some_and(|scan| scan.accepts(body)) {
            return true;
        }
        match Tape::parse(body) {
            Some(tape) => self.tape.is_valid(tape.root()),
            None => body_value(body).is_ok_and(|value| self.value.is_valid(&value)),
        }
    }
}

impl RouteCheck {
    /// None when the route validates nothing. `models` are already known to compile.
    pub fn compile(
        v: &RouteValidation,
        param_names: &[String],
        models: &[(String, Value)],
    ) -> Option<Box<RouteCheck>> {
        let validator = v.validator?;
        let mut params: Vec<(Loc, Box<str>, usize)> = Vec::new();
        if validator.params() {
            for p in &v.required {
                if let Some((loc, name)) = parse_param(p) {
                    let idx = param_names.iter().position(|n| n == name).unwrap_or(0);
                    let name = if loc == Loc::Header {
                        name.to_ascii_lowercase()
                    } else {
                        name.to_string()
                    };
                    params.push((loc, name.into(), idx));
                }
            }
            params.sort();
            params.dedup();
        }
        let mut bodies = Vec::new();
        if validator.body() {
            for (ctype, model) in &v.models {
                if let Ok(compiled) = BodyModel::compile(model, models) {
                    bodies.push((ctype.to_ascii_lowercase().into(), Arc::new(compiled)));
                }
            }
        }
        if params.is_empty() && bodies.is_empty() {
            return None;
        }
        Some(Box::new(RouteCheck {
            params: params.into(),
            bodies: bodies.into(),
        }))
    }

    pub fn checks_body(&self) -> bool {
        !self.bodies.is_empty()
    }
}

/// The draft a schema's `$schema` names; draft 4 (API Gateway's) when it names none.
pub(crate) fn draft_of(schema: &Value) -> Result<Draft, String> {
    let Some(uri) = schema.get("$schema") else {
        return Ok(Draft::Draft4);
    };
    let uri = uri.as_str().unwrap_or_default();
    let uri = uri.trim_end_matches('#');
    let draft = match uri
        .trim_start_matches("https://")
        .trim_start_matches("http://")
    {
        "json-schema.org/draft-04/schema" => Draft::Draft4,
        "json-schema.org/draft-06/schema" => Draft::Draft6,
        "json-schema.org/draft-07/schema" => Draft::Draft7,
        "json-schema.org/draft/2019-09/schema" => Draft::Draft201909,
        "json-schema.org/draft/2020-12/schema" => Draft::Draft202012,
        _ => {
            return Err(format!(
                "unsupported $schema {uri:?} (drafts 4, 6, 7, 2019-09 and 2020-12 are)"
            ))
        }
    };
    Ok(draft)
}

/// Rewrites references to other models (`#/components/schemas/X`, API Gateway's model
/// URLs `https://apigateway.amazonaws.com/restapis/ID/models/X`) to `#/models/X`.
pub fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Value::String(r) = child {
                        if let Some(name) = model_ref_name(r) {
                            *r = format!("#/models/{name}");
                        }
                    }
                } else {
                    rewrite_refs(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

pub(crate) fn model_ref_name(r: &str) -> Option<&str> {
    if let Some(name) = r.strip_prefix("#/components/schemas/") {
        return Some(name);
    }
    let rest = r.strip_prefix("https://apigateway.amazonaws.com/restapis/")?;
    let (_, name) = rest.split_once("/models/")?;
    Some(name)
}

/// Compiles model `name`: its schema with every model beside it under `models`, so that
/// `{"$ref": "#/models/Other"}` (and circular references) resolve without a network.
pub fn compile_model(
    name: &str,
    models: &[(String, Value)],
) -> Result<jsonschema::Validator, String> {
    compile_model_for::<jsonschema::json::SerdeJson>(name, models)
}

/// [`compile_model`] for another representation of the instance (the request body's tape).
pub fn compile_model_for<F: jsonschema::json::Json>(
    name: &str,
    models: &[(String, Value)],
) -> Result<jsonschema::Validator<F>, String> {
    let schema = models
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .ok_or_else(|| format!("no model named {name:?}"))?;
    let draft = draft_of(schema)?;
    let mut doc = schema.clone();
    if let Value::Object(map) = &mut doc {
        if map.contains_key("models") {
            return Err(
                "a model may not have a top-level \"models\" key (it holds the other models)"
                    .into(),
            );
        }
        let all: serde_json::Map<String, Value> =
            models.iter().map(|(n, s)| (n.clone(), s.clone())).collect();
        map.insert("models".into(), Value::Object(all));
    } else if !doc.is_boolean() {
        return Err("expected a JSON Schema object".into());
    }
    rewrite_refs(&mut doc);
    jsonschema::options_for::<F>()
        .with_draft(draft)
        // Whether API Gateway asserts `format` is not documented; assertions stay off.
        .should_validate_formats(false)
        .build(&doc)
        .map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// Runs the route's checks. `Some(keep)` when the gateway answered (400).
pub async fn check(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    rc: &RouteCheck,
) -> Option<bool> {
    if !rc.params.is_empty() {
        let mut missing: Vec<&str> = Vec::new();
        for (loc, name, idx) in rc.params.iter() {
            let value = match loc {
                Loc::Header => c.head.header(&c.rbuf, name),
                Loc::Query => c.head.query.and_then(|q| {
                    super::template::query_pairs(q.get(&c.rbuf))
                        .filter(|(k, _)| *k == name.as_bytes())
                        .map(|(_, v)| v)
                        .find(|v| !v.is_empty())
                }),
                Loc::Path => c.params.get(*idx).map(|s| s.get(&c.rbuf)),
            };
            if value.is_none_or(|v| v.iter().all(u8::is_ascii_whitespace)) {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            let message = format!(
                "Missing required request parameters: [{}]",
                missing.join(", ")
            );
            return Some(
                gateway_responses::answer(
                    ctx,
                    gen,
                    c,
                    ResponseType::BadRequestParameters,
                    &message,
                    "",
                )
                .await,
            );
        }
    }
    if rc.bodies.is_empty() {
        return None;
    }
    let validator = {
        let ctype = c
            .head
            .header(&c.rbuf, "content-type")
            .map(|v| {
                v.split(|&b| b == b';')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii()
            })
            .unwrap_or(b"application/json");
        rc.bodies
            .iter()
            .find(|(t, _)| t.as_bytes().eq_ignore_ascii_case(ctype))
            .or_else(|| rc.bodies.iter().find(|(t, _)| &**t == "$default"))
            .map(|(_, v)| &**v)
    };
    // No model for this content type: the body passes unchecked, as in API Gateway.
    let validator = validator?;
    let mut decoded = Vec::new();
    let end = match c.read_whole_body(gen, &mut decoded).await {
        Ok(end) => end,
        Err((status, message)) => {
            c.head.keep_alive = false;
            return Some(c.answer(ctx, gen, status, message, &[]).await);
        }
    };
    let body: &[u8] = match c.head.body {
        BodyKind::Length(_) => &c.rbuf[c.head.head_len..end],
        BodyKind::Chunked => &decoded,
        BodyKind::Empty => &[],
    };
    if validator.accepts(body) {
        return None;
    }
    let validator = &validator.value;
    let problem = match body_value(body) {
        Ok(value) => {
            let mut detail = String::from("[");
            for (i, e) in validator.iter_errors(&value).take(5).enumerate() {
                if i > 0 {
                    detail.push_str(", ");
                }
                let at = e.instance_path().to_string();
                detail.push_str(&format!(
                    "{e} at {}",
                    if at.is_empty() { "/" } else { at.as_str() }
                ));
            }
            detail.push(']');
            detail
        }
        Err(e) => format!("[body is not JSON: {e}]"),
    };
    Some(
        gateway_responses::answer(
            ctx,
            gen,
            c,
            ResponseType::BadRequestBody,
            "Invalid request body",
            &problem,
        )
        .await,
    )
}

/// The body as a `Value` (bodies the tape leaves aside, invalid ones); an empty body is `{}` (so a model's `required` still applies).
fn body_value(body: &[u8]) -> Result<Value, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
}
