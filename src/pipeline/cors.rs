//! CORS per API, as HTTP APIs do it. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered by the gateway, 204, without calling the
//! integration; an allowed origin gets the allow-* headers, any other origin none. Actual
//! responses to an allowed origin carry `access-control-allow-origin` (the origin echoed,
//! or `*`), the expose and credentials headers; CORS headers from the backend are dropped,
//! so the config is the one source of truth.
//!
//! When the answer depends on the request's Origin (the allowed origins are a list, not
//! just `*`), every response of the API, preflight or actual, allowed origin or not,
//! carries `Vary: Origin`, as the Fetch standard asks ("CORS protocol and HTTP caches"):
//! a shared cache that stored the answer to one origin (or to none) must not hand it to
//! another. It is added beside the backend's own Vary unless that already lists
//! `origin` or `*`.
//!
//! Everything but the echoed origin is encoded once at compile time.

use crate::config::model::Cors;
use crate::http1::encode;
use crate::http1::{Method, RequestHead};

#[derive(Debug)]
pub struct CorsRt {
    /// `*` is among the allowed origins.
    any: bool,
    /// `https://*` / `http://*` are: any origin of that scheme, echoed (API Gateway's
    /// HTTP APIs take both).
    any_https: bool,
    any_http: bool,
    origins: Vec<Box<[u8]>>,
    /// allow-methods, allow-headers, max-age and allow-credentials lines.
    preflight: Box<[u8]>,
    /// expose-headers and allow-credentials lines.
    actual: Box<[u8]>,
    /// Some origin is echoed, so answers differ by Origin: every response says
    /// `Vary: Origin`.
    varies: bool,
}

/// Which origin, if any, a response is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CorsMatch {
    #[default]
    None,
    /// Allowed through `*`: answered with `*`.
    Any,
    /// The configured origin at this index, echoed.
    Origin(u16),
    /// Allowed by a scheme wildcard (`https://*`): the request's own Origin, echoed.
    Echo,
}

impl CorsRt {
    pub fn compile(c: &Cors) -> CorsRt {
        let list = |items: &[String]| items.join(",").into_bytes();
        let mut preflight = Vec::new();
        if !c.allow_methods.is_empty() {
            encode::header(
                &mut preflight,
                b"access-control-allow-methods",
                &list(&c.allow_methods),
            );
        }
        if !c.allow_headers.is_empty() {
            encode::header(
                &mut preflight,
                b"access-control-allow-headers",
                &list(&c.allow_headers),
            );
        }
        if let Some(age) = c.max_age {
            preflight.extend_from_slice(b"access-control-max-age: ");
            encode::decimal(&mut preflight, age.as_secs());
            preflight.extend_from_slice(b"\r\n");
        }
        let mut actual = Vec::new();
        if !c.expose_headers.is_empty() {
            encode::header(
                &mut actual,
                b"access-control-expose-headers",
                &list(&c.expose_headers),
            );
        }
        if c.allow_credentials {
            for out in [&mut preflight, &mut actual] {
                out.extend_from_slice(b"access-control-allow-credentials: true\r\n");
            }
        }
        let listed = |o: &str| c.allow_origins.iter().any(|a| a.eq_ignore_ascii_case(o));
        let (any_https, any_http) = (listed("https://*"), listed("http://*"));
        let origins: Vec<Box<[u8]>> = c
            .allow_origins
            .iter()
            .filter(|o| {
                !matches!(
                    o.to_ascii_lowercase().as_str(),
                    "*" | "https://*" | "http://*"
                )
            })
            .map(|o| browser_form(o.trim_end_matches('/')).into())
            .collect();
        CorsRt {
            any: listed("*"),
            any_https,
            any_http,
            varies: !origins.is_empty() || any_https || any_http,
            origins,
            preflight: preflight.into(),
            actual: actual.into(),
        }
    }

