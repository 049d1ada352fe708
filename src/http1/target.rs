//! The request-target: origin-form or absolute-form, split into path, query and
//! authority (RFC 9112 §3.2), and refused when two layers could read its path differently.
//! The router, the authorizers and the cache match the path that the backend gets; a
//! backend that read more into it could serve a route whose checks never ran:
//! - A dot-segment (`/a/../b`, `/a/./b`) is 400 rather than resolved: a backend resolving
//!   `/public/../admin` would serve `/admin`. Clients resolve dot-segments before sending
//!   (RFC 3986 §5.2.4; curl, browsers and the AWS SDKs do), so only a crafted request has
//!   one. Read as the most lenient backend might: `%2e` is a dot, `%2F`, `\` and
//!   `%5C` end a segment, and `;` ends its dots (`..;jsessionid=x` is `..` to Tomcat). The router splits
//!   segments at `%2F` and `%5C` as well (`router::separator_len`), while the backend
//!   gets them as sent.
//! - Percent-encoded unreserved characters are decoded in place (`/%61dmin` is `/admin`,
//!   the same URI by RFC 3986 §6.2.2.2) by [`decode_unreserved`], which the connection
//!   runs before routing; other percent-encodings stay, their hex digits in upper case
//!   (`%2f` is `%2F`, §6.2.2.1). A `%` without two hex
//!   digits after it is 400: decoding around it could make a new escape.

use super::parse::{bad, Method, ParseError, RequestHead, Span};

/// Fills path, query and authority from `head.target`.
pub(super) fn split_target(buf: &[u8], head: &mut RequestHead) -> Result<(), ParseError> {
    let t = head.target.get(buf);
    let base = head.target.start as usize;
    if t.iter().any(|&b| b == b'#' || b >= 0x80) {
        return Err(bad("fragment or non-ASCII byte in request-target"));
    }
    head.authority = None;
    head.query = None;
    if t == b"*" {
        if head.method != Method::Options {
            return Err(bad("asterisk-form is only for OPTIONS"));
        }
        head.path = head.target;
        return Ok(());
    }
    let path_start = if t.first() == Some(&b'/') {
        0
    } else {
        let rest_at = if starts_with_ignore_case(t, b"http://") {
            7
        } else if starts_with_ignore_case(t, b"https://") {
            8
        } else {
            return Err(bad("request-target is not origin- or absolute-form"));
        };
        let auth_len = t[rest_at..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(t.len() - rest_at);
        let authority = &t[rest_at..rest_at + auth_len];
        if !is_valid_authority(authority) {
            return Err(bad("invalid authority in request-target"));
        }
        head.authority = Some(Span::new(base + rest_at, base + rest_at + auth_len));
        rest_at + auth_len
    };
    match t[path_start..].iter().position(|&b| b == b'?') {
        Some(q) => {
            head.path = Span::new(base + path_start, base + path_start + q);
            head.query = Some(Span::new(base + path_start + q + 1, base + t.len()));
        }
        None => head.path = Span::new(base + path_start, base + t.len()),
    }
    let path = head.path.get(buf);
    if has_malformed_escape(path) {
        return Err(bad("% not followed by two hex digits in path"));
    }
    // Neither is a URI's (RFC 3986), and each means another path to some backend: a C,
    // CGI or PHP file handler ends the path at a decoded NUL (`/a/..%00/b` is `/a/..`),
    // and IIS or Undertow read `\` as `/` (`/admin\secret` past an `/admin/…` guard).
    // nginx refuses `%00` too.
    if memchr::memchr(b'\\', path).is_some() || has_nul_escape(path) {
        return Err(bad("backslash or %00 in path"));
    }
    if has_dot_segment(path) {
        return Err(bad("dot-segment in path"));
    }
    Ok(())
}

/// A `%` not followed by two hex digits (RFC 3986 §2.1), which nginx refuses too. Kept,
/// it let decoding make an escape the router never saw: `/%%36%31dmin` became
/// `/%61dmin`, routed as that text and read as `/admin` by a backend that decodes.
pub fn has_malformed_escape(path: &[u8]) -> bool {
    memchr::memchr_iter(b'%', path).any(|at| match path.get(at + 1..at + 3) {
        Some(&[hi, lo]) => hex_value(hi).is_none() || hex_value(lo).is_none(),
        _ => true,
    })
}

/// A `%00` in a path whose escapes are well formed (a C, CGI or PHP file handler ends the
/// path at the decoded NUL).
pub fn has_nul_escape(path: &[u8]) -> bool {
    memchr::memchr_iter(b'%', path).any(|at| path.get(at + 1..at + 3) == Some(b"00"))
}

/// Decodes percent-encoded unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) in
/// `head.path` in place and shortens the span to match; other escapes are kept as sent.
/// The path only shrinks, so the rest of the head stays where it was. `keep` is given
/// the path as sent, before it changes, when it has a `%` (a SigV4 signature covers the
/// bytes the client sent; a path without one is left as it was).
pub fn decode_unreserved(buf: &mut [u8], head: &mut RequestHead, keep: impl FnOnce(&[u8])) {
    let (start, end) = (head.path.start as usize, head.path.end as usize);
    let Some(first) = memchr::memchr(b'%', &buf[start..end]) else {
        return;
    };
    keep(&buf[start..end]);
    let (mut read, mut write) = (start + first, start + first);
    while read < end {
        let b = buf[read];
        let escape = match buf[read..end] {
            [b'%', hi, lo, ..] => hex_value(hi)
                .zip(hex_value(lo))
                .map(|(h, l)| (h << 4 | l, [hi, lo])),
            _ => None,
        };
        match escape {
            Some((c, _)) if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                buf[write] = c;
                read += 3;
                write += 1;
            }
            // Kept, in upper case (RFC 3986 §6.2.2.1): `%2f` is `%2F`, and a route
            // written `/a%2Fb` (or its guard) would be stepped around by `/a%2fb`.
            Some((_, digits)) => {
                buf[write] = b'%';
                buf[write + 1] = digits[0].to_ascii_uppercase();
                buf[write + 2] = digits[1].to_ascii_uppercase();
                read += 3;
                write += 3;
            }
            None => {
                buf[write] = b;
                read += 1;
                write += 1;
            }
        }
    }
    head.path.end = write as u32;
}

