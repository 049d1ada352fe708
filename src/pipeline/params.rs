//! Request parameter mapping, as HTTP APIs do it: `overwrite:`, `append:` and `remove:` on
//! `header.NAME` and `querystring.NAME`, and `overwrite:path`, applied while the proxy
//! encodes the upstream request head (integration/http.rs).
//!
//! Everything is decided at compile time: which client headers and query parameters are
//! dropped, which are added with which [`Template`]. Values always read the request as
//! the client sent it, so the order of the operations does not matter. A value that comes
//! out empty adds nothing (an `overwrite:` still drops the original).

use super::context::RequestView;
use super::template::{self, Template};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Append,
    Overwrite,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'s> {
    Header(&'s str),
    Query(&'s str),
    Path,
    StatusCode,
}

/// "append:header.x-a" → (Append, Header("x-a")); None if it is not of that form.
pub fn parse_key(key: &str) -> Option<(Action, Target<'_>)> {
    let (action, target) = key.split_once(':')?;
    let action = match action {
        "append" => Action::Append,
        "overwrite" => Action::Overwrite,
        "remove" => Action::Remove,
        _ => return None,
    };
    let target = match target.split_once('.') {
        Some(("header", name)) if !name.is_empty() => Target::Header(name),
        Some(("querystring", name)) if !name.is_empty() => Target::Query(name),
        None if target == "path" => Target::Path,
        None if target == "statuscode" => Target::StatusCode,
        _ => return None,
    };
    Some((action, target))
}

/// The bytes a mapped query parameter's name may hold, as the README lists them: it is
/// written into the request line as it is, where `a b`, `x&admin=1` or `#` would change
/// the request's meaning, and `;` splits pairs to Rack 2 and older Python (`a;admin`).
pub const QUERY_NAME_CHARS: &str = "letters, digits and -._~!$'()*,:@/";

/// Whether `name` is a query parameter name a mapping can write ([`QUERY_NAME_CHARS`]).
pub fn query_name_ok(name: &str) -> bool {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$'()*,:@/".contains(&b);
    !name.is_empty() && name.bytes().all(plain)
}

/// Headers a request mapping may not touch: they frame the message or are set by the
/// proxy itself; the hop-by-hop fields (`http1::hop::ALWAYS`) too.
pub const RESERVED_REQUEST_HEADERS: &[&str] = &[
    "content-length",
    "expect",
    "host",
    "traceparent",
    "tracestate",
    "transfer-encoding",
    "x-amzn-requestid",
    "x-amzn-trace-id",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// A route's compiled request mapping for one stage (or its canary).
#[derive(Debug, Default)]
pub struct RequestMap {
    path: Option<Template>,
    /// Lower-case names of client headers that are not forwarded.
    drop_headers: Vec<Box<[u8]>>,
    add_headers: Vec<(Box<[u8]>, Template)>,
    drop_query: Vec<Box<[u8]>>,
    add_query: Vec<(Box<[u8]>, Template)>,
}

impl RequestMap {
    /// None when the route maps nothing, so unmapped routes keep the plain encoder.
    pub fn compile(
        params: &[(String, String)],
        vars: &[(String, String)],
        path_params: &[String],
    ) -> Result<Option<RequestMap>, String> {
        if params.is_empty() {
            return Ok(None);
        }
        let mut map = RequestMap::default();
        for (key, value) in params {
            let Some((action, target)) = parse_key(key) else {
                return Err(format!("{key:?} is not a request mapping"));
            };
            let template =
                || Template::compile(value, vars, path_params).map_err(|e| format!("{key}: {e}"));
            match target {
                Target::Header(name) => {
                    let name = name.to_ascii_lowercase().into_bytes().into_boxed_slice();
                    if action != Action::Append {
                        map.drop_headers.push(name.clone());
                    }
                    if action != Action::Remove {
                        map.add_headers.push((name, template()?));
                    }
                }
                Target::Query(name) => {
                    let name: Box<[u8]> = name.as_bytes().into();
                    if action != Action::Append {
                        map.drop_query.push(name.clone());
                    }
                    if action != Action::Remove {
                        map.add_query.push((name, template()?));
                    }
                }
                Target::Path if action == Action::Overwrite => map.path = Some(template()?),
                _ => return Err(format!("{key:?} is not a request mapping")),
            }
        }
        Ok(Some(map))
    }

    pub fn maps_path(&self) -> bool {
        self.path.is_some()
    }

    pub fn maps_query(&self) -> bool {
        !self.drop_query.is_empty() || !self.add_query.is_empty()
    }

    /// Whether a client header (any case) is left out of the upstream request.
    /// `_` counts as `-`: CGI, WSGI, PHP and Rack backends read `X_User` and `X-User` as
    /// the same `HTTP_X_USER`, so a client's `X_User: admin` must not survive a mapping
    /// that overwrites or removes `x-user`.
    pub fn drops_header(&self, name: &[u8]) -> bool {
        self.drop_headers
            .iter()
            .any(|d| crate::http1::same_cgi_name(d, name))
    }

    /// Writes the mapped path (always starting with '/'), percent-encoding what a path
    /// can't hold. Only call when [`maps_path`](Self::maps_path).
    /// False when the path made holds a dot-segment or a `%00` (a client's `../admin` in a mapped
    /// value): a backend that resolves it would serve a path outside the template's, so
    /// the request is refused as one whose own path has a dot-segment is.
    pub fn write_path(&self, v: &RequestView, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if let Some(t) = &self.path {
            t.eval_url_part(v, out, template::path_safe, template::path_value_safe);
        }
        if out.len() == start || out[start] != b'/' {
            out.insert(start, b'/');
        }
        // A `%00` is refused too, as in a client's own path (a C file handler ends there).
        let made = &out[start..];
        !crate::http1::has_dot_segment(made) && !crate::http1::has_nul_escape(made)
    }

    /// Why an `overwrite:path` value, with its request values standing as one plain
    /// character each (unknown until a request comes), would fail every request in
    /// [`write_path`](Self::write_path) or send what it does not say: a `?` or `#` is
    /// percent-encoded as part of the path (`/v2/items%3Flimit=10`), and a `.`/`..`
    /// segment or a `%00` is a 400 that blames the client. For `check` and the OpenAPI
    /// import.
    pub fn path_problem(path: &str) -> Option<&'static str> {
        if path.contains(['?', '#']) {
            return Some("has a ? or #, which the path would carry percent-encoded (%3F, %23): a query goes in parameters (overwrite:querystring.NAME)");
        }
        let mut made = path.as_bytes().to_vec();
        if made.first() != Some(&b'/') {
            made.insert(0, b'/');
        }
        template::encode_tail(&mut made, 0, template::path_safe);
        if crate::http1::has_dot_segment(&made) || crate::http1::has_nul_escape(&made) {
            return Some("has a . or .. segment or a %00: every request would be refused with 400, as a client's own such path is (a backend would resolve it to another path)");
        }
        None
    }

    /// [`path_problem`](Self::path_problem) of an `overwrite:path` value as written, each
    /// reference (a stage variable too) standing as one plain character; None when the
    /// value does not parse (reported as such).
    pub fn value_path_problem(value: &str) -> Option<&'static str> {
        let refs = template::parse(value).ok()?;
        let plain: String = refs
            .iter()
            .map(|r| match r {
                template::Ref::Lit(text) => text,
                _ => "x",
            })
            .collect();
        Self::path_problem(&plain)
    }

    /// Writes `?` and the query string: the client's pairs minus dropped names, then the
    /// added ones. Writes nothing when nothing is left.
    pub fn write_query(&self, v: &RequestView, out: &mut Vec<u8>) {
        // Names are compared as backends read them (`template::query_name_is`): `%72ole`,
        // `+role`, `role%00x` and `role[]` are all `role` to some, and an overwritten or
        // removed `role` must not survive under another spelling. Rack 2 and older Python
        // split pairs on `;` too, so each `;` part is a pair to them: `x=1;role=admin`
        // loses its `;role=admin` and keeps `x=1`.
        let dropped = |part: &[u8]| {
            let name = part.split(|&b| b == b'=').next().unwrap_or_default();
            self.drop_query
                .iter()
                .any(|d| template::query_name_is(name, d))
        };
        let mut sep = b'?';
        for pair in v.query().split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let parts = || pair.split(|&b| b == b';');
            if !parts().any(dropped) {
                out.push(sep);
                sep = b'&';
                out.extend_from_slice(pair);
                continue;
            }
            let mut part_sep = sep;
            for part in parts().filter(|p| !p.is_empty() && !dropped(p)) {
                out.push(part_sep);
                part_sep = b';';
                sep = b'&';
                out.extend_from_slice(part);
            }
        }
        for (name, t) in &self.add_query {
            let mark = out.len();
            out.push(sep);
            out.extend_from_slice(name);
            out.push(b'=');
            let value_at = out.len();
            t.eval_url_part(v, out, template::query_safe, template::query_safe);
            if out.len() == value_at {
                out.truncate(mark);
                continue;
            }
            sep = b'&';
        }
    }

    /// Writes the added headers, each `name: value\r\n`.
    pub fn write_headers(&self, v: &RequestView, out: &mut Vec<u8>) {
        for (name, t) in &self.add_headers {
            write_header(out, name, |out| t.eval(v, None, out));
        }
    }

    /// The request values the mappings read, for a cache key: the answer depends on the
    /// request the backend gets, and a mapping can put a value no `cache.key` names into
    /// it (`$context.identity.sourceIp`, a client certificate's subject, an authorizer's
    /// claim, a header): one caller's answer would be served to another.
    pub fn write_key(&self, v: &RequestView, out: &mut Vec<u8>) {
        let templates = self.path.iter();
        let templates = templates.chain(self.add_query.iter().map(|(_, t)| t));
        for t in templates.chain(self.add_headers.iter().map(|(_, t)| t)) {
            t.write_inputs(v, out);
        }
    }
}

