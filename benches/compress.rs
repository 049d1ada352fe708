//! Response compression: the CPU cost per response of gzip (level 1, nginx's default) and
//! brotli (quality 4) on an ~8 KiB JSON body, streamed as the relay does (write, then
//! finish) with the worker's pooled deflate state; and Accept-Encoding negotiation, which
//! every request on an API with compression pays. Never timed in CI.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portico::config::model::{Coding, Compression};
use portico::pipeline::compress::{CompressRt, Encoder};

fn json(n: usize) -> Vec<u8> {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < n - 16 {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user {}\",\"email\":\"u{}@example.com\",\"active\":{}}},",
            i * 7919 % 1000,
            i * 31 % 977,
            i % 3 == 0
        ));
        i += 1;
    }
    s.push_str("{}]");
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let body = json(8 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    let mut g = c.benchmark_group("compress_8KiB_json");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for coding in [Coding::Gzip, Coding::Br] {
        g.bench_function(coding.token(), |b| {
            b.iter(|| {
                out.clear();
                let mut enc = Encoder::new(coding);
                enc.write(black_box(&body), &mut out);
                enc.finish(&mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();

    let rt = CompressRt::compile(&Compression::default());
    c.bench_function("negotiate_accept_encoding", |b| {
        b.iter(|| rt.negotiate(black_box(Some(&b"gzip, deflate, br, zstd"[..]))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
