//! A request body as the `jsonschema` validator reads it, without a `serde_json::Value`.
//!
//! Building a `Value` for a 1 KiB body costs dozens of allocations (every string, every
//! map node) and freeing them again: most of what request validation cost. `jsonschema`
//! validates any representation that implements its `Json` trait, so the body is parsed
//! by `serde_json` (the same grammar, limits and number handling as `Value`) into a flat
//! tape of entries whose strings point into the body, in buffers each worker thread
//! reuses: no allocation per request once warm. The validator compiled for this
//! representation applies the same schema with the same code as the `Value` one.
//!
//! Two shapes make the tape give way to `Value` (`parse` returns None): an object with a
//! repeated member name (`Value` keeps the last one; the tape would see both) and an
//! object of more than `MAX_MEMBERS` members (the duplicate check is pairwise). Invalid
//! JSON is None too: the `Value` path reports it.

use std::borrow::Cow;
use std::cell::Cell;

use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};
use jsonschema::types::JsonType;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// Objects larger than this are validated through `Value`.
const MAX_MEMBERS: usize = 64;

/// A string: a span of the body (no escapes) or of the tape's decoded text.
#[derive(Debug, Clone, Copy)]
struct Text {
    start: u32,
    len: u32,
    decoded: bool,
}

#[derive(Debug, Clone)]
enum Entry {
    Null,
    Bool(bool),
    Number(Number),
    /// A string value, or an object member's name (followed by its value).
    Str(Text),
    /// `end`: the index after the last entry of this subtree.
    Array {
        len: u32,
        end: u32,
    },
    Object {
        len: u32,
        end: u32,
    },
}

/// A parsed body; entries in document order, the root at 0.
pub struct Tape<'a> {
    body: &'a [u8],
    decoded: String,
    entries: Vec<Entry>,
}

thread_local! {
    /// The worker's tape buffers, lent to one validation at a time.
    static SPARE: Cell<(Vec<Entry>, String)> = const { Cell::new((Vec::new(), String::new())) };
}

impl<'a> Tape<'a> {
    /// Parses `body`; None when it is not JSON or has a shape the tape leaves to `Value`.
    pub fn parse(body: &'a [u8]) -> Option<Tape<'a>> {
        let (mut entries, mut decoded) = SPARE.take();
        entries.clear();
        decoded.clear();
        let mut tape = Tape {
            body,
            decoded,
            entries,
        };
        // UTF-8 checked once for the whole body: from a `&str`, serde_json checks no
        // string again (from bytes it checked each one, ~10% of the parse).
        let text = std::str::from_utf8(body).ok();
        let mut de = serde_json::Deserializer::from_str(text.unwrap_or_default());
        let ok = text.is_some() && Seed(&mut tape).deserialize(&mut de).is_ok() && de.end().is_ok();
        ok.then_some(tape)
    }

    pub fn root(&self) -> TapeNode<'_> {
        TapeNode::At(self, 0)
    }

    fn text(&self, t: Text) -> &str {
        let (start, end) = (t.start as usize, (t.start + t.len) as usize);
        if t.decoded {
            &self.decoded[start..end]
        } else {
            // SAFETY: `visit_borrowed_str` recorded this span from a `&str` that serde_json
            // returned, pointing into `body`: valid UTF-8 on char boundaries.
            unsafe { std::str::from_utf8_unchecked(&self.body[start..end]) }
        }
    }

    /// The index after the subtree at `i`.
    fn after(&self, i: u32) -> u32 {
        match &self.entries[i as usize] {
            Entry::Array { end, .. } | Entry::Object { end, .. } => *end,
            _ => i + 1,
        }
    }

    fn push_text(&mut self, s: &str, borrowed: bool) {
        let base = self.body.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        let text = if borrowed && at >= base && at + s.len() <= base + self.body.len() {
            Text {
                start: (at - base) as u32,
                len: s.len() as u32,
                decoded: false,
            }
        } else {
            let start = self.decoded.len() as u32;
            self.decoded.push_str(s);
            Text {
                start,
                len: s.len() as u32,
                decoded: true,
            }
        };
        self.entries.push(Entry::Str(text));
    }

