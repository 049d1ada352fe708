//! The tape against `serde_json::Value`: jsonschema's own contract check for a
//! representation, and the same verdict as the `Value` validator on every pair of a set of
//! schemas (the keywords that walk objects, arrays, strings and numbers differently) and
//! documents (hand-picked edge cases plus seeded random ones).

use serde_json::{json, Value};

use super::{BodyJson, Tape};
use crate::pipeline::validate::{compile_model, compile_model_for};

#[test]
fn the_tape_keeps_the_contract_jsonschema_relies_on() {
    let text = serde_json::to_vec(&jsonschema::json::conformance::document()).unwrap();
    let tape = Tape::parse(&text).expect("the conformance document parses");
    jsonschema::json::conformance::assert_conformance::<BodyJson>(&tape.root());
}

fn schemas() -> Vec<Value> {
    vec![
        json!({"type": "object", "required": ["id", "items"], "additionalProperties": false,
               "properties": {
                   "id": {"type": "string", "pattern": "^[0-9a-f-]{4,36}$"},
                   "name": {"type": "string", "minLength": 2, "maxLength": 5},
                   "items": {"type": "array", "minItems": 1, "maxItems": 3,
                             "items": {"type": "object", "required": ["qty"],
                                       "properties": {"qty": {"type": "integer", "minimum": 1},
                                                      "price": {"type": "number", "exclusiveMinimum": true, "minimum": 0}}}},
                   "currency": {"enum": ["EUR", "USD", 1, null, true]},
                   "coupon": {"type": ["string", "null"]},
                   "flags": {"type": "array", "uniqueItems": true}}}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#",
               "type": "object",
               "patternProperties": {"^x-": {"type": "string"}},
               "propertyNames": {"maxLength": 6},
               "minProperties": 1, "maxProperties": 4,
               "dependencies": {"a": ["b"]},
               "if": {"required": ["kind"], "properties": {"kind": {"const": "n"}}},
               "then": {"properties": {"v": {"type": "number", "multipleOf": 0.5}}},
               "else": {"properties": {"v": {"type": "string"}}}}),
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
               "type": "array",
               "prefixItems": [{"type": "integer"}, {"type": "string"}],
               "items": {"type": "object", "unevaluatedProperties": false,
                         "properties": {"a": {}}, "anyOf": [{"required": ["a"]}, {"properties": {"b": {"const": 2}}}]},
               "contains": {"type": "object"}}),
        json!({"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 2.5}],
               "not": {"const": 2}}),
        json!({"type": "object", "properties": {"self": {"$ref": "#/models/Tree"}},
               "additionalProperties": {"$ref": "#/models/Tree"}}),
    ]
}

