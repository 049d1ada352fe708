use serde_json::json;

use super::*;
use crate::pipeline::validate::BodyModel;

fn model(schema: Value) -> BodyModel {
    BodyModel::compile("M", &[("M".to_string(), schema)]).unwrap()
}

fn message(m: &BodyModel, body: &Value) -> String {
    m.value.validate(body).unwrap_err().to_string()
}

#[test]
fn which_patterns_backtrack() {
    // Plain, and leading lookaheads at `^` (split by jsonschema into linear regexes).
    assert!(!backtracks("^[a-z]+$"));
    assert!(!backtracks("[0-9]"));
    assert!(!backtracks("^(?=.*[0-9])(?=.*[a-z]).{8,}$"));
    // Unanchored lookaround and backreferences.
    assert!(backtracks("(?=.*[0-9])(?=.*[a-z])"));
    assert!(backtracks("(?=.*z)y"));
    assert!(backtracks("(?<=a)b"));
    assert!(backtracks("^(a|aa)+\\1$"));
    assert_eq!(pattern_weight("(?=.*[0-9])(?=.*[a-z])"), 3);
    assert_eq!(pattern_weight("(a+)+\\1b"), 5);
    assert_eq!(pattern_weight("\\(?=x"), 1);
}

/// 40,000 characters against an unanchored lookahead pattern took 8 s: the string is
/// refused for its length, without being matched.
#[test]
fn a_long_string_fails_a_backtracking_pattern_unmatched() {
    let m = model(json!({"type": "string", "pattern": "(?=.*[0-9])(?=.*[a-z])"}));
    let long = json!(format!("{}1", "a".repeat(40_000)));
    pattern_budget_reset();
    let started = std::time::Instant::now();
    assert!(!m.accepts(long.to_string().as_bytes()));
    assert!(!m.value.is_valid(&long));
    let why = message(&m, &long);
    assert!(
        why.contains("40001 characters is longer than the 256"),
        "{why}"
    );
    // Matched, the 40,000 characters took seconds even in a release build.
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Up to the limit, strings are matched as before.
    let ok = json!(format!("{}1", "a".repeat(BACKTRACK_MAX_CHARS - 1)));
    pattern_budget_reset();
    assert!(m.value.is_valid(&ok));
    assert!(!m.value.is_valid(&json!("a".repeat(BACKTRACK_MAX_CHARS))));
}

/// Many strings each under the length limit: the body's work is bounded too.
#[test]
fn a_body_of_many_strings_spends_its_budget() {
    let m = model(json!({"type": "array", "items": {"type": "string", "pattern": "(?=.*z)y"}}));
    let one = pattern_cost(pattern_weight("(?=.*z)y"), 200);
    let fits = (PATTERN_BUDGET / one) as usize;
    let body = |n: usize| json!(vec![format!("{}yz", "a".repeat(198)); n]);
    pattern_budget_reset();
    assert!(m.value.is_valid(&body(fits)));
    assert!(!pattern_budget_spent());
    pattern_budget_reset();
    assert!(!m.value.is_valid(&body(fits + 1)));
    assert!(pattern_budget_spent());
    pattern_budget_reset();
    assert!(message(&m, &body(fits + 1)).contains(BUDGET_SPENT));
    // A plain pattern has no budget.
    let plain = model(json!({"type": "array", "items": {"type": "string", "pattern": "z"}}));
    pattern_budget_reset();
    assert!(plain.value.is_valid(&body(10 * fits)));
    // Nor a model whose patterns all match in linear time: the string is not refused.
    let anchored = model(json!({"type": "string", "pattern": "^(?=.*z)"}));
    assert!(anchored.accepts(format!("\"{}z\"", "a".repeat(50_000)).as_bytes()));
}