    /// Whether the object whose members start after `at` repeats a name. Pairwise (at
    /// most `MAX_MEMBERS` names), but on one word per name, its first seven bytes and its
    /// length: whole names are compared only when those match. Comparing the names
    /// themselves pair by pair was a fifth of the parse.
    fn repeats_a_name(&self, at: u32, end: u32) -> bool {
        let mut keys = [0u64; MAX_MEMBERS];
        let mut names = [0u32; MAX_MEMBERS];
        let mut n = 0;
        let mut i = at + 1;
        while i < end {
            if let Entry::Str(t) = &self.entries[i as usize] {
                let name = self.text(*t);
                let key = name_key(name.as_bytes());
                let same = |(k, j): (&u64, &u32)| {
                    *k == key
                        && matches!(&self.entries[*j as usize], Entry::Str(o) if self.text(*o) == name)
                };
                if keys[..n].iter().zip(&names[..n]).any(same) {
                    return true;
                }
                keys[n] = key;
                names[n] = i;
                n += 1;
            }
            i = self.after(i + 1);
        }
        false
    }
}

/// A member name's first seven bytes and its length (capped) in one word: names with
/// different keys differ.
fn name_key(name: &[u8]) -> u64 {
    let prefix = super::body_scan::head_word(name) & 0x00ff_ffff_ffff_ffff;
    prefix | (name.len().min(255) as u64) << 56
}

/// The largest buffers a worker keeps for its next tape (1.5 MiB of entries, 1 MiB of
/// text): a larger body's are freed, not held for the worker's life (a 10 MB body's
/// tape is about 120 MB).
const SPARE_ENTRIES: usize = 1 << 16;
const SPARE_TEXT: usize = 1 << 20;

impl Drop for Tape<'_> {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        let decoded = std::mem::take(&mut self.decoded);
        if entries.capacity() <= SPARE_ENTRIES && decoded.capacity() <= SPARE_TEXT {
            SPARE.set((entries, decoded));
            return;
        }
        drop((entries, decoded));
        // A worker that goes idle next makes no allocator call that would return the
        // pages: ask for it now (RSS stayed 250 MB above its base after a 10 MB body).
        // SAFETY: mi_collect only frees pages mimalloc no longer uses.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}

/// Parses one value onto the tape.
struct Seed<'t, 'a>(&'t mut Tape<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for Seed<'_, 'a> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Seed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.entries.push(Entry::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.entries.push(Entry::Number(v.into()));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.entries.push(Entry::Number(v.into()));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As `Value` does: a float JSON can't hold becomes null.
        self.0
            .entries
            .push(Number::from_f64(v).map_or(Entry::Null, Entry::Number));
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.0.push_text(v, true);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push_text(v, false);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.entries.push(Entry::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.0.entries.len();
        self.0.entries.push(Entry::Array { len: 0, end: 0 });
        let mut len = 0u32;
        while seq.next_element_seed(Seed(&mut *self.0))?.is_some() {
            len += 1;
        }
        let end = self.0.entries.len() as u32;
        self.0.entries[at] = Entry::Array { len, end };
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.0.entries.len();
        self.0.entries.push(Entry::Object { len: 0, end: 0 });
        let mut len = 0u32;
        while map.next_key_seed(Seed(&mut *self.0))?.is_some() {
            map.next_value_seed(Seed(&mut *self.0))?;
            len += 1;
        }
        let end = self.0.entries.len() as u32;
        self.0.entries[at] = Entry::Object { len, end };
        if len as usize > MAX_MEMBERS || self.0.repeats_a_name(at as u32, end) {
            return Err(serde::de::Error::custom("left to serde_json::Value"));
        }
        Ok(())
    }
}

/// The representation `jsonschema` validates request bodies in.
pub struct BodyJson;

/// A value on a tape, or a member name `jsonschema` asks to see as a value.
#[derive(Clone, Copy)]
pub enum TapeNode<'a> {
    At(&'a Tape<'a>, u32),
    Name(&'a str),
}

impl Json for BodyJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();
    // A lookup is a linear scan of the members, so one pass over them always beats
    // looking names up one by one (objects here have at most `MAX_MEMBERS`).
    const KEYS_PER_LOOKUP: usize = MAX_MEMBERS;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(TapeNode<'_>) -> T) -> T {
        f(TapeNode::Name(string))
    }
}

