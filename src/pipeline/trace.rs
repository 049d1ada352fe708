//! Trace headers passed to the backend. A W3C `traceparent` keeps the caller's trace id
//! and flags with a new span id for this hop, or starts a new trace; `X-Amzn-Trace-Id`
//! keeps the caller's `Root` (and `Sampled`) with a new `Parent`, or starts a new root in
//! X-Ray's format `1-{8 hex epoch seconds}-{24 hex random}`. Written straight into the
//! upstream head: no allocation.

use crate::upstream::balance::Rng;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Every byte as its two hex digits.
static PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// `v` as sixteen hex digits, two per table lookup: the callers append a fixed-size
/// array (or its fixed tail), which compiles to a few moves where a slice of a length
/// known only at run time was a `memcpy` call each.
fn hex(v: u64) -> [u8; 16] {
    let mut buf = [0u8; 16];
    for (pair, byte) in buf.chunks_exact_mut(2).zip(v.to_be_bytes()) {
        pair.copy_from_slice(&PAIRS[byte as usize]);
    }
    buf
}

/// A hash of a request id, for its `Parent`: eight bytes a step (FNV a byte a step was a
/// chain of 36 dependent multiplies on every proxied request).
fn parent_of(id: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ id.len() as u64;
    let mut words = id.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(K);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K);
    }
    h ^ h >> 32
}

