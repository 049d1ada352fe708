//! Route keys as in Amazon API Gateway HTTP APIs: `$default`, or `METHOD /path` where
//! path segments are literal, `{name}`, or a final greedy `{name+}`. Validation uses this
//! to check keys and the parameters templates refer to; the router builds its trie from it.

pub const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    Default,
    Route {
        method: String,
        segments: Vec<Segment>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path, one or more segments.
    Greedy(String),
}

impl RouteKey {
    /// Path parameter names in order; a greedy `{proxy+}` is named `proxy`, which is how
    /// integration paths refer to it.
    pub fn params(&self) -> Vec<&str> {
        match self {
            RouteKey::Default => Vec::new(),
            RouteKey::Route { segments, .. } => segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(n) | Segment::Greedy(n) => Some(n.as_str()),
                    Segment::Literal(_) => None,
                })
                .collect(),
        }
    }

    /// The key with parameter names erased: two routes with the same shape would match
    /// the same requests, whatever their parameters are called.
    pub fn shape(&self) -> String {
        match self {
            RouteKey::Default => "$default".to_string(),
            RouteKey::Route { method, segments } => {
                let mut s = format!("{method} ");
                if segments.is_empty() {
                    s.push('/');
                }
                for seg in segments {
                    s.push('/');
                    s.push_str(match seg {
                        Segment::Literal(l) => l,
                        Segment::Param(_) => "{}",
                        Segment::Greedy(_) => "{+}",
                    });
                }
                s
            }
        }
    }
}

/// Parses a route key; the error is a message for the key's own path.
pub fn parse_route_key(key: &str) -> Result<RouteKey, String> {
    if key == "$default" {
        return Ok(RouteKey::Default);
    }
    // Not a method or path problem: `"$default "` read as the method "$default".
    if key.trim() != key {
        return Err(format!(
            "the key has blanks at its ends: write {:?}",
            key.trim()
        ));
    }
    let Some((method, path)) = key.split_once(' ') else {
        return Err("expected \"$default\" or \"METHOD /path\", like \"GET /users/{id}\"".into());
    };
    if !METHODS.contains(&method) {
        return Err(format!(
            "unknown method {method:?}; use one of {}",
            METHODS.join(" ")
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("the path must start with /, got {path:?}"));
    };
    let mut segments = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    for (i, part) in parts.iter().enumerate() {
        let segment = parse_segment(part)?;
        if let Segment::Param(n) | Segment::Greedy(n) = &segment {
            if names.contains(n) {
                return Err(format!("parameter {{{n}}} appears twice in the path"));
            }
            names.push(n.clone());
        }
        if matches!(segment, Segment::Greedy(_)) && i + 1 != parts.len() {
            return Err(format!("greedy parameter {part} must be the last segment"));
        }
        segments.push(segment);
    }
    Ok(RouteKey::Route {
        method: method.to_string(),
        segments,
    })
}

fn parse_segment(part: &str) -> Result<Segment, String> {
    if part.is_empty() {
        return Err("empty path segment (// or a trailing /)".into());
    }
    if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if !is_param_name(name) {
            return Err(format!(
                "bad parameter {part}: names are letters, digits, _ . -"
            ));
        }
        return Ok(if greedy {
            Segment::Greedy(name.into())
        } else {
            Segment::Param(name.into())
        });
    }
    if part.contains(['{', '}']) {
        return Err(format!(
            "bad segment {part:?}: a parameter must be a whole segment"
        ));
    }
    if part.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
        return Err(format!(
            "bad segment {part:?}: no spaces, ? or # in a route path"
        ));
    }
    unreachable_literal(part)?;
    // As requests' segments are compared with it (`router::route_form`): `/a:b` and
    // `/a%3Ab` are one route (and two keys for it a duplicate).
    let escapes = crate::http1::upper_case_escapes(part);
    let mut scratch = Vec::new();
    let form = super::route_form(escapes.as_bytes(), &mut scratch);
    Ok(Segment::Literal(String::from_utf8_lossy(form).into_owned()))
}

