//! Cache keys: the method, the path after the stage's base path, and the values of the
//! parameters the route lists in `cache.key` — nothing else, so other query parameters
//! and headers do not split entries. The stage is implied (each stage has its own store).
//!
//! Every field is written with its length in front, so no choice of bytes in one field
//! can make two different requests produce the same key.

use super::rules::{KeyPart, RouteCacheRt};
use crate::http1::parse::{Method, RequestHead, Span};

/// Marks a parameter that is absent (as opposed to present and empty).
const ABSENT: u32 = u32::MAX;

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Writes the key of a request into `out` (cleared first). `buf` is the buffer the head
/// and the `params` spans point into; `rest` is the path after the base path.
pub fn build(
    out: &mut Vec<u8>,
    rules: &RouteCacheRt,
    method: Method,
    buf: &[u8],
    head: &RequestHead,
    params: &[Span],
    rest: Span,
) {
    out.clear();
    out.push(method as u8);
    let path = rest.get(buf);
    field(out, if path.is_empty() { b"/" } else { path });
    for part in &rules.key {
        // Each part is its values in request order, then a terminator.
        match part {
            KeyPart::Path(i) => match params.get(*i) {
                Some(s) => field(out, s.get(buf)),
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
            },
            KeyPart::Query(name) => {
                let query = head.query.map_or(&b""[..], |q| q.get(buf));
                for pair in query.split(|&b| b == b'&') {
                    let (n, v) = match pair.iter().position(|&b| b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, &b""[..]),
                    };
                    if n == &name[..] {
                        field(out, v);
                    }
                }
                out.extend_from_slice(&ABSENT.to_le_bytes());
            }
            KeyPart::Header(name) => {
                for h in &head.headers {
                    if h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()) {
                        field(out, h.value.get(buf));
                    }
                }
                out.extend_from_slice(&ABSENT.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::ClientInvalidation;
    use crate::http1::parse_request;
    use crate::pipeline::cache::rules::{MethodSet, StatusSet};
    use std::time::Duration;

    fn rules(key: Vec<KeyPart>) -> RouteCacheRt {
        RouteCacheRt {
            ttl: Duration::from_secs(1),
            key,
            client_invalidation: ClientInvalidation::Ignore,
            methods: MethodSet::default(),
            statuses: StatusSet::of(&[200]),
            keyed_by_authorization: false,
            tag: 0,
        }
    }

    /// The key of `raw` when its whole path is the stage-relative path and the first path
    /// segment after `/items/` is parameter 0.
    fn key_of(r: &RouteCacheRt, raw: &str) -> Vec<u8> {
        let raw = raw.as_bytes();
        let mut head = RequestHead::new();
        assert!(parse_request(raw, &Default::default(), &mut head).unwrap());
        let path = head.path;
        let param = Span {
            start: path.start + "/items/".len() as u32,
            end: path.end,
        };
        let mut out = Vec::new();
        build(&mut out, r, head.method, raw, &head, &[param], path);
        out
    }

    fn get(target: &str, headers: &str) -> String {
        format!("GET {target} HTTP/1.1\r\nHost: a\r\n{headers}\r\n")
    }

    #[test]
    fn listed_parameters_split_entries_and_others_do_not() {
        let r = rules(vec![
            KeyPart::Path(0),
            KeyPart::Query((*b"lang").into()),
            KeyPart::Header("accept".into()),
        ]);
        let base = key_of(&r, &get("/items/1?lang=en", "Accept: a\r\n"));
        assert_eq!(
            base,
            key_of(
                &r,
                &get("/items/1?debug=1&lang=en", "Accept: a\r\nX-Other: 1\r\n")
            )
        );
        for other in [
            get("/items/2?lang=en", "Accept: a\r\n"),
            get("/items/1?lang=de", "Accept: a\r\n"),
            get("/items/1?lang=en", "Accept: b\r\n"),
            get("/items/1?lang=en", ""),
            get("/items/1", "Accept: a\r\n"),
            get("/items/1?lang=en&lang=de", "Accept: a\r\n"),
            "POST /items/1?lang=en HTTP/1.1\r\nHost: a\r\nAccept: a\r\n\r\n".to_string(),
        ] {
            assert_ne!(base, key_of(&r, &other), "{other}");
        }
        // Present-but-empty differs from absent.
        assert_ne!(
            key_of(&r, &get("/items/1?lang=", "Accept: a\r\n")),
            key_of(&r, &get("/items/1", "Accept: a\r\n"))
        );
    }

    #[test]
    fn without_listed_parameters_only_method_and_path_count() {
        let r = rules(Vec::new());
        assert_eq!(
            key_of(&r, &get("/items/1?a=1", "X: 1\r\n")),
            key_of(&r, &get("/items/1?b=2", ""))
        );
        assert_ne!(
            key_of(&r, &get("/items/1", "")),
            key_of(&r, &get("/items/2", ""))
        );
    }
}
