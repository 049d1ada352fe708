//! YAML text → `serde_yaml_ng::Value`, built by our own visitor instead of the crate's
//! `Value` decoder, for what that decoder does wrong for a config file:
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
//!   (`y: [*x, *x, …]` with a big `x`: 100 KB of text, gigabytes of values; or `x` one
//!   long string: 2 MB of text, 2 GB of copies). The crate bounds alias jumps, not what
//!   they expand to; here the values built and the bytes of text they hold are counted,
//!   and a document that expands past [`Budget`] is refused quickly.
//! - `%TAG` directives expand too, without aliases: each `!e!x` is built with the whole
//!   prefix `%TAG !e! …` gave its handle. The parser builds those before the visitor
//!   sees one, so the prefixes they add are counted on the tokens first (`depth.rs`),
//!   against the same budget of text.
//! - Tags of YAML's own types: the parser applies `!!int`, `!!float`, `!!bool` and
//!   `!!null` itself, and a value one does not fit (`!!float hi`) fails the whole parse;
//!   it drops the others (`!!binary`, `!!timestamp`) unsaid. Here they are marked before
//!   the parse and read by the visitor ([`core_tag_value`]): a value that does not fit is
//!   an error at its key path.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Number, Value};

use super::{ConfigError, KeyPath};

mod depth;
mod written;
use crate::config::decode::shown;
use depth::{pre_scan, CoreTag, TooBig};
pub use written::{key_text, shadow, Written};

/// The tag of the marker for an integer YAML's 64 bits can't hold. A YAML tag cannot
/// contain a space, so no file can write this one.
const BIG_INT_TAG: &str = "portico: integer beyond 64 bits";

/// What a document may expand to. Every file without aliases fits: each value takes at
/// least a byte of text, and its strings (keys, tags) hold at most 1.5 times the bytes
/// they were written in (`"\L"`, two bytes, is U+2028, three), but for the prefixes of
/// `%TAG` directives, which `depth.rs` counts against `bytes` on their own. The rest is
/// for aliases used to share blocks, and bounds the memory a small file can make the
/// parse take.
#[derive(Clone, Copy)]
struct Budget {
    values: usize,
    bytes: usize,
}

/// Text that aliases may add beyond twice the file's length.
const ALIAS_TEXT_BYTES: usize = 16 << 20;

impl Budget {
    fn of(text: &str) -> Budget {
        Budget {
            values: 1_000_000 + text.len(),
            bytes: ALIAS_TEXT_BYTES + 2 * text.len(),
        }
    }
}

/// A parsed document, and the problems found in it that did not stop the parse.
pub struct Parsed {
    pub root: Value,
    pub errors: Vec<ConfigError>,
    /// A key written twice was left out (one of `errors`): the tree's map entries no
    /// longer pair with the text's by position.
    pub keys_dropped: bool,
    /// The paths of values whose tag does not fit them (each one of `errors`).
    pub tag_refused: Vec<String>,
}

/// Parses one YAML document. Err with a message when the text is not YAML at all (or
/// expands past the budget).
pub fn parse(text: &str) -> Result<Parsed, serde_yaml_ng::Error> {
    let budget = Budget::of(text);
    let scan = pre_scan(text, budget.bytes);
    match scan.too_big {
        // The parser reads every event before its depth limit applies, and its time
        // grows with the square of the nesting: `[[[…]]]` 100,000 deep (200 KB) held
        // check, a reload or `openapi import` for minutes.
        Some(TooBig::Deep { line, column }) => {
            return Err(de::Error::custom(format_args!(
                "recursion limit exceeded at line {line} column {column}"
            )))
        }
        // The parser writes each tag out with its handle's prefix, every time, and the
        // loader keeps them all before the visitor counts anything.
        Some(TooBig::Tags { line, column }) => {
            return Err(de::Error::custom(format_args!(
                "the prefixes that %TAG directives give the document's tags add up to more \
                 than {} bytes of text at line {line} column {column}; refused",
                budget.bytes
            )))
        }
        None => {}
    }
    // The tags of YAML's own types but `!!str` are marked (`mark_core_tag`) and read here
    // (`core_tag_value`): the parser applied `!!int` and the like itself, a value one does
    // not fit stopping the parse there (`!!float hi`), hiding every other problem, and
    // dropped the others unsaid (`!!binary aGk=` read as the text "aGk=").
    let text = marked(text, &scan.core_tags);
    let state = RefCell::new(State {
        errors: Vec::new(),
        keys_dropped: false,
        tag_refused: Vec::new(),
        values: 0,
        bytes: 0,
        budget,
    });
    let root = Node {
        path: &KeyPath::root(),
        state: &state,
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(&text))?;
    let state = state.into_inner();
    Ok(Parsed {
        root,
        errors: state.errors,
        keys_dropped: state.keys_dropped,
        tag_refused: state.tag_refused,
    })
}

