//! OpenAPI 3.0/3.1 and Swagger 2.0 (YAML or JSON) with API Gateway's
//! `x-amazon-apigateway-*` extensions → the Portico config tree of one API (the same
//! shape as `apis.NAME` in the config file) plus the upstreams its HTTP integrations name.
//!
//! The document is walked as a generic JSON tree rather than typed structs, because API
//! Gateway accepts documents that strict models refuse (a numeric `info.version`, OAS 2
//! style headers in OAS 3, CloudFormation intrinsics). What Portico cannot honour is a
//! warning with its JSON pointer; a malformed document is an error at the first problem.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::extensions::api_extensions;
use super::integration;
use super::paths::{base_path, route_path};
use super::security::{self, Scheme};
use super::unreadable::{self, Unreadable};
use super::validators::{validators, Validators};
use super::values::{flag, typed};

/// API Gateway's `basepath` import modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasePath {
    Ignore,
    Prepend,
    Split,
}

/// A problem at a JSON pointer into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}: {}", self.pointer, self.message)
    }
}

#[derive(Debug, Default)]
pub struct Imported {
    /// The API as a config tree (`routes`, `models`, `cors`, `gateway_responses`, …).
    pub api: Map<String, Value>,
    /// Upstream name (the URI's authority) → `{targets: [...]}`.
    pub upstreams: Map<String, Value>,
    /// With `basepath: split`, the first base path segment (API Gateway's stage).
    pub stage: Option<String>,
    /// An export of Portico's own: the exported stage's variables
    /// (`x-portico-stage-variables`), for the stage `portico openapi import` writes. An
    /// `openapi:` file's API takes its stages from the config instead.
    pub stage_variables: Map<String, Value>,
    pub warnings: Vec<Issue>,
}

/// `~` and `/` escaped for a JSON pointer segment.
pub fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Parses a document: JSON, else YAML.
pub fn parse(text: &str) -> Result<Value, Issue> {
    let fail = |e: String| Issue {
        pointer: String::new(),
        message: format!("Invalid OpenAPI input: {e}"),
    };
    // A byte order mark, as Windows editors write: JSON's parser refused it, and YAML's
    // took the document for neither.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // JSON first when it looks like JSON; a document that is not (YAML in flow style,
    // `{openapi: 3.0.1, …}`, or JSON with a `# comment`) is YAML's to read, as YAML
    // is a superset of JSON.
    let json_error = match text.trim_start().starts_with('{') {
        true => match serde_json::from_str(text) {
            Ok(v) => return Ok(v),
            Err(e) => Some(e.to_string()),
        },
        false => None,
    };
    // The config's parser: an alias bomb is refused, an integer past 64 bits is read as
    // JSON reads it (a float), and a key written twice is named.
    let parsed = crate::config::yaml::parse(text).map_err(|e| {
        // Neither: JSON's complaint is the one a JSON document's author can act on.
        fail(
            json_error
                .clone()
                .unwrap_or_else(|| crate::config::yaml::error_text(&e)),
        )
    })?;
    if let Some(e) = parsed.errors.first() {
        return Err(Issue {
            pointer: String::new(),
            message: format!("Invalid OpenAPI input: {e}"),
        });
    }
    let mut yaml = parsed.root;
    // `<<: *anchor` merged as the config loader merges it: left as a literal `<<` member,
    // a schema that shares its constraints that way checked nothing.
    yaml.apply_merge()
        .map_err(|e| fail(format!("bad YAML merge key: {e}")))?;
    crate::config::yaml::floats_for_big_ints(&mut yaml);
    serde_json::to_value(yaml).map_err(|e| fail(e.to_string()))
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];
const ANY: &str = "x-amazon-apigateway-any-method";

pub(super) struct Ctx<'d> {
    pub doc: &'d Value,
    pub v2: bool,
    pub out: Imported,
    /// Lambda ARN → function URL.
    pub lambdas: Vec<(String, String)>,
    /// The `$schema` models without one are given (OpenAPI 3.1's schemas are not draft 4).
    pub dialect: Option<String>,
    /// Each model's name and the pointer of the schema it was made from.
    pub model_at: Vec<(String, String)>,
}