/// A literal segment no request can match is refused rather than served never: requests
/// reach the router with their dot-segments refused (400), with non-ASCII and control
/// bytes refused (400, clients send them percent-encoded), with a `%` not followed by two
/// hex digits refused (400), with escaped unreserved characters decoded (`%61` is `a`),
/// and with `%2F` and `%5C` read as segment separators.
fn unreachable_literal(part: &str) -> Result<(), String> {
    if part == "." || part == ".." {
        return Err(format!(
            "bad segment {part:?}: a request with a dot-segment is refused (400), so this route never matches"
        ));
    }
    if part.bytes().any(|b| !b.is_ascii() || b.is_ascii_control()) {
        let mut sent = String::new();
        for b in part.bytes() {
            if b.is_ascii() && !b.is_ascii_control() {
                sent.push(char::from(b));
            } else {
                sent.push_str(&format!("%{b:02X}"));
            }
        }
        return Err(format!(
            "bad segment {part:?}: clients send non-ASCII and control characters percent-encoded, so this route never matches; write {sent:?}"
        ));
    }
    if part.contains('\\') {
        return Err(format!(
            "bad segment {part:?}: a request with a backslash in its path is refused (400), so this route never matches; write it as %5C"
        ));
    }
    if part.starts_with(';') {
        return Err(format!(
            "bad segment {part:?}: a segment of ;parameters only is passed over in requests as an empty one is, so this route never matches"
        ));
    }
    // All ASCII from here, so any byte offset is a char boundary.
    for (i, _) in part.match_indices('%') {
        let escape = part
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(c) = escape.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
            return Err(format!(
                "bad segment {part:?}: a request with a % not followed by two hex digits is refused (400), so this route never matches; write % as %25"
            ));
        };
        if c == b'/' || c == b'\\' {
            let parts = ["%2F", "%2f", "%5C", "%5c"]
                .iter()
                .fold(part.to_string(), |p, sep| p.replace(sep, "/"));
            return Err(format!(
                "bad segment {part:?}: {} is an encoded {}, which separates segments in requests (as in API Gateway), so this route never matches; write {parts:?} as separate segments",
                &part[i..i + 3],
                if c == b'/' { "slash" } else { "backslash" },
            ));
        }
        if c == 0 {
            return Err(format!(
                "bad segment {part:?}: a request with %00 in its path is refused (400), so this route never matches"
            ));
        }
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            return Err(format!(
                "bad segment {part:?}: {} is the unreserved character {:?}, which requests are routed with decoded, so this route never matches; write the character",
                &part[i..i + 3],
                char::from(c)
            ));
        }
    }
    Ok(())
}

pub fn is_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        assert_eq!(parse_route_key("$default"), Ok(RouteKey::Default));
        let key = parse_route_key("ANY /x/{id}/{proxy+}").unwrap();
        assert_eq!(key.params(), ["id", "proxy"]);
        assert_eq!(key.shape(), "ANY /x/{}/{+}");
        assert_eq!(parse_route_key("GET /").unwrap().shape(), "GET /");
    }

    #[test]
    fn unreachable_segments_say_how_clients_send_them() {
        let err = parse_route_key("GET /caf\u{e9}").unwrap_err();
        assert!(err.contains("write \"caf%C3%A9\""), "{err}");
        let err = parse_route_key("GET /%61dmin").unwrap_err();
        assert!(err.contains("%61 is the unreserved character 'a'"), "{err}");
        for stray in ["GET /100%", "GET /a%zz", "GET /a%2"] {
            let err = parse_route_key(stray).unwrap_err();
            assert!(err.contains("write % as %25"), "{stray}: {err}");
        }
        // Requests with these are refused (400), or pass the segment over.
        for (never, says) in [
            ("GET /a\\b", "write it as %5C"),
            ("GET /x%00", "%00"),
            ("GET /;v", ";parameters only"),
            ("GET /c/;", ";parameters only"),
            ("GET /;v/y", ";parameters only"),
            ("GET /a%2Fb", "\"a/b\" as separate segments"),
            ("GET /a%2fb", "%2f is an encoded slash"),
            ("GET /x/a%5Cb", "%5C is an encoded backslash"),
        ] {
            let err = parse_route_key(never).unwrap_err();
            assert!(err.contains(says), "{never}: {err}");
        }
        // Escapes that stay escaped in requests, sub-delimiters, and parameters after a
        // segment's text are fine.
        for good in [
            "GET /caf%C3%A9",
            "GET /a%20b",
            "GET /x:y",
            "GET /a~b",
            "GET /..a",
            "GET /a;b",
            "GET /a%3Bb",
        ] {
            assert!(parse_route_key(good).is_ok(), "{good}");
        }
        // One resource, however written: the same shape (so two such keys are one
        // route twice, refused as a duplicate).
        let shape = |k: &str| parse_route_key(k).unwrap().shape();
        assert_eq!(shape("GET /x:y"), shape("GET /x%3ay"));
        assert_eq!(shape("GET /a|b"), shape("GET /a%7Cb"));
        assert_ne!(shape("GET /a;b"), shape("GET /a%3Bb"));
    }

    #[test]
    fn refuses_bad_keys() {
        for bad in [
            "GET",
            "get /x",
            "FETCH /x",
            "GET x",
            "GET /a//b",
            "GET /a/",
            "GET /{proxy+}/x",
            "GET /{a}/{a}",
            "GET /a{b}",
            "GET /{}",
            "GET /{a b}",
            "GET  /x",
            "GET /a/..",
            "GET /./a",
            "GET /caf\u{e9}",
            "GET /a\tb",
            "GET /%61dmin",
            "GET /a%7Eb",
        ] {
            assert!(parse_route_key(bad).is_err(), "{bad}");
        }
    }
}
