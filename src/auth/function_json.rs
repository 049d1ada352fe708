//! JSON as functions write it, read by Lambda authorizers here and by the Lambda
//! integration above: serde_json, but for numbers past a double's range.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

/// `raw` read as JSON, each number past a double's range (`1e400`, JSON all the same) read
/// as a string of its text: serde_json refuses such a number, and a function's or an
/// authorizer's answer with one anywhere (even in a key Portico never reads) failed
/// whole. Where such a number is a value Portico uses (a header, a body, a context
/// value), its text is what the function wrote, as every number's is. The error of the
/// first read when something else is wrong.
pub(crate) fn json_allowing_big_numbers(raw: &[u8]) -> Result<Value, serde_json::Error> {
    let e = match serde_json::from_slice(raw) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if !e.to_string().starts_with("number out of range") {
        return Err(e);
    }
    // Every such number quoted in one pass, then one more read: quoting one number per
    // read took up to 64 reads of a 20 MB answer, on the worker every other connection
    // of it waits for.
    serde_json::from_slice(&quote_big_numbers(raw)).map_err(|_| e)
}

/// The members of `raw`'s top-level `member` object as the function wrote them, `None`
/// where there is no such object (or `member` is there twice). serde's `Value` makes an
/// integer past u64 a double (`18446744073709551616` → `1.8446744073709552e+19`): a
/// value passed on should keep its digits.
pub(crate) fn raw_members<'a>(raw: &'a [u8], member: &str) -> Option<Vec<(String, &'a RawValue)>> {
    let top: HashMap<String, &'a RawValue> = serde_json::from_slice(raw).ok()?;
    let object = top.get(member)?;
    // A repeated key is its last value, as `Value` keeps it.
    let pairs: HashMap<String, &'a RawValue> = serde_json::from_str(object.get()).ok()?;
    Some(pairs.into_iter().collect())
}

/// A value's text as the function wrote it, without the blanks between its tokens (a
/// pretty-printed object's line breaks are no data), and each number past a double's
/// range a string of its text (as [`json_allowing_big_numbers`] reads it).
pub(crate) fn written(raw: &RawValue) -> String {
    let text = quote_big_numbers(&compact(raw.get().as_bytes()));
    String::from_utf8(text).unwrap_or_else(|_| raw.get().to_string())
}

/// JSON text without the blanks outside its strings.
fn compact(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        out.push(b);
    }
    out
}

/// `raw` with each number outside a string that a double cannot hold in quotes.
fn quote_big_numbers(raw: &[u8]) -> Vec<u8> {
    let is_number = |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut out = Vec::with_capacity(raw.len() + 64);
    let (mut i, mut in_string) = (0, false);
    while i < raw.len() {
        let b = raw[i];
        let taken = if in_string {
            match b {
                b'\\' => 2,
                b'"' => {
                    in_string = false;
                    1
                }
                _ => 1,
            }
        } else if b == b'"' {
            in_string = true;
            1
        } else if b == b'-' || b.is_ascii_digit() {
            let n = raw[i..].iter().take_while(|&&b| is_number(b)).count();
            let t = &raw[i..i + n];
            let big = is_json_number(t)
                && std::str::from_utf8(t)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(f64::is_infinite);
            if big {
                out.push(b'"');
                out.extend_from_slice(t);
                out.push(b'"');
                i += n;
                continue;
            }
            n
        } else {
            1
        };
        let to = (i + taken).min(raw.len());
        out.extend_from_slice(&raw[i..to]);
        i = to;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::json_allowing_big_numbers as read;

    #[test]
    fn numbers_past_a_double_are_their_text_in_one_pass() {
        // Sixty-five of them (a read per number stopped at 64), in strings left alone.
        let mut doc = String::from(r#"{"s":"1e400 \" 2e500","a":["#);
        for i in 0..65 {
            doc.push_str(if i > 0 { ",1e400" } else { "-1E+999" });
        }
        doc.push_str(r#"],"n":1.5,"m":100000000000000000000000}"#);
        let v = read(doc.as_bytes()).unwrap();
        assert_eq!(v["s"], "1e400 \" 2e500");
        assert_eq!(v["a"][0], "-1E+999");
        assert_eq!(v["a"][64], "1e400");
        assert_eq!(v["a"].as_array().unwrap().len(), 65);
        assert_eq!(v["n"], 1.5);
        assert!(v["m"].is_f64());
        // Something else wrong too: the first read's error.
        let e = read(br#"{"a":1e400,}"#).unwrap_err().to_string();
        assert!(e.starts_with("number out of range"), "{e}");
        assert!(read(br#"{"a":1e400e5}"#).is_err());
    }
}
