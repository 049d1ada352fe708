//! YAML text → `serde_yaml_ng::Value`, built by our own visitor instead of the crate's
//! `Value` decoder, for three things that decoder does wrong for a config file:
//!
//! - An integer beyond 64 bits (`burst: 99999999999999999999999`) fails the whole parse
//!   with "invalid type: integer … as u128, expected any YAML value", hiding every other
//!   error. Here it becomes a marker holding its digits ([`big_int`]): the decoder reports
//!   it at its key path where a number was expected, and reads it as text or as a float
//!   where those are wanted.
//! - A key written twice in one map fails the parse too, without saying where for the top
//!   level. Here it is an error at its key path and the first value is kept, so the rest
//!   of the file is still checked.
//! - Aliases are expanded as they are read, so a small file can describe a huge tree
//!   (`y: [*x, *x, …]` with a big `x`: 100 KB of text, gigabytes of values). The crate
//!   bounds alias jumps, not what they expand to; here the values built are counted and a
//!   document that expands past [`budget`] is refused quickly.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Number, Value};

use super::{ConfigError, KeyPath};

mod written;
pub use written::{key_text, shadow, Written};

/// The tag of the marker for an integer YAML's 64 bits can't hold. A YAML tag cannot
/// contain a space, so no file can write this one.
const BIG_INT_TAG: &str = "portico: integer beyond 64 bits";

/// Values a document may expand to: every value of a file without aliases fits (each
/// takes at least a byte of text), plus a million for aliases used to share blocks.
fn budget(text: &str) -> usize {
    1_000_000 + text.len()
}

/// A parsed document, and the problems found in it that did not stop the parse.
pub struct Parsed {
    pub root: Value,
    pub errors: Vec<ConfigError>,
}

/// Parses one YAML document. Err with a message when the text is not YAML at all (or
/// expands past the budget).
pub fn parse(text: &str) -> Result<Parsed, serde_yaml_ng::Error> {
    if let Some((line, column)) = flow_too_deep(text) {
        // The parser reads every event before its depth limit applies, and its time
        // grows with the square of the nesting: `[[[…]]]` 100,000 deep (200 KB) held
        // check, a reload or `openapi import` for minutes.
        return Err(de::Error::custom(format_args!(
            "recursion limit exceeded at line {line} column {column}"
        )));
    }
    let state = RefCell::new(State {
        errors: Vec::new(),
        values: 0,
        budget: budget(text),
    });
    let root = Node {
        path: &KeyPath::root(),
        state: &state,
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text))?;
    Ok(Parsed {
        root,
        errors: state.into_inner().errors,
    })
}

/// Where flow collections (`[`, `{`) open more than [`FLOW_DEPTH`] deep, found in one
/// pass: quoted scalars and comments are passed over; a bracket inside a plain scalar
/// counts, which only ever reaches the limit in a file the parser would refuse anyway
/// (it allows 128 levels in all).
fn flow_too_deep(text: &str) -> Option<(usize, usize)> {
    const FLOW_DEPTH: usize = 1000;
    let b = text.as_bytes();
    let (mut depth, mut line, mut line_start, mut i) = (0usize, 1, 0, 0);
    while i < b.len() {
        let prev = i.checked_sub(1).map(|j| b[j]);
        let token_start = prev.is_none_or(|p| p.is_ascii_whitespace() || b"[{,".contains(&p));
        match b[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'#' if prev.is_none_or(|p| p.is_ascii_whitespace()) => {
                while i + 1 < b.len() && b[i + 1] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') if token_start => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q == b'"' {
                        i += 1;
                    }
                    if b.get(i) == Some(&b'\n') {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > FLOW_DEPTH {
                    return Some((line, text[line_start..i].chars().count() + 1));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The parser's message, with what its two limits mean: "repetition limit exceeded"
/// alone does not say that the file's aliases are the problem.
pub fn error_text(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    if text.starts_with("repetition limit exceeded") {
        format!("{text}: its aliases (*name) expand too many times; refused")
    } else if text.starts_with("recursion limit exceeded") {
        format!("{text}: values nested more than 128 deep")
    } else {
        text
    }
}

/// The digits of an integer too large for 64 bits, as written (with its sign).
pub fn big_int(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == BIG_INT_TAG => t.value.as_str(),
        _ => None,
    }
}

/// The tree with every too-large integer as the nearest float, as JSON reads such
/// numbers (JSON Schema models, OpenAPI documents, the `GET /config` view).
pub fn floats_for_big_ints(v: &mut Value) {
    if let Some(n) = big_int(v).and_then(|d| d.parse::<f64>().ok()) {
        *v = Value::Number(Number::from(n));
        return;
    }
    match v {
        Value::Sequence(items) => items.iter_mut().for_each(floats_for_big_ints),
        Value::Mapping(m) => m.values_mut().for_each(floats_for_big_ints),
        Value::Tagged(t) => floats_for_big_ints(&mut t.value),
        _ => {}
    }
}

struct State {
    errors: Vec<ConfigError>,
    values: usize,
    budget: usize,
}

/// Builds the value at `path`.
#[derive(Clone, Copy)]
struct Node<'p, 's> {
    path: &'p KeyPath,
    state: &'s RefCell<State>,
}

impl<'p, 's> Node<'p, 's> {
    fn at<'q>(&self, path: &'q KeyPath) -> Node<'q, 's> {
        Node {
            path,
            state: self.state,
        }
    }

    /// Counts one value against the budget.
    fn count<E: de::Error>(&self, v: Value) -> Result<Value, E> {
        let mut st = self.state.borrow_mut();
        st.values += 1;
        if st.values > st.budget {
            return Err(E::custom(format_args!(
                "the document expands to more than {} values through its aliases (*name); \
                 refused",
                st.budget
            )));
        }
        Ok(v)
    }

    fn big<E: de::Error>(&self, digits: String) -> Result<Value, E> {
        self.count(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(BIG_INT_TAG),
            value: Value::String(digits),
        })))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.count(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        self.count(Value::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        self.count(Value::Number(n.into()))
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Value, E> {
        self.big(n.to_string())
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Value, E> {
        self.big(n.to_string())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        self.count(Value::Number(n.into()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.count(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.count(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.count(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.count(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = self.path.index(items.len());
            match seq.next_element_seed(self.at(&path))? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        self.count(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some(key) = map.next_key_seed(self)? {
            let path = match key_text(&key) {
                Some(name) => self.path.key(&name),
                None => self.path.clone(),
            };
            let value = map.next_value_seed(self.at(&path))?;
            // Keys that differ here but read as one text (`200:` and `"200":`) are
            // `Decoder::entries`'s to find: only the decoder knows a key's written text.
            if out.contains_key(&key) {
                // The first one stays: what follows it is checked against that one.
                self.state.borrow_mut().errors.push(
                    path.error("this key is written twice in its map (the first one is read)"),
                );
                continue;
            }
            out.insert(key, value);
        }
        self.count(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, contents) = data.variant_seed(TagText)?;
        let value = contents.newtype_variant_seed(self)?;
        self.count(Value::Tagged(Box::new(TaggedValue { tag, value })))
    }
}

/// A `!tag`'s text (how serde_yaml_ng hands tagged values to a visitor).
struct TagText;

impl<'de> DeserializeSeed<'de> for TagText {
    type Value = Tag;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tag, D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for TagText {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML tag")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Tag, E> {
        if s.is_empty() {
            return Err(E::custom("empty YAML tag"));
        }
        Ok(Tag::new(s))
    }
}

#[cfg(test)]
mod tests;
