//! CORS per API, as HTTP APIs do it. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered by the gateway, 204, without calling the
//! integration; an allowed origin gets the allow-* headers, any other origin none. Actual
//! responses to an allowed origin carry `access-control-allow-origin` (the origin echoed,
//! or `*`), the expose and credentials headers; CORS headers from the backend are dropped,
//! so the config is the one source of truth.
//!
//! Everything but the echoed origin is encoded once at compile time.

use crate::config::model::Cors;
use crate::http1::encode;
use crate::http1::{Method, RequestHead};

#[derive(Debug)]
pub struct CorsRt {
    /// `*` is among the allowed origins.
    any: bool,
    origins: Vec<Box<[u8]>>,
    /// allow-methods, allow-headers, max-age and allow-credentials lines.
    preflight: Box<[u8]>,
    /// expose-headers and allow-credentials lines.
    actual: Box<[u8]>,
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
        CorsRt {
            any: c.allow_origins.iter().any(|o| o == "*"),
            origins: c
                .allow_origins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').as_bytes().into())
                .collect(),
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
            None if self.any => CorsMatch::Any,
            None => CorsMatch::None,
        }
    }

    fn write_origin(&self, m: CorsMatch, out: &mut Vec<u8>) {
        match m {
            CorsMatch::None => {}
            CorsMatch::Any => out.extend_from_slice(b"access-control-allow-origin: *\r\n"),
            CorsMatch::Origin(i) => {
                encode::header(
                    out,
                    b"access-control-allow-origin",
                    &self.origins[i as usize],
                );
                // Caches must not serve one origin's answer to another.
                out.extend_from_slice(b"vary: origin\r\n");
            }
        }
    }

    /// CORS headers of an actual response; nothing for an origin that is not allowed.
    pub fn write_actual(&self, m: CorsMatch, out: &mut Vec<u8>) {
        if m != CorsMatch::None {
            self.write_origin(m, out);
            out.extend_from_slice(&self.actual);
        }
    }

    /// The preflight's status line and CORS headers (the caller adds ids and framing).
    pub fn write_preflight(&self, m: CorsMatch, out: &mut Vec<u8>) {
        encode::status_line(out, 204);
        if m != CorsMatch::None {
            self.write_origin(m, out);
            out.extend_from_slice(&self.preflight);
        }
    }
}

/// A CORS preflight, as opposed to an ordinary OPTIONS request.
pub fn is_preflight(head: &RequestHead, buf: &[u8]) -> bool {
    head.method == Method::Options
        && head.header(buf, "origin").is_some()
        && head.header(buf, "access-control-request-method").is_some()
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
        c.write_preflight(CorsMatch::Origin(0), &mut out);
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
        let mut out = Vec::new();
        c.write_actual(CorsMatch::None, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn cors_header_names() {
        assert!(is_cors_header(b"Access-Control-Allow-Origin"));
        assert!(!is_cors_header(b"access-control-"));
        assert!(!is_cors_header(b"content-type"));
    }
}
