//! Request models: JSON Schemas compiled with every model beside them, so that references
//! between models (in each spelling API Gateway and OpenAPI files use) resolve without a
//! network; and the draft each one is read in. Used by request validation (`validate`,
//! `body_scan`) and by the config and OpenAPI import that check and rewrite models.

use jsonschema::Draft;
use serde_json::Value;

/// The draft a schema's `$schema` names; draft 4 (API Gateway's) when it names none.
pub fn draft_of(schema: &Value) -> Result<Draft, String> {
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

/// Whether `name` can name a model: OpenAPI's rule for component names
/// (`^[a-zA-Z0-9._-]+$`). API Gateway's REST import refuses all but letters and digits,
/// but documents written for other tools use `v1.Pet`, `Error_Response` and `pet-tag`
/// everywhere; refusing them turned those bodies' validation off. No name holds `/` or
/// `~`, so `#/models/NAME` needs no JSON-pointer escaping.
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn model_ref_name(r: &str) -> Option<&str> {
    if let Some(name) = r.strip_prefix("#/components/schemas/") {
        return Some(name);
    }
    let rest = r.strip_prefix("https://apigateway.amazonaws.com/restapis/")?;
    let (_, name) = rest.split_once("/models/")?;
    Some(name)
}

/// Backtracking steps a `pattern` may take on one string (see `compile_model_for`):
/// a millisecond or so; patterns without backreferences and lookaround never backtrack.
pub const BACKTRACK_LIMIT: usize = 10_000;

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
        // A `pattern` with a backreference or lookaround is matched by backtracking: at
        // fancy-regex's default limit (a million steps) one crafted string held a worker
        // for 0.1 s, and a body of them for minutes. A string past the limit fails its
        // pattern (the body is refused).
        .with_pattern_options(
            jsonschema::PatternOptions::fancy_regex().backtrack_limit(BACKTRACK_LIMIT),
        )
        .build(&doc)
        .map_err(|e| format!("not a valid JSON Schema: {e}"))
}