/// Writes `name: value\r\n` with the value produced by `value`, line breaks made spaces
/// and blanks at its ends left out (a field value has none, RFC 9110 §5.5: a PEM's last
/// newline ended one in a space); nothing when that leaves it empty.
pub fn write_header(out: &mut Vec<u8>, name: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
    let mark = out.len();
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    let value_at = out.len();
    value(out);
    crate::http1::encode::sanitize_value(&mut out[value_at..]);
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let end = value_at
        + out[value_at..]
            .iter()
            .rposition(|b| !blank(b))
            .map_or(0, |i| i + 1);
    out.truncate(end);
    let lead = out[value_at..].iter().take_while(|b| blank(b)).count();
    out.drain(value_at..value_at + lead);
    if out.len() == value_at {
        out.truncate(mark);
        return;
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_have_no_blanks_at_their_ends() {
        let mut out = b"x".to_vec();
        write_header(&mut out, b"x-pem", |o| {
            o.extend_from_slice(b"-----BEGIN\nAB\n-----END-----\n")
        });
        assert_eq!(out, b"xx-pem: -----BEGIN AB -----END-----\r\n");
        write_header(&mut out, b"x-blank", |o| o.extend_from_slice(b" \r\n\t"));
        write_header(&mut out, b"x-none", |_| {});
        assert_eq!(
            out, b"xx-pem: -----BEGIN AB -----END-----\r\n",
            "nothing for those"
        );
        out.clear();
        write_header(&mut out, b"a", |o| o.extend_from_slice(b"\t v w "));
        assert_eq!(out, b"a: v w\r\n");
    }

    #[test]
    fn keys() {
        assert_eq!(
            parse_key("append:header.x-a"),
            Some((Action::Append, Target::Header("x-a")))
        );
        assert_eq!(
            parse_key("remove:querystring.q"),
            Some((Action::Remove, Target::Query("q")))
        );
        assert_eq!(
            parse_key("overwrite:path"),
            Some((Action::Overwrite, Target::Path))
        );
        assert_eq!(
            parse_key("overwrite:statuscode"),
            Some((Action::Overwrite, Target::StatusCode))
        );
        assert_eq!(parse_key("delete:header.x"), None);
        assert_eq!(parse_key("append:header."), None);
        assert_eq!(parse_key("append:cookie.x"), None);
    }

    #[test]
    fn compile_splits_drops_and_adds() {
        let params = vec![
            ("overwrite:header.X-A".to_string(), "1".to_string()),
            ("append:header.x-b".to_string(), "2".to_string()),
            ("remove:header.x-c".to_string(), "".to_string()),
            ("remove:querystring.debug".to_string(), "".to_string()),
        ];
        let map = RequestMap::compile(&params, &[], &[]).unwrap().unwrap();
        assert!(map.drops_header(b"x-a") && map.drops_header(b"X-C"));
        assert!(!map.drops_header(b"x-b"));
        assert_eq!(map.add_headers.len(), 2);
        assert!(map.maps_query() && !map.maps_path());
        assert!(RequestMap::compile(&[], &[], &[]).unwrap().is_none());
    }
}
