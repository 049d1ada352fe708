//! The two trace headers written into every proxied request's upstream head
//! (`traceparent`, `X-Amzn-Trace-Id`), new and continued; and the look-up, for each of a
//! client's headers, of whether the proxy writes or drops it (`own_headers`). Never
//! timed in CI (`cargo bench --no-run`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portico::integration::own_headers::written_by_proxy;
use portico::pipeline::trace::{amzn_trace_id, traceparent};
use portico::upstream::balance::Rng;

const ID: &[u8] = b"5f0c9a3e-7b21-4d8e-9c1a-2e6f4b8d0a17";
const TRACEPARENT: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const AMZN: &[u8] = b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn trace_headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("trace_headers");
    let mut rng = Rng::new(7);
    let mut out = Vec::with_capacity(512);
    for (name, tp, amzn) in [
        ("new", None, None),
        ("continued", Some(TRACEPARENT), Some(AMZN)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                traceparent(&mut out, black_box(tp), &mut rng);
                amzn_trace_id(
                    &mut out,
                    black_box(amzn),
                    black_box(ID),
                    black_box(1_764_612_000),
                );
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// A browser's request head, name by name: each is looked up once per proxied request.
fn own_headers(c: &mut Criterion) {
    const NAMES: [&[u8]; 9] = [
        b"Host",
        b"User-Agent",
        b"Accept",
        b"Accept-Language",
        b"Accept-Encoding",
        b"Referer",
        b"Cookie",
        b"Connection",
        b"Sec-Fetch-Mode",
    ];
    c.bench_function("own_headers/9 browser headers", |b| {
        b.iter(|| {
            NAMES
                .iter()
                .filter(|n| written_by_proxy(black_box(n)))
                .count()
        })
    });
}

criterion_group!(benches, trace_headers, own_headers);
criterion_main!(benches);
