//! How deep a body may nest before the search for why it fails its model is left out.
//!
//! jsonschema's yes-or-no check remembers its verdict for each container it met through a
//! recursive reference, so a body costs about its size whatever the model. Its search for
//! the first error does not: a value checked against several subschemas at once (the
//! branches of an `anyOf` or `oneOf`) is searched through each of them, and a model that
//! refers back to itself that way is searched again at every level, each branch keeping
//! the errors of those below. A 43-byte body nested 20 deep, checked against
//! an `anyOf` of two alternatives that both refer back to the model, held its worker for
//! 15 s and 6 GB. For such models the search is made only for bodies nesting at most
//! [`detail_depth`] levels, whose search stays within about [`SEARCH_BRANCHES`] branches.

use serde_json::Value;
use std::collections::HashMap;

use super::models::{ref_target, refs, Target};

/// The branches the error search may walk for one body: about 6 µs each at the depth it
/// allows (measured: 4,096 at depth 12 took 25 ms), so a few milliseconds.
pub const SEARCH_BRANCHES: f64 = 1000.0;

/// For model `name`, the deepest nesting of a body whose failure is searched for where it
/// is; None when any depth is searched at the cost of the body's size: the model does not
/// refer back to itself, or has no `anyOf` or `oneOf` to search each branch of.
pub fn detail_depth(name: &str, models: &[(String, Value)]) -> Option<usize> {
    let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut todo = vec![name];
    // A reference within a model, or to an anchor or URI, may close a loop: counted as one.
    let mut loops = false;
    let mut fan = 0;
    while let Some(next) = todo.pop() {
        if graph.contains_key(next) {
            continue;
        }
        let Some((_, schema)) = models.iter().find(|(n, _)| n == next) else {
            graph.insert(next, Vec::new());
            continue;
        };
        fan += branches(schema);
        let mut named = Vec::new();
        refs(schema, &mut named);
        let mut targets = Vec::new();
        for r in named {
            match ref_target(r) {
                Target::Model(target, _) => targets.push(target),
                Target::Local | Target::Other => loops = true,
            }
        }
        todo.extend(&targets);
        graph.insert(next, targets);
    }
    if fan < 2 || !(loops || has_cycle(&graph)) {
        return None;
    }
    Some(
        (SEARCH_BRANCHES.ln() / f64::from(fan).ln())
            .floor()
            .max(1.0) as usize,
    )
}

/// The branches of every `anyOf` and `oneOf` in `v`: the keywords whose failure the
/// error search explains by searching each branch (the others stop at their first error,
/// or ask the remembered verdict). Their sum bounds how many ways one value is searched.
fn branches(v: &Value) -> u32 {
    match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, child)| match (k.as_str(), child) {
                ("anyOf" | "oneOf", Value::Array(all)) => all.len() as u32 + branches(child),
                _ => branches(child),
            })
            .sum(),
        Value::Array(items) => items.iter().map(branches).sum(),
        _ => 0,
    }
}

/// Whether the models' references (`graph`: model → models it refers to) loop.
fn has_cycle(graph: &HashMap<&str, Vec<&str>>) -> bool {
    // 0: not seen, 1: on the current path, 2: done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    for &start in graph.keys() {
        let mut stack = vec![(start, 0usize)];
        while let Some((node, i)) = stack.pop() {
            if i == 0 {
                match state.get(node) {
                    Some(2) => continue,
                    Some(1) => return true,
                    _ => {
                        state.insert(node, 1);
                    }
                }
            }
            match graph.get(node).and_then(|next| next.get(i)) {
                Some(&next) => {
                    stack.push((node, i + 1));
                    match state.get(next) {
                        Some(1) => return true,
                        Some(2) => {}
                        _ => stack.push((next, 0)),
                    }
                }
                None => {
                    state.insert(node, 2);
                }
            }
        }
    }
    false
}

/// The detail of a body left unsearched (`$context.error.validationErrorString`).
pub const NOT_SEARCHED: &str = "the body does not match the model; where is not searched \
     for in a body nesting this deep against a model whose anyOf or oneOf branches refer \
     back to it";

/// Whether `body` (JSON) nests deeper than `limit` arrays and objects.
pub fn nests_deeper(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn depth(models: &[(&str, Value)]) -> Option<usize> {
        let models: Vec<_> = (models.iter())
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        detail_depth(&models[0].0, &models)
    }

    #[test]
    fn only_models_that_loop_through_several_subschemas_are_bounded() {
        let tree = json!({"anyOf": [
            {"type": "array", "items": {"$ref": "#/models/Tree"}},
            {"type": "array", "minItems": 0, "items": {"$ref": "#/models/Tree"}},
            {"type": "integer"}]});
        // Three branches: 3^6 = 729 ≤ 1,000 < 3^7.
        assert_eq!(depth(&[("Tree", tree)]), Some(6));
        // Through another model, or through a reference within the model.
        let a = json!({"oneOf": [{"$ref": "#/models/B"}, {"type": "string"}]});
        let b = json!({"type": "array", "items": {"$ref": "#/models/A"}});
        assert_eq!(depth(&[("A", a), ("B", b)]), Some(9));
        let local = json!({"definitions": {"n": {"anyOf": [{"items": {"$ref": "#/definitions/n"}}, {}]}},
            "$ref": "#/definitions/n"});
        assert!(depth(&[("L", local)]).is_some());
        // No loop: searched at any depth, however wide.
        let flat = json!({"anyOf": [{"$ref": "#/models/Leaf"}, {"type": "array"}, {}]});
        assert_eq!(
            depth(&[("Flat", flat), ("Leaf", json!({"type": "string"}))]),
            None
        );
        // A loop without `anyOf` or `oneOf`: the search costs the body's size.
        let list = json!({"type": "object", "properties": {"next": {"$ref": "#/models/List"}}});
        assert_eq!(depth(&[("List", list)]), None);
    }

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert!(!nests_deeper(br#"[[["[[[[", "\"[["]]]"#, 3));
        assert!(nests_deeper(br#"[[{"a":[1]}]]"#, 3));
        assert!(!nests_deeper(br#"[[{"a":1}],[{"b":2}]]"#, 3));
    }
}
