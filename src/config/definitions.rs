//! API definitions: JSON Schema `models`, request validation on routes
//! (`request_validator`, `request_model`, `required_parameters`), `gateway_responses`, the
//! `openapi` file an API is served from and the `lambda_functions` ARN map. Decoding and
//! checks live here so that `load.rs` and `validate.rs` only call in.

use std::path::PathBuf;

use serde_yaml_ng::Value;

use super::decode::{Decoder, Fields};
use super::model::Api;
use super::{ConfigError, KeyPath};
use crate::config::decode::shown;
use crate::pipeline::gateway_responses::ResponseType;

/// Keys these definitions add to `apis.NAME`.
pub const API_KEYS: &[&str] = &["openapi", "lambda_functions", "models", "gateway_responses"];
/// Keys these definitions add to `apis.NAME.routes.KEY`.
pub const ROUTE_KEYS: &[&str] = &["request_validator", "request_model", "required_parameters"];

#[derive(Debug, Clone, Default)]
pub struct ApiDefs {
    /// An OpenAPI 3 / Swagger 2 file whose routes, models and validators are merged in
    /// when the config loads (routes written in the config win).
    pub openapi: Option<PathBuf>,
    /// Lambda function ARN (as an OpenAPI file names it) → function URL.
    pub lambda_functions: Vec<(String, String)>,
    /// Model name → JSON Schema (draft 4 unless `$schema` says otherwise).
    pub models: Vec<(String, serde_json::Value)>,
    /// Response type (THROTTLED, DEFAULT_4XX, …) → what the gateway answers instead.
    pub gateway_responses: Vec<(String, GatewayResponse)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayResponse {
    /// None: the status the gateway would have answered with.
    pub status: Option<u16>,
    /// Header values may use `$context` variables.
    pub headers: Vec<(String, String)>,
    /// None: the usual `{"message": ...}`; may use `$context` variables.
    pub body: Option<String>,
}

/// API Gateway's request validators, by what they check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestValidator {
    All,
    ParamsOnly,
    BodyOnly,
}

impl RequestValidator {
    pub const NAMES: [(&'static str, RequestValidator); 3] = [
        ("all", RequestValidator::All),
        ("params-only", RequestValidator::ParamsOnly),
        ("body-only", RequestValidator::BodyOnly),
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequestValidator::All => "all",
            RequestValidator::ParamsOnly => "params-only",
            RequestValidator::BodyOnly => "body-only",
        }
    }

    pub fn params(self) -> bool {
        self != RequestValidator::BodyOnly
    }

