//! The quick yes for a request body: the body's bytes checked against a model in one pass,
//! with no tape, no `Value` and no allocation.
//!
//! Most request bodies are valid, and most models use a handful of keywords (`type`,
//! `properties`, `required`, `additionalProperties`, `items`, lengths, bounds, `enum`,
//! `pattern`). For such a model this scanner answers "valid" by reading the body once
//! and checking each value against the subschema that applies to it on the way; the
//! general validator (`jsonschema`, through `json_body`'s tape or a `Value`) then only
//! runs for bodies this cannot vouch for.
//!
//! Its answer is one-sided: `accepts` is true only when the body is JSON that serde_json
//! reads and the model accepts; anything it is unsure of is `false`, which means "ask the
//! general validator", never "invalid". So it bows out rather than decide: strings with
//! escapes where their text matters, numbers near a bound or not plainly integers where
//! only integers are allowed, numbers in an `enum`, nesting past `MAX_DEPTH`. A model
//! using any keyword outside the list compiles to no scanner at all. A repeated member
//! name is checked in every occurrence (`Value` keeps the last; if all pass, it passes).

use serde_json::Value;

use jsonschema::Draft;

use super::models::{compile_linear_pattern, draft_of, model_ref_name};

/// Deeper bodies are left to the general validator (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 64;

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;
const ANY_TYPE: u8 = 127;

/// Keywords that only annotate (or hold subschemas nothing here refers to): ignored, as
/// the validator ignores them (`format` is not asserted, see `validate::compile_model_for`).
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "example",
    "format",
    "readOnly",
    "writeOnly",
    "deprecated",
    "definitions",
    "$defs",
];

#[derive(Debug, Clone, Copy)]
enum Bound {
    Min,
    ExclusiveMin,
    Max,
    ExclusiveMax,
}

#[derive(Debug)]
struct Member {
    /// The name's first eight bytes and its length: equal keys are equal names up to
    /// eight bytes; longer names then compare the rest.
    key: (u64, usize),
    name: Box<[u8]>,
    /// None: only `required` names it; its value is checked by `additionalProperties`.
    schema: Option<Node>,
}

/// One compiled subschema; every check applies only to values of its kind.
#[derive(Debug)]
struct Node {
    never: bool,
    types: u8,
    one_of_values: Option<Vec<Value>>,
    min_chars: u64,
    max_chars: u64,
    /// `{"pattern": …}` compiled by the validator itself, so matching is its own.
    pattern: Option<jsonschema::Validator>,
    bounds: Vec<(f64, Bound)>,
    items: Option<Box<Node>>,
    min_items: u64,
    max_items: u64,
    members: Vec<Member>,
    /// Bit i: `members[i]` is required.
    required: u64,
    /// Whether a string's text matters (an escaped one is then left to the validator).
    reads_strings: bool,
    /// None: any value.
    additional: Option<Box<Node>>,
}

static ANY: Node = Node::any();

impl Node {
    const fn any() -> Node {
        Node {
            never: false,
            types: ANY_TYPE,
            one_of_values: None,
            min_chars: 0,
            max_chars: u64::MAX,
            pattern: None,
            bounds: Vec::new(),
            items: None,
            min_items: 0,
            max_items: u64::MAX,
            members: Vec::new(),
            required: 0,
            reads_strings: false,
            additional: None,
        }
    }

    fn never() -> Node {
        Node {
            never: true,
            ..Node::any()
        }
    }
}

/// A model's scanner; see the module comment.
#[derive(Debug)]
pub struct ModelScan {
    root: Node,
}

impl ModelScan {
    /// Model `name` of `models` (as `validate::compile_model` reads them); None when it
    /// uses anything the scanner does not check, or refers to itself.
    pub fn compile(name: &str, models: &[(String, Value)]) -> Option<ModelScan> {
        let (_, schema) = models.iter().find(|(n, _)| n == name)?;
        let mut compiler = Compiler {
            models,
            draft: draft_of(schema).ok()?,
            referring: vec![name],
            depth: 0,
        };
        Some(ModelScan {
            root: compiler.node(schema, false)?,
        })
    }

    /// True only when `body` is JSON the model accepts (see the module comment).
    pub fn accepts(&self, body: &[u8]) -> bool {
        scanner::accepts(&self.root, body)
    }
}

struct Compiler<'m> {
    models: &'m [(String, Value)],
    draft: Draft,
    /// The models whose `$ref`s are being followed: a model met again is circular.
    referring: Vec<&'m str>,
    /// Schemas being compiled, one inside the other (see [`MAX_SCHEMA_DEPTH`]).
    depth: usize,
}

/// How deep the scanner follows a schema (nested schemas and `$ref`s together); deeper,
/// the model is checked by the validator alone. Unbounded, a chain of 1,000 models
/// overflowed the stack of the thread that compiled it (a reload's: the process died).
const MAX_SCHEMA_DEPTH: usize = 64;

impl<'m> Compiler<'m> {
    fn node(&mut self, schema: &'m Value, in_additional: bool) -> Option<Node> {
        if self.depth >= MAX_SCHEMA_DEPTH {
            return None;
        }
        self.depth += 1;
        let node = self.node_within(schema, in_additional);
        self.depth -= 1;
        node
    }

