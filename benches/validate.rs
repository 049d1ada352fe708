//! Request validation: the CPU cost per request of checking a ~1 KiB JSON order against a
//! model of a dozen properties (loadtest/compare's (v) body and model): through a
//! `serde_json::Value` (parse, schema, both), through the body tape, and through the
//! one-pass scanner that gives a valid body its quick yes.
//! Never timed in CI.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

/// The (v) model, shared with the scanner's tests (`src/pipeline/body_scan/tests.rs`).
fn model() -> Value {
    serde_json::from_str(include_str!("data/order-model.json")).unwrap()
}

/// The order loadtest/compare sends, padded in its notes to 1 KiB.
fn body() -> Vec<u8> {
    let items: Vec<Value> = (0..6)
        .map(|i| json!({"sku": format!("SKU-{i:04}"), "qty": i + 1, "price": 9.5 + i as f64}))
        .collect();
    let mut order = json!({
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": items, "currency": "EUR", "total": 123.45,
        "created": "2026-12-01T18:00:00Z", "priority": 3, "gift": false,
        "tags": ["bench", "validate", "json"], "notes": "", "channel": "web", "coupon": null
    });
    let len = serde_json::to_vec(&order).unwrap().len();
    order["notes"] = Value::String("n".repeat(1024usize.saturating_sub(len)));
    serde_json::to_vec(&order).unwrap()
}

fn bench(c: &mut Criterion) {
    let models = vec![("Order".to_string(), model())];
    let model = portico::pipeline::validate::BodyModel::compile("Order", &models).unwrap();
    let validator = &model.value;
    let body = body();
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert!(validator.is_valid(&value), "the bench body must be valid");
    assert!(model.accepts(&body), "and valid on the tape");
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse 1 KiB body", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(&body)).unwrap()))
    });
    g.bench_function("schema on parsed body", |b| {
        b.iter(|| black_box(validator.is_valid(black_box(&value))))
    });
    g.bench_function("value: parse + schema", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(black_box(&body)).unwrap();
            black_box(validator.is_valid(&v))
        })
    });
    let scan = model
        .scan
        .as_ref()
        .expect("the order's model gets a scanner");
    assert!(scan.accepts(&body), "and the scanner's quick yes");
    g.bench_function("accepts (what a request pays: the scanner's yes)", |b| {
        b.iter(|| black_box(model.accepts(black_box(&body))))
    });
    let tape =
        portico::pipeline::models::compile_model_for::<portico::pipeline::json_body::BodyJson>(
            "Order", &models,
        )
        .unwrap();
    g.bench_function("tape: parse + schema (bodies the scanner leaves)", |b| {
        b.iter(|| {
            let t = portico::pipeline::json_body::Tape::parse(black_box(&body)).unwrap();
            black_box(tape.is_valid(t.root()))
        })
    });
    g.bench_function("tape: parse only", |b| {
        b.iter(|| black_box(portico::pipeline::json_body::Tape::parse(black_box(&body)).is_some()))
    });
    g.finish();
}

/// The worst a body can make one check cost with a backtracking `pattern`: four
/// unanchored lookaheads, three of them holding everywhere, against strings at the
/// length limit until the budget is spent (`models::BACKTRACK_MAX_CHARS`,
/// `PATTERN_BUDGET`).
fn backtracking(c: &mut Criterion) {
    use portico::pipeline::models::{pattern_budget_reset, BACKTRACK_MAX_CHARS};
    let pattern = "(?=.*[0-9])(?=.*[a-z])(?=.*[A-Z])(?=.*[!@#])";
    let models = vec![(
        "M".to_string(),
        json!({"type": "array", "items": {"type": "string", "pattern": pattern}}),
    )];
    let model = portico::pipeline::validate::BodyModel::compile("M", &models).unwrap();
    let one = "aB1".repeat(BACKTRACK_MAX_CHARS / 3);
    let body = serde_json::to_vec(&vec![one; 100]).unwrap();
    let mut g = c.benchmark_group("validate backtracking pattern");
    g.bench_function("a body of strings at the length limit", |b| {
        b.iter(|| {
            pattern_budget_reset();
            black_box(model.accepts(black_box(&body)))
        })
    });
    let long = serde_json::to_vec(&"aB1".repeat(13_334)).unwrap();
    g.bench_function("one 40,000-character string", |b| {
        b.iter(|| {
            pattern_budget_reset();
            black_box(model.accepts(black_box(&long)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench, backtracking);
criterion_main!(benches);
