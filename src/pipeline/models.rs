//! Request models: JSON Schemas compiled with every model beside them, so that references
//! between models (in each spelling API Gateway and OpenAPI files use) resolve without a
//! network; and the draft each one is read in. Used by request validation (`validate`,
//! `body_scan`) and by the config and OpenAPI import that check and rewrite models.

use jsonschema::Draft;
use serde_json::Value;
use std::collections::HashMap;

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

/// A draft as `$schema` names it, for messages.
fn draft_name(d: Draft) -> &'static str {
    match d {
        Draft::Draft4 => "draft 4",
        Draft::Draft6 => "draft 6",
        Draft::Draft7 => "draft 7",
        Draft::Draft201909 => "2019-09",
        Draft::Draft202012 => "2020-12",
        _ => "another draft",
    }
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

/// The longest string a backtracking `pattern` (see [`backtracks`]) is matched against;
/// a longer one fails it. fancy-regex's step limit counts only its own steps: an
/// unanchored search retries each lookahead at every position and each retry scans to
/// the end, uncounted, so the work grows with the square of the length (40,000
/// characters held a worker for 8 s). At this length the costliest pattern measured (four
/// unanchored lookaheads) takes about 1.5 ms.
pub const BACKTRACK_MAX_CHARS: usize = 256;

/// The backtracking-pattern work one check of a body may do, in [`pattern_cost`] units
/// (about 4 ns each, measured): about 2.5 ms. A body that needs more fails validation.
pub const PATTERN_BUDGET: u64 = 600_000;

thread_local! {
    /// What is left of [`PATTERN_BUDGET`] for the body being checked on this thread, and
    /// whether a string was refused for want of it.
    static BUDGET: std::cell::Cell<(u64, bool)> = const { std::cell::Cell::new((PATTERN_BUDGET, false)) };
}

/// Gives this thread's next body check a whole [`PATTERN_BUDGET`].
pub fn pattern_budget_reset() {
    BUDGET.with(|b| b.set((PATTERN_BUDGET, false)));
}

/// Whether the last body check on this thread ran out of [`PATTERN_BUDGET`].
pub fn pattern_budget_spent() -> bool {
    BUDGET.with(|b| b.get().1)
}

/// What validation says of a body that ran out of [`PATTERN_BUDGET`].
pub const BUDGET_SPENT: &str = "the body's strings need more matching against patterns \
     with lookaround or a backreference than one request may have";

/// Whether jsonschema matches `pattern` by backtracking (fancy-regex): it has a
/// backreference or lookaround and is not made of leading lookaheads anchored at `^`
/// that jsonschema splits into separate linear-time regexes.
pub fn backtracks(pattern: &str) -> bool {
    let linear = |p: &str| {
        jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&serde_json::json!({ "pattern": p }))
            .is_ok()
    };
    if linear(pattern) {
        return false;
    }
    !jsonschema_regex::split_leading_lookaheads(pattern)
        .is_some_and(|parts| parts.iter().all(|p| linear(p)))
}

/// How costly `pattern` is per character squared, relative to a plain one: each
/// lookaround is rescanned from every position, and a backreference backtracks (measured
/// against `(a+)+\1b`, about five times a lookahead).
fn pattern_weight(pattern: &str) -> u64 {
    let mut weight = 1;
    let mut bytes = pattern.as_bytes().iter().peekable();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => {
                if let Some(b'1'..=b'9' | b'k') = bytes.next() {
                    weight += 4;
                }
            }
            b'(' if bytes.peek() == Some(&&b'?') => {
                let rest = &pattern.as_bytes()[pattern.len() - bytes.len()..];
                if rest.starts_with(b"?=")
                    || rest.starts_with(b"?!")
                    || rest.starts_with(b"?<=")
                    || rest.starts_with(b"?<!")
                {
                    weight += 1;
                }
            }
            _ => {}
        }
    }
    weight
}

/// The budget units matching a `weight` pattern against `len` bytes costs: per position
/// a fixed cost (a delegate call, about 64 bytes' worth) and a scan to the end.
pub fn pattern_cost(weight: u64, len: usize) -> u64 {
    let len = len as u64;
    weight * len * (len + 64)
}

/// `pattern` with its work bounded when it backtracks: a string longer than
/// [`BACKTRACK_MAX_CHARS`] fails it, and each string is charged to the thread's
/// [`PATTERN_BUDGET`]. One that does not backtrack is matched as jsonschema matches it.
struct BoundedPattern<F: jsonschema::json::Json> {
    inner: jsonschema::Validator<F>,
    /// 0: the pattern does not backtrack.
    weight: u64,
}