impl<'d> Ctx<'d> {
    pub fn warn(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.out.warnings.push(Issue {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    /// Follows local `$ref`s (`#/a/b`), as [`Ctx::resolve`]; what can't be followed is
    /// returned as it is (its `$ref` then names nothing Portico reads).
    pub fn deref<'v>(&self, v: &'v Value) -> &'v Value
    where
        'd: 'v,
    {
        self.resolve(v).unwrap_or(v)
    }

    /// Follows local `$ref`s (`#/a/b`) to what is not one: a chain too, since a
    /// component may name another (`TenantAlias: {$ref: …/Tenant}`), which followed only
    /// once left a `$ref` where the parameter should be and a required header went
    /// unenforced. Err says why when a reference is not local, names nothing, or the chain
    /// is longer than [`MAX_REF_HOPS`] (a cycle).
    pub fn resolve<'v>(&self, v: &'v Value) -> Result<&'v Value, String>
    where
        'd: 'v,
    {
        self.resolve_at(v, String::new()).map(|(v, _)| v)
    }

    /// Where [`Ctx::resolve`] ends for `v`, found at `at`: the last `$ref`'s target, or
    /// `at` itself (for errors that name the place of what was resolved).
    pub fn place(&self, v: &Value, at: String) -> String {
        match self.resolve_at(v, at.clone()) {
            Ok((_, place)) => place,
            Err(_) => at,
        }
    }

    /// [`Ctx::resolve`], with the pointer of what it ends at (`at` when `v` is no `$ref`).
    fn resolve_at<'v>(&self, v: &'v Value, at: String) -> Result<(&'v Value, String), String>
    where
        'd: 'v,
    {
        let (mut cur, mut place) = (v, at);
        for _ in 0..MAX_REF_HOPS {
            let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
                return Ok((cur, place));
            };
            let pointer = r.strip_prefix('#');
            cur = pointer
                .and_then(|p| self.doc.pointer(p))
                .ok_or_else(|| format!("$ref {r:?} names nothing in this document"))?;
            place = pointer.unwrap_or_default().to_string();
        }
        Err(format!(
            "a $ref chain longer than {MAX_REF_HOPS} references (a cycle?)"
        ))
    }
}

/// How many `$ref`s in a row are followed: enough for any alias chain people write, few
/// enough that a cycle is cut at once.
const MAX_REF_HOPS: usize = 16;

