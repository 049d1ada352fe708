//! Response cache store: a hit among 10,000 entries (what every cached request pays before
//! writing), and a miss that stores with eviction under a full budget. Never timed in CI.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use portico::pipeline::cache::{Entry, Store};

fn entry(now: Instant) -> Entry {
    Entry {
        status: 200,
        head: Bytes::from_static(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 128\r\n",
        ),
        body: Bytes::from(vec![b'x'; 128]),
        stored: now,
        expires: now + Duration::from_secs(3600),
        initial_age: 0,
        tag: 1,
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("\x00\x0c\x00\x00\x00/users/{i:06}").into_bytes()
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("cache_store");
    let mut store = Store::new(64 << 20);
    for i in 0..10_000 {
        store.insert(Rc::from(key(i)), entry(now), now);
    }
    let hot = key(4_242);
    g.bench_function("hit of 10k", |b| {
        b.iter(|| {
            store
                .get(black_box(&hot), 1, now, &[1])
                .map(|e| e.body.len())
        })
    });
    // Room for ~1,000 entries, 100,000 keys: every insert pushes one out.
    let mut full = Store::new(1_000 * 220);
    let keys: Vec<Rc<[u8]>> = (0..100_000).map(|i| Rc::from(key(i))).collect();
    let mut i = 0;
    g.bench_function("miss, store and evict", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            if full.get(k, 1, now, &[1]).is_none() {
                // Asked for more often than the entries it pushes out (each asked for
                // twice), so it passes the admission filter.
                full.get(k, 1, now, &[1]);
                full.get(k, 1, now, &[1]);
                full.insert(k.clone(), entry(now), now);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
