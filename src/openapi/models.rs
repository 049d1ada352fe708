//! The document's schemas → `models`. A Portico model is draft 4 (API Gateway's) unless
//! its `$schema` names another draft; OpenAPI 3.1's schemas are JSON Schema 2020-12 (or the
//! document's `jsonSchemaDialect`), so they are given that `$schema`. Read as draft 4,
//! `exclusiveMinimum: 0` is refused and `const`, `prefixItems` and `dependentRequired`
//! are not checked at all.

use serde_json::{json, Map, Value};

use super::import::{esc, Ctx, Issue};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// `components.schemas` (3.x) or `definitions` (2.0) → `models`, with references between
/// them rewritten to `#/models/NAME` (`#/definitions/NAME` only in 2.0: in 3.x it points
/// into the schema itself, at its own `definitions`).
pub(super) fn models(ctx: &mut Ctx, root: &Map<String, Value>) {
    ctx.dialect = dialect(ctx, root);
    let (schemas, pointer) = if ctx.v2 {
        (root.get("definitions"), "/definitions")
    } else {
        (
            root.get("components").and_then(|c| c.get("schemas")),
            "/components/schemas",
        )
    };
    let Some(Value::Object(schemas)) = schemas else {
        return;
    };
    let mut out = Map::new();
    for (name, schema) in schemas.iter() {
        if !crate::pipeline::models::is_model_name(name) {
            ctx.warn(
                format!("{pointer}/{}", esc(name)),
                "model names are letters, digits, '.', '_' and '-' only; model skipped",
            );
            continue;
        }
        say_nullable(ctx, schema, &format!("{pointer}/{}", esc(name)));
        out.insert(name.clone(), prepare(ctx, schema));
        ctx.model_at
            .push((name.clone(), format!("{pointer}/{}", esc(name))));
    }
    if !out.is_empty() {
        ctx.out.api.insert("models".into(), Value::Object(out));
    }
}

/// Every model compiles as `check` compiles it: a schema that is not one (`type: objekt`,
/// a `pattern` that is no regex) is the document's error at that schema, as API Gateway
/// refuses to import it. Written out, it made a config `check` then refused, at a model
/// name (`PostXBody`) that is in neither file.
pub(super) fn check_all(ctx: &Ctx) -> Result<(), Issue> {
    let Some(Value::Object(models)) = ctx.out.api.get("models") else {
        return Ok(());
    };
    let all: Vec<(String, Value)> = models.iter().map(|(n, s)| (n.clone(), s.clone())).collect();
    let by_name = crate::pipeline::models::by_name(&all);
    for (name, at) in &ctx.model_at {
        if let Err(e) = crate::pipeline::models::check_model(name, &all, &by_name) {
            return Err(Issue {
                pointer: at.clone(),
                message: e,
            });
        }
    }
    Ok(())
}

/// A schema of the document as a model: references to the document's models rewritten,
/// and the document's dialect as its `$schema` when it names none.
pub(super) fn prepare(ctx: &Ctx, schema: &Value) -> Value {
    let mut schema = schema.clone();
    if ctx.v2 {
        rewrite_definitions(&mut schema);
    }
    crate::pipeline::models::rewrite_refs(&mut schema);
    if let (Some(dialect), Value::Object(m)) = (&ctx.dialect, &mut schema) {
        match m.get("$schema").and_then(Value::as_str) {
            None => {
                m.insert("$schema".into(), json!(dialect));
            }
            // OpenAPI 3.1's own dialect is 2020-12 with annotations of its own (which a
            // validator ignores); check knows it by that name only.
            Some(s) if is_oas_dialect(s) => {
                m.insert("$schema".into(), json!(DRAFT_2020_12));
            }
            Some(_) => {}
        }
    }
    schema
}

/// The `$schema` an OpenAPI 3.1 document's models are read in: its `jsonSchemaDialect`
/// when that is a draft Portico validates, else 2020-12 (with a warning when it names a
/// dialect Portico does not know). None for 3.0 and 2.0, whose models are draft 4.
fn dialect(ctx: &mut Ctx, root: &Map<String, Value>) -> Option<String> {
    let version = root.get("openapi").and_then(Value::as_str)?;
    if !version.starts_with("3.1") {
        return None;
    }
    let named = match root.get("jsonSchemaDialect") {
        None => return Some(DRAFT_2020_12.to_string()),
        Some(Value::String(d)) if is_oas_dialect(d) => return Some(DRAFT_2020_12.to_string()),
        Some(Value::String(d)) => d.clone(),
        Some(other) => other.to_string(),
    };
    if crate::pipeline::models::draft_of(&json!({ "$schema": named })).is_ok() {
        return Some(named);
    }
    ctx.warn(
        "/jsonSchemaDialect",
        format!("{named} is not a JSON Schema draft Portico validates with (4, 6, 7, 2019-09, 2020-12); models are read as 2020-12"),
    );
    Some(DRAFT_2020_12.to_string())
}

/// OpenAPI 3.1's dialect (`https://spec.openapis.org/oas/3.1/dialect/base`, or a dated one).
fn is_oas_dialect(uri: &str) -> bool {
    uri.trim_start_matches("https://")
        .trim_start_matches("http://")
        .starts_with("spec.openapis.org/oas/3.1/dialect/")
}

fn rewrite_definitions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                match (k.as_str(), &mut *c) {
                    ("$ref", Value::String(r)) => {
                        if let Some(n) = r.strip_prefix("#/definitions/") {
                            *r = format!("#/models/{n}");
                        }
                    }
                    _ => rewrite_definitions(c),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_definitions),
        _ => {}
    }
}

/// The model an inline body schema becomes, named after its route: `POST /a-b/{id}` →
/// `PostABIdBody`.
pub(super) fn inline_body_name(route_key: &str) -> String {
    let words = route_key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|w| {
            let mut cs = w.chars();
            cs.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + &cs.as_str().to_ascii_lowercase()
            })
        });
    words.collect::<String>() + "Body"
}

/// OpenAPI 3.0's `nullable: true` is no JSON Schema keyword: API Gateway's validation
/// ignores it, and so does Portico's, refusing a `null` where `type` does not allow one.
/// Said once per schema, at the first place it is written beside a `type` without
/// "null", with what does allow null. Examples, defaults and enums are data, not schemas.
pub(super) fn say_nullable(ctx: &mut Ctx, schema: &Value, at: &str) {
    fn allows_null(t: Option<&Value>) -> bool {
        match t {
            None => true,
            Some(Value::String(t)) => t == "null",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
            Some(_) => false,
        }
    }
    fn find(v: &Value, at: String) -> Option<String> {
        let data = |k: &str| matches!(k, "example" | "examples" | "default" | "enum" | "const");
        match v {
            Value::Object(m)
                if m.get("nullable") == Some(&Value::Bool(true)) && !allows_null(m.get("type")) =>
            {
                Some(at)
            }
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !data(k))
                .find_map(|(k, v)| find(v, format!("{at}/{}", esc(k)))),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, v)| find(v, format!("{at}/{i}"))),
            _ => None,
        }
    }
    if let Some(place) = find(schema, at.to_string()) {
        ctx.warn(
            format!("{place}/nullable"),
            "nullable is OpenAPI 3.0's, not JSON Schema's: request validation ignores it (as API Gateway's does) and refuses null where type does not allow it; write type: [T, \"null\"] to allow null",
        );
    }
}
