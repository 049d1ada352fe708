//! A request body as a `serde_json::Value`, refused when an object repeats a member name.
//!
//! `Value` keeps the last of a repeated name, so the validator judged only that one,
//! while a backend may read the first (gjson, many streaming parsers): with a model whose
//! `type` is an enum, `{"type":"xx","type":"dog"}` passed and the backend acted on "xx".
//! Validated bodies are read here instead; the quick check (`body_scan`) and the tape
//! (`json_body`) judge every occurrence or leave such a body to this.

use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The start of the error a repeated member name gives.
pub const REPEATED: &str = "an object repeats the member name";

/// `body` as a `Value`; an error for invalid JSON, and for an object that repeats a name.
pub fn from_slice(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Unique.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As `Value` does: a float JSON can't hold becomes null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Unique)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(Unique)?;
            if members.contains_key(&name) {
                return Err(A::Error::custom(format_args!("{REPEATED} {name:?}")));
            }
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_is_refused_at_any_depth_and_the_rest_reads_as_value_does() {
        for body in [
            r#"{"type":"xx","price":30,"type":"dog"}"#,
            r#"{"a":[{"b":1,"b":1}]}"#,
            r#"[{"k":{},"k":{}}]"#,
        ] {
            let e = from_slice(body.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with(REPEATED), "{body}: {e}");
        }
        for body in [
            r#"{"a":{"a":1},"b":[1,2.5,-0,"s\u00e9",null,true],"c":1e400}"#,
            r#"{"a":1,"A":2}"#,
            "[]",
            "12",
        ] {
            let ours = from_slice(body.as_bytes()).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(body).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{body}");
        }
        assert!(from_slice(b"{} x").is_err(), "trailing bytes");
    }
}