    /// Origins compare without case: scheme and host are case-insensitive, and browsers
    /// send them lower-case anyway.
    pub fn match_origin(&self, origin: Option<&[u8]>) -> CorsMatch {
        let Some(origin) = origin else {
            return CorsMatch::None;
        };
        match self
            .origins
            .iter()
            .position(|o| o.eq_ignore_ascii_case(origin))
        {
            Some(i) => CorsMatch::Origin(i as u16),
            None if self.scheme_wildcard(origin) => CorsMatch::Echo,
            None if self.any => CorsMatch::Any,
            None => CorsMatch::None,
        }
    }

    /// Whether a scheme wildcard allows `origin`: a well-formed `scheme://host[:port]` of
    /// that scheme (see `is_authority`), as a browser serializes one. Anything else gets
    /// no CORS headers: the origin is echoed, and `https://"><script>` or a port no
    /// browser could have connected to is not an origin a page runs in.
    fn scheme_wildcard(&self, origin: &[u8]) -> bool {
        let rest = |scheme: &[u8]| {
            origin
                .get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| &origin[scheme.len()..])
        };
        let host = match (rest(b"https://"), rest(b"http://")) {
            (Some(h), _) if self.any_https => h,
            (_, Some(h)) if self.any_http => h,
            _ => return false,
        };
        is_authority(host)
    }

    /// Whether responses must say `Vary: Origin` (see the module comment).
    pub fn varies(&self) -> bool {
        self.varies
    }

    /// The allow-origin line, then `vary: origin` when the answer depends on Origin,
    /// whichever origin this is (`varied`: the response already says so).
    fn write_origin(&self, m: CorsMatch, origin: Option<&[u8]>, varied: bool, out: &mut Vec<u8>) {
        match m {
            CorsMatch::None => {}
            CorsMatch::Any => out.extend_from_slice(b"access-control-allow-origin: *\r\n"),
            CorsMatch::Origin(i) => encode::header(
                out,
                b"access-control-allow-origin",
                &self.origins[i as usize],
            ),
            // Lower-cased where it is written: no copy of the Origin per response.
            CorsMatch::Echo => {
                let start = out.len();
                encode::header(
                    out,
                    b"access-control-allow-origin",
                    origin.unwrap_or_default(),
                );
                out[start..].make_ascii_lowercase();
            }
        }
        if self.varies && !varied {
            out.extend_from_slice(b"vary: origin\r\n");
        }
    }

    /// CORS headers of an actual response (only `vary` for an origin that is not
    /// allowed). `origin`: the request's Origin, which `m` was matched on. `varied`: the
    /// response's own Vary already lists `origin` or `*`.
    pub fn write_actual(
        &self,
        m: CorsMatch,
        origin: Option<&[u8]>,
        varied: bool,
        out: &mut Vec<u8>,
    ) {
        self.write_origin(m, origin, varied, out);
        if m != CorsMatch::None {
            out.extend_from_slice(&self.actual);
        }
    }

    /// The preflight's status line and CORS headers (the caller adds ids and framing).
    pub fn write_preflight(&self, m: CorsMatch, origin: Option<&[u8]>, out: &mut Vec<u8>) {
        encode::status_line(out, 204);
        self.write_origin(m, origin, false, out);
        if m != CorsMatch::None {
            out.extend_from_slice(&self.preflight);
        }
    }
}

/// An allowed origin as browsers serialize it, which is what they compare the echoed
/// An origin's `host[:port]`: the host a DNS name (labels of letters, digits, `-` and
/// `_`, which browsers accept in host names, 1–63 bytes each, not starting or ending in
/// `-`; at most 253 bytes; one final dot allowed), an IPv4 address (a name whose last
/// label is all digits must be one, as a URL parser reads it) or a bracketed IPv6
/// address; the port, when there is one, 1–65535 in plain digits.
fn is_authority(authority: &[u8]) -> bool {
    let (host, port) = match authority.first() {
        Some(b'[') => match authority.iter().position(|&b| b == b']') {
            Some(end) => (&authority[..=end], &authority[end + 1..]),
            None => return false,
        },
        _ => match authority.iter().position(|&b| b == b':') {
            Some(at) => (&authority[..at], &authority[at..]),
            None => (authority, &b""[..]),
        },
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => {
            (1..=5).contains(&digits.len())
                && digits[0] != b'0'
                && digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(digits).is_ok_and(|d| d.parse::<u16>().is_ok())
        }
        _ => false,
    };
    port_ok && is_host(host)
}