    fn node_within(&mut self, schema: &'m Value, in_additional: bool) -> Option<Node> {
        let draft = self.draft;
        let map = match schema {
            Value::Bool(b) if draft != Draft::Draft4 || in_additional => {
                return Some(if *b { Node::any() } else { Node::never() })
            }
            Value::Object(map) => map,
            _ => return None,
        };
        if let Some(reference) = map.get("$ref") {
            return self.referenced(reference, map);
        }
        let mut node = Node::any();
        let mut required: &[Value] = &[];
        for (key, v) in map {
            match key.as_str() {
                "type" => node.types = types(v)?,
                "enum" => node.one_of_values = Some(v.as_array()?.clone()),
                "minLength" => node.min_chars = v.as_u64()?,
                "maxLength" => node.max_chars = v.as_u64()?,
                // A backtracking pattern leaves the model to the general validator,
                // which bounds its work per string and per body.
                "pattern" => node.pattern = Some(compile_linear_pattern(v.as_str()?, draft)?),
                "minimum" | "maximum" => {
                    let exclusive = draft == Draft::Draft4
                        && map
                            .get(if key == "minimum" {
                                "exclusiveMinimum"
                            } else {
                                "exclusiveMaximum"
                            })
                            .map(Value::as_bool)
                            .unwrap_or(Some(false))?;
                    let bound = match (key == "minimum", exclusive) {
                        (true, false) => Bound::Min,
                        (true, true) => Bound::ExclusiveMin,
                        (false, false) => Bound::Max,
                        (false, true) => Bound::ExclusiveMax,
                    };
                    node.bounds.push((limit(v)?, bound));
                }
                "exclusiveMinimum" | "exclusiveMaximum" if draft == Draft::Draft4 => {
                    v.as_bool()?;
                }
                "exclusiveMinimum" => node.bounds.push((limit(v)?, Bound::ExclusiveMin)),
                "exclusiveMaximum" => node.bounds.push((limit(v)?, Bound::ExclusiveMax)),
                "items" => node.items = Some(Box::new(self.node(v, false)?)),
                "minItems" => node.min_items = v.as_u64()?,
                "maxItems" => node.max_items = v.as_u64()?,
                "properties" => {
                    for (name, sub) in v.as_object()? {
                        node.members.push(Member {
                            key: name_key(name.as_bytes()),
                            name: name.as_bytes().into(),
                            schema: Some(self.node(sub, false)?),
                        });
                    }
                }
                "required" => required = v.as_array()?,
                "additionalProperties" => {
                    node.additional = Some(Box::new(self.node(v, true)?));
                }
                k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
                _ => return None,
            }
        }
        for name in required {
            let name = name.as_str()?.as_bytes();
            let at = match node.members.iter().position(|m| *m.name == *name) {
                Some(at) => at,
                None => {
                    node.members.push(Member {
                        key: name_key(name),
                        name: name.into(),
                        schema: None,
                    });
                    node.members.len() - 1
                }
            };
            node.required |= 1u64.checked_shl(at as u32)?;
        }
        node.reads_strings = node.one_of_values.is_some()
            || node.pattern.is_some()
            || node.min_chars > 0
            || node.max_chars < u64::MAX;
        (node.members.len() <= 64).then_some(node)
    }

    /// `{"$ref": …}` naming another model (every spelling `validate` rewrites), with
    /// nothing beside it but annotations; that model is then checked in its place.
    fn referenced(
        &mut self,
        reference: &Value,
        map: &serde_json::Map<String, Value>,
    ) -> Option<Node> {
        if map
            .keys()
            .any(|k| k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
        {
            return None;
        }
        let r = reference.as_str()?;
        let name = r.strip_prefix("#/models/").or_else(|| model_ref_name(r))?;
        let (name, schema) = self.models.iter().find(|(n, _)| n == name)?;
        let own_draft = schema.get("$schema").map(|_| draft_of(schema).ok());
        if self.referring.contains(&name.as_str())
            || own_draft.is_some_and(|d| d != Some(self.draft))
        {
            return None;
        }
        self.referring.push(name);
        let node = self.node(schema, false);
        self.referring.pop();
        node
    }
}

fn name_key(name: &[u8]) -> (u64, usize) {
    (head_word(name), name.len())
}

/// The first eight bytes of `name` as a little-endian word, zero-padded. Loaded whole,
/// as two overlapping halves or three bytes, never copied into a zeroed stack array:
/// that copy (a call to `memcpy`) and the wider load after it stalled store forwarding,
/// on a third of the samples of the scanner's main loop on a 1 KiB body.
#[inline]
pub(crate) fn head_word(name: &[u8]) -> u64 {
    let n = name.len();
    if let Some(word) = name.first_chunk::<8>() {
        return u64::from_le_bytes(*word);
    }
    let byte = |i: usize| (name[i] as u64) << (8 * i);
    match n {
        0 => 0,
        // Bytes 0..4 and n-4..n: where they overlap they hold the same bytes.
        4.. => {
            let half = |at: usize| u32::from_le_bytes(name[at..at + 4].try_into().unwrap()) as u64;
            half(0) | half(n - 4) << (8 * (n - 4))
        }
        _ => byte(0) | byte(n / 2) | byte(n - 1),
    }
}

fn types(v: &Value) -> Option<u8> {
    let one = |name: &str| {
        Some(match name {
            "null" => NULL,
            "boolean" => BOOLEAN,
            "integer" => INTEGER,
            "number" => NUMBER | INTEGER,
            "string" => STRING,
            "array" => ARRAY,
            "object" => OBJECT,
            _ => return None,
        })
    };
    match v {
        Value::String(name) => one(name),
        Value::Array(names) => names
            .iter()
            .try_fold(0, |acc, n| Some(acc | one(n.as_str()?)?)),
        _ => None,
    }
}

/// A bound the scanner compares exactly against integers up to 2^53.
fn limit(v: &Value) -> Option<f64> {
    let f = v.as_f64()?;
    (f.is_finite() && f.abs() <= 9_007_199_254_740_992.0).then_some(f)
}

mod quote_index;
mod scanner;
#[cfg(test)]
mod tests;
