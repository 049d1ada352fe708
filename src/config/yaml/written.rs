//! The text a number or boolean was written as, for the keys and values that are text
//! (stage variables, header values, parameter mappings, domain base paths). API
//! Gateway's stage variables are strings, and `version: 1.10` means "1.10", not the
//! float's "1.1"; `x-n: 0x10` means "0x10", not "16"; `tag: 1e3` means "1e3", not
//! "1000.0"; a base path `1.10:` is "1.10".
//!
//! The parser hands a visitor only the value it read, never its text. But
//! serde_yaml_ng gives any scalar's text to `deserialize_str`, so a second pass over the
//! same text, led by the tree the first pass built, asks for exactly those scalars as
//! strings. The result is a tree of the same shape ([`shadow`]); `<<` merge keys are
//! applied to it as to the config tree, and then [`Written`] pairs the two by key path.

use std::collections::HashMap;
use std::fmt;

use serde::de::Visitor;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess};
use serde_yaml_ng::{Mapping, Value};

use super::big_int;
use crate::config::KeyPath;

/// A tree shaped like `model` (what [`super::parse`] made of `text`) in which every
/// number and boolean is a string holding its text as written, everything else is
/// null, and each map entry's value is `[key text or null, value]` (but a `<<` entry's,
/// which must stay a map or list of maps to merge like the config's).
///
/// Keys are paired with the first pass's by position, so `model` must come from a
/// parse that found no key written twice (one it dropped). `Value::Null` when the
/// second pass fails, which it should not (the first read the same text): then values
/// are rendered as before, not refused.
pub fn shadow(text: &str, model: &Value) -> Value {
    Shadow { model }
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .unwrap_or(Value::Null)
}

/// The text of each number and boolean (value or map key) whose rendering is not what
/// was written, by key path, with the value it was read as: a tree merged in later (an
/// OpenAPI file's) may put another value at the same path, and that one keeps its
/// rendering.
#[derive(Debug, Default)]
pub struct Written {
    values: HashMap<String, (Value, String)>,
    /// By the path of the map and the key as read.
    keys: HashMap<(String, Value), String>,
    /// Paths of values refused for a tag that does not fit them: refused once, at the
    /// parse (`!!float hi`), not a second time as the value read there ("expected a
    /// number, got \"hi\"").
    pub tag_refused: Vec<String>,
}

impl Written {
    /// Pairs the config tree with its [`shadow`], both with merge keys applied.
    pub fn new(root: &Value, shadow: &Value) -> Self {
        let mut out = Written::default();
        out.collect(root, shadow, &KeyPath::root());
        out
    }

    /// A number's or boolean's text: as written when known, else its rendering. `None`
    /// for any other value.
    pub fn text(&self, v: &Value, path: &KeyPath) -> Option<String> {
        let rendered = rendering(v)?;
        match self.values.get(path.as_str()) {
            Some((read, text)) if read == v => Some(text.clone()),
            _ => Some(rendered),
        }
    }

    /// The text of key `k` of the map at `path`, as written; `None` for a key that is
    /// not a scalar. YAML reads `1:` or `true:` as a number or a boolean, and users
    /// mean the text.
    pub fn key(&self, k: &Value, path: &KeyPath) -> Option<String> {
        if let Value::String(s) = k {
            return Some(s.clone());
        }
        let rendered = rendering(k)?;
        let written = self.keys.get(&(path.as_str().to_owned(), k.clone()));
        Some(written.cloned().unwrap_or(rendered))
    }

    fn collect(&mut self, v: &Value, shadow: &Value, path: &KeyPath) {
        match (v, shadow) {
            (Value::Mapping(map), Value::Mapping(written)) => {
                for (k, v) in map {
                    let Some(Value::Sequence(pair)) = written.get(k) else {
                        continue;
                    };
                    let [text, s] = &pair[..] else { continue };
                    let name = match text {
                        Value::String(t) if rendering(k).is_some_and(|r| r != *t) => {
                            self.keys
                                .insert((path.as_str().to_owned(), k.clone()), t.clone());
                            t.clone()
                        }
                        _ => match key_text(k) {
                            Some(name) => name,
                            None => continue,
                        },
                    };
                    self.collect(v, s, &path.key(&name));
                }
            }
            (Value::Sequence(items), Value::Sequence(written)) => {
                for (i, (v, s)) in items.iter().zip(written).enumerate() {
                    self.collect(v, s, &path.index(i));
                }
            }
            (_, Value::String(text)) if rendering(v).is_some_and(|r| r != *text) => {
                let entry = (v.clone(), text.clone());
                self.values.insert(path.as_str().to_owned(), entry);
            }
            _ => {}
        }
    }
}

/// How a map key reads as text when its written text is not known (error paths).
pub fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        other => rendering(other),
    }
}

/// A number's, boolean's or too-large integer's text as the parser's value gives it.
fn rendering(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => big_int(other).map(str::to_owned),
    }
}

/// Reads the value `model` was read from.
struct Shadow<'m> {
    model: &'m Value,
}

impl<'de> DeserializeSeed<'de> for Shadow<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.model {
            Value::Mapping(m) => d.deserialize_map(MapShadow(m)),
            Value::Sequence(items) => d.deserialize_seq(SeqShadow(items)),
            v if rendering(v).is_some() => d.deserialize_str(ScalarText),
            _ => d.deserialize_ignored_any(IgnoredAny).map(|_| Value::Null),
        }
    }
}

struct MapShadow<'m>(&'m Mapping);

impl<'de> Visitor<'de> for MapShadow<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        for (k, model) in self.0 {
            let text = if rendering(k).is_some() {
                map.next_key_seed(ScalarText)?
            } else {
                map.next_key::<IgnoredAny>()?.map(|_| Value::Null)
            };
            let Some(text) = text else { break };
            let v = map.next_value_seed(Shadow { model })?;
            let entry = if k.as_str() == Some("<<") {
                v
            } else {
                Value::Sequence(vec![text, v])
            };
            out.insert(k.clone(), entry);
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Mapping(out))
    }
}

struct SeqShadow<'m>(&'m [Value]);

impl<'de> Visitor<'de> for SeqShadow<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(self.0.len());
        for model in self.0 {
            match seq.next_element_seed(Shadow { model })? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Sequence(out))
    }
}

/// A scalar's text as written (its tag, as in `!!int 0x1F`, is not part of it).
struct ScalarText;

impl<'de> DeserializeSeed<'de> for ScalarText {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ScalarText {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
}