fn documents() -> Vec<String> {
    let mut docs: Vec<String> = [
        r#"{}"#,
        r#"[]"#,
        r#"1"#,
        r#"1.0"#,
        r#"2"#,
        r#"2.0"#,
        r#"1e2"#,
        r#"-0"#,
        r#"2.5"#,
        r#""héllo""#,
        r#"null"#,
        r#"true"#,
        r#"{"id":"ab-12","items":[{"qty":1}]}"#,
        r#"{"id":"ab-12","items":[{"qty":1.0}]}"#,
        r#"{"id":"ab-12","items":[{"qty":1,"price":0}]}"#,
        r#"{"id":"ab-12","items":[{"qty":1,"price":0.01}],"currency":1.0}"#,
        r#"{"id":"ab-12","items":[{"qty":1}],"name":"héééé"}"#,
        r#"{"id":"ab-12","items":[{"qty":1}],"name":"h\u00e9\u00e9\u00e9\u00e9\u00e9"}"#,
        r#"{"id":"AB-12","items":[{"qty":1}]}"#,
        r#"{"id":"ab\u002d12","items":[{"qty":1}],"currency":"EUR","coupon":null}"#,
        r#"{"id":"ab-12","items":[{"qty":1}],"flags":[1,1.0]}"#,
        r#"{"id":"ab-12","items":[{"qty":1}],"flags":[{"a":1},{"a":1}]}"#,
        r#"{"id":"ab-12","items":[{"qty":1}],"extra":1}"#,
        r#"{"id":"ab-12","id":"zz","items":[{"qty":1}]}"#,
        r#"{"x-a":"s","kind":"n","v":1.5}"#,
        r#"{"x-a":1}"#,
        r#"{"a":1}"#,
        r#"{"a":1,"b":2}"#,
        r#"{"kind":"m","v":"s"}"#,
        r#"{"kind":"n","v":0.25}"#,
        r#"{"toolongname":1}"#,
        r#"[1,"a",{"a":1},{"b":2}]"#,
        r#"[1,"a",{"c":1}]"#,
        r#"[1,2]"#,
        r#"[1,"a"]"#,
        r#"{"self":{"self":{}},"other":{"x":{}}}"#,
        r#"{"self":{"self":1}}"#,
        r#"{"a":1 "#,
        r#"{"a":1}x"#,
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Seeded random documents built from the same vocabulary.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let keys = [
        "id", "name", "items", "qty", "price", "currency", "coupon", "flags", "kind", "v", "a",
        "b", "x-a", "self", "é",
    ];
    fn value(next: &mut dyn FnMut() -> u64, keys: &[&str], depth: u32) -> String {
        match next() % if depth > 3 { 7 } else { 9 } {
            0 => "null".into(),
            1 => ["true", "false"][(next() % 2) as usize].into(),
            2 => ((next() % 7) as i64 - 2).to_string(),
            3 => [
                "0.5",
                "1.0",
                "2.5",
                "1e1",
                "-0.0",
                "18446744073709551616",
                "3",
            ][(next() % 7) as usize]
                .into(),
            4 | 5 => [
                "\"ab-12\"",
                "\"EUR\"",
                "\"\\u00e9t\"",
                "\"x\"",
                "\"n\"",
                "\"héllo\"",
                "\"\"",
            ][(next() % 7) as usize]
                .into(),
            6 => format!("\"{}\"", keys[(next() % keys.len() as u64) as usize]),
            7 => {
                let n = next() % 4;
                let items: Vec<String> = (0..n).map(|_| value(next, keys, depth + 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let n = next() % 5;
                let members: Vec<String> = (0..n)
                    .map(|_| {
                        let k = keys[(next() % keys.len() as u64) as usize];
                        format!("\"{k}\":{}", value(next, keys, depth + 1))
                    })
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }
    for _ in 0..3000 {
        docs.push(value(&mut next, &keys, 0));
    }
    docs
}

#[test]
fn the_tape_and_value_agree_on_every_verdict() {
    let mut compared = 0;
    for (n, schema) in schemas().into_iter().enumerate() {
        let models = vec![
            ("M".to_string(), schema),
            (
                "Tree".to_string(),
                json!({"type": "object", "additionalProperties": {"$ref": "#/models/Tree"}}),
            ),
        ];
        let by_value = compile_model("M", &models).unwrap();
        let by_tape = compile_model_for::<BodyJson>("M", &models).unwrap();
        for doc in documents() {
            let Ok(value) = serde_json::from_str::<Value>(&doc) else {
                assert!(
                    Tape::parse(doc.as_bytes()).is_none(),
                    "not JSON, yet a tape: {doc}"
                );
                continue;
            };
            let Some(tape) = Tape::parse(doc.as_bytes()) else {
                // Left to `Value` (repeated names); `compared` below shows few are.
                continue;
            };
            assert_eq!(
                by_tape.is_valid(tape.root()),
                by_value.is_valid(&value),
                "schema #{n} on {doc}"
            );
            compared += 1;
        }
    }
    assert!(compared > 10_000, "{compared} verdicts compared");
}

#[test]
fn repeated_names_and_large_objects_are_left_to_value() {
    assert!(Tape::parse(br#"{"a":1,"a":2}"#).is_none());
    assert!(Tape::parse(br#"[{"a":{"b":1,"b":1}}]"#).is_none());
    let large: Vec<String> = (0..65).map(|i| format!("\"k{i}\":{i}")).collect();
    assert!(Tape::parse(format!("{{{}}}", large.join(",")).as_bytes()).is_none());
    let fits: Vec<String> = (0..64).map(|i| format!("\"k{i}\":{i}")).collect();
    assert!(Tape::parse(format!("{{{}}}", fits.join(",")).as_bytes()).is_some());
}

#[test]
fn strings_with_escapes_are_decoded_and_others_point_into_the_body() {
    let body = br#"{"a\u0062":"x\ny","plain":"h\u00e9","k":"v"}"#;
    let tape = Tape::parse(body).unwrap();
    let v =
        serde_json::to_value(jsonschema::json::Node::to_value(&tape.root()).into_owned()).unwrap();
    assert_eq!(v, json!({"ab": "x\ny", "plain": "hé", "k": "v"}));
}