/// Backtracking and plain patterns in one model each keep their verdicts and messages.
#[test]
fn patterns_beside_a_backtracking_one_are_unchanged() {
    let m = model(json!({
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "pw": {"type": "string", "pattern": "(?=.*[0-9])"}
        }
    }));
    pattern_budget_reset();
    assert!(m.accepts(br#"{"code":"ABC","pw":"a1"}"#));
    assert!(!m.accepts(br#"{"code":"ABCD","pw":"a1"}"#));
    assert!(!m.accepts(br#"{"code":"ABC","pw":"aa"}"#));
    let why = message(&m, &json!({"code": "abc", "pw": "a1"}));
    assert_eq!(why, r#""abc" does not match "^[A-Z]{3}$""#);
    // A bad regex is still a schema error.
    assert!(compile_model(
        "M",
        &[
            ("M".into(), json!({"pattern": "(?=x"})),
            ("N".into(), json!({"pattern": "(?=a)b"}))
        ]
    )
    .is_err());
}

/// Property names are matched by jsonschema itself, out of the bounds' reach: a lookahead
/// there is refused when the model compiles (a 640 KB name held a worker for 12 s).
#[test]
fn a_backtracking_pattern_properties_pattern_is_refused() {
    let models = |schema: Value| vec![("M".to_string(), schema)];
    let nested = json!({"type": "object", "properties": {"a": {
        "type": "object",
        "patternProperties": {"^x": {}, "(?=.*[0-9])(?=.*Z)x": {"type": "string"}}
    }}});
    let err = compile_model("M", &models(nested)).expect_err("refused");
    assert!(
        err.contains("patternProperties pattern \"(?=.*[0-9])(?=.*Z)x\""),
        "{err}"
    );
    // Plain and anchored-lookahead patterns are linear: kept.
    for ok in ["^x-[a-z]+$", "^(?=.*[0-9]).{2,}$"] {
        let schema = json!({"type": "object", "patternProperties": {ok: {}}});
        assert!(compile_model("M", &models(schema)).is_ok(), "{ok}");
    }
}

/// `check` compiles each model with the models it refers to standing as `true`: a chain
/// of 2,000 models took 10 s compiled whole each time. What it finds is unchanged: a
/// model's own error, a reference to no model, and (through the whole compile) one into
/// another model's insides.
#[test]
fn check_model_reads_each_model_once() {
    let chain: Vec<(String, Value)> = (0..2000)
        .map(|i| {
            let next = format!("#/models/M{}", i + 1);
            (
                format!("M{i}"),
                json!({"type": "object", "properties": {"n": {"$ref": next}}}),
            )
        })
        .chain([("M2000".to_string(), json!({"type": "string"}))])
        .collect();
    for (name, _) in &chain {
        check(name, &chain).unwrap();
    }
    // What validates bodies still reaches the whole chain.
    let m = compile_model("M1998", &chain).unwrap();
    assert!(m.is_valid(&json!({"n": {"n": "end"}})));
    assert!(!m.is_valid(&json!({"n": {"n": 1}})));

    let models = |schema: Value| {
        vec![
            ("A".to_string(), schema),
            (
                "B".to_string(),
                json!({"properties": {"x": {"type": "string"}}}),
            ),
        ]
    };
    assert!(check("A", &models(json!({"type": "nope"}))).is_err());
    assert!(check("A", &models(json!({"$ref": "#/models/Nope"}))).is_err());
    assert!(check("A", &models(json!({"$ref": "#/models/B/properties/x"}))).is_ok());
    assert!(check("A", &models(json!({"$ref": "#/models/B/properties/y"}))).is_err());
    assert!(check("A", &models(json!({"items": {"$ref": "#/models/A"}}))).is_ok());
    // 2020-12's `$dynamicRef` to a pointer is a reference too: its model is reached.
    let dynamic = json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"x": {"$dynamicRef": "#/models/B/properties/x"}, "y": {"$dynamicRef": "#/models/B"}}});
    let b12 = json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"x": {"type": "string"}}});
    let both = vec![("A".to_string(), dynamic), ("B".to_string(), b12)];
    assert!(check("A", &both).is_ok());
    let m = compile_model("A", &both).unwrap();
    assert!(m.is_valid(&json!({"x": "s"})) && !m.is_valid(&json!({"x": 1})));
    // An anchor may be in any model: every model is there for it; a pointer into the
    // model itself needs no other.
    let with = |a: Value| vec![("A".to_string(), a), ("B".to_string(), json!({}))];
    assert_eq!(reachable("A", &with(json!({"$ref": "#name"}))).len(), 2);
    assert_eq!(reachable("A", &with(json!({"$ref": "#/$defs/x"}))).len(), 1);
    assert_eq!(
        reachable("A", &with(json!({"$ref": "#/models/B"}))).len(),
        2
    );
}