/// How [`marked`] writes a tag of YAML's types: a local tag no file writes by chance.
const MARK: &str = "!~yaml:";

/// `text` with each of `tags` written as the verbatim local tag `!<!~yaml:NAME>`, which
/// the parser hands over as it is, whatever the file's `%TAG` handles say. Lines stay
/// where they were; a column the parser reports after such a tag on its line may be off
/// by a few.
fn marked<'t>(text: &'t str, tags: &[CoreTag]) -> std::borrow::Cow<'t, str> {
    if tags.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16 * tags.len());
    let mut from = 0;
    for t in tags {
        if t.at < from || !text.is_char_boundary(t.at) || !text.is_char_boundary(t.end) {
            continue;
        }
        out.push_str(&text[from..t.at]);
        out.push_str("!<");
        out.push_str(MARK);
        out.push_str(&t.name);
        out.push('>');
        from = t.end;
    }
    out.push_str(&text[from..]);
    std::borrow::Cow::Owned(out)
}

/// A value tagged `tag`: as is, or what its tag makes of it (`!!int "12"` is 12), when
/// `tag` names one of YAML's types as [`marked`] wrote it (a `!~yaml:name` a file writes
/// counts as the same); Err when it does not fit the tag or the tag is not read.
fn core_tag_value(tag: &Tag, value: &Value) -> Option<Result<Value, String>> {
    let tag = tag.to_string();
    let name = tag.strip_prefix(MARK)?;
    let text = value.as_str();
    let read = match name {
        // On a scalar the parser reads it (the scan marks it on nothing else).
        "str" => match value {
            Value::Null => Some(Value::String(String::new())),
            Value::String(_) => Some(value.clone()),
            _ => None,
        },
        "int" => match value {
            Value::Number(n) if !n.is_f64() => Some(value.clone()),
            _ if big_int(value).is_some() => Some(value.clone()),
            _ => text.and_then(yaml_int),
        },
        // A plain `1000` under `!!float` is the float 1000.0, as `!!float "1000"` is.
        "float" => match value {
            Value::Number(n) => n.as_f64().map(|f| Value::Number(f.into())),
            _ => text.and_then(yaml_float),
        },
        "bool" => match (value, text) {
            (Value::Bool(_), _) => Some(value.clone()),
            (_, Some("true" | "True" | "TRUE")) => Some(Value::Bool(true)),
            (_, Some("false" | "False" | "FALSE")) => Some(Value::Bool(false)),
            _ => None,
        },
        "null" => match (value, text) {
            (Value::Null, _) | (_, Some("" | "~" | "null" | "Null" | "NULL")) => Some(Value::Null),
            _ => None,
        },
        "map" => value.is_mapping().then(|| value.clone()),
        "seq" => value.is_sequence().then(|| value.clone()),
        "?" => {
            return Some(Err(
                "this YAML tag is not supported: write the value itself, untagged".into(),
            ))
        }
        _ => {
            return Some(Err(format!(
                "YAML's !!{name} tag is not supported: write the value itself, untagged"
            )))
        }
    };
    let kind = match name {
        "int" => "an integer",
        "float" => "a float",
        "bool" => "a boolean",
        "null" => "null",
        "map" => "a map",
        "seq" => "a list",
        _ => "text",
    };
    let what = match value {
        Value::String(s) => shown(s),
        Value::Mapping(_) => "a map".to_owned(),
        Value::Sequence(_) => "a list".to_owned(),
        _ => "this value".to_owned(),
    };
    Some(read.ok_or_else(|| format!("{what} is not {kind}, as its tag !!{name} says")))
}

/// An integer as YAML writes one (`12`, `-3`, `0x1F`, `0o17`, `+5`), quoted.
fn yaml_int(s: &str) -> Option<Value> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = match digits.get(..2) {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        _ => (10, digits),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let sign = if negative { "-" } else { "" };
    let Ok(n) = i128::from_str_radix(digits, radix) else {
        // Past 128 bits, decimal: what an unquoted one is (`big_int`).
        let decimal = radix == 10 && digits.bytes().all(|b| b.is_ascii_digit());
        return decimal.then(|| big_int_value(format!("{sign}{digits}")));
    };
    let n = if negative { -n } else { n };
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(i), _) => Some(Value::Number(i.into())),
        (_, Ok(u)) => Some(Value::Number(u.into())),
        _ => Some(big_int_value(n.to_string())),
    }
}

