//! Route matching: a realistic API (40 routes with params, greedy paths and ANY) and the
//! full router step (base path + route) as a request would take it; and the costs a
//! client could multiply by the config's size (20,000 stages, 20,000 literal routes, a
//! first segment of 8 KB), which must stay a lookup. Never timed in CI.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portico::http1::{Method, Span};
use portico::router::{parse_route_key, BasePaths, RouteTable, Router, StageRef};

fn table() -> RouteTable {
    let mut t = RouteTable::default();
    let mut id = 0;
    for resource in [
        "users",
        "orders",
        "products",
        "carts",
        "reviews",
        "payments",
        "shipments",
        "coupons",
    ] {
        for key in [
            format!("GET /{resource}"),
            format!("POST /{resource}"),
            format!("GET /{resource}/{{id}}"),
            format!("PUT /{resource}/{{id}}"),
            format!("ANY /{resource}/{{id}}/{{proxy+}}"),
        ] {
            t.insert(&parse_route_key(&key).unwrap(), id);
            id += 1;
        }
    }
    t.insert(&parse_route_key("ANY /{proxy+}").unwrap(), id);
    t.insert(&parse_route_key("$default").unwrap(), id + 1);
    t
}

fn bench(c: &mut Criterion) {
    let t = table();
    let mut params = Vec::with_capacity(8);
    let mut g = c.benchmark_group("route_match");
    for path in [
        "/orders",
        "/shipments/12345",
        "/coupons/77/redeem/now",
        "/unknown/thing",
    ] {
        g.bench_function(path, |b| {
            b.iter(|| t.match_path(Method::Get, black_box(path.as_bytes()), 0, &mut params))
        });
    }
    g.finish();

    let mut router = Router::new(vec![table()]);
    router
        .default_endpoint_mut()
        .insert("prod", StageRef { api: 0, stage: 0 });
    let mut dom = BasePaths::default();
    dom.insert("v1", StageRef { api: 0, stage: 0 });
    router.add_domain("api.example.com", dom);
    let buf = b"/prod/orders/42";
    let span = Span {
        start: 0,
        end: buf.len() as u32,
    };
    c.bench_function("router/base_path+route", |b| {
        b.iter(|| {
            router.route(
                black_box(buf),
                Some(b"localhost:8080"),
                Method::Get,
                span,
                &mut params,
            )
        })
    });
}

fn at_scale(c: &mut Criterion) {
    let mut params = Vec::with_capacity(8);
    let long = format!("/{}", "a".repeat(8000));
    let mut many = RouteTable::default();
    for i in 0..20_000 {
        many.insert(&parse_route_key(&format!("GET /s{i}")).unwrap(), i);
    }
    for path in ["/s19999", "/x", long.as_str()] {
        let name = format!("route_match/20000 literals{}", &path[..path.len().min(8)]);
        c.bench_function(&name, |b| {
            b.iter(|| many.match_path(Method::Get, black_box(path.as_bytes()), 0, &mut params))
        });
    }
    let mut router = Router::new(vec![table()]);
    for i in 0..20_000 {
        let stage = StageRef { api: 0, stage: 0 };
        router
            .default_endpoint_mut()
            .insert(&format!("s{i}"), stage);
    }
    for path in ["/s19999/orders/42", long.as_str()] {
        let span = Span {
            start: 0,
            end: path.len() as u32,
        };
        let name = format!("router/20000 stages{}", &path[..path.len().min(8)]);
        c.bench_function(&name, |b| {
            b.iter(|| {
                router.route(
                    black_box(path.as_bytes()),
                    None,
                    Method::Get,
                    span,
                    &mut params,
                )
            })
        });
    }
}

criterion_group!(benches, bench, at_scale);
criterion_main!(benches);
