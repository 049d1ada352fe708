//! The traffic gate's pieces as a request pays for them: a local bucket take (with a
//! lease every batch), a lease on the global pool, an API key lookup (SHA-256 + table),
//! and a quota count. Never timed in CI.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portico::global::keys::{digest, KeyEntry, KeyTable};
use portico::global::lease::{now_ns, GlobalPool, LocalBucket};
use portico::global::usage::UsageCells;

fn bench(c: &mut Criterion) {
    // Limits far above what the loop can spend: every take succeeds.
    let pool = GlobalPool::new(1e8, 10_000_000, 2);
    let local = LocalBucket::default();
    c.bench_function("local bucket take (lease every batch)", |b| {
        b.iter(|| black_box(local.take(black_box(&pool))).is_ok())
    });
    c.bench_function("global pool lease (one CAS)", |b| {
        b.iter(|| black_box(pool.lease(black_box(32), now_ns())))
    });

    let entries: Vec<KeyEntry> = (0..10_000)
        .map(|i| KeyEntry {
            sha256: digest(format!("key-value-{i:08}-padding-padding").as_bytes()),
            name: format!("k{i}").into(),
            plan: None,
        })
        .collect();
    let table = KeyTable::build(entries);
    let presented = b"key-value-00004242-padding-padding";
    c.bench_function("api key lookup (sha-256 + table, 10k keys)", |b| {
        b.iter(|| black_box(table.find(&digest(black_box(presented)))).is_some())
    });

    let cells = UsageCells::default();
    c.bench_function("quota take + day count", |b| {
        b.iter(|| {
            black_box(cells.quota_take(black_box(20_000), u64::MAX >> 24));
            cells.count_day(black_box(20_000));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
