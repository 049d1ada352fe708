//! Which invalid bodies are searched for where they fail their model.
//!
//! jsonschema's yes-or-no check remembers its verdict for each container it met through a
//! recursive reference, so a body costs about its size whatever the model. Its search for
//! the first error (run only for the 400's detail) does not: it searches a value through
//! every branch of an `anyOf` or `oneOf` keeping every error of each, and again at every
//! level through every way a model refers back to itself. A 43-byte body nested 20 deep
//! against an `anyOf` of two alternatives that both refer back held its worker 15 s and
//! took 6 GB; 2,490 empty objects against an `anyOf` of two 500-name `required` lists,
//! 0.8 s and 900 MB; a chain of models each naming the next ten times, 0.7 s for one value.
//!
//! So each model gets, at load, a [`SearchCost`]: the ways one value may be searched, the
//! errors one value may give, and whether it refers back to itself. A body is searched
//! only when its values × errors × ways^(nesting + 1, for a recursive model) stay within
//! [`SEARCH_BUDGET`]; otherwise its 400 says [`NOT_SEARCHED`].

use serde_json::Value;
use std::collections::HashMap;

use super::models::model_ref_name;

/// The units the error search may take for one body: 1.6 to 6 µs each (measured: 24,300
/// branches at depth 5 took 39 ms, 4,096 at depth 12 took 25 ms; at this bound 28 ms at
/// worst), so at most a few tens of ms.
pub const SEARCH_BUDGET: f64 = 10_000.0;

/// What the search for an invalid body's error may cost per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCost {
    /// How many ways one value may be searched at one level: every `anyOf` and `oneOf`
    /// branch, and every reference, with what the model it names adds each time (a model
    /// reached through ten references is searched ten times).
    pub fan: u64,
    /// The errors one value may give on one way: each schema object, and each name of a
    /// `required` list (or of a `dependencies`/`dependentRequired` one), with what each
    /// reference names (500 `required` names under an `anyOf` gave 2.5 million errors for
    /// 2,490 empty objects: 0.8 s and 900 MB).
    pub size: u64,
    /// The model refers back to itself: the ways multiply at every level of nesting.
    pub recursive: bool,
}

/// For model `name`, what its error search may cost; None when any body is searched at
/// about the cost of its size: the models it reaches have no `anyOf` or `oneOf` (whose
/// failure keeps every error of every branch) and do not refer back to themselves more
/// than one way (`properties` beside an overlapping `patternProperties`, two members of
/// an `allOf`: each valid part searched again per way, 3 ways 14 deep took 0.35 s).
pub fn search_cost(name: &str, models: &[(String, Value)]) -> Option<SearchCost> {
    let (_, root) = models.iter().find(|(n, _)| n == name)?;
    let mut walk = Walk {
        name,
        root,
        models,
        counted: HashMap::new(),
        open: Vec::new(),
        recursive: false,
        branches: false,
        unresolved: false,
        depth: 0,
    };
    let Count { ways, size } = walk.node(String::new());
    // A reference it could not follow (an anchor, a URI) may name anything.
    let fan = if walk.unresolved { u64::MAX } else { ways };
    let bounded = walk.branches || (walk.recursive && fan >= 2);
    bounded.then_some(SearchCost {
        fan,
        size,
        recursive: walk.recursive,
    })
}

/// A schema's ways and size (see [`SearchCost`]).
#[derive(Debug, Clone, Copy)]
struct Count {
    ways: u64,
    size: u64,
}

impl Count {
    const NONE: Count = Count { ways: 0, size: 0 };

    fn add(self, other: Count) -> Count {
        Count {
            ways: self.ways.saturating_add(other.ways),
            size: self.size.saturating_add(other.size),
        }
    }
}

/// Counts each schema a reference names once (`counted`, by its JSON pointer in the
/// document the model is compiled as: the model at the root, the models it reaches under
/// `/models`), following references; one back to a schema being counted (`open`) is a
/// loop, and counts once.
struct Walk<'m> {
    name: &'m str,
    root: &'m Value,
    models: &'m [(String, Value)],
    counted: HashMap<String, Count>,
    open: Vec<String>,
    recursive: bool,
    branches: bool,
    unresolved: bool,
    /// Schemas being walked, one inside the other (see [`MAX_WALK_DEPTH`]).
    depth: usize,
}

