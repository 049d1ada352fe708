//! The tape against `serde_json::Value`: jsonschema's own contract check for a
//! representation, and the same verdict as the `Value` validator on every pair of a set of
//! schemas (the keywords that walk objects, arrays, strings and numbers differently) and
//! documents (hand-picked edge cases plus seeded random ones).

use serde_json::{json, Value};

use super::{BodyJson, Tape};
use crate::pipeline::models::{compile_model, compile_model_for};

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

pub(crate) fn documents() -> Vec<String> {
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
    // Names compared by key (first seven bytes and length), then whole.
    assert!(Tape::parse(br#"{"abcdefgh1":1,"abcdefgh2":2}"#).is_some());
    assert!(Tape::parse(br#"{"abcdefghij":1,"x":0,"abcdefghij":2}"#).is_none());
    assert!(Tape::parse(br#"{"a\u0062":1,"ab":2}"#).is_none());
    let long = "n".repeat(300);
    let longer = format!("{long}x");
    assert!(Tape::parse(format!(r#"{{"{long}":1,"{longer}":2}}"#).as_bytes()).is_some());
    assert!(Tape::parse(format!(r#"{{"{long}":1,"{long}":2}}"#).as_bytes()).is_none());
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

/// Bodies where two JSON parsers are most likely to part: grammar corners, control
/// characters, surrogates, invalid UTF-8, nesting, numbers at and past every limit.
pub(crate) fn tricky_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        &b"\"a\x01b\""[..],
        b"\"a\tb\"",
        b"\"a\nb\"",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\\ud800\\u0041\"",
        b"\"\\ud83d\\ude00\"",
        b"\"\\u0000\"",
        b"\xef\xbb\xbf{}",
        b"\"\xff\"",
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xc0\xaf\"",
        b"\"\\x\"",
        b"\"\\u00G0\"",
        b"\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-9223372036854775808",
        b"-9223372036854775809",
        b"-0",
        b"-0.0",
        b"0e0",
        b"0E+1",
        b"1E-2",
        b"01",
        b"-01",
        b"1.",
        b".5",
        b"+1",
        b"-",
        b"1e",
        b"1e+",
        b"NaN",
        b"Infinity",
        b"[1,]",
        b"{\"a\":1,}",
        b"[,1]",
        b"\x0b1",
        b"1\x0c",
        b"1 2",
        b"tru",
        b"nul",
        b"truex",
        b"[\"a\"\"b\"]",
        b"{\"a\" 1}",
        b"{\"a\":}",
        b"{1:1}",
        b"  {}  ",
        b"\n[\r\t1 ]\n",
        b"1.7976931348623157e308",
        b"1.7976931348623159e308",
        b"2.2250738585072014e-308",
        b"5e-324",
        b"0.1",
        b"1.000000000000000111",
        b"9007199254740993",
        b"123456789012345678901234567890.5",
        b"[0.30000000000000004, 1e22, 1e23, 4.9e-324]",
        b"{\"a\":[{\"b\":[]},{}],\"c\":{\"d\":{\"e\":null}}}",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    for depth in [63, 64, 65, 127, 128, 129, 500] {
        let mut b = "[".repeat(depth).into_bytes();
        b.extend("]".repeat(depth).bytes());
        bodies.push(b);
        bodies.push(format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes());
    }
    bodies
}

/// `each` seeded one-byte edits of every body (a byte replaced by, or inserted from,
/// `palette`, or removed): inputs close to JSON, where parsers part.
pub(crate) fn mutations(
    bodies: &[Vec<u8>],
    each: usize,
    palette: &[u8],
    mut seed: u64,
) -> Vec<Vec<u8>> {
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let mut out = Vec::with_capacity(bodies.len() * each);
    for body in bodies {
        for _ in 0..each {
            let mut b = body.clone();
            let at = if b.is_empty() { 0 } else { next() % b.len() };
            let byte = palette[next() % palette.len()];
            match next() % 3 {
                0 if !b.is_empty() => b[at] = byte,
                1 if !b.is_empty() => {
                    b.remove(at);
                }
                _ => b.insert(at, byte),
            }
            out.push(b);
        }
    }
    out
}

/// Every body the tape accepts, serde_json reads as the same value, so the tape and the
/// `Value` path never disagree about what a body says: checked on the documents above,
/// the tricky bodies, and seeded byte mutations of both.
#[test]
fn the_tape_reads_what_serde_json_reads() {
    let mut bodies = tricky_bodies();
    bodies.extend(documents().into_iter().map(String::into_bytes));
    let palette = b"\"\\{}[],:0-.eEu+ \t\n\r\x00\x01\x1f\x0b\x7f\xc3\xa9\xff\xed\xa0\x80";
    let originals = bodies.clone();
    bodies.extend(mutations(&originals, 6, palette, 0x9e37_79b9_7f4a_7c15));
    let (mut accepted, mut refused) = (0, 0);
    for body in &bodies {
        let shown = String::from_utf8_lossy(body);
        let by_serde = serde_json::from_slice::<Value>(body);
        match Tape::parse(body) {
            Some(tape) => {
                let value = by_serde.unwrap_or_else(|e| {
                    panic!("the tape accepts what serde_json refuses ({e}): {shown:?}")
                });
                assert_eq!(super::value_at(&tape, 0), value, "read apart: {shown:?}");
                accepted += 1;
            }
            None => refused += by_serde.is_ok() as usize,
        }
    }
    // Left to `Value` although JSON: repeated names, objects over `MAX_MEMBERS`.
    assert!(
        accepted > 3_000,
        "{accepted} accepted, {refused} left to Value"
    );
    assert!(
        refused * 10 < accepted,
        "{accepted} accepted, {refused} left to Value"
    );
}