impl<'a> TapeNode<'a> {
    fn entry(&self) -> Option<(&'a Tape<'a>, u32, &'a Entry)> {
        match *self {
            TapeNode::At(t, i) => Some((t, i, &t.entries[i as usize])),
            TapeNode::Name(_) => None,
        }
    }

    fn str(&self) -> Option<&'a str> {
        match *self {
            TapeNode::Name(s) => Some(s),
            TapeNode::At(t, i) => match &t.entries[i as usize] {
                Entry::Str(text) => Some(t.text(*text)),
                _ => None,
            },
        }
    }
}

impl<'a> Node<'a, BodyJson> for TapeNode<'a> {
    type Object = Members<'a>;
    type Array = Elements<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<Members<'a>> {
        match self.entry()? {
            (tape, at, &Entry::Object { len, end }) => Some(Members { tape, at, len, end }),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<Elements<'a>> {
        match self.entry()? {
            (tape, at, &Entry::Array { len, end }) => Some(Elements { tape, at, len, end }),
            _ => None,
        }
    }
    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }
    fn as_number(&self) -> Option<&'a Number> {
        match *self {
            TapeNode::At(t, i) => match &t.entries[i as usize] {
                Entry::Number(n) => Some(n),
                _ => None,
            },
            TapeNode::Name(_) => None,
        }
    }
    fn as_boolean(&self) -> Option<bool> {
        match self.entry()? {
            (_, _, &Entry::Bool(b)) => Some(b),
            _ => None,
        }
    }
    fn is_null(&self) -> bool {
        matches!(self.entry(), Some((_, _, Entry::Null)))
    }
    fn json_type(&self) -> JsonType {
        match self.entry() {
            None | Some((_, _, Entry::Str(_))) => JsonType::String,
            Some((_, _, Entry::Null)) => JsonType::Null,
            Some((_, _, Entry::Bool(_))) => JsonType::Boolean,
            Some((_, _, Entry::Number(_))) => JsonType::Number,
            Some((_, _, Entry::Array { .. })) => JsonType::Array,
            Some((_, _, Entry::Object { .. })) => JsonType::Object,
        }
    }
    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let s = self.str()?;
        // A code point is one to four bytes: the byte length bounds the count.
        let bytes = s.len() as u64;
        if bytes < min || bytes.div_ceil(4) > max {
            return Some(false);
        }
        if min <= bytes.div_ceil(4) && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(s.chars().count() as u64)))
    }
    /// `enum` and `const`: scalars compare without building a `Value`.
    fn equals_value(&self, expected: &Value) -> bool {
        if let Some(s) = self.str() {
            return expected.as_str() == Some(s);
        }
        match self.entry() {
            Some((_, _, Entry::Null)) => expected.is_null(),
            Some((_, _, &Entry::Bool(b))) => expected.as_bool() == Some(b),
            Some((_, _, Entry::Number(n))) => {
                jsonschema::json::cmp::equal(&Value::Number(n.clone()), expected)
            }
            _ => match *self {
                TapeNode::At(t, i) => jsonschema::json::cmp::equal(&value_at(t, i), expected),
                TapeNode::Name(_) => false,
            },
        }
    }
    /// The node for an error's message (jsonschema reads it only there): a large subtree
    /// is cut short (see `report_value`).
    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(match *self {
            TapeNode::Name(s) => Value::String(shortened(s)),
            TapeNode::At(t, i) => {
                let mut left = REPORT_NODES;
                report_value(t, i, &mut left)
            }
        })
    }
    fn identity(&self) -> Option<NodeIdentity> {
        match *self {
            TapeNode::At(t, i) => Some(NodeIdentity::tagged(std::ptr::from_ref(t) as usize, i)),
            TapeNode::Name(_) => None,
        }
    }
}

/// How many nodes of a subtree an error's message shows, and how much of a string.
const REPORT_NODES: usize = 32;
const REPORT_TEXT: usize = 200;

