//! The scanner's one-sided answer against the validator: a yes is never given to a body
//! the validator (or serde_json) refuses, on schemas using every keyword the scanner reads
//! and on the tape's corpus of documents, tricky bodies and their byte mutations; and the
//! yes is given to most valid bodies, or the scanner would be saving nothing.

use serde_json::{json, Value};

use super::quote_index::{index_quotes, WORDS};
use super::scanner::{accepts_with, special_byte_offset, special_byte_offset_swar};
use super::ModelScan;
use crate::pipeline::json_body::tests::{documents, mutations, tricky_bodies};
use crate::pipeline::models::compile_model;
use crate::pipeline::validate::integer_negative_zeros;

/// The (v) benchmark's model (`benches/validate.rs`; `loadtest/compare` serves the same).
fn order_model() -> Value {
    serde_json::from_str(include_str!("../../../benches/data/order-model.json")).unwrap()
}

/// Schemas of only the keywords the scanner reads, over the corpus's vocabulary (names
/// `id name items qty price currency coupon flags kind v a b x-a self é`).
fn schemas() -> Vec<Value> {
    vec![
        order_model(),
        json!({"type": "object", "required": ["id", "items"], "additionalProperties": false,
               "properties": {
                   "id": {"type": "string", "pattern": "^[0-9a-f-]{4,36}$"},
                   "name": {"type": "string", "minLength": 2, "maxLength": 5},
                   "items": {"type": "array", "minItems": 1, "maxItems": 3,
                             "items": {"type": "object", "required": ["qty"],
                                       "properties": {"qty": {"type": "integer", "minimum": 1},
                                                      "price": {"type": "number", "exclusiveMinimum": true, "minimum": 0}}}},
                   "currency": {"enum": ["EUR", "USD", 1, null, true]},
                   "coupon": {"type": ["string", "null"]}}}),
        // Anything at all, but only JSON: the scanner's grammar against serde_json's.
        json!({}),
        json!({"type": ["object", "array", "string", "number", "boolean", "null"]}),
        json!({"type": "object", "required": ["a", "b"], "additionalProperties": false,
               "properties": {"a": {"type": "integer", "maximum": 2}}}),
        json!({"type": "object", "additionalProperties": {"type": ["integer", "string"], "maxLength": 1, "minimum": -1, "maximum": 3}}),
        json!({"type": "array", "maxItems": 2, "items": {"type": "number", "minimum": 0.5, "exclusiveMaximum": true, "maximum": 2.5}}),
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
               "type": "object", "additionalProperties": false,
               "properties": {"v": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 2.5},
                              "a": true, "b": false, "kind": {"enum": ["n", false]},
                              "é": {"type": "string", "minLength": 2}, "name": {"maxLength": 3},
                              "items": {"items": {"type": "integer"}, "minItems": 2}}}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#",
               "title": "t", "description": "d", "x-note": 1, "format": "uuid",
               "items": false, "properties": {"qty": {"type": "integer", "exclusiveMinimum": 1}}}),
        json!({"type": "string", "pattern": "é", "minLength": 1, "maxLength": 2}),
        json!({"type": ["integer", "string"]}),
    ]
}

/// The tape's corpus, its tricky bodies, the order bodies, and byte mutations of each.
fn bodies() -> Vec<Vec<u8>> {
    let mut bodies = tricky_bodies();
    bodies.extend(documents().into_iter().map(String::into_bytes));
    bodies.extend(order_variants().into_iter().map(|(body, _)| body));
    let palette = b"\"\\{}[],:0-.eEu+ \t\n\r\x00\x01\x1f\x7f\xc3\xa9\xff1a";
    let originals = bodies.clone();
    bodies.extend(mutations(&originals, 4, palette, 0x51_7cc1_b727_220a));
    bodies
}