/// How deep the walk follows schemas and references together.
const MAX_WALK_DEPTH: usize = 128;

impl<'m> Walk<'m> {
    fn node(&mut self, pointer: String) -> Count {
        const ONCE: Count = Count { ways: 1, size: 1 };
        if self.open.contains(&pointer) {
            self.recursive = true;
            return ONCE;
        }
        if let Some(&c) = self.counted.get(&pointer) {
            return c;
        }
        let Some(schema) = self.resolve(&pointer) else {
            self.unresolved = true;
            return ONCE;
        };
        self.open.push(pointer.clone());
        let c = self.schema(schema);
        let c = Count {
            ways: c.ways.max(1),
            size: c.size.max(1),
        };
        self.open.pop();
        self.counted.insert(pointer, c);
        c
    }

    /// The schema at `pointer` in the model's document.
    fn resolve(&self, pointer: &str) -> Option<&'m Value> {
        let Some(rest) = pointer.strip_prefix("/models/") else {
            return self.root.pointer(pointer);
        };
        let (name, inner) = rest.split_once('/').map_or((rest, ""), |(n, i)| (n, i));
        let (_, schema) = self.models.iter().find(|(n, _)| n == name)?;
        match inner {
            "" => Some(schema),
            inner => schema.pointer(&format!("/{inner}")),
        }
    }

    /// The pointer a reference names; the model itself under `/models` is the root.
    fn pointer(&self, r: &str) -> Option<String> {
        let pointer = match model_ref_name(r) {
            Some(name) => format!("/models/{name}"),
            None => r
                .strip_prefix('#')
                .filter(|p| p.is_empty() || p.starts_with('/'))?
                .to_owned(),
        };
        let own = format!("/models/{}", self.name);
        match pointer.strip_prefix(&own) {
            Some(inner) if inner.is_empty() || inner.starts_with('/') => Some(inner.to_owned()),
            _ => Some(pointer),
        }
    }

    fn schema(&mut self, v: &'m Value) -> Count {
        // Deeper (a chain of 1,000 models, each naming the next), the walk overflowed the
        // stack of the thread that loaded the config: taken as a model whose cost is not
        // known, so its bodies are not searched.
        if self.depth >= MAX_WALK_DEPTH {
            self.unresolved = true;
            return Count { ways: 1, size: 1 };
        }
        self.depth += 1;
        let c = self.schema_within(v);
        self.depth -= 1;
        c
    }

    fn schema_within(&mut self, v: &'m Value) -> Count {
        match v {
            Value::Object(map) => {
                let own = Count { ways: 0, size: 1 };
                map.iter().fold(own, |sum, (k, child)| {
                    let here = match (k.as_str(), child) {
                        ("anyOf" | "oneOf", Value::Array(all)) => {
                            self.branches = true;
                            let entries = Count {
                                ways: all.len() as u64,
                                size: 0,
                            };
                            entries.add(self.schema(child))
                        }
                        ("$ref" | "$dynamicRef" | "$recursiveRef", Value::String(r)) => {
                            match self.pointer(r) {
                                Some(pointer) => self.node(pointer),
                                None => {
                                    self.unresolved = true;
                                    Count { ways: 1, size: 1 }
                                }
                            }
                        }
                        ("required", Value::Array(names)) => Count {
                            ways: 0,
                            size: names.len() as u64,
                        },
                        ("dependentRequired" | "dependencies", Value::Object(deps)) => {
                            let names = deps.values().filter_map(Value::as_array).map(Vec::len);
                            let listed = Count {
                                ways: 0,
                                size: names.sum::<usize>() as u64,
                            };
                            listed.add(self.schema(child))
                        }
                        // Reached through references only, and counted there.
                        ("definitions" | "$defs", _) => Count::NONE,
                        _ => self.schema(child),
                    };
                    sum.add(here)
                })
            }
            Value::Array(items) => {
                (items.iter()).fold(Count::NONE, |sum, item| sum.add(self.schema(item)))
            }
            _ => Count::NONE,
        }
    }
}

/// The detail of a body left unsearched (`$context.error.validationErrorString`).
pub const NOT_SEARCHED: &str = "the body does not match the model; where is not searched \
     for: against this model, searching a body this large or deep could take too long";

