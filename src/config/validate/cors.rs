//! CORS checks: what a browser could send and what the answer's header lines may hold.

use std::time::Duration;

use super::super::model::Cors;
use super::super::KeyPath;
use super::Validator;
use crate::config::decode::shown;

/// API Gateway's bound on `maxAge` (HTTP APIs); browsers cap it lower still.
const MAX_CORS_MAX_AGE: Duration = Duration::from_secs(86_400);

impl Validator<'_> {
    pub(super) fn cors(&mut self, cors: &Cors, p: &KeyPath) {
        for problem in problems(cors) {
            let at = p.key(problem.field);
            match problem.index {
                Some(i) => self.error(&at.index(i), problem.message),
                None => self.error(&at, problem.message),
            }
        }
    }
}

/// A CORS setting `check` refuses: the key, the list item when it is one, and why.
#[derive(Debug, PartialEq)]
pub struct Problem {
    pub field: &'static str,
    pub index: Option<usize>,
    pub message: String,
}

/// Everything `check` refuses in a CORS setting; OpenAPI import skips the same items.
/// Origins are compared with what browsers send: `scheme://host[:port]`, nothing more.
pub fn problems(cors: &Cors) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut refuse = |field, index, message: String| {
        out.push(Problem {
            field,
            index,
            message,
        })
    };
    // Browsers reject a wildcard origin on credentialed requests.
    if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
        refuse(
            "allow_origins",
            None,
            "\"*\" cannot be combined with allow_credentials: true".into(),
        );
    }
    if cors.max_age.is_some_and(|age| age > MAX_CORS_MAX_AGE) {
        refuse(
            "max_age",
            None,
            "must be at most 86400 seconds (24h)".into(),
        );
    }
    // Access-Control-Max-Age is whole seconds: 500ms went out as 0, "don't keep it".
    if cors.max_age.is_some_and(|age| age.subsec_nanos() != 0) {
        refuse(
            "max_age",
            None,
            "must be a whole number of seconds (Access-Control-Max-Age is in seconds)".into(),
        );
    }
    for (i, origin) in cors.allow_origins.iter().enumerate() {
        // `https://*` and `http://*`: any origin of that scheme (API Gateway's too).
        let any_of_scheme = ["https://*", "http://*"]
            .iter()
            .any(|w| w.eq_ignore_ascii_case(origin));
        if origin == "*" || any_of_scheme {
            continue;
        }
        if let Some(why) = origin_problem(origin) {
            refuse(
                "allow_origins",
                Some(i),
                format!("expected \"*\", \"https://*\", \"http://*\" or scheme://host[:port], got {}{why}", shown(origin)),
            );
        }
    }
    for (i, method) in cors.allow_methods.iter().enumerate() {
        let known = method == "*"
            || crate::router::key::METHODS
                .iter()
                .any(|m| *m != "ANY" && m.eq_ignore_ascii_case(method));
        if !known {
            refuse(
                "allow_methods",
                Some(i),
                format!("expected an HTTP method or \"*\", got {}", shown(method)),
            );
        } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
            // Sent as written, and browsers compare methods case-sensitively: `patch`
            // never matches the PATCH a browser asks to send.
            refuse(
                "allow_methods",
                Some(i),
                format!(
                    "methods are case-sensitive: write {}",
                    shown(&method.to_ascii_uppercase())
                ),
            );
        }
    }
    // Joined into one header line each: anything but a token (a space, a comma,
    // CR/LF) would change what the line says, or add lines.
    for (key, names) in [
        ("allow_headers", &cors.allow_headers),
        ("expose_headers", &cors.expose_headers),
    ] {
        for (i, name) in names.iter().enumerate() {
            if name != "*" && !crate::http1::parse::is_token(name) {
                refuse(
                    key,
                    Some(i),
                    format!(
                        "expected a header name (an HTTP token) or \"*\", got {}",
                        shown(name)
                    ),
                );
            }
        }
    }
    out
}

/// Why a CORS origin could never equal a browser's `Origin` (and be echoed on a header
/// line as it is): `scheme://host[:port]` with a letter-led scheme, no blank, control
/// character, path, userinfo or wildcard, and no default port, which browsers leave out.
/// `""` after the text: nothing more to say than the expected form.
fn origin_problem(origin: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some("");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let rest_ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/*@?#\\".contains(&b));
    if !scheme_ok || !rest_ok {
        return Some("");
    }
    // An IPv6 literal as browsers serialize it (RFC 5952's short form, no dotted
    // quad): `[::FFFF:1.2.3.4]` is sent as `[::ffff:102:304]` and never matched.
    if let Some(inner) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        match inner.0.parse::<std::net::Ipv6Addr>() {
            Ok(ip) if url_form(ip) == inner.0 => {}
            _ => return Some(" (write an IPv6 address as browsers send it: lower-case, shortest form, no dotted quad)"),
        }
    }
    // A host whose last label is a number is an IPv4 address to browsers, sent in its
    // dotted-quad form: `http://01.2.3.4` and `http://2130706433` never match.
    if !rest.starts_with('[') {
        let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        let last = host.rsplit('.').next().unwrap_or_default();
        let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
        let numeric = (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
            || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        if numeric
            && host
                .parse::<std::net::Ipv4Addr>()
                .map(|ip| ip.to_string())
                .ok()
                .as_deref()
                != Some(host)
        {
            return Some(" (write an IPv4 address as browsers send it: four decimal numbers without leading zeros)");
        }
    }
    // The port, after the last colon outside an IPv6 literal's brackets.
    let port = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => &rest[i + 1..],
        _ => return None,
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Some("");
    }
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Some(" (a port is 1–65535)");
    }
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    (port.trim_start_matches('0') == default)
        .then_some(" (browsers leave the default port out of Origin: write it without)")
}

/// An IPv6 address as the URL standard serializes a host: eight lower-case hex pieces
/// without leading zeros, the first longest run of two or more zero pieces as `::`.
fn url_form(ip: std::net::Ipv6Addr) -> String {
    let pieces = ip.segments();
    let (mut best, mut run) = ((0, 0), (0, 0));
    for (i, &p) in pieces.iter().enumerate() {
        if p == 0 {
            run = if run.1 == 0 {
                (i, 1)
            } else {
                (run.0, run.1 + 1)
            };
            if run.1 > best.1 {
                best = run;
            }
        } else {
            run = (0, 0);
        }
    }
    let hex = |ps: &[u16]| {
        ps.iter()
            .map(|p| format!("{p:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best.1 < 2 {
        return hex(&pieces);
    }
    let (start, end) = (best.0, best.0 + best.1);
    format!("{}::{}", hex(&pieces[..start]), hex(&pieces[end..]))
}