/// Imports a parsed document. `lambdas` maps Lambda ARNs to function URLs.
pub fn import(
    doc: &Value,
    mode: BasePath,
    lambdas: &[(String, String)],
) -> Result<Imported, Issue> {
    let err = |pointer: &str, message: &str| Issue {
        pointer: pointer.into(),
        message: message.into(),
    };
    let Some(root) = doc.as_object() else {
        return Err(err("", "Invalid OpenAPI input: expected an object"));
    };
    let v2 = match (root.get("swagger"), root.get("openapi")) {
        (Some(s), _) if s.as_str() == Some("2.0") => true,
        (_, Some(Value::String(v))) if v.starts_with("3.0") || v.starts_with("3.1") => false,
        _ => {
            return Err(err(
                "",
                "Invalid OpenAPI input: expected openapi: 3.0.x or 3.1.x, or swagger: \"2.0\"",
            ))
        }
    };
    let paths = match root.get("paths") {
        Some(Value::Object(p)) => p,
        None => return Err(err("/paths", "missing: the document has no paths")),
        Some(_) => return Err(err("/paths", "expected an object")),
    };
    let mut ctx = Ctx {
        doc,
        v2,
        out: Imported::default(),
        lambdas: lambdas.to_vec(),
        dialect: None,
        model_at: Vec::new(),
    };
    // An export of Portico's own keeps the URLs of functions it had no ARN for.
    if let Some(Value::Object(m)) = root.get("x-portico-lambda-functions") {
        for (arn, url) in m {
            if let Some(url) = url.as_str() {
                if !ctx.lambdas.iter().any(|(a, _)| a == arn) {
                    ctx.lambdas.push((arn.clone(), url.to_string()));
                }
            }
        }
    }
    if let Some(v) = root.get("x-portico-stage-variables") {
        match v.as_object() {
            Some(m) if m.values().all(Value::is_string) => ctx.out.stage_variables = m.clone(),
            _ => ctx.warn(
                "/x-portico-stage-variables",
                "expected an object of strings; ignored",
            ),
        }
    }
    let base = base_path(&mut ctx, root, mode);
    super::models::models(&mut ctx, root);
    let validators = validators(&mut ctx, root);
    let schemes = security::schemes(&mut ctx);
    let mut routes = Map::new();
    // Route shape → the first route key of that shape (a map: a search of a list made
    // an import quadratic in its operations).
    let mut shapes: HashMap<String, String> = HashMap::new();
    for (path, item) in paths {
        let pp = format!("/paths/{}", esc(path));
        let Some(item_map) = item.as_object() else {
            return Err(err(&pp, "expected a Path Item object"));
        };
        let default_route = path == "/$default";
        let route_path = if default_route {
            String::new()
        } else {
            match route_path(&base, path) {
                Ok(p) => p,
                Err(m) => {
                    ctx.warn(pp.clone(), m);
                    continue;
                }
            }
        };
        if item_map.contains_key("$ref") {
            ctx.warn(
                format!("{pp}/$ref"),
                "a Path Item $ref is not followed: write the operations in place; its operations are not imported",
            );
        }
        let shared_params = item_map.get("parameters").cloned();
        for (method, op) in item_map {
            let key_method = if method == ANY {
                "ANY".to_string()
            } else if METHODS.contains(&method.as_str()) {
                method.to_ascii_uppercase()
            } else {
                if method.starts_with("x-amazon-apigateway") {
                    ctx.warn(
                        format!("{pp}/{}", esc(method)),
                        "not supported here; ignored",
                    );
                } else if method == "trace" {
                    // An operation, not a Path Item field: dropped unsaid, its route was
                    // simply missing (Portico answers every TRACE 405, as API Gateway does).
                    ctx.warn(
                        format!("{pp}/trace"),
                        "TRACE is not a route method (every TRACE is answered 405); operation skipped",
                    );
                }
                continue;
            };
            let op_p = format!("{pp}/{}", esc(method));
            if !op.is_object() {
                return Err(err(&op_p, "expected an Operation object"));
            }
            let key = if default_route {
                "$default".to_string()
            } else {
                format!("{key_method} {route_path}")
            };
            // `/a/{x}` beside `/a/{y}`, or `/a/` beside `/a`: the first in the order paths
            // are walked is kept (sorted, as serde_json's map keeps them, not the
            // document's order), as check keeps the first of two such routes; the second
            // overwrote the first in silence, or was written out for check to refuse.
            if let Ok(shape) = crate::router::key::parse_route_key(&key).map(|k| k.shape()) {
                if let Some(first) = shapes.get(&shape) {
                    ctx.warn(
                        op_p,
                        format!("matches the same requests as route {first:?}; operation skipped"),
                    );
                    continue;
                }
                shapes.insert(shape, key.clone());
            }
            if let Some(route) = operation(
                &mut ctx,
                &op_p,
                op,
                shared_params.as_ref(),
                (&validators, &schemes),
                &key,
            ) {
                routes.insert(key, Value::Object(route));
            }
        }
    }
    api_extensions(&mut ctx, root);
    super::extensions::keys_from_authorizer_needs_one(&mut ctx, &routes);
    ctx.out.api.insert("routes".into(), Value::Object(routes));
    super::models::check_all(&ctx)?;
    Ok(ctx.out)
}

