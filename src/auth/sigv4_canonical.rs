//! SigV4 canonical forms (path, query, headers) and ISO 8601 basic dates.

use super::{query_pairs, text, Input};

/// SigV4's URI encoding: unreserved characters kept, everything else `%XX`.
fn uri_encode(out: &mut String, b: &[u8], keep_slash: bool) {
    for &x in b {
        if x.is_ascii_alphanumeric() || b"-_.~".contains(&x) || (keep_slash && x == b'/') {
            out.push(x as char);
        } else {
            out.push_str(&format!("%{x:02X}"));
        }
    }
}

/// The signed-path forms: the path with dot segments and empty segments removed, then
/// URI-encoded (botocore and AWS's test suite: a received `%20` becomes `%2520`); and
/// the path exactly as received (signers that sign the encoded path they send).
pub(super) fn canonical_paths(raw: &[u8]) -> Vec<String> {
    let raw = if raw.is_empty() { &b"/"[..] } else { raw };
    let mut segments: Vec<&[u8]> = Vec::new();
    for seg in raw.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normal = Vec::with_capacity(raw.len());
    normal.push(b'/');
    normal.extend_from_slice(&segments.join(&b'/'));
    if raw.ends_with(b"/") && !segments.is_empty() {
        normal.push(b'/');
    }
    let mut a = String::with_capacity(normal.len() + 8);
    uri_encode(&mut a, &normal, true);
    let b = text(raw).to_string();
    // The path as sent only when it is not, letter for letter, the encoded form of
    // another path a client can send: `/a%2520b` is that of `/a%20b`, and `/a%3Bb` that
    // of `/a;b`, so one signature covered both while a backend reads them apart (`;`
    // starts a path parameter). That is an escape of `%` or of a character that may
    // stand in a path as it is and means something there (RFC 3986's sub-delims, `:`,
    // `@`, brackets). AWS itself takes only the encoded form.
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let collides = b.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && hex(w[1])
                .zip(hex(w[2]))
                .is_some_and(|(h, l)| b"%!$&'()*+,;=:@[]".contains(&(h << 4 | l)))
    });
    if a == b || b.is_empty() || collides {
        vec![a]
    } else {
        vec![a, b]
    }
}

/// The signed-query forms: decoded and re-encoded, sorted (the SigV4 rule); and the
/// pairs as received, sorted (botocore signs the query of a URL as it is written).
pub(super) fn canonical_queries(raw: &[u8], skip_signature: bool) -> Vec<String> {
    let keep = |n: &[u8]| !(skip_signature && n == b"X-Amz-Signature");
    // Decoded as backends decode a query, `+` a space: kept a `+`, it was re-encoded as
    // `%2B`, so a signature for `to=alice%2Bbob` also covered `to=alice+bob`, which a
    // backend reads as `alice bob`.
    let form = |b: &[u8]| {
        let mut out = Vec::with_capacity(b.len());
        crate::http1::percent_decode(b, true, &mut out);
        out
    };
    let mut encoded: Vec<(String, String)> = query_pairs(raw)
        .filter(|(n, _)| keep(n))
        .map(|(n, v)| {
            let (mut en, mut ev) = (String::new(), String::new());
            uri_encode(&mut en, &form(n), false);
            uri_encode(&mut ev, &form(v), false);
            (en, ev)
        })
        .collect();
    encoded.sort();
    let mut as_sent: Vec<(String, String)> = query_pairs(raw)
        .filter(|(n, _)| keep(n))
        .map(|(n, v)| (text(n).to_string(), text(v).to_string()))
        .collect();
    as_sent.sort();
    let join = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let (a, b) = (join(&encoded), join(&as_sent));
    if a == b {
        vec![a]
    } else {
        vec![a, b]
    }
}

/// `name:value\n` for each signed header: every value of the name joined with commas,
/// each trimmed with inner runs of spaces collapsed. None when a signed header is absent,
/// or has a value that is not UTF-8 (no signer's canonical form of it is known, and read
/// as empty it matched a signature over an empty value: a replay could put any bytes
/// there), or when the request also carries an unsigned other spelling of a signed name
/// (`X_Tenant` beside a signed `X-Tenant`, or the reverse: the same `HTTP_X_TENANT` to
/// CGI-style backends, which may take the unsigned one).
pub(super) fn canonical_headers(input: &Input, signed: &[&str]) -> Option<String> {
    // Either way round: an unsigned `X-Tenant` beside a signed `X_Tenant` too.
    let unsigned_twin = input.headers.iter().any(|(n, _)| {
        !signed.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(n))
            && signed
                .iter()
                .any(|s| crate::http1::same_cgi_name(s.as_bytes(), n))
    });
    if unsigned_twin {
        return None;
    }
    let mut out = String::new();
    for name in signed {
        let mut any = false;
        out.push_str(name);
        out.push(':');
        for v in input.header_values(name) {
            if any {
                out.push(',');
            }
            any = true;
            let mut space = false;
            for ch in std::str::from_utf8(v).ok()?.trim().chars() {
                if ch == ' ' || ch == '\t' {
                    space = true;
                    continue;
                }
                if space {
                    out.push(' ');
                    space = false;
                }
                out.push(ch);
            }
        }
        if !any {
            return None;
        }
        out.push('\n');
    }
    Some(out)
}

/// "20150830T123600Z" → seconds since the epoch.
pub(super) fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { text(&b[r]).parse().ok() };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Howard Hinnant's days_from_civil (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch → "20150830T123600Z".
pub fn amz_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