/// Models of two drafts that refer to each other are a `check` error: read into the
/// other's document, a model's keywords meant the other draft's (a 2020-12 model
/// reaching a draft-4 `exclusiveMinimum: true` failed to compile, and its route checked
/// nothing while `check` passed; the other way, `exclusiveMinimum: 0` was ignored).
#[test]
fn models_of_two_drafts_may_not_refer_to_each_other() {
    let d2020 = "https://json-schema.org/draft/2020-12/schema";
    let models = vec![
        (
            "Pos".to_string(),
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true}),
        ),
        (
            "Order".to_string(),
            json!({"$schema": d2020, "properties": {"qty": {"$ref": "#/models/Pos"}}}),
        ),
        (
            "Pos12".to_string(),
            json!({"$schema": d2020, "type": "integer", "exclusiveMinimum": 0}),
        ),
        (
            "Line".to_string(),
            json!({"properties": {"qty": {"$ref": "#/models/Pos12"}}}),
        ),
        (
            "Also4".to_string(),
            json!({"properties": {"qty": {"$ref": "#/models/Pos"}}}),
        ),
    ];
    let err = check("Order", &models).unwrap_err();
    assert!(err.contains(r#"refers to model "Pos", which is of another JSON Schema draft (draft 4, this one 2020-12)"#), "{err}");
    assert!(check("Line", &models).is_err());
    assert!(check("Also4", &models).is_ok());
    assert!(check("Pos12", &models).is_ok());
}

/// Should a route's model fail to compile as it serves (`check` refuses that), the route
/// refuses its bodies rather than checking none.
#[test]
fn a_model_that_does_not_compile_refuses_every_body() {
    let m = BodyModel::refusing();
    for body in [&b"{}"[..], b"", b"1", br#"{"a":1}"#] {
        assert!(!m.accepts(body), "{}", String::from_utf8_lossy(body));
    }
}

fn check(name: &str, models: &[(String, Value)]) -> Result<(), String> {
    check_model(name, models, &crate::pipeline::models::by_name(models))
}

/// The longest run of references, walked without recursion (40,000 models would
/// overflow a recursive walk), a model met again adding nothing.
#[test]
fn reference_chains_are_measured_without_recursion() {
    let chain = |n: usize| -> Vec<(String, Value)> {
        (0..n)
            .map(|i| {
                let s = if i + 1 < n {
                    json!({ "allOf": [{ "$ref": format!("#/models/M{}", i + 1) }] })
                } else {
                    json!({ "items": { "$ref": "#/models/M0" } })
                };
                (format!("M{i}"), s)
            })
            .collect()
    };
    for n in [1, 2, 300, 40_000] {
        let models = chain(n);
        let by_name = crate::pipeline::models::by_name(&models);
        assert_eq!(reference_chain("M0", &by_name), n, "{n}");
    }
    let models = vec![
        (
            "A".to_string(),
            json!({ "properties": { "a": { "$ref": "#/models/A" }, "b": { "$ref": "#/models/B" } } }),
        ),
        ("B".to_string(), json!({ "type": "string" })),
    ];
    assert_eq!(
        reference_chain("A", &crate::pipeline::models::by_name(&models)),
        2
    );
}

/// An empty `enum` (API Gateway's draft 4 requires a value) passed `check`, and every
/// body was refused.
#[test]
fn an_empty_enum_is_no_valid_model() {
    let check = |schema: Value| {
        let models = [("M".to_string(), schema)];
        check_model("M", &models, &by_name(&models))
    };
    let e = check(json!({"properties": {"kind": {"enum": []}}})).unwrap_err();
    assert!(
        e.contains("empty enum") && e.contains("/properties/kind"),
        "{e}"
    );
    assert!(check(json!({"enum": []})).is_err());
    // A value named enum, or an empty list as data, is no keyword.
    assert!(check(json!({"properties": {"enum": {"type": "string"}}})).is_ok());
    assert!(check(json!({"default": {"enum": []}, "enum": [1]})).is_ok());
}