/// A route literal as requests are routed: its escapes' hex digits in upper case, as
/// [`decode_unreserved`] leaves a request's.
pub fn upper_case_escapes(literal: &str) -> String {
    let mut digits_left = 0;
    literal
        .chars()
        .map(|c| {
            let c = if digits_left > 0 {
                digits_left -= 1;
                c.to_ascii_uppercase()
            } else {
                c
            };
            if c == '%' {
                digits_left = 2;
            }
            c
        })
        .collect()
}

pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` → byte, and `+` → space when `plus_is_space` (form-encoded queries); anything
/// else, a malformed escape included, is kept as it is.
pub fn percent_decode(s: &[u8], plus_is_space: bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if i + 2 < s.len() => {
                if let (Some(h), Some(l)) = (hex_value(s[i + 1]), hex_value(s[i + 2])) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
}

/// `host[:port]`: a reg-name or IPv4 address, or an IP-literal in brackets, then at most
/// one `:` and up to 5 digits (RFC 3986 §3.2). Userinfo ('@'), paths and whitespace are out:
/// the router must see the same host the backend will. An empty host is out too (RFC
/// 9110 §4.2.1; nginx answers an empty `Host` 400), and so is a port that is not digits
/// or a second colon (`a:80:90`, `a:-1`, `[::1`) or is past 65535 (`a:99999`): such a
/// value still selected a domain by its first part while the backend got the whole of it
/// as `X-Forwarded-Host`. The same judges an absolute-form target's authority, so a
/// `%`-escape or `_` in a name passes there as in a Host (nginx accepts both in Host). A
/// comma is out of a name too, legal in a reg-name but in no DNS name: `other,secure.example`
/// took the default endpoint while a backend reading `X-Forwarded-Host` as a list (Rack
/// takes the last element, Express the first) served `secure.example`'s guarded pages; and
/// so are two dots in a row (`a..b`, `a..`) and a lone dot, which nginx answers 400.
pub(super) fn is_valid_authority(v: &[u8]) -> bool {
    let sub_delim = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b);
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', v) else {
            return false;
        };
        if !is_ip_literal(&v[1..close]) {
            return false;
        }
        (&v[..=close], &v[close + 1..])
    } else {
        let at = memchr::memchr(b':', v).unwrap_or(v.len());
        let name = &v[..at];
        if name.is_empty()
            || !name.iter().all(|&b| sub_delim(b) && b != b',')
            || memchr::memmem::find(name, b"..").is_some()
            || name == b"."
        {
            return false;
        }
        (&v[..at], &v[at..])
    };
    debug_assert!(!host.is_empty());
    match port {
        [] => true,
        // An empty port is the scheme's (RFC 3986 §3.2.3: `http://a:/` is `http://a/`).
        // Past 65535 it is no TCP port: `evil:99999` went on as `X-Forwarded-Host`, a
        // link a backend would build from it to no server at all.
        [b':', digits @ ..] => {
            digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && digits
                    .iter()
                    .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
                    <= 65535
        }
        _ => false,
    }
}

