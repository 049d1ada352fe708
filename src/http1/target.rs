//! The request-target: origin-form or absolute-form, split into path, query and
//! authority (RFC 9112 §3.2), and refused when two layers could read it differently.
//!
//! A path with a dot-segment (`/a/../b`, `/a/./b`) is 400 rather than normalized. The
//! router, the authorizers and the cache see the path as sent, and the backend gets it as
//! sent; a backend that resolved `/public/../admin` to `/admin` would serve a route whose
//! checks never ran. Clients resolve dot-segments before sending (RFC 3986 §5.2.4; curl,
//! browsers and the AWS SDKs all do), so only a crafted request has one. Read the way the
//! most lenient backend might: `%2e` is a dot, and `%2f`, `\` and `%5c` end a segment.

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
        if !is_valid_authority(authority, false) {
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
    if has_dot_segment(head.path.get(buf)) {
        return Err(bad("dot-segment in path"));
    }
    Ok(())
}

/// host[:port] as reg-name, IPv4 or IP-literal characters. Userinfo ('@'), paths and
/// whitespace are out: the router must see the same host the backend will.
pub(super) fn is_valid_authority(v: &[u8], allow_empty: bool) -> bool {
    (allow_empty || !v.is_empty())
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b))
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Whether a segment of `path` is `.` or `..`, with dots possibly percent-encoded and
/// segments possibly ended by an encoded slash or a backslash (see the module comment).
/// Paths with neither `.` nor `%` (most API paths) cost one scan.
pub(super) fn has_dot_segment(path: &[u8]) -> bool {
    if !path.iter().any(|&b| b == b'.' || b == b'%') {
        return false;
    }
    // Dots in the current segment, or None once it holds anything else.
    let mut dots: Option<u8> = Some(0);
    let mut i = 0;
    while i < path.len() {
        let (unit, len) = match path[i] {
            b'%' if i + 2 < path.len() => {
                match [
                    path[i + 1].to_ascii_lowercase(),
                    path[i + 2].to_ascii_lowercase(),
                ] {
                    [b'2', b'e'] => (b'.', 3),
                    [b'2', b'f'] => (b'/', 3),
                    [b'5', b'c'] => (b'/', 3),
                    _ => (b'%', 1),
                }
            }
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
            _ => dots = None,
        }
        i += len;
    }
    matches!(dots, Some(1 | 2))
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

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
            "/a/..%2fadmin",
            "/a/..%2Fadmin",
            "/a/..\\admin",
            "/a\\..\\b",
            "/a/..%5cb",
            "/a/%2e",
            "/public/x/../../admin",
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
            "/.well-known/x",
            "/a.",
            "/%2e%2e%2e",
            "/v1.2/x",
            "/a%",
            "/a%2",
            "/%25%32%65",
            "/a/%2e%2eb",
            "/..a",
        ] {
            assert!(!has_dot_segment(p.as_bytes()), "{p}");
        }
    }
}