fn operation(
    ctx: &mut Ctx,
    op_p: &str,
    op: &Value,
    shared_params: Option<&Value>,
    (validators, schemes): (&Validators, &[(String, Scheme)]),
    key: &str,
) -> Option<Map<String, Value>> {
    let mut route = Map::new();
    let integ_p = format!("{op_p}/x-amazon-apigateway-integration");
    let Some(integ) = op.get("x-amazon-apigateway-integration") else {
        ctx.warn(
            op_p,
            "no x-amazon-apigateway-integration: Portico can't serve this method; skipped",
        );
        return None;
    };
    let integ = ctx.deref(integ).clone();
    integration::convert(ctx, &integ_p, &integ, key, &mut route)?;
    let read_here = ["integration", "request-validator", "auth"];
    let keys = op.as_object().into_iter().flat_map(|o| o.keys());
    for k in keys.filter(|k| {
        k.strip_prefix("x-amazon-apigateway-")
            .is_some_and(|x| !read_here.contains(&x))
    }) {
        ctx.warn(format!("{op_p}/{}", esc(k)), "not supported here; ignored");
    }

    // Required parameters (path parameters are always present on a matched route).
    let mut required = Vec::new();
    let path_p = op_p.rsplit_once('/').map_or("", |(pp, _)| pp);
    let mut unreadable: Vec<Unreadable> = [
        unreadable::not_a_list(shared_params, format!("{path_p}/parameters")),
        unreadable::not_a_list(op.get("parameters"), format!("{op_p}/parameters")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let own = op.get("parameters").and_then(Value::as_array);
    let own = own.into_iter().flatten();
    // An operation's parameter replaces the path item's of the same name and location.
    let name_in = |p: &Value| {
        let p = ctx.deref(p);
        (p.get("name").cloned(), p.get("in").cloned())
    };
    let overridden: Vec<_> = own.clone().map(name_in).collect();
    // Each with its pointer (the path item's, or the operation's), for a body schema's
    // errors.
    let params = shared_params
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, p)| !overridden.contains(&name_in(p)))
        .map(|(i, p)| (format!("{path_p}/parameters/{i}"), p))
        .chain(
            own.enumerate()
                .map(|(i, p)| (format!("{op_p}/parameters/{i}"), p)),
        )
        .collect::<Vec<_>>();
    // 2.0's `in: body` parameter's schema, and where it is.
    let mut body_schema: Option<(Value, String)> = None;
    // Required parameters a validator can't find: path ones no `{…}` segment names, and
    // cookies and form fields, which API Gateway's validation does not read.
    let (mut phantom, mut unread) = (Vec::new(), Vec::new());
    let path = key.split_once(' ').map_or("", |(_, p)| p);
    let segments: Vec<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    for (at, p) in params {
        let schema_at = format!("{}/schema", ctx.place(p, at.clone()));
        let p = match ctx.resolve(p) {
            Ok(p) => p,
            Err(m) => {
                unreadable.push(Unreadable::param(at, m));
                continue;
            }
        };
        let (Some(name), Some(loc)) = (
            p.get("name").and_then(Value::as_str),
            p.get("in").and_then(Value::as_str),
        ) else {
            let what = "a parameter needs a string name and a string in";
            unreadable.push(Unreadable::param(at, what));
            continue;
        };
        let req = flag(&mut *ctx, &format!("{op_p}/parameters"), p.get("required"));
        let checked_as = match loc {
            "header" => Some(format!("header.{name}")),
            "query" => Some(format!("querystring.{name}")),
            _ => None,
        };
        if let Some(param) = checked_as.filter(|_| req) {
            if crate::pipeline::validate::parse_param(&param).is_none() {
                let what = format!("{name:?} can't name a required {loc} parameter");
                unreadable.push(Unreadable::param(at, what));
                continue;
            }
            required.push(param);
            continue;
        }
        match loc {
            "path" if req && !segments.iter().any(|s| s.trim_end_matches('+') == name) => {
                phantom.push(name.to_string())
            }
            "cookie" | "formData" if req => unread.push(format!("{loc} parameter {name:?}")),
            "body" => match p.get("schema") {
                Some(b) => body_schema = Some((b.clone(), schema_at)),
                None => unreadable.push(Unreadable::body(at, "a body parameter without a schema")),
            },
            "header" | "query" | "path" | "cookie" | "formData" => {}
            _ => {
                let what = format!(
                    "in: {loc:?} is none of path, query, header, cookie (and Swagger 2.0's body, formData)"
                );
                unreadable.push(Unreadable::param(at, what));
            }
        }
    }
    // Body models, by content type.
    let mut models = Map::new();
    let mut add_model = |ctx: &mut Ctx, ctype: &str, schema: &Value, at: String| {
        let name = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match r
                .strip_prefix("#/components/schemas/")
                .or_else(|| r.strip_prefix("#/definitions/"))
            {
                Some(local) => local.to_string(),
                // Not one of this document's models: kept as written, never found.
                None => r.to_string(),
            },
            None => {
                let name = super::models::inline_body_name(key);
                super::models::say_nullable(ctx, schema, &at);
                let s = super::models::prepare(ctx, schema);
                let m = ctx
                    .out
                    .api
                    .entry("models")
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(m) = m else {
                    return;
                };
                // Another body of this route, another route with the same letters
                // (`/a-b`, `/a_b`) or the document's own model may have the name.
                let mut unique = name.clone();
                for n in 2.. {
                    if !m.contains_key(&unique) {
                        break;
                    }
                    unique = format!("{name}{n}");
                }
                m.insert(unique.clone(), s);
                ctx.model_at.push((unique.clone(), at));
                unique
            }
        };
        models.insert(ctype.to_string(), Value::String(name));
    };
    if let Some((schema, body_at)) = body_schema {
        // Every type the operation consumes gets the model: with the first alone, a JSON
        // body sent beside `consumes: [application/xml, application/json]` went unchecked.
        let consumes: Vec<String> = op
            .get("consumes")
            .or_else(|| ctx.doc.get("consumes"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| vec!["application/json".into()]);
        for ctype in &consumes {
            add_model(ctx, ctype, &schema, body_at.clone());
        }
    }
    if let Some(body) = op.get("requestBody") {
        let body_at = ctx.place(body, format!("{op_p}/requestBody"));
        let content = match ctx.resolve(body) {
            Ok(b) => unreadable::content(b, &body_at).cloned(),
            Err(m) => Err(Unreadable::body(format!("{op_p}/requestBody"), m)),
        };
        match content {
            Ok(content) => {
                for (ctype, media) in &content {
                    let at = format!("{body_at}/content/{}", esc(ctype));
                    match unreadable::media_schema(media, &at) {
                        Ok(Some(schema)) => add_model(ctx, ctype, schema, format!("{at}/schema")),
                        Ok(None) => {}
                        Err(u) => unreadable.push(u),
                    }
                }
            }
            Err(u) => unreadable.push(u),
        }
    }
    let validator_name = typed(
        ctx,
        &format!("{op_p}/x-amazon-apigateway-request-validator"),
        op.get("x-amazon-apigateway-request-validator"),
        "a validator's name",
        Value::as_str,
    )
    .map(String::from)
    .or_else(|| validators.default.clone());
    let kind = match &validator_name {
        None => None,
        Some(name) => match validators.named.iter().find(|(n, _)| n == name) {
            Some((_, kind)) => *kind,
            None => {
                // API Gateway refuses to import it; served, the method's parameters and
                // body would pass unchecked.
                ctx.warn(
                    format!("{op_p}/x-amazon-apigateway-request-validator"),
                    format!("no validator named {name:?} in x-amazon-apigateway-request-validators: skipped rather than served unvalidated"),
                );
                return None;
            }
        },
    };
    // Models that were skipped (bad names), and `$ref`s to anything but the document's
    // models (a typo, another file, a URL: never read), can't be referenced: under a
    // validator that checks bodies the body would pass unchecked (API Gateway refuses to
    // import such a reference), so the method is skipped; without one the model is
    // documentation, and only said.
    let known = |n: &str| ctx.out.api.get("models").and_then(|m| m.get(n)).is_some();
    let (models, unknown): (Map<String, Value>, Map<String, Value>) = models
        .into_iter()
        .partition(|(_, n)| known(n.as_str().unwrap_or_default()));
    let checks_bodies = matches!(kind, Some("all" | "body-only"));
    let checks_params = matches!(kind, Some("all" | "params-only"));
    if unreadable::settle(ctx, unreadable, checks_params, checks_bodies) {
        return None;
    }
    for (ctype, name) in &unknown {
        let name = name
            .as_str()
            .map_or_else(|| name.to_string(), |n| format!("{n:?}"));
        let outcome = if checks_bodies {
            "skipped rather than served with that body unvalidated"
        } else {
            "that body is not validated"
        };
        ctx.warn(
            op_p.to_string(),
            format!("the {ctype} body schema {name} is not a model of this document (only local #/components/schemas or #/definitions are followed): {outcome}"),
        );
    }
    if checks_bodies && !unknown.is_empty() {
        return None;
    }
    // API Gateway's import makes every `{name}` of the path a required parameter (not a
    // greedy `{name+}`): a blank one (`/orders/%20`) is a 400 there, and was passed on here.
    if let Some(kind) = kind {
        route.insert("request_validator".into(), json!(kind));
        if kind != "body-only" {
            let names = segments.iter().filter(|n| !n.ends_with('+'));
            required.extend(names.map(|n| format!("path.{n}")));
            if !phantom.is_empty() {
                // No request has them: API Gateway answers every one 400 "Missing
                // required request parameters", and `check` refuses the same
                // `required_parameters`.
                ctx.warn(
                    op_p,
                    format!("required path parameter(s) {phantom:?} name no {{…}} segment of {path:?}: every request would be refused; skipped"),
                );
                return None;
            }
            for what in unread {
                ctx.warn(
                    format!("{op_p}/parameters"),
                    format!("required {what} is not checked: validation reads path, query string and header parameters only"),
                );
            }
        }
    }
    if !models.is_empty() {
        route.insert("request_model".into(), Value::Object(models));
    }
    if !required.is_empty() {
        route.insert("required_parameters".into(), json!(required));
    }
    if !security::security(ctx, schemes, op_p, op, &mut route) {
        return None;
    }
    if !super::authorizer_mappings::without_authorizer(ctx, &integ_p, &mut route) {
        return None;
    }
    Some(route)
}

/// `'text'` → text (API Gateway's static mapping values).
pub(super) fn static_value(v: &str) -> Option<&str> {
    v.strip_prefix('\'')?.strip_suffix('\'')
}