/// The bytes of `body` (JSON) outside its strings, with their offsets (quotes left out).
pub fn outside_strings(body: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    body.iter().enumerate().filter_map(move |(i, &b)| {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            return None;
        }
        in_string = b == b'"';
        (!in_string).then_some((i, b))
    })
}

/// Whether searching `body` (JSON) for its error could take more than [`SEARCH_BUDGET`]
/// units: each of its values may give `size` errors, and where the model is recursive
/// be searched `fan` times again per level it is nested in (a bare value too is searched
/// `fan` ways: the power is the nesting plus one).
pub fn search_too_costly(body: &[u8], cost: SearchCost) -> bool {
    let (fan, size) = (cost.fan as f64, cost.size as f64);
    let levels = |deepest: i32| if cost.recursive { deepest + 1 } else { 0 };
    let (mut depth, mut deepest, mut values) = (0i32, 0i32, 1.0f64);
    for (_, b) in outside_strings(body) {
        match b {
            b'[' | b'{' => {
                depth += 1;
                values += 1.0;
                if depth > deepest {
                    deepest = depth;
                    if size * fan.powi(levels(deepest)) > SEARCH_BUDGET {
                        return true;
                    }
                }
            }
            b']' | b'}' => depth -= 1,
            b',' => values += 1.0,
            _ => {}
        }
    }
    values * size * fan.powi(levels(deepest)) > SEARCH_BUDGET
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(models: &[(&str, Value)]) -> Vec<(String, Value)> {
        (models.iter())
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    fn fan(models: &[(&str, Value)]) -> Option<(u64, bool)> {
        let models = named(models);
        search_cost(&models[0].0, &models).map(|c| (c.fan, c.recursive))
    }

    #[test]
    fn models_with_alternatives_are_costed_and_loops_through_them_found() {
        let tree = json!({"anyOf": [
            {"type": "array", "items": {"$ref": "#/models/Tree"}},
            {"type": "array", "minItems": 0, "items": {"$ref": "#/models/Tree"}},
            {"type": "integer"}]});
        // Three branches, and the two references back to the model.
        assert_eq!(fan(&[("Tree", tree)]), Some((5, true)));
        // Through another model, or through a reference within the model.
        let a = json!({"oneOf": [{"$ref": "#/models/B"}, {"type": "string"}]});
        let b = json!({"type": "array", "items": {"$ref": "#/models/A"}});
        assert_eq!(fan(&[("A", a), ("B", b)]), Some((3, true)));
        let local = json!({"definitions": {"n": {"anyOf": [{"items": {"$ref": "#/definitions/n"}}, {}]}},
            "$ref": "#/definitions/n"});
        assert_eq!(fan(&[("L", local)]), Some((3, true)));
        // No loop: the branches of the models reached, a model once per reference to it.
        let flat = json!({"anyOf": [{"$ref": "#/models/Leaf"}, {"type": "array"}, {}]});
        let leaf = json!({"oneOf": [{"type": "string"}, {"maxLength": 3}]});
        assert_eq!(fan(&[("Flat", flat), ("Leaf", leaf)]), Some((5, false)));
        // No `anyOf` or `oneOf`, and one way back: the search costs the body's size.
        let list = json!({"type": "object", "properties": {"next": {"$ref": "#/models/List"}}});
        assert_eq!(fan(&[("List", list)]), None);
        // A chain of models each reaching the next ten times: 20, 210, 2,110…
        let refs =
            |next: &str| json!({"anyOf": vec![json!({"$ref": format!("#/models/{next}")}); 10]});
        let chain = [
            ("M0", refs("M1")),
            ("M1", refs("M2")),
            ("M2", refs("M3")),
            ("M3", json!({"type": "string"})),
        ];
        assert_eq!(fan(&chain), Some((2110, false)));
        // The same chain in one model's definitions, and closed into a loop.
        let def = |next: &str| json!({"anyOf": vec![json!({"$ref": format!("#/definitions/{next}")}); 10]});
        let local = json!({"$ref": "#/definitions/d0", "definitions": {
            "d0": def("d1"), "d1": def("d2"), "d2": def("d3"), "d3": {"type": "integer"}}});
        assert_eq!(fan(&[("D", local)]), Some((2110, false)));
        let back = json!({"properties": {"back": {"$ref": "#/models/M0"}}});
        let looped = [
            ("M0", refs("M1")),
            ("M1", refs("M2")),
            ("M2", refs("M3")),
            ("M3", back),
        ];
        assert_eq!(fan(&looped), Some((2110, true)));
        // A reference Portico cannot follow (an anchor) may name anything.
        let anchored = json!({"anyOf": [{"$ref": "#node"}, {"type": "string"}]});
        assert_eq!(fan(&[("X", anchored)]), Some((u64::MAX, false)));
        // Without `anyOf` or `oneOf`, a model that refers back to itself more than one way.
        let overlapping = json!({"properties": {"a": {"$ref": "#"}, "b": {"type": "integer"}},
            "patternProperties": {"^a$": {"$ref": "#"}, "^a": {"$ref": "#"}}});
        assert_eq!(fan(&[("P", overlapping)]), Some((3, true)));
        let twice = json!({"allOf": [{"items": {"$ref": "#"}}, {"items": {"$ref": "#"}}]});
        assert_eq!(fan(&[("T", twice)]), Some((2, true)));
    }

    #[test]
    fn a_required_list_under_an_anyof_counts_each_name() {
        let names: Vec<String> = (0..500).map(|i| format!("r{i}")).collect();
        let mut more = names.clone();
        more.push("zz".into());
        let model = json!({"anyOf": [
            {"type": "array", "items": {"type": "object", "required": names}},
            {"type": "array", "items": {"type": "object", "required": more}}]});
        let cost = search_cost("R", &named(&[("R", model)])).unwrap();
        // The root, two branches, two item schemas, 1,001 names.
        assert_eq!((cost.size, cost.recursive), (1006, false));
        let empties = format!("[{}]", vec!["{}"; 2490].join(","));
        assert!(search_too_costly(empties.as_bytes(), cost));
        assert!(!search_too_costly(b"[{},{}]", cost));
    }

    #[test]
    fn the_search_is_costed_by_values_and_nesting_outside_strings() {
        let looping = |fan| SearchCost {
            fan,
            size: 1,
            recursive: true,
        };
        // 4 values nested 2 deep, fan 10: 4 × 10^3 = 4,000.
        assert!(!search_too_costly(br#"[["[[[[", "\"[["]]"#, looping(10)));
        // 4 nested 3 deep: 40,000.
        assert!(search_too_costly(br#"[{"a":[1]}]"#, looping(10)));
        // A bare value is searched `fan` ways.
        assert!(search_too_costly(b"1", looping(20_000)));
        assert!(!search_too_costly(b"1", looping(5_000)));
        // A chain too deep on its own, and a wide shallow body.
        assert!(search_too_costly(&[b'['; 14], looping(2)));
        assert!(!search_too_costly(&[b'['; 8], looping(2)));
        assert!(search_too_costly(&[b'['; 9], looping(2)));
        let wide = format!("[{}]", vec!["[[1]]"; 2000].join(","));
        assert!(search_too_costly(wide.as_bytes(), looping(2)));
        assert!(!search_too_costly(b"[[[1]]]", looping(2)));
        // Without a loop, depth does not multiply: values times the size.
        let flat = SearchCost {
            fan: 2,
            size: 2,
            recursive: false,
        };
        assert!(!search_too_costly(&[b'['; 40], flat));
        let many = format!("[{}]", vec!["1"; 6000].join(","));
        assert!(search_too_costly(many.as_bytes(), flat));
    }

    /// A chain of models each naming the next is walked only so deep (1,000 of them
    /// overflowed a reload thread's stack, which aborts the process, and this test).
    #[test]
    fn a_long_chain_of_models_is_not_walked_to_its_end() {
        let n = 5_000;
        let models: Vec<(String, Value)> = (0..n)
            .map(|i| {
                let next = json!({ "$ref": format!("#/models/M{}", i + 1) });
                let props = if i + 1 < n {
                    json!({ "next": next })
                } else {
                    json!({})
                };
                (
                    format!("M{i}"),
                    json!({ "type": "object", "properties": props }),
                )
            })
            .collect();
        let cost = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || search_cost("M0", &models))
            .unwrap()
            .join()
            .expect("walked without overflowing a small stack");
        // No branches: searched at about a body's size, as a short chain is.
        assert_eq!(cost, None);
    }
}
