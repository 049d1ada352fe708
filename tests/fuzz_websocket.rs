//! Fuzz target for the WebSocket frame decoder (`portico::websocket::frame`), built like
//! tests/fuzz_http1.rs: seeds of well-formed and malformed client frames (built here),
//! byte edits applied by bolero, `PORTICO_FUZZ_SECS` seconds (default 5; `.ci/run` gives
//! it longer); `cargo bolero test --test fuzz_websocket frames` for coverage-guided runs.
//!
//! Properties besides "never panics": the events and the verdict do not depend on how the
//! bytes were split across reads; text messages are valid UTF-8; no message exceeds the
//! message limit; a refusal uses one of the close codes a server may send.

use std::time::Duration;

use bytes::BytesMut;
use portico::websocket::frame::{Decoder, Event, Limits, Violation};

const LIMITS: Limits = Limits {
    frame: 256,
    message: 512,
};

fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn seeds() -> Vec<Vec<u8>> {
    let mut fragmented = client(false, 1, "héllo ".as_bytes());
    fragmented.extend(client(true, 9, b"ping"));
    fragmented.extend(client(true, 0, "wörld".as_bytes()));
    let mut close = client(true, 1, b"{\"action\":\"echo\"}");
    close.extend(client(true, 8, &[0x03, 0xe8, b'b', b'y', b'e']));
    vec![
        client(true, 1, b"hello"),
        client(true, 2, &[0, 1, 2, 255]),
        fragmented,
        close,
        client(true, 1, &[b'a'; 200]),
        client(true, 1, &[0xe2, 0x82, 0xac, 0xf0, 0x9f]),
        vec![0x81, 0xff, 0, 0, 0, 0, 0, 0, 1, 0],
    ]
}

type Mutation = (u8, Vec<(u16, u8, u8)>);

fn mutate(seeds: &[Vec<u8>], (seed, edits): &Mutation) -> Vec<u8> {
    let mut buf = seeds[usize::from(*seed) % seeds.len()].clone();
    for &(pos, op, byte) in edits.iter().take(12) {
        let at = usize::from(pos) % (buf.len() + 1);
        match op % 5 {
            0 if at < buf.len() => buf[at] ^= 1 << (byte % 8),
            1 if at < buf.len() => buf[at] = byte,
            2 => buf.insert(at, byte),
            3 if at < buf.len() => {
                buf.remove(at);
            }
            _ => {
                let end = (at + usize::from(byte)).min(buf.len());
                let copy = buf[at..end].to_vec();
                buf.splice(at..at, copy);
            }
        }
    }
    buf.truncate(4096);
    buf
}

fn decode(pieces: &[&[u8]]) -> (Vec<Event>, Option<Violation>) {
    let mut d = Decoder::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match d.next(&mut buf) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(v) => return (events, Some(v)),
            }
        }
    }
    (events, None)
}

fn check(input: &[u8]) {
    let whole = decode(&[input]);
    for e in &whole.0 {
        if let Event::Message { text, data } = e {
            assert!(data.len() <= LIMITS.message);
            if *text {
                assert!(std::str::from_utf8(data).is_ok());
            }
        }
    }
    if let Some(v) = whole.1 {
        assert!(matches!(v.code, 1002 | 1007 | 1009), "{v:?}");
    }
    let step = (input.len() / 12).max(1);
    for k in (1..input.len()).step_by(step) {
        assert_eq!(decode(&[&input[..k], &input[k..]]), whole, "split at {k}");
    }
}

#[test]
fn frames() {
    let seeds = seeds();
    for s in &seeds {
        check(s);
    }
    let secs = std::env::var("PORTICO_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    bolero::check!()
        .with_type::<Mutation>()
        .with_test_time(Duration::from_secs(secs))
        .for_each(|m| check(&mutate(&seeds, m)));
}