    pub fn body(self) -> bool {
        self != RequestValidator::ParamsOnly
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteValidation {
    /// None: nothing is validated (as API Gateway without a validator on the method).
    pub validator: Option<RequestValidator>,
    /// Content type (`application/json`, or `$default` for any) → model name.
    pub models: Vec<(String, String)>,
    /// `header.NAME`, `querystring.NAME`, `path.NAME`: present and not blank.
    pub required: Vec<String>,
}

/// Decodes the definition keys of one API.
pub(super) fn api_defs(d: &mut Decoder, f: &Fields) -> ApiDefs {
    ApiDefs {
        // One that is not a file name stands in as an empty one: the API is not taken
        // for one that lists no routes (a warning here, under the error).
        openapi: f.opt(d, "openapi", |d, v, p| {
            Some(d.string(v, p).map(PathBuf::from).unwrap_or_default())
        }),
        lambda_functions: f
            .opt(d, "lambda_functions", Decoder::text_map)
            .unwrap_or_default(),
        models: f
            .opt(d, "models", |d, v, p| {
                let entries = d.entries(v, p);
                Some(
                    entries
                        .into_iter()
                        .filter_map(|(name, v, p)| Some((name, json(d, v, &p)?)))
                        .collect(),
                )
            })
            .unwrap_or_default(),
        gateway_responses: f
            .opt(d, "gateway_responses", |d, v, p| {
                let entries = d.entries(v, p);
                Some(
                    entries
                        .into_iter()
                        .map(|(kind, v, p)| (kind, gateway_response(d, v, &p)))
                        .collect(),
                )
            })
            .unwrap_or_default(),
    }
}

fn json(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<serde_json::Value> {
    // JSON Schema may well hold a bound past 64 bits; JSON reads it as a float.
    let mut v = v.clone();
    super::yaml::floats_for_big_ints(&mut v);
    match serde_json::to_value(&v) {
        Ok(j) => Some(j),
        Err(e) => {
            d.error(p, format!("not representable as JSON: {e}"));
            None
        }
    }
}

fn gateway_response(d: &mut Decoder, v: &Value, p: &KeyPath) -> GatewayResponse {
    let f = d.fields(v, p, &["status", "headers", "body"]);
    GatewayResponse {
        status: f.opt(d, "status", |d, v, p| {
            let n = d.u64(v, p)?;
            // The answer always has a body (the template's or the message), so a status
            // that has none (1xx, 204, 205, 304) would leave it in the stream for the
            // client to read as the next response.
            let ok = crate::http1::encode::status_with_content(n);
            if !ok {
                d.error(p, format!("expected an HTTP status 200–599 other than 204, 205 and 304 (the answer has a body), got {n}"));
            }
            ok.then_some(n as u16)
        }),
        headers: f.opt(d, "headers", Decoder::text_map).unwrap_or_default(),
        body: f.opt(d, "body", Decoder::string),
    }
}

/// Decodes the validation keys of one route.
pub(super) fn route_validation(d: &mut Decoder, f: &Fields) -> RouteValidation {
    RouteValidation {
        validator: f.opt(d, "request_validator", |d, v, p| {
            d.choice(v, p, &RequestValidator::NAMES)
        }),
        models: f
            .opt(d, "request_model", |d, v, p| match v {
                // One name means the model for JSON bodies.
                Value::String(_) => Some(vec![("application/json".into(), d.parsed_text(v, p)?)]),
                // Model names, by media type: names `models` defines, read as they resolve.
                _ => Some(
                    (d.entries(v, p).into_iter())
                        .filter_map(|(k, v, p)| Some((k, d.parsed_text(v, &p)?)))
                        .collect(),
                ),
            })
            .unwrap_or_default(),
        required: f
            .opt(d, "required_parameters", Decoder::strings)
            .unwrap_or_default(),
    }
}

/// Checks an API's definitions: models compile, routes name existing models and
/// well-formed parameters, gateway responses name known types and variables.
pub(super) fn validate(api: &Api, p: &KeyPath) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let defs = &api.defs;
    let by_name = crate::pipeline::models::by_name(&defs.models);
    for (name, _) in &defs.models {
        if !crate::pipeline::models::is_model_name(name) {
            errors.push(
                p.key("models")
                    .key(name)
                    .error("model names are letters, digits, '.', '_' and '-' only"),
            );
            continue;
        }
        if let Err(e) = crate::pipeline::models::check_model(name, &defs.models, &by_name) {
            errors.push(p.key("models").key(name).error(e));
            continue;
        }
        // A model a route validates with is compiled as it serves, with every model it
        // reaches: one that compiles alone may not with those (a 2020-12 model reaching a
        // draft-4 one with a boolean `exclusiveMinimum`), and the route then checked
        // nothing while `check` said ok.
        let used = api
            .routes
            .iter()
            .any(|(_, r)| r.validation.models.iter().any(|(_, m)| m == name));
        if used {
            let chain = crate::pipeline::models::reference_chain(name, &by_name);
            if chain > crate::pipeline::models::MAX_REFERENCE_CHAIN {
                errors.push(p.key("models").key(name).error(format!(
                    "reaches {chain} models in a row through references; a route's model may reach at most {} (validating deeper would overflow the worker's stack)",
                    crate::pipeline::models::MAX_REFERENCE_CHAIN
                )));
                continue;
            }
            if let Err(e) = crate::pipeline::models::compile_model(name, &defs.models) {
                errors.push(
                    p.key("models")
                        .key(name)
                        .error(format!("with the models it refers to: {e}")),
                );
            }
        }
    }
    for (kind, resp) in &defs.gateway_responses {
        let gp = p.key("gateway_responses").key(kind);
        if ResponseType::parse(kind).is_none() {
            errors.push(gp.error(format!(
                "unknown response type {} (expected one of {})",
                shown(kind),
                ResponseType::NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        use super::validate::headers;
        let names = resp.headers.iter().map(|(n, _)| n.as_str());
        for (name, first) in headers::same_header(names, headers::name) {
            let hp = gp.key("headers").key(name);
            errors.push(hp.error(headers::message(first)));
        }
        for (name, value) in &resp.headers {
            let hp = gp.key("headers").key(name);
            if let Some(why) = super::validate::content_type_problem(name, value) {
                errors.push(hp.error(why));
            }
            if !crate::http1::parse::is_token(name) {
                errors.push(hp.error("not a valid header name"));
            } else if let Some(why) = super::validate::reserved_header(
                name,
                crate::pipeline::response::RESERVED_RESPONSE_HEADERS,
            ) {
                // A second content-length or a transfer-encoding beside Portico's own
                // framing lets the client (or a proxy in front) read another body length.
                errors.push(hp.error(why));
            }
            if let Err(e) = crate::pipeline::gateway_responses::Body::compile(value) {
                errors.push(hp.error(e));
            }
            if let Some(why) = super::validate::header_value_problem(value) {
                errors.push(hp.error(why));
            }
            for why in super::validate::header_stage_value_problems(api, value) {
                errors.push(hp.error(why));
            }
        }
        if let Some(body) = &resp.body {
            if let Err(e) = crate::pipeline::gateway_responses::Body::compile(body) {
                errors.push(gp.key("body").error(e));
            }
        }
    }
    for (key, route) in &api.routes {
        let rp = p.key("routes").key(key);
        let v = &route.validation;
        let mut seen: Vec<String> = Vec::new();
        for (ctype, model) in &v.models {
            let mp = rp.key("request_model").key(ctype);
            // A key no Content-Type can name would check nothing, quietly: a `*` is a
            // whole type or subtype (`*/*`, `application/*`), never part of one.
            let token = |s: &str| !s.contains('*') && crate::http1::parse::is_token(s);
            // (Parameters are left out, as when requests are matched.)
            let bare = ctype.split(';').next().unwrap_or_default().trim();
            let media = ctype == "$default"
                || bare == "*/*"
                || bare
                    .split_once('/')
                    .is_some_and(|(t, s)| token(t) && (s == "*" || token(s)));
            if !media {
                errors.push(
                    mp.error("expected a media type (type/subtype, type/* or */*) or $default"),
                );
            }
            // One media type, one model: which of two a request got was the file's order.
            let same = bare.to_ascii_lowercase();
            if let Some(first) = seen.iter().find(|s| **s == same) {
                errors.push(mp.error(format!(
                    "the same media type as {} (compared without case and parameters)",
                    shown(first)
                )));
            }
            seen.push(same);
            if !defs.models.iter().any(|(n, _)| n == model) {
                // At `request_model` itself: `request_model: NAME` has no media type key.
                errors.push(rp.key("request_model").error(format!(
                    "no model named {} in models (for {ctype})",
                    shown(model)
                )));
            }
        }
        let params = crate::router::key::parse_route_key(key)
            .map(|k| k.params().into_iter().map(String::from).collect::<Vec<_>>())
            .unwrap_or_default();
        for (i, param) in v.required.iter().enumerate() {
            let pp = rp.key("required_parameters").index(i);
            match crate::pipeline::validate::parse_param(param) {
                Some((crate::pipeline::validate::Loc::Path, name))
                    if !params.iter().any(|n| n == name) =>
                {
                    errors.push(pp.error(format!(
                        "the route key has no {{{name}}} segment: every request would be refused"
                    )))
                }
                Some(_) => {}
                None => errors.push(pp.error(format!(
                    "expected header.NAME, querystring.NAME or path.NAME, got {}",
                    shown(param)
                ))),
            }
        }
    }
    errors
}
