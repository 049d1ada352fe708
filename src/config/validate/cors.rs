//! CORS checks: what a browser could send and what the answer's header lines may hold.

use std::time::Duration;

use super::super::model::Cors;
use super::super::KeyPath;
use super::Validator;

/// API Gateway's bound on `maxAge` (HTTP APIs); browsers cap it lower still.
const MAX_CORS_MAX_AGE: Duration = Duration::from_secs(86_400);

impl Validator<'_> {
    /// Origins are compared with what browsers send: `scheme://host[:port]`, nothing more.
    pub(super) fn cors(&mut self, cors: &Cors, p: &KeyPath) {
        // Browsers reject a wildcard origin on credentialed requests.
        if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
            self.error(
                &p.key("allow_origins"),
                "\"*\" cannot be combined with allow_credentials: true",
            );
        }
        if cors.max_age.is_some_and(|age| age > MAX_CORS_MAX_AGE) {
            self.error(&p.key("max_age"), "must be at most 86400 seconds (24h)");
        }
        for (i, origin) in cors.allow_origins.iter().enumerate() {
            if origin == "*" {
                continue;
            }
            if let Some(why) = origin_problem(origin) {
                self.error(
                    &p.key("allow_origins").index(i),
                    format!("expected \"*\" or scheme://host[:port], got {origin:?}{why}"),
                );
            }
        }
        for (i, method) in cors.allow_methods.iter().enumerate() {
            let known = method == "*"
                || crate::router::key::METHODS
                    .iter()
                    .any(|m| *m != "ANY" && m.eq_ignore_ascii_case(method));
            if !known {
                self.error(
                    &p.key("allow_methods").index(i),
                    format!("expected an HTTP method or \"*\", got {method:?}"),
                );
            } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
                // Sent as written, and browsers compare methods case-sensitively: `patch`
                // never matches the PATCH a browser asks to send.
                self.error(
                    &p.key("allow_methods").index(i),
                    format!(
                        "methods are case-sensitive: write {:?}",
                        method.to_ascii_uppercase()
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
                let token = !name.is_empty() && name.bytes().all(crate::http1::parse::is_tchar);
                if name != "*" && !token {
                    self.error(
                        &p.key(key).index(i),
                        format!("expected a header name (an HTTP token) or \"*\", got {name:?}"),
                    );
                }
            }
        }
    }
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
    // The port, after the last colon outside an IPv6 literal's brackets.
    let port = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => &rest[i + 1..],
        _ => return None,
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Some("");
    }
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    (port.trim_start_matches('0') == default)
        .then_some(" (browsers leave the default port out of Origin: write it without)")
}