fn is_hex(b: &[u8]) -> bool {
    b.iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// `version-traceid-parentid-flags`, as W3C Trace Context level 1 defines it: version
/// 00 is exactly those 55 characters; a later version may have more after them, behind
/// a `-` (anything else there, `-01.` or `-001`, is not a trace to continue).
fn parse_traceparent(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let v = v.trim_ascii();
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    if v.len() > 55 && (v.starts_with(b"00") || v[55] != b'-') {
        return None;
    }
    let (version, trace, parent, flags) = (&v[..2], &v[3..35], &v[36..52], &v[53..55]);
    let all_zero = |s: &[u8]| s.iter().all(|&c| c == b'0');
    if !is_hex(version)
        || version == b"ff"
        || !is_hex(trace)
        || all_zero(trace)
        || !is_hex(parent)
        || all_zero(parent)
        || !is_hex(flags)
    {
        return None;
    }
    Some((trace, flags))
}

/// Appends the `traceparent` header line for the upstream request; whether it continues
/// the caller's trace (else it starts a new one).
pub fn traceparent(out: &mut Vec<u8>, incoming: Option<&[u8]>, rng: &mut Rng) -> bool {
    out.extend_from_slice(b"traceparent: 00-");
    let continued = incoming.and_then(parse_traceparent);
    match continued {
        Some((trace, flags)) => {
            out.extend_from_slice(trace);
            out.push(b'-');
            out.extend_from_slice(&hex(rng.next_u64() | 1));
            out.push(b'-');
            out.extend_from_slice(flags);
        }
        None => {
            // Trace id, '-', span id, "-01": one fixed-size append.
            let mut line = [b'-'; 52];
            line[..16].copy_from_slice(&hex(rng.next_u64() | 1));
            line[16..32].copy_from_slice(&hex(rng.next_u64()));
            line[33..49].copy_from_slice(&hex(rng.next_u64() | 1));
            line[50..].copy_from_slice(b"01");
            out.extend_from_slice(&line);
        }
    }
    out.extend_from_slice(b"\r\n");
    continued.is_some()
}

/// Appends the `X-Amzn-Trace-Id` header line for the upstream request.
pub fn amzn_trace_id(out: &mut Vec<u8>, incoming: Option<&[u8]>, request_id: &[u8], now_secs: u64) {
    out.extend_from_slice(b"x-amzn-trace-id: ");
    amzn_trace_value(out, incoming, request_id, now_secs);
    out.extend_from_slice(b"\r\n");
}

/// Appends the `X-Amzn-Trace-Id` value for the next hop (`Root=…;Parent=…;Sampled=…`):
/// the caller's Root, or a new one, and a Parent for this gateway hop, both taken from
/// `request_id` (a request's unique id), so every call one request makes (authorizer,
/// integration, WebSocket events) carries the same trace and Parent, as one API Gateway
/// segment would.
pub fn amzn_trace_value(
    out: &mut Vec<u8>,
    incoming: Option<&[u8]>,
    request_id: &[u8],
    now_secs: u64,
) {
    let field = |name: &[u8]| {
        incoming?
            .split(|&b| b == b';')
            .map(<[u8]>::trim_ascii)
            .find_map(|kv| {
                let (k, v) = kv.split_at(kv.iter().position(|&b| b == b'=')?);
                k.eq_ignore_ascii_case(name).then(|| &v[1..])
            })
    };
    out.extend_from_slice(b"Root=");
    match field(b"Root")
        .filter(|r| r.len() <= 64 && r.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'))
    {
        Some(root) => out.extend_from_slice(root),
        None => {
            out.extend_from_slice(b"1-");
            out.extend_from_slice(&hex(now_secs & 0xffff_ffff)[8..]);
            out.push(b'-');
            // The id's last 24 random hex digits, gathered from the end on the stack and
            // appended at once (a filtered iterator pushed byte by byte was this
            // function's whole cost). A UUID's version and variant digits (places 14
            // and 19) are no random part: kept, every Root had a `4` and an 8-b at fixed
            // places, 90 random bits of X-Ray's 96.
            let fixed = |i: usize| request_id.len() == 36 && (i == 14 || i == 19);
            let mut tail = [0u8; 24];
            let mut from = tail.len();
            let digits = request_id.iter().enumerate().rev();
            for (_, &b) in digits.filter(|&(i, b)| b.is_ascii_hexdigit() && !fixed(i)) {
                if from == 0 {
                    break;
                }
                from -= 1;
                tail[from] = b;
            }
            out.extend_from_slice(&tail[from..]);
        }
    }
    out.extend_from_slice(b";Parent=");
    out.extend_from_slice(&hex(parent_of(request_id) | 1));
    let sampled = field(b"Sampled")
        .filter(|s| matches!(*s, b"0" | b"1" | b"?"))
        .unwrap_or(b"1");
    out.extend_from_slice(b";Sampled=");
    out.extend_from_slice(sampled);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn traceparent_continued_or_created() {
        let mut rng = Rng::new(7);
        let incoming = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let l = line(|o| assert!(traceparent(o, Some(incoming), &mut rng)));
        assert!(
            l.starts_with("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{l}"
        );
        assert!(l.ends_with("-01\r\n"));
        assert!(
            !l.contains("00f067aa0ba902b7"),
            "a new span id for this hop"
        );
        assert_eq!(l.len(), "traceparent: ".len() + 55 + 2);

        for bad in [
            &b"garbage"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            let l = line(|o| assert!(!traceparent(o, Some(bad), &mut rng)));
            assert_eq!(l.len(), "traceparent: ".len() + 55 + 2, "{l}");
            assert!(!l.contains("00000000000000000000000000000000"));
            // A new trace is one the next hop can continue: hex and dashes in place.
            let value = &l.as_bytes()["traceparent: ".len()..l.len() - 2];
            assert!(parse_traceparent(value).is_some(), "{l}");
            assert!(l.ends_with("-01\r\n"), "{l}");
        }
    }

    /// W3C Trace Context's own test suite (`test/test.py`): version 00 is exactly 55
    /// characters, and a later version's extra part starts with `-`.
    #[test]
    fn traceparent_of_another_length_is_a_new_trace() {
        let t = "12345678901234567890123456789012";
        let p = "1234567890123456";
        for bad in [
            format!("00-{t}-{p}-01."),
            format!("00-{t}-{p}-01-what-the-future-will-be-like"),
            format!("cc-{t}-{p}-01.what-the-future-will-be-like"),
            format!("00-{t}-{p}-001"),
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
        for good in [
            format!("00-{t}-{p}-01"),
            format!(" 00-{t}-{p}-01\t"),
            format!("cc-{t}-{p}-01"),
            format!("cc-{t}-{p}-01-what-the-future-will-be-like"),
        ] {
            let (trace, flags) = parse_traceparent(good.as_bytes()).expect(&good);
            assert_eq!((trace, flags), (t.as_bytes(), &b"01"[..]), "{good}");
        }
    }

    #[test]
    fn amzn_trace_id_keeps_root() {
        let id = b"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let other = b"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1";
        let l = line(|o| {
            amzn_trace_id(
                o,
                Some(b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"),
                id,
                1,
            )
        });
        assert!(
            l.starts_with("x-amzn-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent="),
            "{l}"
        );
        assert!(
            !l.contains("53995c3f42cd8ad8"),
            "a new Parent for this hop: {l}"
        );
        assert!(l.ends_with(";Sampled=0\r\n"));
        let l = line(|o| amzn_trace_id(o, None, id, 0x5759e988));
        assert!(
            l.starts_with("x-amzn-trace-id: Root=1-5759e988-3c4b5a978796a5b4c3d2e1f0;Parent="),
            "{l}"
        );
        assert!(l.ends_with(";Sampled=1\r\n"), "{l}");
        // One request, one trace: the same value each time it is asked for; another
        // request, another Root and Parent.
        assert_eq!(l, line(|o| amzn_trace_id(o, None, id, 0x5759e988)));
        let m = line(|o| amzn_trace_id(o, None, other, 0x5759e988));
        let root_end = "x-amzn-trace-id: Root=1-5759e988-".len() + 24;
        assert_ne!(l[..root_end], m[..root_end]);
        assert_ne!(l[root_end..], m[root_end..]);
    }

    #[test]
    fn every_byte_of_an_id_moves_its_parent() {
        let id = *b"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let mut parents = vec![parent_of(&id)];
        for i in 0..id.len() {
            let mut other = id;
            other[i] ^= 1;
            parents.push(parent_of(&other));
        }
        parents.sort_unstable();
        parents.dedup();
        assert_eq!(parents.len(), id.len() + 1);
    }
}