impl<F: jsonschema::json::Json> BoundedPattern<F> {
    fn admit(&self, instance: &F::Node<'_>) -> Result<(), String> {
        use jsonschema::json::Node;
        if self.weight == 0 {
            return Ok(());
        }
        let Some(s) = instance.as_string() else {
            return Ok(());
        };
        let chars = s.chars().count();
        if chars > BACKTRACK_MAX_CHARS {
            return Err(format!(
                "a string of {chars} characters is longer than the {BACKTRACK_MAX_CHARS} \
                 a pattern with lookaround or a backreference is matched against"
            ));
        }
        let cost = pattern_cost(self.weight, s.len());
        BUDGET.with(|b| {
            let (left, _) = b.get();
            match left.checked_sub(cost) {
                Some(left) => {
                    b.set((left, false));
                    Ok(())
                }
                None => {
                    b.set((0, true));
                    Err(BUDGET_SPENT.into())
                }
            }
        })
    }
}

impl<'i, F: jsonschema::json::Json> jsonschema::Keyword<'i, F> for BoundedPattern<F> {
    fn validate(&self, instance: F::Node<'i>) -> Result<(), jsonschema::ValidationError<'i>> {
        self.admit(&instance)
            .map_err(jsonschema::ValidationError::custom)?;
        self.inner.validate(instance)
    }

    fn is_valid(&self, instance: F::Node<'i>) -> bool {
        self.admit(&instance).is_ok() && self.inner.is_valid(instance)
    }
}

/// Whether any `pattern` in `v` backtracks.
fn any_backtracks(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| {
            (k == "pattern" && child.as_str().is_some_and(backtracks)) || any_backtracks(child)
        }),
        Value::Array(items) => items.iter().any(any_backtracks),
        _ => false,
    }
}

/// The first `patternProperties` pattern in `v` that backtracks. Property names are
/// matched by jsonschema itself, where the bounds of [`BoundedPattern`] can't reach (an
/// unanchored lookahead against a 640 KB name held a worker for 12 s): such a pattern is
/// refused when the model compiles.
fn backtracking_pattern_property(v: &Value) -> Option<&str> {
    match v {
        Value::Object(map) => map
            .get("patternProperties")
            .and_then(Value::as_object)
            .and_then(|pp| pp.keys().find(|k| backtracks(k)).map(String::as_str))
            .or_else(|| map.values().find_map(backtracking_pattern_property)),
        Value::Array(items) => items.iter().find_map(backtracking_pattern_property),
        _ => None,
    }
}

/// Matching by backtracking at most [`BACKTRACK_LIMIT`] steps per string.
fn pattern_options() -> jsonschema::PatternOptions<jsonschema::FancyRegex> {
    jsonschema::PatternOptions::fancy_regex().backtrack_limit(BACKTRACK_LIMIT)
}

/// `{"pattern": pattern}` compiled as models compile it, for the one-pass scanner; None
/// when it is not a valid pattern or backtracks (the scanner then bows out: the general
/// validator bounds that work).
pub fn compile_linear_pattern(pattern: &str, draft: Draft) -> Option<jsonschema::Validator> {
    if backtracks(pattern) {
        return None;
    }
    jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(false)
        .with_pattern_options(pattern_options())
        .build(&serde_json::json!({ "pattern": pattern }))
        .ok()
}

/// Compiles model `name`: its schema with every model beside it under `models`, so that
/// `{"$ref": "#/models/Other"}` (and circular references) resolve without a network.
pub fn compile_model(
    name: &str,
    models: &[(String, Value)],
) -> Result<jsonschema::Validator, String> {
    compile_model_for::<jsonschema::json::SerdeJson>(name, models)
}

/// The models `name` refers to, itself included, directly or through others: what its
/// document needs under `models`. All of them in each model's document made a config of
/// 4,000 unrelated models take seconds to check (each compile read every model).
fn reachable(name: &str, models: &[(String, Value)]) -> serde_json::Map<String, Value> {
    let mut found = serde_json::Map::new();
    let by_name = by_name(models);
    let mut todo = vec![name];
    while let Some(next) = todo.pop() {
        if found.contains_key(next) {
            continue;
        }
        let Some(schema) = by_name.get(next) else {
            continue;
        };
        found.insert(next.to_string(), (*schema).clone());
        let mut named = Vec::new();
        refs(schema, &mut named);
        for r in named {
            match ref_target(r) {
                Target::Model(name, _) => todo.push(name),
                Target::Local => {}
                // An anchor or a URI may name a part of any model: all of them, as before.
                Target::Other => {
                    return models.iter().map(|(n, s)| (n.clone(), s.clone())).collect();
                }
            }
        }
    }
    found
}