/// The valid order, then variants of it, each with whether the scanner vouches for it:
/// the invalid ones and those it leaves to the validator (escapes, `1.0` for an integer,
/// floats at a bound) get no yes.
fn order_variants() -> Vec<(Vec<u8>, bool)> {
    let valid = r#"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","customer":{"name":"Ada Lovelace","email":"ada@example.com"},"items":[{"sku":"SKU-0000","qty":1,"price":9.5},{"sku":"SKU-0001","qty":2,"price":10.5}],"currency":"EUR","total":123.45,"created":"2026-12-01T18:00:00Z","priority":3,"gift":false,"tags":["bench","validate","json"],"notes":"nnnn","channel":"web","coupon":null}"#;
    let variants = [
        ("\"qty\":1,", "\"qty\":0,", false),
        ("\"qty\":1,", "\"qty\":1.0,", false),
        ("\"qty\":1,", "\"qty\":1e0,", false),
        ("\"price\":9.5", "\"price\":-0.0", false),
        ("\"price\":9.5", "\"price\":-0", true),
        ("\"qty\":1,", "\"qty\":-0,", false),
        ("\"priority\":3", "\"priority\":-0", true),
        ("\"price\":9.5", "\"price\":0", true),
        ("\"price\":9.5", "\"price\":-1e-300", false),
        ("\"currency\":\"EUR\"", "\"currency\":\"eur\"", false),
        ("\"currency\":\"EUR\"", "\"currency\":\"\\u0045UR\"", false),
        ("\"id\":\"0f8f", "\"id\":\"0F8f", false),
        ("\"id\":\"0f8f", "\"id\":\"0f8fa", false),
        ("\"name\":\"Ada Lovelace\"", "\"name\":\"\"", false),
        (
            "\"name\":\"Ada Lovelace\"",
            "\"name\":\"Ada\\nLovelace\"",
            false,
        ),
        ("\"coupon\":null", "\"coupon\":false", false),
        ("\"coupon\":null", "\"coupon\":null,\"coupon\":\"X\"", true),
        ("\"coupon\":null", "\"coupon\":\"X\",\"coupon\":1", false),
        ("\"coupon\":null", "\"extra\":1", false),
        ("\"priority\":3", "\"priority\":10", false),
        ("\"priority\":3", "\"priority\":9007199254740993", false),
        ("\"total\":123.45", "\"total\":1e400", false),
        ("\"created\":", "\"created\":1,\"created\":", false),
        ("\"tags\":[\"bench\",", "\"tags\":[\"bench\",1,", false),
        ("\"items\":[", "\"items\":[],\"x\":[", false),
    ];
    let mut bodies = vec![(valid.as_bytes().to_vec(), true)];
    for (from, to, yes) in variants {
        assert!(valid.contains(from), "{from}");
        bodies.push((valid.replacen(from, to, 1).into_bytes(), yes));
    }
    let repeated = r#""customer":{"email":"a","name":"b"}"#;
    bodies.push((
        valid.replace(r#""notes":"nnnn""#, repeated).into_bytes(),
        true,
    ));
    bodies
}

fn scan_for(schema: &Value) -> (ModelScan, jsonschema::Validator) {
    let models = vec![("M".to_string(), schema.clone())];
    let scan =
        ModelScan::compile("M", &models).unwrap_or_else(|| panic!("no scanner for {schema}"));
    (scan, compile_model("M", &models).unwrap())
}

/// Counts (quick yes, valid) over `bodies`, failing on any yes the validator refuses.
fn compare_verdicts(
    what: &str,
    scan: &ModelScan,
    validator: &jsonschema::Validator,
    bodies: &[Vec<u8>],
) -> (usize, usize) {
    let (mut yes, mut valid) = (0, 0);
    for body in bodies {
        // As the gateway validates it: a bare `-0` is the integer 0.
        let zeros = integer_negative_zeros(body);
        let verdict = serde_json::from_slice::<Value>(zeros.as_deref().unwrap_or(body))
            .ok()
            .map(|v| validator.is_valid(&v));
        valid += (verdict == Some(true)) as usize;
        if scan.accepts(body) {
            yes += 1;
            assert_eq!(
                verdict,
                Some(true),
                "{what} said yes to {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
    (yes, valid)
}

#[test]
fn the_scan_says_yes_only_when_the_validator_does() {
    let bodies = bodies();
    let (mut yes, mut valid) = (0, 0);
    for (n, schema) in schemas().iter().enumerate() {
        let (scan, validator) = scan_for(schema);
        let (y, v) = compare_verdicts(&format!("schema #{n}"), &scan, &validator, &bodies);
        yes += y;
        valid += v;
    }
    // Most valid bodies get the quick yes; the rest (escapes, floats where integers are
    // asked, numbers in enums, repeated names) go to the validator.
    assert!(yes * 10 > valid * 8, "{yes} quick yes of {valid} valid");
}

/// The quote index changes how strings are found, never the answer: every body, under
/// every schema, gets the same verdict with it as with each string searched.
#[test]
fn the_quote_index_gives_the_answers_the_search_does() {
    let bodies = bodies();
    let schemas: Vec<Value> = schemas().into_iter().chain([order_model()]).collect();
    let scans: Vec<ModelScan> = schemas.iter().map(|s| scan_for(s).0).collect();
    let mut indexed = 0;
    for body in &bodies {
        let mut words = [0u64; WORDS];
        let Some(used) = index_quotes(body, &mut words).filter(|&n| n > 0) else {
            continue;
        };
        indexed += 1;
        for (scan, schema) in scans.iter().zip(&schemas) {
            assert_eq!(
                accepts_with(&scan.root, body, &words[..used]),
                accepts_with(&scan.root, body, &[]),
                "{schema} on {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
    // Most of the corpus is indexed (the rest has escapes or raw control characters).
    assert!(
        indexed * 2 > bodies.len(),
        "{indexed} of {} indexed",
        bodies.len()
    );
}

#[test]
fn references_to_other_models_are_followed_in_every_spelling() {
    let models = vec![
        (
            "M".to_string(),
            json!({"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": "#/models/Item"}},
            "self": {"$ref": "https://apigateway.amazonaws.com/restapis/a1b2c3/models/Item"},
            "a": {"$ref": "#/components/schemas/Name", "description": "annotated"}}}),
        ),
        (
            "Item".to_string(),
            json!({"type": "object", "required": ["qty"],
            "properties": {"qty": {"type": "integer", "minimum": 1}, "name": {"$ref": "#/models/Name"}}}),
        ),
        (
            "Name".to_string(),
            json!({"type": "string", "minLength": 2, "maxLength": 5}),
        ),
    ];
    let scan = ModelScan::compile("M", &models).expect("a scanner through the references");
    let validator = compile_model("M", &models).unwrap();
    let mut bodies = bodies();
    bodies.push(br#"{"items":[{"qty":2,"name":"ab"}],"self":{"qty":1},"a":"xyz"}"#.to_vec());
    let (yes, valid) = compare_verdicts("references", &scan, &validator, &bodies);
    assert!(yes * 10 > valid * 8, "{yes} quick yes of {valid} valid");
    assert!(scan.accepts(bodies.last().unwrap()));
    assert!(!scan.accepts(br#"{"items":[{"qty":2,"name":"a"}]}"#));
    assert!(!scan.accepts(br#"{"self":{"qty":0}}"#));
}

#[test]
fn the_order_gets_the_quick_yes_and_its_broken_and_unsure_variants_do_not() {
    let (scan, _) = scan_for(&order_model());
    for (body, yes) in order_variants() {
        let shown = String::from_utf8_lossy(&body);
        assert_eq!(scan.accepts(&body), yes, "{shown}");
    }
}

#[test]
fn models_with_keywords_the_scan_does_not_read_get_no_scanner() {
    for schema in [
        json!({"properties": {"a": {"$ref": "#/models/Other", "type": "object"}}}),
        json!({"properties": {"a": {"$ref": "#/models/M"}}}),
        json!({"properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {}}}),
        json!({"properties": {"a": {"$ref": "#/models/Missing"}}}),
        json!({"type": "array", "uniqueItems": true}),
        json!({"oneOf": [{"type": "integer"}]}),
        json!({"patternProperties": {"^x": {}}}),
        json!({"items": [{"type": "integer"}]}),
        json!({"type": "number", "multipleOf": 2}),
        json!({"properties": {"a": {"const": 1}}}),
        json!({"minProperties": 1}),
        json!({"properties": {"a": true}}),
        json!({"type": "integer", "maximum": 1e300}),
        json!({"type": "number", "minimum": 0, "exclusiveMinimum": 1}),
    ] {
        let models = vec![
            ("M".to_string(), schema.clone()),
            ("Other".to_string(), json!({})),
        ];
        assert!(ModelScan::compile("M", &models).is_none(), "{schema}");
    }
}

#[test]
fn special_bytes_are_found_many_at_a_time_as_one_at_a_time() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"ab\"\\\x00\x1f\x20\x7f\x80\xff\x21\x5b\x5d\xc3";
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 72) as usize;
        let s: Vec<u8> = (0..len)
            .map(|i| alphabet[((seed >> (i % 13 * 4)) as usize + i * 7) % alphabet.len()])
            .collect();
        let one_at_a_time = s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let found = special_byte_offset(&s);
        assert_eq!(found.map(|(at, _)| at), one_at_a_time, "{s:?}");
        assert_eq!(
            special_byte_offset_swar(&s).map(|(at, _)| at),
            one_at_a_time
        );
        // The high-bit flag may over-report (bytes past the find) but never miss one.
        if let Some((at, high)) = found {
            if s[..at].iter().any(|&b| b >= 0x80) {
                assert_eq!(high, 0x80, "{s:?}");
            }
        }
    }
}

#[test]
fn special_bytes_past_a_whole_block_keep_the_high_bit_flag() {
    // A non-ASCII byte in the first 16 bytes, the quote in a later block.
    for quote_at in [20, 31, 32, 40] {
        let mut s = vec![b'a'; quote_at + 20];
        s[15] = 0x80;
        s[quote_at] = b'"';
        assert_eq!(
            special_byte_offset(&s),
            Some((quote_at, 0x80)),
            "{quote_at}"
        );
        s[15] = b'a';
        assert_eq!(special_byte_offset(&s), Some((quote_at, 0)), "{quote_at}");
    }
}

#[test]
fn floats_at_and_near_a_bound_get_no_wrong_yes() {
    let schema = json!({"type": "array", "items": {"type": "number", "minimum": 0.3,
                        "exclusiveMaximum": true, "maximum": 0.7}});
    let (scan, validator) = scan_for(&schema);
    let mut numbers: Vec<String> = [
        "0.5", "0.1", "0.9", "1", "0", "-0.5", "0.45e0", "3e-1", "7E-1",
    ]
    .map(String::from)
    .to_vec();
    for bound in [0.3f64, 0.7] {
        for d in [0.0, 1e-4, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15] {
            numbers.push(format!("{}", bound + d));
            numbers.push(format!("{}", bound - d));
        }
    }
    let mut yes = 0;
    for number in numbers {
        let body = format!("[{number}]");
        let valid = validator.is_valid(&serde_json::from_str(&body).unwrap());
        if scan.accepts(body.as_bytes()) {
            yes += 1;
            assert!(valid, "said yes to {body}");
        }
    }
    assert!(yes > 10, "{yes} quick yes");
}

#[test]
fn head_word_is_the_first_eight_bytes_zero_padded() {
    let text = b"abcdefghijkl\x00\xff";
    for start in 0..text.len() {
        for end in start..=text.len() {
            let name = &text[start..end];
            let mut word = [0u8; 8];
            let head = name.len().min(8);
            word[..head].copy_from_slice(&name[..head]);
            assert_eq!(super::head_word(name), u64::from_le_bytes(word), "{name:?}");
        }
    }
}

/// A chain of models, each referring to the next, is followed only so deep: followed
/// whole, 1,000 of them overflowed the stack of the thread that compiled them (a
/// reload's, 2 MiB: the process died).
#[test]
fn a_long_chain_of_models_is_left_to_the_validator() {
    let n = 5_000;
    let models: Vec<(String, Value)> = (0..n)
        .map(|i| {
            let schema = if i + 1 < n {
                json!({ "$ref": format!("#/models/M{}", i + 1) })
            } else {
                json!({ "type": "object" })
            };
            (format!("M{i}"), schema)
        })
        .collect();
    let scan = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || ModelScan::compile("M0", &models).is_some())
        .unwrap()
        .join()
        .expect("compiled without overflowing a small stack");
    assert!(!scan);
    // A short one is still scanned.
    let short = vec![
        ("A".to_string(), json!({ "$ref": "#/models/B" })),
        ("B".to_string(), json!({ "type": "object" })),
    ];
    assert!(ModelScan::compile("A", &short).is_some());
}
