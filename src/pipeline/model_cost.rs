//! Which invalid bodies are searched for where they fail their model.
//!
//! jsonschema's yes-or-no check remembers its verdict for each container it met through a
//! recursive reference, so a body costs about its size whatever the model. Its search for
//! the first error does not: a value checked against the branches of an `anyOf` or
//! `oneOf` is searched through each of them, and a model that refers back to itself that
//! way is searched again at every level, each branch keeping the errors of those below. A
//! 43-byte body nested 20 deep, checked against an `anyOf` of two alternatives that both
//! refer back to the model, held its worker for 15 s and 6 GB; 5,000 copies of one nested
//! 5 deep (70 KB), 2.5 s. Without recursion, every error of every branch is still kept: a
//! 4 MB array against an `anyOf`, 0.5 s. Against a model with `anyOf` or `oneOf`, a body is
//! searched only when its values times the branches (to the power of its nesting, where
//! they refer back to the model) stay within [`SEARCH_BRANCHES`].

use serde_json::Value;
use std::collections::HashMap;

use super::models::{ref_target, refs, Target};

/// The branches the error search may walk for one body: 1.6 to 6 µs each (measured: 24,300
/// at depth 5 took 39 ms, 4,096 at depth 12 took 25 ms), so at most a few tens of ms.
pub const SEARCH_BRANCHES: f64 = 10_000.0;

/// What the search for an invalid body's error may cost per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCost {
    /// The `anyOf` and `oneOf` branches of the models reached: how many ways a value may
    /// be searched at one level.
    pub fan: u32,
    /// The model refers back to itself: the ways multiply at every level of nesting.
    pub recursive: bool,
}

/// For model `name`, what its error search may cost; None when any body is searched at
/// about the cost of its size: the models it reaches have no `anyOf` or `oneOf` to search
/// each branch of.
pub fn search_cost(name: &str, models: &[(String, Value)]) -> Option<SearchCost> {
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
    (fan >= 2).then(|| SearchCost {
        fan,
        recursive: loops || has_cycle(&graph),
    })
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
     for in a body this large or deep against a model with this many anyOf or oneOf \
     branches";

/// Whether searching `body` (JSON) for its error could take more than [`SEARCH_BRANCHES`]
/// branches: each of its values may be searched `fan` times, per level it is nested in
/// when the model is recursive.
pub fn search_too_costly(body: &[u8], cost: SearchCost) -> bool {
    let fan = f64::from(cost.fan);
    let levels = |deepest: i32| if cost.recursive { deepest } else { 1 };
    let (mut depth, mut deepest, mut values) = (0i32, 0i32, 1.0f64);
    let (mut in_string, mut escaped) = (false, false);
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
                values += 1.0;
                if depth > deepest {
                    deepest = depth;
                    if fan.powi(levels(deepest)) > SEARCH_BRANCHES {
                        return true;
                    }
                }
            }
            b']' | b'}' => depth -= 1,
            b',' => values += 1.0,
            _ => {}
        }
    }
    values * fan.powi(levels(deepest)) > SEARCH_BRANCHES
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fan(models: &[(&str, Value)]) -> Option<(u32, bool)> {
        let models: Vec<_> = (models.iter())
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        search_cost(&models[0].0, &models).map(|c| (c.fan, c.recursive))
    }

    #[test]
    fn models_with_alternatives_are_costed_and_loops_through_them_found() {
        let tree = json!({"anyOf": [
            {"type": "array", "items": {"$ref": "#/models/Tree"}},
            {"type": "array", "minItems": 0, "items": {"$ref": "#/models/Tree"}},
            {"type": "integer"}]});
        assert_eq!(fan(&[("Tree", tree)]), Some((3, true)));
        // Through another model, or through a reference within the model.
        let a = json!({"oneOf": [{"$ref": "#/models/B"}, {"type": "string"}]});
        let b = json!({"type": "array", "items": {"$ref": "#/models/A"}});
        assert_eq!(fan(&[("A", a), ("B", b)]), Some((2, true)));
        let local = json!({"definitions": {"n": {"anyOf": [{"items": {"$ref": "#/definitions/n"}}, {}]}},
            "$ref": "#/definitions/n"});
        assert_eq!(fan(&[("L", local)]), Some((2, true)));
        // No loop: the branches of the models reached, once per value.
        let flat = json!({"anyOf": [{"$ref": "#/models/Leaf"}, {"type": "array"}, {}]});
        let leaf = json!({"oneOf": [{"type": "string"}, {"maxLength": 3}]});
        assert_eq!(fan(&[("Flat", flat), ("Leaf", leaf)]), Some((5, false)));
        // No `anyOf` or `oneOf`, loop or not: the search costs the body's size.
        let list = json!({"type": "object", "properties": {"next": {"$ref": "#/models/List"}}});
        assert_eq!(fan(&[("List", list)]), None);
    }

    #[test]
    fn the_search_is_costed_by_values_and_nesting_outside_strings() {
        let looping = |fan| SearchCost {
            fan,
            recursive: true,
        };
        // 4 values nested 3 deep, fan 10: 4,000.
        assert!(!search_too_costly(br#"[[["[[[[", "\"[["]]]"#, looping(10)));
        // 5 nested 4 deep: 50,000.
        assert!(search_too_costly(br#"[[{"a":[1]}]]"#, looping(10)));
        // A chain too deep on its own, and a wide shallow body.
        assert!(search_too_costly(&[b'['; 14], looping(2)));
        assert!(!search_too_costly(&[b'['; 9], looping(2)));
        assert!(search_too_costly(&[b'['; 10], looping(2)));
        let wide = format!("[{}]", vec!["[[1]]"; 2000].join(","));
        assert!(search_too_costly(wide.as_bytes(), looping(2)));
        assert!(!search_too_costly(b"[[[1]]]", looping(2)));
        // Without a loop, depth does not multiply: values times the fan.
        let flat = SearchCost {
            fan: 2,
            recursive: false,
        };
        assert!(!search_too_costly(&[b'['; 40], flat));
        let many = format!("[{}]", vec!["1"; 6000].join(","));
        assert!(search_too_costly(many.as_bytes(), flat));
    }
}
