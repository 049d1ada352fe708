//! What validating a body may cost, whatever the body: an error on a large value is told
//! in a few hundred bytes (the message quoted the value: a 2 MB array was answered and
//! logged whole); a `pattern` that backtracks costs one string's bounded work, not every
//! string's (a 9 KB body held a worker for 25 s); and the memory a large body's
//! validation took goes back to the system (a 10 MB body left the worker 250 MB larger
//! for good); and the search for where a body fails a model whose `anyOf` branches refer
//! back to it is made only for shallow bodies (a 43-byte body nested 20 deep took 15 s
//! and 6 GB).

mod common;

use std::time::{Duration, Instant};

use common::*;

const CONFIG: &str = r##"server: { listen: ["127.0.0.1:{PORT}"], workers: 1, limits: { max_body_bytes: 12MiB } }
apis:
  web:
    stages: { $default: {} }
    gateway_responses:
      BAD_REQUEST_BODY: { body: '{"why":"$context.error.validationErrorString"}' }
    models:
      Deep: { type: object, properties: { a: { type: object } } }
      Word: { type: object, properties: { s: { type: string, pattern: "^[a-z]+$" } } }
      Twice: { type: array, items: { type: string, pattern: "^(a|aa)+\\1$" } }
      Pw: { type: string, pattern: "(?=.*[0-9])(?=.*[a-z])" }
      Tree: { anyOf: [ { type: array, items: { $ref: "#/models/Tree" } }, { type: array, minItems: 0, items: { $ref: "#/models/Tree" } }, { type: integer } ] }
    routes:
      "GET /ping": { integration: { type: mock, status: 200, body: pong } }
      "POST /deep": { integration: { type: mock, status: 200, body: ok }, request_validator: all, request_model: Deep }
      "POST /word": { integration: { type: mock, status: 200, body: ok }, request_validator: all, request_model: Word }
      "POST /twice": { integration: { type: mock, status: 200, body: ok }, request_validator: all, request_model: Twice }
      "POST /pw": { integration: { type: mock, status: 200, body: ok }, request_validator: all, request_model: Pw }
      "POST /tree": { integration: { type: mock, status: 200, body: ok }, request_validator: all, request_model: Tree }
"##;

fn post(p: &Portico, path: &str, body: &[u8]) -> Response {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    p.raw(&request)
}

/// `{"<key>":<head>[0,0,…]}` with `n` zeros.
fn zeros(head: &str, n: usize) -> Vec<u8> {
    let mut body = format!("{head}[").into_bytes();
    body.extend(std::iter::repeat_n(&b"0,"[..], n).flatten());
    body.extend_from_slice(b"0]}");
    body
}