/// What may stand between `[` and `]` (RFC 3986 §3.2.2): an IPv6 address, with a zone
/// as RFC 6874 writes it (`fe80::1%25eth0`), or an IPvFuture (`v1.x`). `[1::2::3]` is
/// none: RFC 9112 §3.2 has a server answer a Host with an invalid value 400, and it was
/// passed on as the domain name and `X-Forwarded-Host`.
fn is_ip_literal(literal: &[u8]) -> bool {
    let unreserved = |b: &u8| b.is_ascii_alphanumeric() || b"-._~".contains(b);
    if let [b'v' | b'V', rest @ ..] = literal {
        let dot = rest.iter().position(|&b| b == b'.').unwrap_or(0);
        let (version, text) = (&rest[..dot], rest.get(dot + 1..).unwrap_or_default());
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !text.is_empty()
            && text
                .iter()
                .all(|b| unreserved(b) || b"!$&'()*+,;=:".contains(b));
    }
    let (address, zone) = match memchr::memmem::find(literal, b"%25") {
        Some(i) => (&literal[..i], Some(&literal[i + 3..])),
        None => (literal, None),
    };
    let zone_ok = zone.is_none_or(|z| {
        !z.is_empty() && !has_malformed_escape(z) && z.iter().all(|b| unreserved(b) || *b == b'%')
    });
    zone_ok && std::str::from_utf8(address).is_ok_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Whether a segment of `path` is `.` or `..`, with dots possibly percent-encoded and
/// segments possibly ended by an encoded slash or a backslash (see the module comment).
/// Paths with neither `.` nor `%` (most API paths) cost one scan.
pub fn has_dot_segment(path: &[u8]) -> bool {
    if !path.iter().any(|&b| b == b'.' || b == b'%') {
        return false;
    }
    // Dots in the current segment, or None once it holds anything else.
    let mut dots: Option<u8> = Some(0);
    let mut i = 0;
    while i < path.len() {
        let (unit, len) = match path[i] {
            b'%' if i + 2 < path.len() => match [path[i + 1], path[i + 2].to_ascii_lowercase()] {
                [b'2', b'e'] => (b'.', 3),
                [b'2', b'f'] | [b'5', b'c'] => (b'/', 3),
                // `..%3B`: a `;` once a proxy in front decodes it (nginx).
                [b'3', b'b'] => (b';', 3),
                _ => (b'%', 1),
            },
            b'\\' => (b'/', 1),
            b => (b, 1),
        };
        match unit {
            b'/' => {
                if matches!(dots, Some(1 | 2)) {
                    return true;
                }
                dots = Some(0);
            }
            b'.' => dots = dots.map(|d| d.saturating_add(1)),
            // `..;x`: Tomcat and Jetty drop a segment's `;` parameters before resolving
            // dot-segments, so `/public/..;/admin` is their `/admin`.
            b';' if matches!(dots, Some(1 | 2)) => return true,
            _ => dots = None,
        }
        i += len;
    }
    matches!(dots, Some(1 | 2))
}

#[cfg(test)]
mod tests {
    use super::{decode_unreserved, has_dot_segment};
    use crate::http1::{parse_request, RequestHead};

    #[test]
    fn dot_segments_plain_encoded_and_behind_other_separators() {
        for p in [
            "/.",
            "/..",
            "/a/..",
            "/a/../b",
            "/a/./b",
            "/./",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/.%2e/x",
            "/a/..\\admin",
            "/a\\..\\b",
            "/a/..%2fadmin",
            "/a/..%2Fadmin",
            "/a/..%5cb",
            "/a/%2e",
            "/public/x/../../admin",
            "/public/..;/admin",
            "/public/.;x=1/admin",
            "/a/..;",
            "/a/%2e%2e;/b",
            "/public/..%3B/admin",
            "/public/.%3bx/admin",
        ] {
            assert!(has_dot_segment(p.as_bytes()), "{p}");
        }
        for p in [
            "/",
            "/a",
            "/file.json",
            "/a..b",
            "/...",
            "/a/.../b",
            "/a/...;/b",
            "/a;v=1/b",
            "/a/x..;/b",
            "/.well-known/x",
            "/a.",
            "/%2e%2e%2e",
            "/v1.2/x",
            "/a%",
            "/a%2",
            "/%25%32%65",
            "/a/%2e%2eb",
            "/..a",
            "/a%2Fb",
        ] {
            assert!(!has_dot_segment(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn an_authority_is_a_host_and_at_most_one_port() {
        use super::is_valid_authority as ok;
        for good in [
            "a",
            "a.example:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:443",
            "xn--caf-dma.example",
            "a:",
            "a:65535",
            "a:00080",
            "a:0",
            "a.example.",
            "[0:0::1]",
            "[::ffff:127.0.0.1]:80",
            "[fe80::1%25eth0]:80",
            "[v1.fe:x]",
        ] {
            assert!(ok(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            ":80",
            "a:80:90",
            "other,secure.example",
            "secure.example..",
            "a..b:80",
            ".",
            ".:80",
            "a:abc",
            "a:-1",
            "a:+80",
            "a:123456",
            "a:99999",
            "a:65536",
            "[::1]:70000",
            "[::1",
            "[zz]x",
            "a]:80",
            "[]",
            "a b",
            "u@a",
            "a/b",
            "[1::2::3]",
            "[:::1]",
            "[fe80::1%eth0]",
            "[fe80::1%25]",
            "[fe80::1%25%zz]",
            "[v.x]",
            "[v1.]",
            "[127.0.0.1]",
            "[::1]:abc",
        ] {
            assert!(!ok(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn a_stray_percent_a_nul_escape_or_a_backslash_in_the_path_is_refused() {
        for path in [
            "/x%6",
            "/x%",
            "/x%zz%41",
            "/%%36%31dmin",
            "/%6%31dmin",
            "/a%2%65%2%65/b",
            "/%G1",
            // Well formed, but another path to some backend.
            "/admin%00",
            "/a/..%00/b",
            "/admin\\secret",
        ] {
            let raw = format!("GET {path}?q=%61 HTTP/1.1\r\nHost: t\r\n\r\n");
            let got = parse_request(
                raw.as_bytes(),
                &Default::default(),
                &mut RequestHead::default(),
            );
            assert!(got.is_err(), "{path}: {got:?}");
        }
        // In the query, escapes are the application's business (as nginx).
        let raw = b"GET /x%2500?q=%zz%%41%00\\ HTTP/1.1\r\nHost: t\r\n\r\n";
        assert_eq!(
            parse_request(raw, &Default::default(), &mut RequestHead::default()),
            Ok(true)
        );
    }

    #[test]
    fn unreserved_escapes_are_decoded_in_place_and_others_kept() {
        let cases = [
            ("/%61dmin", "/admin"),
            ("/a%2Db%5F%7e%2E%30", "/a-b_~.0"),
            ("/a%20b%3F%25%C3%A9", "/a%20b%3F%25%C3%A9"),
            // Kept escapes in upper case: the same URI, routed as one.
            ("/a%2fb%5cc%3bd%c3%a9", "/a%2Fb%5Cc%3Bd%C3%A9"),
            ("/plain", "/plain"),
        ];
        for (sent, routed) in cases {
            let mut raw = format!("GET {sent}?q=%61 HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
            let mut head = RequestHead::default();
            assert_eq!(
                parse_request(&raw, &Default::default(), &mut head),
                Ok(true)
            );
            let mut original = Vec::new();
            decode_unreserved(&mut raw, &mut head, |p| original.extend_from_slice(p));
            assert_eq!(head.path.get(&raw), routed.as_bytes(), "{sent}");
            let kept: &[u8] = if sent.contains('%') {
                sent.as_bytes()
            } else {
                b""
            };
            assert_eq!(original, kept, "{sent}");
            // The query and the headers are untouched.
            assert_eq!(head.query.unwrap().get(&raw), b"q=%61", "{sent}");
            assert_eq!(head.host.unwrap().get(&raw), b"t", "{sent}");
        }
    }
}
