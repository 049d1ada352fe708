//! Fuzz targets for the HTTP/1.1 codec: the request-head parser, the chunked decoder and
//! the response-head parser (docs/HTTP-FRAMING.md says why these three decide framing).
//!
//! Each target takes a seed from `fuzz/corpus/<target>/` (request-smuggling and framing
//! probes, one file each) and applies a generated list of byte edits to it, so the inputs
//! stay close to HTTP instead of being random noise. Harness: bolero, on stable Rust.
//! - `cargo test --test fuzz_http1` replays every seed untouched, then fuzzes each target
//!   for `PORTICO_FUZZ_SECS` seconds (default 5); `.ci/run` gives it longer.
//! - `cargo bolero test --test fuzz_http1 request_head` (cargo-bolero) drives the same
//!   targets with a coverage-guided engine (libFuzzer, AFL) for long runs.
//!
//! Besides "never panics", each target checks properties that framing depends on: the
//! result does not depend on how the bytes were split across reads, a reused head value
//! carries nothing over from the previous message, and spans stay inside the head.

use std::path::Path;
use std::time::Duration;

use portico::http1::{
    parse_request, parse_response, BodyKind, ChunkedDecoder, Method, ParseLimits, RequestHead,
    ResponseHead, LAST_CHUNK,
};

const LIMITS: ParseLimits = ParseLimits {
    max_header_bytes: 8192,
    max_request_line: 4096,
    max_body_bytes: 1 << 20,
    max_headers: 100,
};

/// Byte sequences that matter to HTTP framing, inserted whole by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b",",
    b";",
    b"\0",
    b"chunked",
    b"Transfer-Encoding: ",
    b"Content-Length: ",
    b"Connection: ",
    b"Host: ",
    b"0\r\n\r\n",
    b"ffffffffffffffff",
    b"HTTP/1.1",
    b"HTTP/1.0",
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(seeds.len() >= 5, "{}: the corpus is missing", dir.display());
    seeds
}

/// A seed (by index) and edits `(position, op, byte)` applied to it in order.
type Mutation = (u16, Vec<(u16, u8, u8)>);

fn mutate(seeds: &[Vec<u8>], (seed, edits): &Mutation) -> Vec<u8> {
    let mut buf = seeds[usize::from(*seed) % seeds.len()].clone();
    for &(pos, op, byte) in edits.iter().take(16) {
        let at = usize::from(pos) % (buf.len() + 1);
        match op % 6 {
            0 if at < buf.len() => buf[at] ^= 1 << (byte % 8),
            1 if at < buf.len() => buf[at] = byte,
            2 => buf.insert(at, byte),
            3 if at < buf.len() => {
                buf.remove(at);
            }
            4 => {
                let token = TOKENS[usize::from(byte) % TOKENS.len()];
                buf.splice(at..at, token.iter().copied());
            }
            _ => {
                let end = (at + usize::from(byte)).min(buf.len());
                let copy = buf[at..end].to_vec();
                buf.splice(at..at, copy);
            }
        }
    }
    buf.truncate(16 * 1024);
    buf
}