/// A float as YAML writes one (`1.5`, `-2e3`, `.inf`, `.nan`), quoted.
fn yaml_float(s: &str) -> Option<Value> {
    let unsigned = s.strip_prefix('+').unwrap_or(s);
    if unsigned.len() < s.len() && unsigned.starts_with(['+', '-']) {
        return None;
    }
    let f = match unsigned {
        ".inf" | ".Inf" | ".INF" => f64::INFINITY,
        _ if matches!(s, "-.inf" | "-.Inf" | "-.INF") => f64::NEG_INFINITY,
        _ if matches!(s, ".nan" | ".NaN" | ".NAN") => f64::NAN,
        // Rust's parse takes words YAML does not ("inf", "NaN").
        t if t
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) =>
        {
            return None
        }
        t => t.parse().ok()?,
    };
    Some(Value::Number(f.into()))
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

/// The marker of an integer too large for 64 bits ([`big_int`] reads it).
fn big_int_value(digits: String) -> Value {
    Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(BIG_INT_TAG),
        value: Value::String(digits),
    }))
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
    /// A key written twice was dropped: the tree no longer has the text's entries.
    keys_dropped: bool,
    tag_refused: Vec<String>,
    values: usize,
    /// Of the strings built (values, keys, tags): each alias copies its target's.
    bytes: usize,
    budget: Budget,
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
        if st.values > st.budget.values {
            return Err(E::custom(format_args!(
                "the document expands to more than {} values through its aliases (*name); \
                 refused",
                st.budget.values
            )));
        }
        Ok(v)
    }

    /// Counts `len` bytes of text against the budget, before they are copied: a string
    /// an alias repeats is one value each time but all of its bytes.
    fn text<E: de::Error>(&self, len: usize) -> Result<(), E> {
        let mut st = self.state.borrow_mut();
        st.bytes = st.bytes.saturating_add(len);
        if st.bytes > st.budget.bytes {
            return Err(E::custom(format_args!(
                "the document expands to more than {} bytes of text through its aliases \
                 (*name); refused",
                st.budget.bytes
            )));
        }
        Ok(())
    }

    fn big<E: de::Error>(&self, digits: String) -> Result<Value, E> {
        self.text(digits.len())?;
        self.count(big_int_value(digits))
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
        self.text(s.len())?;
        self.count(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.text(s.len())?;
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
        loop {
            let before = self.state.borrow().errors.len();
            let Some(key) = map.next_key_seed(self)? else {
                break;
            };
            let path = match key_text(&key) {
                Some(name) => self.path.key(&name),
                None => self.path.clone(),
            };
            // A key's own tag was reported at the map: it belongs to the key.
            for e in &mut self.state.borrow_mut().errors[before..] {
                if e.path == self.path.as_str() {
                    e.path = path.as_str().to_owned();
                }
            }
            let value = map.next_value_seed(self.at(&path))?;
            // Keys that differ here but read as one text (`200:` and `"200":`) are
            // `Decoder::entries`'s to find: only the decoder knows a key's written text.
            if out.contains_key(&key) {
                // The first one stays: what follows it is checked against that one.
                let mut state = self.state.borrow_mut();
                state.errors.push(
                    path.error("this key is written twice in its map (the first one is read)"),
                );
                state.keys_dropped = true;
                continue;
            }
            out.insert(key, value);
        }
        self.count(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, contents) = data.variant_seed(TagText(self))?;
        let value = contents.newtype_variant_seed(self)?;
        // `!`, the non-specific tag: the value as it would be untagged.
        if matches!(tag.to_string().as_str(), "!" | "!!") {
            return Ok(value);
        }
        match core_tag_value(&tag, &value) {
            Some(Ok(read)) => return Ok(read),
            Some(Err(why)) => {
                // The value stands, untagged: what is inside it is still checked, but
                // not the value itself again at its key (`Written::tag_refused`).
                let mut state = self.state.borrow_mut();
                state.errors.push(self.path.error(why));
                state.tag_refused.push(self.path.as_str().to_owned());
                return Ok(value);
            }
            None => {}
        }
        self.count(Value::Tagged(Box::new(TaggedValue { tag, value })))
    }
}

/// A `!tag`'s text (how serde_yaml_ng hands tagged values to a visitor), counted
/// against the budget as the node's strings are (an alias copies it too).
struct TagText<'p, 's>(Node<'p, 's>);

impl<'de> DeserializeSeed<'de> for TagText<'_, '_> {
    type Value = Tag;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tag, D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for TagText<'_, '_> {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML tag")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Tag, E> {
        if s.is_empty() {
            return Err(E::custom("empty YAML tag"));
        }
        self.0.text(s.len())?;
        Ok(Tag::new(s))
    }
}

#[cfg(test)]
mod tag_tests;
#[cfg(test)]
mod tests;
