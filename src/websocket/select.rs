//! Route selection on WebSocket messages (API Gateway's `routeSelectionExpression`):
//! `$request.body.PATH` alone, or text with `${request.body.PATH}` parts, or literal text;
//! `\$` is a literal dollar. PATH is dotted keys with optional `[n]` indexes. A value is
//! used as text: strings as they are, other JSON stringified, a missing path as "".
//! A message that is not JSON can't be evaluated when the expression reads the body: it
//! goes to `$default`.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    parts: Vec<Part>,
}

impl Selection {
    pub fn compile(expr: &str) -> Result<Selection, String> {
        if expr.trim().is_empty() {
            // API Gateway requires one; read as text, it sent every message to `$default`.
            return Err("empty: it selects no route, and every message would go to $default (leave the key out for $request.body.action)".into());
        }
        if let Some(path) = expr.strip_prefix("$request.body.") {
            if !path.contains(['$', '{', '}']) {
                return Ok(Selection {
                    parts: vec![Part::Body(path_steps(path)?)],
                });
            }
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = expr;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("\\$") {
                text.push('$');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("${") {
                let end = r
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
                let var = &r[..end];
                let path = var
                    .strip_prefix("request.body.")
                    .ok_or_else(|| format!("{var:?}: only request.body.PATH can select a route"))?;
                if !text.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut text)));
                }
                parts.push(Part::Body(path_steps(path)?));
                rest = &r[end + 1..];
            } else if rest.starts_with('$') {
                return Err(format!(
                    "{expr:?}: write $request.body.PATH, ${{request.body.PATH}} or \\$ for a dollar"
                ));
            } else {
                let c = rest.chars().next().expect("not empty");
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(text));
        }
        Ok(Selection { parts })
    }

    /// The route key a message selects; None when the expression needs a JSON body and
    /// the message is not one (the message goes to `$default`).
    pub fn evaluate(&self, message: &[u8]) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(t) => out.push_str(t),
                Part::Body(steps) => {
                    let Some(raw) = select(message, steps).ok()? else {
                        continue;
                    };
                    let text = raw.get();
                    if text.starts_with('"') {
                        out.push_str(&serde_json::from_str::<String>(text).ok()?);
                    } else if text != "null" {
                        // Compact, as the value is written elsewhere; a number past f64
                        // (or a value nested past serde_json's limit) as it was sent.
                        match serde_json::from_str::<Value>(text) {
                            Ok(v) => out.push_str(&v.to_string()),
                            Err(_) => out.push_str(text),
                        }
                    }
                }
            }
        }
        Some(out)
    }
}

/// The JSON value at `steps` in `message` (None: there is none), reading the rest only
/// to check the message is JSON: without a `Value` of it, whose parse refuses what
/// API Gateway routes (128 levels of nesting, a number past f64 such as `1e400`), so
/// such a message went to `$default`. Duplicate names: the last one counts, as in a
/// `Value`.
fn select(message: &[u8], steps: &[Step]) -> Result<Option<Box<RawValue>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(message);
    let found = At(steps).deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// Follows the steps left; what is off the path is skipped (serde_json skips without
/// recursion and without reading numbers).
struct At<'s>(&'s [Step]);

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Option<Box<RawValue>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.is_empty() {
            Box::<RawValue>::deserialize(d).map(Some)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for At<'_> {
    type Value = Option<Box<RawValue>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<std::borrow::Cow<str>>()? {
            match self.0 {
                [Step::Key(k), rest @ ..] if *k == name => found = map.next_value_seed(At(rest))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut i = 0;
        loop {
            match self.0 {
                [Step::Index(n), rest @ ..] if *n == i => match seq.next_element_seed(At(rest))? {
                    Some(v) => found = v,
                    None => break,
                },
                _ => {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            i += 1;
        }
        Ok(found)
    }

    // A scalar where the path goes on: nothing there.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn path_steps(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for seg in path.split('.') {
        let (key, mut idx) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if key.is_empty() && idx.is_empty() {
            return Err(format!("empty segment in body path {path:?}"));
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while !idx.is_empty() {
            let close = idx
                .find(']')
                .ok_or_else(|| format!("unclosed [ in body path {path:?}"))?;
            let n = idx[1..close]
                .parse()
                .map_err(|_| format!("bad index in body path {path:?}"))?;
            steps.push(Step::Index(n));
            idx = &idx[close + 1..];
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        br#"{"service":"chat","action":"join","data":{"room":"room1234","n":[1,2]}}"#;

    fn eval(expr: &str, msg: &[u8]) -> Option<String> {
        Selection::compile(expr).unwrap().evaluate(msg)
    }

    /// The worked examples of API Gateway's route selection table.
    #[test]
    fn api_gateway_examples() {
        assert_eq!(eval("$request.body.action", MSG).as_deref(), Some("join"));
        assert_eq!(eval("${request.body.action}", MSG).as_deref(), Some("join"));
        assert_eq!(
            eval("${request.body.service}/${request.body.action}", MSG).as_deref(),
            Some("chat/join")
        );
        assert_eq!(
            eval("${request.body.action}-${request.body.invalidPath}", MSG).as_deref(),
            Some("join-")
        );
        assert_eq!(eval("action", MSG).as_deref(), Some("action"));
        assert_eq!(eval("\\$default", MSG).as_deref(), Some("$default"));
    }

    #[test]
    fn paths_values_and_non_json() {
        assert_eq!(
            eval("$request.body.data.room", MSG).as_deref(),
            Some("room1234")
        );
        assert_eq!(eval("$request.body.data.n[1]", MSG).as_deref(), Some("2"));
        assert_eq!(eval("$request.body.data.n", MSG).as_deref(), Some("[1,2]"));
        assert_eq!(eval("$request.body.nope", MSG).as_deref(), Some(""));
        assert_eq!(eval("$request.body.action", b"not json"), None);
        assert_eq!(eval("$request.body.action", br#"{"action":"a"} x"#), None);
        // Any JSON is routed: a number past f64, nesting past serde_json's limit.
        let deep = format!(
            r#"{{"action":"echo","x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            eval("$request.body.action", deep.as_bytes()).as_deref(),
            Some("echo")
        );
        assert_eq!(
            eval("$request.body.action", br#"{"n":1e400,"action":"echo"}"#).as_deref(),
            Some("echo")
        );
        assert_eq!(
            eval("$request.body.n", br#"{"n":1e400}"#).as_deref(),
            Some("1e400")
        );
        // The last of two names counts; an escaped name is its text.
        assert_eq!(
            eval(
                "$request.body.action",
                br#"{"action":"a","act\u0069on":"b"}"#
            )
            .as_deref(),
            Some("b")
        );
        assert_eq!(eval("$request.body.data.n[1].x", MSG).as_deref(), Some(""));
        assert_eq!(
            eval("$request.body.data", br#"{"data":{ "a" : [1, 2] }}"#).as_deref(),
            Some(r#"{"a":[1,2]}"#)
        );
        // A literal expression needs no JSON.
        assert_eq!(eval("fixed", b"not json").as_deref(), Some("fixed"));
    }

    #[test]
    fn bad_expressions() {
        for bad in [
            "${request.body.a",
            "$context.routeKey",
            "${request.header.x}",
            "$request.body.",
            "",
            "  ",
        ] {
            assert!(Selection::compile(bad).is_err(), "{bad}");
        }
    }
}