/// The references in a schema: `$ref`, and 2020-12's `$dynamicRef` (which, given a
/// plain pointer, is one).
fn refs<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref" | "$dynamicRef", Value::String(r)) => out.push(r),
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// What a reference names.
#[derive(Clone, Copy)]
enum Target<'r> {
    /// A model (`#/models/NAME`, in any spelling `rewrite_refs` takes), and whether the
    /// reference points into it (`#/models/NAME/properties/x`) rather than at it whole.
    Model(&'r str, bool),
    /// A part of the model itself (`#/properties/x`, `#/$defs/y`).
    Local,
    /// An anchor (`#name`), the whole document (`#`) or a URI: it may be in any model.
    Other,
}

fn ref_target(r: &str) -> Target<'_> {
    let Some(target) = model_ref_name(r).or_else(|| r.strip_prefix("#/models/")) else {
        let local = r.starts_with("#/") && !r.starts_with("#/models");
        return if local { Target::Local } else { Target::Other };
    };
    match target.split_once('/') {
        Some((name, _)) => Target::Model(name, true),
        None => Target::Model(target, false),
    }
}

/// The most models a route's model may reach through references in a row
/// ([`reference_chain`]): the validator follows a reference by a call, on the worker's
/// stack, and a chain of 4,000 (`allOf: [{$ref: next}]`) overflowed it at the first
/// invalid body, killing the process.
pub const MAX_REFERENCE_CHAIN: usize = 256;

/// How many models `name` reaches in a row through references (itself counted), the
/// longest way; a model met again on the way (a model referring to itself) adds nothing.
/// Walked with a stack of its own, not by recursion, whatever the chain's length.
pub fn reference_chain(name: &str, by_name: &HashMap<&str, &Value>) -> usize {
    let refs_of = |n: &str| -> Vec<String> {
        let mut named = Vec::new();
        if let Some(schema) = by_name.get(n) {
            refs(schema, &mut named);
        }
        named
            .into_iter()
            .filter_map(|r| match ref_target(r) {
                Target::Model(m, _) => Some(m.to_string()),
                _ => None,
            })
            .collect()
    };
    let mut depth: HashMap<String, usize> = HashMap::new();
    let mut on_way: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Each model on the way, the models it names, and how many of them were walked.
    let mut way: Vec<(String, Vec<String>, usize)> = vec![(name.to_string(), refs_of(name), 0)];
    on_way.insert(name.to_string());
    while let Some(top) = way.last_mut() {
        if let Some(next) = top.1.get(top.2).cloned() {
            top.2 += 1;
            if !on_way.contains(&next)
                && !depth.contains_key(&next)
                && by_name.contains_key(next.as_str())
            {
                let named = refs_of(&next);
                on_way.insert(next.clone());
                way.push((next, named, 0));
            }
            continue;
        }
        let (model, named, _) = way.pop().unwrap_or_default();
        let d = 1 + named
            .iter()
            .filter_map(|r| depth.get(r))
            .max()
            .copied()
            .unwrap_or(0);
        on_way.remove(&model);
        depth.insert(model, d);
    }
    depth.get(name).copied().unwrap_or(1)
}

/// `models` by name, for [`check_model`].
pub fn by_name(models: &[(String, Value)]) -> HashMap<&str, &Value> {
    models.iter().map(|(n, s)| (n.as_str(), s)).collect()
}