fn is_host(host: &[u8]) -> bool {
    if let [b'[', inner @ .., b']'] = host {
        return std::str::from_utf8(inner).is_ok_and(|t| t.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = host.strip_suffix(b".").unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split(|&b| b == b'.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && label[0] != b'-'
            && label[label.len() - 1] != b'-'
    });
    let last = name.rsplit(|&b| b == b'.').next().unwrap_or_default();
    let numeric = last.iter().all(u8::is_ascii_digit);
    labels_ok
        && (!numeric
            || std::str::from_utf8(name).is_ok_and(|t| t.parse::<std::net::Ipv4Addr>().is_ok()))
}

/// `access-control-allow-origin` with, byte for byte: scheme and host lower-case, the
/// port without leading zeros. Echoed as configured, `https://App.example` matched the
/// browser's `https://app.example` (origins compare without case) and the browser then
/// refused the answer.
fn browser_form(origin: &str) -> Vec<u8> {
    let mut out = origin.to_ascii_lowercase().into_bytes();
    if let Some(colon) = out.iter().rposition(|&b| b == b':') {
        let port = &out[colon + 1..];
        if !port.is_empty() && port.iter().all(u8::is_ascii_digit) {
            let zeros = port.iter().take_while(|&&b| b == b'0').count();
            let keep = zeros.min(port.len() - 1);
            out.drain(colon + 1..colon + 1 + keep);
        }
    }
    out
}

/// A CORS preflight, as opposed to an ordinary OPTIONS request.
pub fn is_preflight(head: &RequestHead, buf: &[u8]) -> bool {
    head.method == Method::Options
        && head.header(buf, "origin").is_some()
        && head.header(buf, "access-control-request-method").is_some()
}

/// Whether a Vary value lists `origin` (or `*`, which covers it), so a CORS API adds
/// none of its own.
pub fn vary_covers_origin(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|v| {
        let v = v.trim_ascii();
        v == b"*" || v.eq_ignore_ascii_case(b"origin")
    })
}