/// The subtree at `i` for an error's message: its first `left` nodes, each string's first
/// `REPORT_TEXT` bytes, and a note of what is left out. Built whole, the instance of an
/// error on a large array was a `Value` many times the body's size.
fn report_value(t: &Tape, i: u32, left: &mut usize) -> Value {
    *left = left.saturating_sub(1);
    match &t.entries[i as usize] {
        Entry::Str(text) => Value::String(shortened(t.text(*text))),
        &Entry::Array { len, end } => {
            let mut items = Vec::new();
            let mut j = i + 1;
            while j < end && *left > 0 {
                items.push(report_value(t, j, left));
                j = t.after(j);
            }
            if items.len() < len as usize {
                items.push(Value::String(format!(
                    "… {} more",
                    len as usize - items.len()
                )));
            }
            Value::Array(items)
        }
        &Entry::Object { len, end } => {
            let mut map = serde_json::Map::new();
            let mut j = i + 1;
            while j < end && *left > 0 {
                if let Entry::Str(name) = &t.entries[j as usize] {
                    map.insert(shortened(t.text(*name)), report_value(t, j + 1, left));
                }
                j = t.after(j + 1);
            }
            if map.len() < len as usize {
                map.insert(
                    "…".into(),
                    format!("{} more", len as usize - map.len()).into(),
                );
            }
            Value::Object(map)
        }
        _ => value_at(t, i),
    }
}

fn shortened(s: &str) -> String {
    if s.len() <= REPORT_TEXT {
        return s.to_owned();
    }
    let cut = (0..=REPORT_TEXT).rev().find(|&i| s.is_char_boundary(i));
    format!("{}…", &s[..cut.unwrap_or(0)])
}

/// The subtree at `i` as a `Value` (comparisons of arrays and objects: `enum`, `const`).
fn value_at(t: &Tape, i: u32) -> Value {
    match &t.entries[i as usize] {
        Entry::Null => Value::Null,
        Entry::Bool(b) => Value::Bool(*b),
        Entry::Number(n) => Value::Number(n.clone()),
        Entry::Str(text) => Value::String(t.text(*text).to_owned()),
        &Entry::Array { end, .. } => {
            let mut items = Vec::new();
            let mut j = i + 1;
            while j < end {
                items.push(value_at(t, j));
                j = t.after(j);
            }
            Value::Array(items)
        }
        &Entry::Object { end, .. } => {
            let mut map = serde_json::Map::new();
            let mut j = i + 1;
            while j < end {
                if let Entry::Str(name) = &t.entries[j as usize] {
                    map.insert(t.text(*name).to_owned(), value_at(t, j + 1));
                }
                j = t.after(j + 1);
            }
            Value::Object(map)
        }
    }
}

#[derive(Clone, Copy)]
pub struct Members<'a> {
    tape: &'a Tape<'a>,
    at: u32,
    len: u32,
    end: u32,
}

pub struct MembersIter<'a> {
    tape: &'a Tape<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for MembersIter<'a> {
    type Item = (&'a str, TapeNode<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.end {
            let i = self.next;
            self.next = self.tape.after(i + 1);
            if let Entry::Str(name) = &self.tape.entries[i as usize] {
                return Some((self.tape.text(*name), TapeNode::At(self.tape, i + 1)));
            }
        }
        None
    }
}

impl<'a> Object<'a, BodyJson> for Members<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = MembersIter<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }
    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        self.members()
            .find(|(name, _)| *name == &**key)
            .map(|(_, v)| v)
    }
    fn members(&self) -> MembersIter<'a> {
        MembersIter {
            tape: self.tape,
            next: self.at + 1,
            end: self.end,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Elements<'a> {
    tape: &'a Tape<'a>,
    at: u32,
    len: u32,
    end: u32,
}

pub struct ElementsIter<'a> {
    tape: &'a Tape<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for ElementsIter<'a> {
    type Item = TapeNode<'a>;
    fn next(&mut self) -> Option<TapeNode<'a>> {
        (self.next < self.end).then(|| {
            let i = self.next;
            self.next = self.tape.after(i);
            TapeNode::At(self.tape, i)
        })
    }
}

impl<'a> Array<'a, BodyJson> for Elements<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = ElementsIter<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }
    fn elements(&self) -> ElementsIter<'a> {
        ElementsIter {
            tape: self.tape,
            next: self.at + 1,
            end: self.end,
        }
    }
}

#[cfg(test)]
#[path = "json_body_tests.rs"]
pub(super) mod tests;
