//! Codec throughput: request heads as curl and a browser send them, an upstream response
//! head, and chunked framing over a 64 KiB body. Never timed in CI (`cargo bench --no-run`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portico::http1::{
    parse_request, parse_response, ChunkedDecoder, Method, ParseLimits, RequestHead, ResponseHead,
};

const CURL_GET: &[u8] = b"GET /prod/users/42?lang=en HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
X-Api-Key: 3f2a9c7e1b5d4a8f9e0c6b2d\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n\
Content-Type: application/json\r\n\r\n";

const BROWSER_GET: &[u8] = b"GET /prod/orders/2024/items?page=2&sort=desc HTTP/1.1\r\n\
Host: shop.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://shop.example.com/prod/orders\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n\
Cookie: session=9f8e7d6c5b4a3928; theme=dark; _ga=GA1.1.123456789.1700000000\r\n\r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Mon, 06 May 2024 10:00:00 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1234\r\n\
Connection: keep-alive\r\n\
Cache-Control: private, max-age=0\r\n\
ETag: \"5d8c72a5edda8d6a\"\r\n\
Vary: Accept-Encoding\r\n\
X-Request-Id: 7b0c1d2e-3f4a-5b6c-7d8e-9f0a1b2c3d4e\r\n\r\n";

/// 64 KiB of payload in 4 KiB chunks.
fn chunked_body() -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..16u8 {
        body.extend_from_slice(b"1000\r\n");
        body.extend(std::iter::repeat_n(b'a' + i, 4096));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

fn http1(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut req = RequestHead::new();
    let mut res = ResponseHead::new();
    let mut group = c.benchmark_group("http1_parse");

    for (name, msg) in [("request_curl", CURL_GET), ("request_browser", BROWSER_GET)] {
        assert_eq!(parse_request(msg, &limits, &mut req), Ok(true));
        group.throughput(Throughput::Bytes(msg.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_request(black_box(msg), &limits, &mut req))
        });
    }

    assert_eq!(
        parse_response(RESPONSE, Method::Get, 16384, &mut res),
        Ok(true)
    );
    group.throughput(Throughput::Bytes(RESPONSE.len() as u64));
    group.bench_function("response_head", |b| {
        b.iter(|| parse_response(black_box(RESPONSE), Method::Get, 16384, &mut res))
    });

    let body = chunked_body();
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chunked_scan_64k", |b| {
        b.iter(|| {
            let mut decoder = ChunkedDecoder::new(u64::MAX);
            let mut payload = 0;
            let scan = decoder.scan(black_box(&body), |r| payload += r.len());
            (scan, payload)
        })
    });
    group.finish();
}

criterion_group!(benches, http1);
criterion_main!(benches);