/// Response headers a CORS API never passes on from its backend.
pub fn is_cors_header(name: &[u8]) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case(b"access-control-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cors(origins: &[&str], credentials: bool) -> CorsRt {
        CorsRt::compile(&Cors {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into()],
            expose_headers: vec!["x-total".into()],
            allow_credentials: credentials,
            max_age: Some(Duration::from_secs(600)),
        })
    }

    #[test]
    fn origins_are_echoed_or_starred() {
        let c = cors(&["https://a.example", "*"], false);
        assert_eq!(
            c.match_origin(Some(b"https://A.example")),
            CorsMatch::Origin(0)
        );
        assert_eq!(c.match_origin(Some(b"https://b.example")), CorsMatch::Any);
        assert_eq!(c.match_origin(None), CorsMatch::None);
        let c = cors(&["https://a.example"], true);
        assert_eq!(c.match_origin(Some(b"https://b.example")), CorsMatch::None);
        let mut out = Vec::new();
        c.write_preflight(CorsMatch::Origin(0), None, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        for line in [
            "access-control-allow-origin: https://a.example\r\n",
            "access-control-allow-methods: GET,POST\r\n",
            "access-control-allow-headers: content-type\r\n",
            "access-control-max-age: 600\r\n",
            "access-control-allow-credentials: true\r\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text:?}");
        }
        assert!(text.contains("vary: origin\r\n"), "{text:?}");
    }

    #[test]
    fn scheme_wildcards_match_well_formed_origins_only() {
        let c = cors(&["https://*", "http://*"], false);
        for good in [
            &b"https://a.example"[..],
            b"HTTPS://App.Example:8443",
            b"http://localhost:1",
            b"http://my_host.example:65535",
            b"http://127.0.0.1",
            b"http://[::1]:8080",
            b"https://xn--bcher-kva.example.",
        ] {
            let m = c.match_origin(Some(good));
            assert_eq!(m, CorsMatch::Echo, "{}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"https://\"><script>"[..],
            b"https://a:99999",
            b"https://a:0",
            b"https://a:",
            b"https://a:+80",
            b"https://a:80:80",
            b"https://",
            b"https://a..b",
            b"https://-a.example",
            b"https://a-.example",
            b"https://a.example/",
            b"https://u@a.example",
            b"https://a b",
            b"https://a,https://b",
            b"http://1.2.3.999",
            b"http://[::1",
            b"http://[zz::1]",
            b"http://[::1]x",
            b"ftp://a.example",
        ] {
            let m = c.match_origin(Some(bad));
            assert_eq!(m, CorsMatch::None, "{}", String::from_utf8_lossy(bad));
        }
        let long = format!("https://{}.example", "a".repeat(64));
        assert_eq!(c.match_origin(Some(long.as_bytes())), CorsMatch::None);
    }

    fn actual(c: &CorsRt, m: CorsMatch, varied: bool) -> String {
        let mut out = Vec::new();
        c.write_actual(m, None, varied, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn vary_origin_whenever_the_answer_depends_on_the_origin() {
        let listed = cors(&["https://a.example"], true);
        assert!(listed.varies());
        // Another origin, or none, gets no CORS headers but must not be served the
        // allowed origin's answer from a cache either (nor the reverse).
        assert_eq!(actual(&listed, CorsMatch::None, false), "vary: origin\r\n");
        assert_eq!(actual(&listed, CorsMatch::None, true), "");
        let echoed = actual(&listed, CorsMatch::Origin(0), false);
        assert_eq!(echoed.matches("vary: origin\r\n").count(), 1, "{echoed:?}");
        assert!(!actual(&listed, CorsMatch::Origin(0), true).contains("vary"));
        let mut out = Vec::new();
        listed.write_preflight(CorsMatch::None, None, &mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("vary: origin\r\n"));
        // A list with "*" still echoes the listed ones.
        assert!(cors(&["https://a.example", "*"], false).varies());

        // "*" alone: the same answer for every origin.
        let any = cors(&["*"], false);
        assert!(!any.varies());
        assert_eq!(actual(&any, CorsMatch::None, false), "");
        assert_eq!(
            actual(&any, CorsMatch::Any, false),
            "access-control-allow-origin: *\r\naccess-control-expose-headers: x-total\r\n"
        );
    }

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        for (configured, form) in [
            ("HTTPS://App.Example", "https://app.example"),
            ("http://localhost:03000", "http://localhost:3000"),
            ("http://[::1]:08080", "http://[::1]:8080"),
            ("http://[::1]", "http://[::1]"),
            ("http://a.example:0", "http://a.example:0"),
        ] {
            assert_eq!(browser_form(configured), form.as_bytes(), "{configured}");
        }
    }

    #[test]
    fn vary_values_that_cover_origin() {
        for v in ["Origin", "accept-encoding, ORIGIN", " * ", "accept,origin"] {
            assert!(vary_covers_origin(v.as_bytes()), "{v}");
        }
        for v in ["", "accept-encoding", "origins", "x-origin, accept"] {
            assert!(!vary_covers_origin(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn cors_header_names() {
        assert!(is_cors_header(b"Access-Control-Allow-Origin"));
        assert!(!is_cors_header(b"access-control-"));
        assert!(!is_cors_header(b"content-type"));
    }
}