fn rss_kib(p: &Portico) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_error_on_a_large_value_is_told_briefly() {
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        let r = post(&p, "/deep", &zeros(r#"{"a":"#, 1_000_000));
        assert_eq!(r.status, 400, "{driver}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let why = v["why"].as_str().unwrap().to_string();
        assert!(
            why.len() < 1000,
            "{driver}: {} bytes: {why:.300}",
            why.len()
        );
        assert!(why.contains("more") && why.ends_with(" at /a]"), "{why}");
    }
}

#[test]
fn a_backtracking_pattern_costs_one_string_not_the_body() {
    let strings: Vec<String> = (0..300).map(|_| format!("{}!", "a".repeat(25))).collect();
    let body = serde_json::to_vec(&strings).unwrap();
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        let started = Instant::now();
        let r = post(&p, "/twice", &body);
        let took = started.elapsed();
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        // Minutes before (every string tried to a million steps, twice): the bound is
        // generous for a debug build on a busy machine.
        assert!(took < Duration::from_secs(15), "{driver}: {took:?}");
        assert_eq!(p.get("/ping").status, 200);
    }
}

/// An unanchored lookahead is retried at every position, each retry scanning to the end
/// uncounted by the step limit: 40,000 characters held the worker (and every request on
/// it) for 8 s in a release build. The string is refused for its length, unmatched, and a
/// request sent meanwhile is answered.
#[test]
fn a_long_string_is_not_matched_against_a_lookahead_pattern() {
    let long = format!("\"{}\"", "a".repeat(40_000)).into_bytes();
    for driver in DRIVERS {
        let p = std::sync::Arc::new(Portico::start(CONFIG, driver));
        let slow = {
            let (p, long) = (p.clone(), long.clone());
            std::thread::spawn(move || post(&p, "/pw", &long))
        };
        std::thread::sleep(Duration::from_millis(100));
        // Read within the client's 15 s timeout (the old code took minutes in a debug
        // build).
        assert_eq!(post(&p, "/pw", br#""a1""#).status, 200, "{driver}");
        let r = slow.join().unwrap();
        assert_eq!(r.status, 400, "{driver}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let why = v["why"].as_str().unwrap();
        assert!(
            why.contains("40000 characters is longer than the 256"),
            "{driver}: {why}"
        );
        assert_eq!(post(&p, "/pw", br#""a""#).status, 400, "{driver}");
    }
}

#[test]
fn memory_a_large_bodys_validation_took_goes_back() {
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        // One escape keeps the body off the one-pass scanner: it is parsed onto a tape
        // (about 200 MB for five million numbers).
        let body = zeros(r#"{"s":"\u0061","b":"#, 5_000_000);
        assert_eq!(post(&p, "/word", br#"{"s":"\u0061"}"#).status, 200);
        let before = rss_kib(&p);
        assert_eq!(post(&p, "/word", &body).status, 200, "{driver}");
        assert_eq!(
            post(&p, "/deep", &zeros(r#"{"a":1,"b":"#, 5_000_000)).status,
            400
        );
        let after = rss_kib(&p);
        assert!(
            after < before + 64 * 1024,
            "{driver}: RSS {before} KiB before, {after} KiB after"
        );
    }
}

/// A chunked body read whole (validation, Lambda, IAM) costs its payload, not its
/// framing: one-byte chunks are six bytes each on the wire, and kept as sent until the
/// end (beside a decoded copy) they held 7–9 × `max_body_bytes` per connection. Four
/// connections each send 1.5 MB of payload that way (9 MB on the wire) and stop short
/// of the last chunk; then each finishes and its body is checked whole.
#[test]
fn a_chunked_body_costs_its_payload_not_its_framing() {
    use std::io::{Read, Write};
    let payload = 1_500_000;
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        assert_eq!(post(&p, "/word", br#"{"s":"a"}"#).status, 200);
        let before = rss_kib(&p);
        // `{"s":"aaa…a"}`, every byte its own chunk.
        let body: Vec<u8> = [&br#"{"s":""#[..], &vec![b'a'; payload], &br#""}"#[..]].concat();
        let framed: Vec<u8> = body
            .iter()
            .flat_map(|&b| [b'1', b'\r', b'\n', b, b'\r', b'\n'])
            .collect();
        let mut clients: Vec<std::net::TcpStream> = (0..4)
            .map(|_| {
                let mut s = p.connect();
                s.write_all(b"POST /word HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
                s.write_all(&framed).unwrap();
                s
            })
            .collect();
        // All sent, none finished: what each connection holds now.
        std::thread::sleep(Duration::from_millis(500));
        let during = rss_kib(&p);
        // Each holds its payload in a buffer that grows by doubling (and the allocator
        // keeps what it outgrew): a few times 1.5 MB, not its 9 MB as sent (66 MB for
        // the four before).
        assert!(
            during < before + 4 * 8 * 1024,
            "{driver}: RSS {before} KiB before, {during} KiB with four bodies in"
        );
        for s in &mut clients {
            s.write_all(b"0\r\n\r\n").unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "{driver}");
        }
    }
}

#[test]
fn a_deep_body_against_recursive_alternatives_is_refused_without_searching_why() {
    let nested =
        |depth: usize, leaf: &str| format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth));
    for driver in DRIVERS {
        let p = Portico::start(CONFIG, driver);
        let why = |body: &str| {
            let r = post(&p, "/tree", body.as_bytes());
            assert_eq!(r.status, 400, "{driver}: {}", r.text());
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["why"].as_str().unwrap().to_string()
        };
        // Five ways per level (three branches, two references back), eight errors a
        // value: a chain 2 deep (3 values × 8 × 5^3 ≤ 10,000) is searched, its error told
        // as before.
        let shallow = why(&nested(2, r#""x""#));
        assert_eq!(
            shallow,
            r#"[[["x"]] is not valid under any of the schemas listed in the 'anyOf' keyword at /]"#,
            "{driver}"
        );
        // Deeper, or as shallow but wide: refused at once, unsearched (depth 30 would take
        // 2^30 branches; 2,000 copies of a chain 5 deep, 2,000 × 2^5).
        let deep = why(&nested(30, r#""x""#));
        assert!(deep.contains("is not searched for"), "{driver}: {deep}");
        let wide = format!("[{}]", vec![nested(4, r#""x""#); 2000].join(","));
        let wide = why(&wide);
        assert!(wide.contains("is not searched for"), "{driver}: {wide}");
        // Valid bodies of any depth still pass; one too deep to read is told so.
        assert_eq!(post(&p, "/tree", nested(100, "7").as_bytes()).status, 200);
        let too_deep = why(&nested(128, "7"));
        assert_eq!(too_deep, "[body nests 128 levels or deeper]", "{driver}");
        assert_eq!(p.get("/ping").status, 200, "{driver}");
    }
}