/// Whether model `name` compiles, for `check`: its schema with each model it refers to
/// standing as `true` (each is checked on its own), so a model costs its own size.
/// Compiled with every model it reaches, a chain of 2,000 models, each referring to the
/// next, took 10 s to check. A reference into another model (`#/models/X/properties/y`),
/// or one that may be (an anchor, a URI), needs those models' text: then it is compiled
/// with every model it reaches.
///
/// `by_name` is `models` by name ([`by_name`]), made once for all of them: found by a scan
/// per model and per reference, 40,000 models took 12 s to check.
pub fn check_model(
    name: &str,
    models: &[(String, Value)],
    by_name: &HashMap<&str, &Value>,
) -> Result<(), String> {
    let Some(schema) = by_name.get(name).copied() else {
        return compile_model(name, models).map(drop);
    };
    if let Some(at) = empty_enum(schema, String::new()) {
        // Draft 4 requires one value at least (API Gateway refuses the model); the
        // validator takes it, and then refuses every body.
        return Err(format!(
            "not a valid JSON Schema: an empty enum allows no value (at {})",
            if at.is_empty() { "/" } else { &at }
        ));
    }
    let mut named = Vec::new();
    refs(schema, &mut named);
    let mut stubs = serde_json::Map::new();
    let draft = draft_of(schema)?;
    for r in named {
        // A model is compiled in the draft of the model whose document it is read into:
        // a 2020-12 model reaching a draft-4 one read its `exclusiveMinimum: true` as
        // 2020-12 (and failed, leaving its route unchecked), and a draft-4 model reaching
        // a 2020-12 one read its `exclusiveMinimum: 0` as draft 4's flag (ignored).
        let target = ref_target(r);
        if let Target::Model(target, _) = target {
            let other = by_name.get(target);
            if let Some(other_draft) = other.and_then(|s| draft_of(s).ok()) {
                if other_draft != draft {
                    return Err(format!(
                        "refers to model {target:?}, which is of another JSON Schema draft ({}, this one {}): models that refer to each other must be of one draft",
                        draft_name(other_draft),
                        draft_name(draft)
                    ));
                }
            }
        }
        match target {
            Target::Model(target, false) => {
                if by_name.contains_key(target) {
                    stubs.insert(target.to_string(), Value::Bool(true));
                }
            }
            Target::Local => {}
            Target::Model(_, true) | Target::Other => {
                return compile_model(name, models).map(drop);
            }
        }
    }
    // Its own references to itself resolve to itself.
    stubs.insert(name.to_string(), schema.clone());
    compile_with::<jsonschema::json::SerdeJson>(schema, stubs).map(drop)
}

/// Where in `schema` an `enum` is an empty list, if anywhere (values that are data, not
/// schemas, are not looked into).
fn empty_enum(schema: &Value, at: String) -> Option<String> {
    match schema {
        Value::Object(m) => {
            if m.get("enum")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                return Some(at);
            }
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "enum" | "const" | "default" | "examples" | "example"
                    )
                })
                .find_map(|(k, v)| empty_enum(v, format!("{at}/{k}")))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| empty_enum(v, format!("{at}/{i}"))),
        _ => None,
    }
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
    compile_with(schema, reachable(name, models))
}

/// Compiles `schema` with `others` (the models it may refer to) under `models`.
fn compile_with<F: jsonschema::json::Json>(
    schema: &Value,
    others: serde_json::Map<String, Value>,
) -> Result<jsonschema::Validator<F>, String> {
    let draft = draft_of(schema)?;
    let mut doc = schema.clone();
    if let Value::Object(map) = &mut doc {
        if map.contains_key("models") {
            return Err(
                "a model may not have a top-level \"models\" key (it holds the other models)"
                    .into(),
            );
        }
        map.insert("models".into(), Value::Object(others));
    } else if !doc.is_boolean() {
        return Err("expected a JSON Schema object".into());
    }
    if let Some(p) = backtracking_pattern_property(schema) {
        return Err(format!(
            "the patternProperties pattern {p:?} has a lookaround or a backreference: \
             property names are matched without a bound on the work, so such a pattern \
             is refused there (write it without one, or list the names in `properties`)"
        ));
    }
    rewrite_refs(&mut doc);
    let mut options = jsonschema::options_for::<F>()
        .with_draft(draft)
        // Whether API Gateway asserts `format` is not documented; assertions stay off.
        .should_validate_formats(false)
        // A `pattern` with a backreference or lookaround is matched by backtracking: at
        // fancy-regex's default limit (a million steps) one crafted string held a worker
        // for 0.1 s, and a body of them for minutes. A string past the limit fails its
        // pattern (the body is refused).
        .with_pattern_options(pattern_options());
    // The step limit does not bound an unanchored search's rescans (see
    // `BACKTRACK_MAX_CHARS`): such patterns are matched through `BoundedPattern`. Models
    // without one keep jsonschema's own `pattern` keyword untouched.
    if any_backtracks(&doc) {
        options = options.with_keyword("pattern", move |_, value, _| {
            let pattern = value.as_str().unwrap_or_default();
            let inner = jsonschema::options_for::<F>()
                .with_draft(draft)
                .should_validate_formats(false)
                .with_pattern_options(pattern_options())
                .build(&serde_json::json!({ "pattern": value }))
                .map_err(|e| jsonschema::ValidationError::custom(e.to_string()))?;
            let weight = match backtracks(pattern) {
                true => pattern_weight(pattern),
                false => 0,
            };
            Ok(Box::new(BoundedPattern { inner, weight }))
        });
    }
    options.build(&doc).map_err(|e| {
        // Where in the schema (`/properties/s/pattern`): the message alone names only the
        // value, and a schema may hold hundreds.
        match e.instance_path().as_str() {
            "" => format!("not a valid JSON Schema: {e}"),
            at => format!("not a valid JSON Schema: {e} (at {at})"),
        }
    })
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
