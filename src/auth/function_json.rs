//! JSON as functions write it, read by Lambda authorizers here and by the Lambda
//! integration above: serde_json, but for numbers past a double's range.

use serde_json::Value;

/// `raw` read as JSON, each number past a double's range (`1e400`, JSON all the same) read
/// as a string of its text: serde_json refuses such a number, and a function's or an
/// authorizer's answer with one anywhere (even in a key Portico never reads) failed
/// whole. Where such a number is a value Portico uses (a header, a body, a context
/// value), its text is what the function wrote, as every number's is. The error of the
/// first read when something else is wrong, or past 64 such numbers.
pub(crate) fn json_allowing_big_numbers(raw: &[u8]) -> Result<Value, serde_json::Error> {
    let mut e = match serde_json::from_slice(raw) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let is_number = |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut copy = raw.to_vec();
    for _ in 0..64 {
        if !e.to_string().starts_with("number out of range") {
            break;
        }
        // The error's line and column are where the reader stopped: in or right after
        // the number.
        let line_start = match e.line() {
            0 | 1 => Some(0),
            n => memchr::memchr_iter(b'\n', &copy)
                .nth(n - 2)
                .map(|at| at + 1),
        };
        let Some(line_start) = line_start else { break };
        let mut start = (line_start + e.column()).min(copy.len());
        while start > 0 && is_number(copy[start - 1]) {
            start -= 1;
        }
        let end = start + copy[start..].iter().take_while(|&&b| is_number(b)).count();
        // Only a number as JSON writes one (`1e400e5` is no number, and quoted it would
        // be a string).
        if !is_json_number(&copy[start..end]) {
            break;
        }
        copy.insert(end, b'"');
        copy.insert(start, b'"');
        match serde_json::from_slice(&copy) {
            Ok(v) => return Ok(v),
            Err(next) => e = next,
        }
    }
    // What was wrong with the answer as it came.
    Err(serde_json::from_slice::<Value>(raw).unwrap_err())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, RFC 8259's number.
fn is_json_number(t: &[u8]) -> bool {
    let digits = |t: &[u8]| t.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut t = t.strip_prefix(b"-").unwrap_or(t);
    let whole = digits(t);
    if whole == 0 || (whole > 1 && t[0] == b'0') {
        return false;
    }
    t = &t[whole..];
    if let Some(rest) = t.strip_prefix(b".") {
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        t = &rest[n..];
    }
    if let Some(rest) = t.strip_prefix(b"e").or_else(|| t.strip_prefix(b"E")) {
        let rest = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        t = &rest[n..];
    }
    t.is_empty()
}