fn fuzz_time() -> Duration {
    let secs = std::env::var("PORTICO_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

fn run(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let seeds = corpus(target);
    for seed in &seeds {
        check(seed);
    }
    bolero::check!()
        .with_type::<Mutation>()
        .with_test_time(fuzz_time())
        .for_each(|m| check(&mutate(&seeds, m)));
}

/// Split points worth trying: each boundary near the start and end, and a few between.
fn splits(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 16).max(1);
    (1..len.min(8))
        .chain((8..len).step_by(step))
        .chain(len.saturating_sub(8)..len)
}

fn check_request(buf: &[u8]) {
    let mut head = RequestHead::new();
    let whole = parse_request(buf, &LIMITS, &mut head);
    // A head value reused from another message ends up exactly as a fresh one.
    let mut reused = RequestHead::new();
    let other = b"POST /o?q HTTP/1.1\r\nHost: o\r\nConnection: x-y\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nUpgrade: w\r\nConnection: upgrade\r\n\r\n";
    assert_eq!(parse_request(other, &LIMITS, &mut reused), Ok(true));
    assert_eq!(parse_request(buf, &LIMITS, &mut reused), whole);
    if whole == Ok(true) {
        assert_eq!(
            reused, head,
            "a reused head kept state from the last message"
        );
        let n = head.head_len;
        assert!(n <= buf.len());
        for h in &head.headers {
            assert!(h.name.end as usize <= n && h.value.end as usize <= n);
        }
        match head.body {
            BodyKind::Chunked => {
                assert!(head.header(buf, "transfer-encoding").is_some());
                assert!(head.header(buf, "content-length").is_none());
            }
            BodyKind::Length(len) => assert!(len > 0 && len <= LIMITS.max_body_bytes),
            BodyKind::Empty => assert!(head.header(buf, "transfer-encoding").is_none()),
        }
    }
    // However the bytes arrive, a prefix of the message is "need more", never a verdict.
    let end = match whole {
        Ok(true) => head.head_len,
        _ => buf.len(),
    };
    for k in splits(end) {
        let mut part = RequestHead::new();
        let got = parse_request(&buf[..k], &LIMITS, &mut part);
        match (&whole, &got) {
            (Ok(true), Ok(false)) | (Ok(false), Ok(false)) => {}
            // An error may show as soon as its bytes are in; it must be the same error.
            (Err(_), _) if got.is_err() => assert_eq!(got, whole, "split at {k}"),
            (Err(_), Ok(false)) => {}
            _ => panic!("split at {k}: {got:?}, whole message: {whole:?}"),
        }
    }
}

fn check_chunked(buf: &[u8]) {
    let decode = |pieces: &[&[u8]]| {
        let mut dec = ChunkedDecoder::new(1 << 20);
        let mut payload = Vec::new();
        let mut consumed = 0;
        // What a relay sends on (ChunkedDecoder::relay_scan): the bytes it holds back lead
        // its next buffer, and the final section goes as LAST_CHUNK.
        let mut forwarded = Vec::new();
        let mut held = Vec::new();
        for piece in pieces {
            let held_len = held.len();
            let mut relay_buf = std::mem::take(&mut held);
            relay_buf.extend_from_slice(piece);
            let scanned = dec.relay_scan(&relay_buf, |r| payload.extend_from_slice(&relay_buf[r]));
            match scanned {
                Ok(r) => {
                    assert!(r.send <= r.consumed && r.consumed <= relay_buf.len());
                    assert!(r.consumed >= held_len);
                    forwarded.extend_from_slice(&relay_buf[..r.send]);
                    consumed += r.consumed - held_len;
                    if r.done {
                        forwarded.extend_from_slice(LAST_CHUNK);
                        return Ok((payload, consumed, forwarded));
                    }
                    // Sent so far: nothing a cut here would leave looking whole, or
                    // leave in the middle of a size line.
                    let mut fresh = ChunkedDecoder::new(1 << 20);
                    let again = fresh.relay_scan(&forwarded, |_| {});
                    assert!(again.is_ok_and(|a| !a.done && a.send == forwarded.len()));
                    held = relay_buf[r.send..].to_vec();
                }
                Err(e) => return Err(e),
            }
        }
        Ok((payload, usize::MAX, forwarded)) // not done
    };
    let whole = decode(&[buf]);
    if let Ok((payload, consumed, forwarded)) = &whole {
        if *consumed != usize::MAX {
            // What is forwarded is a whole chunked body of the same payload, no trailers.
            let mut dec = ChunkedDecoder::new(1 << 20);
            let mut again = Vec::new();
            let scan = dec.relay_scan(forwarded, |r| again.extend_from_slice(&forwarded[r]));
            assert!(scan.is_ok_and(|s| s.done
                && s.consumed == forwarded.len()
                && s.consumed - s.send == LAST_CHUNK.len()));
            assert_eq!(&again, payload);
        }
        assert_eq!(payload.len() as u64, {
            let mut dec = ChunkedDecoder::new(1 << 20);
            let _ = dec.scan(buf, |_| {});
            dec.payload_len()
        });
    }
    for k in splits(buf.len()) {
        assert_eq!(decode(&[&buf[..k], &buf[k..]]), whole, "split at {k}");
    }
}

fn check_response(buf: &[u8]) {
    for method in [Method::Get, Method::Head] {
        let mut head = ResponseHead::new();
        let whole = parse_response(buf, method, 8192, &mut head);
        let mut reused = ResponseHead::new();
        let other = b"HTTP/1.1 200 OK\r\nConnection: x-y\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(parse_response(other, method, 8192, &mut reused), Ok(true));
        assert_eq!(parse_response(buf, method, 8192, &mut reused), whole);
        if whole == Ok(true) {
            assert_eq!(
                reused, head,
                "a reused head kept state from the last message"
            );
            assert!(head.head_len <= buf.len());
            if head.content_length.is_some() {
                assert!(head.header(buf, "transfer-encoding").is_none());
            }
        }
        let end = match whole {
            Ok(true) => head.head_len,
            _ => buf.len(),
        };
        for k in splits(end) {
            let mut part = ResponseHead::new();
            let got = parse_response(&buf[..k], method, 8192, &mut part);
            match (&whole, &got) {
                (Ok(_), Ok(false)) | (Err(_), Ok(false)) => {}
                (Err(_), Err(_)) => assert_eq!(got, whole, "split at {k}"),
                _ => panic!("split at {k}: {got:?}, whole message: {whole:?}"),
            }
        }
    }
}

#[test]
fn request_head() {
    run("request", check_request);
}

#[test]
fn chunked_body() {
    run("chunked", check_chunked);
}

#[test]
fn response_head() {
    run("response", check_response);
}
