//! Cache keys: the method, the scheme and host the backend is told of, the path after the
//! stage's base path, the caller as the route's authorizer knows it, the values of the
//! parameters the route lists in `cache.key`, and the headers that name the URL to a
//! backend ([`claimed_by_proxy`], [`METHOD_OVERRIDES`]) — nothing else, so other query parameters and headers do
//! not split entries. The stage is implied (each stage has its own store).
//!
//! Every field is written with its length in front, so no choice of bytes in one field
//! can make two different requests produce the same key. Fields are written as the
//! backend reads them where two spellings mean the same (a host in any case, a query
//! name or value percent-encoded or not), so no spelling files an answer under a key it
//! was not made for. A header the backend is never sent (one the client names in
//! `Connection`, which the proxy drops as hop-by-hop) is keyed as absent, as the backend
//! answers it.

use super::rules::{KeyPart, RouteCacheRt};
use crate::http1::hop::HopByHop;
use crate::http1::parse::{Method, RequestHead, Span};
use crate::http1::same_cgi_name;
use crate::integration::own_headers::claimed_by_proxy;
use crate::pipeline::query_names::{is_name, Reading};
use crate::pipeline::template::query_decoded;

/// Marks a parameter that is absent (as opposed to present and empty).
const ABSENT: u32 = u32::MAX;

/// Writes a field's bytes: the caller (a slice, or values read again from the request),
/// or what the route's mappings make of the request.
pub type WriteField<'a> = dyn Fn(&mut Vec<u8>) + 'a;

/// The request a key is built from.
pub struct KeyInput<'a> {
    /// The method the entry is kept under (HEAD reads GET's).
    pub method: Method,
    /// The buffer the head and the `params` spans point into.
    pub buf: &'a [u8],
    pub head: &'a RequestHead,
    pub params: &'a [Span],
    /// The path after the base path.
    pub rest: Span,
    /// Served on a TLS listener: the backend is told `x-forwarded-proto: https`.
    pub tls: bool,
    /// Writes the caller as the route's authorizer established it (`rules::Caller`);
    /// None on routes without one.
    pub caller: Option<&'a WriteField<'a>>,
    /// Writes what the route's request mappings make of the request
    /// (`RequestMap::write_key`); None on routes without mappings.
    pub mapped: Option<&'a WriteField<'a>>,
    /// The request's hop-by-hop fields, where the integration drops them (an `http`
    /// backend is never sent a field the client names in `Connection`); None where they
    /// are passed on (a Lambda event keeps every header).
    pub hop: Option<HopByHop<'a>>,
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A field whose bytes are written by `write`: the length is filled in afterwards, so
/// a transformed value needs no buffer of its own.
fn field_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Writes the key of a request into `out` (cleared first). Nothing is allocated but
/// `out`'s growth, which a reused buffer does not need.
pub fn build(out: &mut Vec<u8>, rules: &RouteCacheRt, r: &KeyInput) {
    let buf = r.buf;
    // `Connection: x-lang` keeps X-Lang from the backend: keyed by its value, the answer
    // made without it filled the entry every real `X-Lang: de` request was then served
    // ("hop-by-hop" cache poisoning). `HopByHop` reads the Connection list only when the
    // parser saw it name fields; otherwise this is the fixed list's compare.
    let sent = |name: &[u8]| r.hop.is_none_or(|hop| !hop.drops(name));
    out.clear();
    out.push(r.method as u8);
    // The backend is told the scheme (x-forwarded-proto) and the host (x-forwarded-host:
    // the absolute-form authority, else Host) and may build its answer from them, links
    // and redirects above all: an answer made for one must never serve another.
    out.push(if r.tls { b's' } else { b'p' });
    match r.head.host {
        // Host names compare without case (RFC 9110 §4.2.3).
        Some(h) => field_with(out, |out| {
            out.extend(h.get(buf).iter().map(u8::to_ascii_lowercase))
        }),
        None => out.extend_from_slice(&ABSENT.to_le_bytes()),
    }
    let path = r.rest.get(buf);
    field(out, if path.is_empty() { b"/" } else { path });
    if let Some(write) = r.caller {
        field_with(out, write);
    }
    if let Some(write) = r.mapped {
        field_with(out, write);
    }
    for part in &rules.key {
        // Each part is its values in request order, then a terminator.
        match part {
            KeyPart::Path(i) => match r.params.get(*i) {
                Some(s) => field(out, s.get(buf)),
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
            },
            KeyPart::Query(name) => {
                let query = r.head.query.map_or(&b""[..], |q| q.get(buf));
                query_part(out, query, name);
            }
            KeyPart::Header(name) => {
                // `X_Lang` is the same HTTP_X_LANG as `X-Lang` to a CGI, WSGI, PHP or
                // Rack backend, and is passed on: its value splits entries as well, with
                // its name as sent (a backend that reads `X-Lang` does not read it).
                for h in &r.head.headers {
                    let as_sent = h.name.get(buf);
                    if same_cgi_name(as_sent, name.as_bytes()) && sent(as_sent) {
                        field_with(out, |out| {
                            out.extend(as_sent.iter().map(u8::to_ascii_lowercase))
                        });
                        field(out, h.value.get(buf));
                    }
                }
                out.extend_from_slice(&ABSENT.to_le_bytes());
            }
        }
    }
    // Headers that name the URL as the backend may take it, each with its name as sent
    // (a backend that reads `X-Forwarded-Port` may not read `X_Forwarded_Port`). A method
    // override named in `Connection` is not passed on: keyed, the plain answer it got
    // would be served to the requests that do send the override.
    for h in &r.head.headers {
        let name = h.name.get(buf);
        if (claimed_by_proxy(name) || METHOD_OVERRIDES.iter().any(|o| same_cgi_name(o, name)))
            && sent(name)
        {
            field_with(out, |out| {
                out.extend(name.iter().map(u8::to_ascii_lowercase))
            });
            field(out, h.value.get(buf));
        }
    }
    out.extend_from_slice(&ABSENT.to_le_bytes());
    // The `_method` query override as each framework reads its name, for the same
    // reason: `?_method=POST` filled the plain URL's entry with the POST's answer.
    let query = r.head.query.map_or(&b""[..], |q| q.get(buf));
    query_part(out, query, b"_method");
}

/// Request headers that name the URL to a backend that trusts its proxy
/// ([`claimed_by_proxy`]: dropped from proxied requests, passed to functions) and the method
/// overrides (passed on to both) are always in the key, as the host is: a request with
/// `X-Forwarded-Port: 1337`, `X-Original-URL: /admin` or `X-HTTP-Method: DELETE` filled the
/// entry of the plain request with an answer made for it ("unkeyed header" cache
/// poisoning). A proxy in front that sets one on every request (an ALB's
/// `X-Forwarded-Port`) just adds its constant value to every key. (`x-http-method` is
/// Microsoft's method override.)
const METHOD_OVERRIDES: [&[u8]; 3] = [
    b"x-http-method-override",
    b"x-http-method",
    b"x-method-override",
];

/// How backends split a query into pairs: at `&`, or (Rack before 3, Go before 1.17,
/// Python before 3.9.2) at `;` too.
const AMP: fn(u8) -> bool = |b| b == b'&';
const AMP_SEMI: fn(u8) -> bool = |b| b == b'&' || b == b';';

/// Query parameter `name` as every kind of backend reads it. A backend that splits at `;`
/// reads `?a=x&b=1;a=evil` as a=evil, one that compares names without case (ASP.NET)
/// reads `?A=evil` as a=evil, PHP reads `?a=x&+a=evil`, `a%00=evil` and `a[]=evil`
/// as a=evil too, and Rack `[a]=evil`: keyed only as the usual reading (a=x, a absent), such a request filled
/// the entry of `?a=x` or of `?` ("parameter cloaking"). So a flag byte says which other
/// readings differ, and each of those is keyed too; a plain query costs a scan more.
fn query_part(out: &mut Vec<u8>, query: &[u8], name: &[u8]) {
    let semi = query.contains(&b';');
    let differs = |reading: Reading| {
        query.split(|&b| AMP_SEMI(b)).any(|pair| {
            let n = pair.split(|&b| b == b'=').next().unwrap_or_default();
            is_name(n, name, reading) && !is_name(n, name, Reading::Exact)
        })
    };
    let folded = differs(Reading::Folded);
    let php = differs(Reading::Php);
    let rack = differs(Reading::Rack);
    out.push(u8::from(semi) | u8::from(folded) << 1 | u8::from(php) << 2 | u8::from(rack) << 3);
    for (at_semi, fold) in [(false, false), (true, false), (false, true), (true, true)] {
        if (semi || !at_semi) && (folded || !fold) {
            let sep = if at_semi { AMP_SEMI } else { AMP };
            let reading = if fold {
                Reading::Folded
            } else {
                Reading::Exact
            };
            query_values(out, query, name, sep, reading);
        }
    }
    if php {
        query_values(out, query, name, AMP, Reading::Php);
    }
    if rack {
        query_values(out, query, name, AMP, Reading::Rack);
    }
}

/// The values of query parameter `name` (as `reading` compares names) in request order,
/// the query split into pairs at each byte `sep` accepts, then a terminator.
fn query_values(
    out: &mut Vec<u8>,
    query: &[u8],
    name: &[u8],
    sep: fn(u8) -> bool,
    reading: Reading,
) {
    for pair in query.split(|&b| sep(b)) {
        let (n, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        // Compared and written decoded: `%61=x` is `a=x` to the backend.
        if is_name(n, name, reading) {
            field_with(out, |out| out.extend(query_decoded(v)));
        }
    }
    out.extend_from_slice(&ABSENT.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::ClientInvalidation;
    use crate::http1::parse_request;
    use crate::pipeline::cache::rules::{Caller, MethodSet, StatusSet};
    use std::time::Duration;

    fn rules(key: Vec<KeyPart>) -> RouteCacheRt {
        RouteCacheRt {
            ttl: Duration::from_secs(1),
            key,
            client_invalidation: ClientInvalidation::Ignore,
            methods: MethodSet::default(),
            statuses: StatusSet::of(&[200]),
            keyed_by_authorization: false,
            caller: Caller::Anyone,
            vary_ok: Vec::new().into(),
            tag: 0,
        }
    }

    /// The key of `raw` when its whole path is the stage-relative path and the first path
    /// segment after `/items/` is parameter 0.
    fn key_of(r: &RouteCacheRt, raw: &str) -> Vec<u8> {
        key_as(r, raw, false, None)
    }

    /// The same, served on TLS or not, for a caller.
    fn key_as(r: &RouteCacheRt, raw: &str, tls: bool, caller: Option<&[u8]>) -> Vec<u8> {
        key_with(r, raw, tls, caller, true)
    }

    /// The same, for an integration that drops hop-by-hop fields (`http`) or not.
    fn key_with(
        r: &RouteCacheRt,
        raw: &str,
        tls: bool,
        caller: Option<&[u8]>,
        drops_hop_by_hop: bool,
    ) -> Vec<u8> {
        let raw = raw.as_bytes();
        let mut head = RequestHead::new();
        assert!(parse_request(raw, &Default::default(), &mut head).unwrap());
        let path = head.path;
        let param = Span {
            start: path.start + "/items/".len() as u32,
            end: path.end,
        };
        let mut out = Vec::new();
        let write = |out: &mut Vec<u8>| out.extend_from_slice(caller.unwrap_or_default());
        let input = KeyInput {
            method: head.method,
            buf: raw,
            head: &head,
            params: &[param],
            rest: path,
            tls,
            caller: caller.is_some().then_some(&write),
            mapped: None,
            hop: drops_hop_by_hop.then(|| HopByHop::new(&head.headers, raw, head.connection_names)),
        };
        build(&mut out, r, &input);
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

    #[test]
    fn headers_a_proxy_claims_split_entries_by_name_or_family() {
        let r = rules(Vec::new());
        let plain = key_of(&r, &get("/items/1", ""));
        for header in [
            "X-Forwarded-Port: 1\r\n",
            "X-Forwarded-Method: DELETE\r\n",
            "X-SSL-Client-CN: admin\r\n",
            "X_Client_Cert_Present: true\r\n",
        ] {
            assert_ne!(plain, key_of(&r, &get("/items/1", header)), "{header}");
        }
        assert_eq!(plain, key_of(&r, &get("/items/1", "X-Client-Id: 1\r\n")));
    }

    #[test]
    fn the_forwarded_host_and_scheme_split_entries() {
        let r = rules(Vec::new());
        let at = |host: &str| {
            key_of(
                &r,
                &format!("GET /items/1 HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            )
        };
        assert_ne!(at("a.test"), at("evil.example"));
        assert_ne!(at("a.test"), at("a.test:8080"));
        assert_eq!(
            at("a.test"),
            at("A.Test"),
            "host names compare without case"
        );
        // An absolute-form target's authority is what the backend is told, not Host.
        let absolute = key_of(
            &r,
            "GET http://evil.example/items/1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
        );
        assert_ne!(absolute, at("a.test"));
        assert_eq!(absolute, at("evil.example"));
        // HTTP/1.0 without Host: the backend is told no host. (An empty Host is refused
        // by the parser.)
        let no_host = key_of(&r, "GET /items/1 HTTP/1.0\r\n\r\n");
        assert_ne!(no_host, at("a.test"));
        let raw = get("/items/1", "");
        assert_ne!(key_as(&r, &raw, true, None), key_as(&r, &raw, false, None));
    }

    #[test]
    fn query_names_and_values_compare_as_the_backend_decodes_them() {
        let r = rules(vec![KeyPart::Query((*b"a b").into())]);
        let k = |target: &str| key_of(&r, &get(target, ""));
        let plain = k("/items/1?a+b=x%20y");
        for same in ["/items/1?a%20b=x+y", "/items/1?%61%20%62=x%20y"] {
            assert_eq!(plain, k(same), "{same}");
        }
        // `a B` is another name to most backends and the same one to those that compare
        // without case: both readings are keyed.
        assert_ne!(plain, k("/items/1?a%20B=z&a+b=x+y"));
        assert_ne!(plain, k("/items/1?a%2Bb=x+y"), "an encoded + is a +");
        assert_ne!(plain, k("/items/1?a+b=x%2By"));
        // A % without two hex digits is kept as it is.
        assert_eq!(k("/items/1?a+b=%zz%4"), k("/items/1?a+b=%25zz%254"));
        assert_ne!(k("/items/1?a+b=%zz"), k("/items/1?a+b=zz"));

        let r = rules(vec![KeyPart::Query((*b"a").into())]);
        let k = |target: &str| key_of(&r, &get(target, ""));
        assert_ne!(
            k("/items/1?%61=evil"),
            k("/items/1"),
            "an encoded name counts"
        );
        assert_eq!(k("/items/1?%61=evil"), k("/items/1?a=evil"));
    }

    #[test]
    fn a_query_is_keyed_as_backends_that_split_at_semicolons_read_it_too() {
        let r = rules(vec![KeyPart::Query((*b"a").into())]);
        let k = |target: &str| key_of(&r, &get(target, ""));
        let plain = k("/items/1?a=x");
        // `a` is x to a backend that splits at & only, evil to one that splits at ; too.
        assert_ne!(plain, k("/items/1?a=x&b=1;a=evil"));
        assert_ne!(plain, k("/items/1?a=x;a=evil"));
        assert_ne!(k("/items/1?a=x;y"), k("/items/1?a=x&y"));
        // A ; elsewhere still gives one key to one reading.
        assert_eq!(k("/items/1?a=x&b=1;c=2"), k("/items/1?b=1;c=2&a=x"));
        assert_ne!(k("/items/1?a=x&b=1;c=2"), plain);
    }

    #[test]
    fn a_query_is_keyed_as_backends_that_compare_names_without_case_read_it_too() {
        let r = rules(vec![KeyPart::Query((*b"lang").into())]);
        let k = |target: &str| key_of(&r, &get(target, ""));
        // ASP.NET reads LANG as lang; Express, servlets and PHP do not.
        assert_ne!(k("/items/1"), k("/items/1?LANG=evil"));
        assert_ne!(k("/items/1?lang=en"), k("/items/1?lang=en&LANG=evil"));
        assert_ne!(k("/items/1?lang=en"), k("/items/1?LANG=en"));
        assert_ne!(k("/items/1?LANG=en"), k("/items/1?Lang=en&x=1;LANG=evil"));
        assert_eq!(k("/items/1?LANG=en"), k("/items/1?x=1&LANG=en"));
        assert_eq!(k("/items/1?lang=en"), k("/items/1?x=1&lang=en&other=2"));
    }

    #[test]
    fn a_query_is_keyed_as_php_reads_it_too() {
        let r = rules(vec![KeyPart::Query((*b"lang").into())]);
        let k = |target: &str| key_of(&r, &get(target, ""));
        let plain = k("/items/1?lang=de");
        // PHP's $_GET['lang'] is evil for each of these; the last value wins there.
        for cloaked in [
            "/items/1?lang=de&+lang=evil",
            "/items/1?lang=de&%20lang=evil",
            "/items/1?lang=de&lang%00=evil",
            "/items/1?lang=de&lang%5B%5D=evil",
            "/items/1?lang=de&lang[x]=evil",
        ] {
            assert_ne!(plain, k(cloaked), "{cloaked}");
        }
        assert_ne!(k("/items/1"), k("/items/1?lang[]=evil"));
        // Dots and spaces in a name are `_` to PHP, on both sides.
        let dotted = rules(vec![KeyPart::Query((*b"a.b").into())]);
        let kd = |target: &str| key_of(&dotted, &get(target, ""));
        assert_ne!(kd("/items/1?a.b=x"), kd("/items/1?a.b=x&a_b=evil"));
        // Names PHP reads as others leave the key alone.
        assert_eq!(plain, k("/items/1?lang=de&language=1&xlang=2"));
        // A `[` without its `]` is `_`: `user[id` and `user%5Bid` are `user_id` to PHP.
        let underscored = rules(vec![KeyPart::Query((*b"user_id").into())]);
        let ku = |target: &str| key_of(&underscored, &get(target, ""));
        let one = ku("/c/1?user_id=1");
        for cloaked in [
            "/c/1?user_id=1&user[id=evil",
            "/c/1?user_id=1&user%5Bid=evil",
        ] {
            assert_ne!(one, ku(cloaked), "{cloaked}");
        }
        // With its `]` the index is left out: `user[id]` is the array `user`.
        assert_eq!(one, ku("/c/1?user_id=1&user[id]=2"));
        // Rack and `qs` skip leading brackets: `[lang]` and `]lang` are `lang` there.
        for cloaked in [
            "/items/1?lang=de&[lang]=evil",
            "/items/1?lang=de&%5Dlang=evil",
        ] {
            assert_ne!(plain, k(cloaked), "{cloaked}");
        }
    }

    #[test]
    fn a_listed_header_under_its_cgi_spelling_splits_entries() {
        let r = rules(vec![KeyPart::Header("x-lang".into())]);
        let k = |headers: &str| key_of(&r, &get("/items/1", headers));
        let none = k("");
        assert_ne!(none, k("X_Lang: evil\r\n"), "a backend reads it as X-Lang");
        assert_ne!(
            k("X-Lang: de\r\n"),
            k("x_lang: de\r\n"),
            "one backend reads one of them"
        );
        assert_eq!(k("X-Lang: de\r\n"), k("x-LANG: de\r\n"));
        assert_eq!(k("X_Lang: de\r\n"), k("x_lang: de\r\n"));
        assert_ne!(k("X-Lang: de\r\n"), k("X-Lang: de\r\nX_Lang: evil\r\n"));
        assert_eq!(none, k("X-Lang-Extra: 1\r\nXLang: 1\r\n"));
    }

    #[test]
    fn a_header_the_backend_is_not_sent_is_keyed_as_absent() {
        let r = rules(vec![KeyPart::Header("x-lang".into())]);
        let k = |headers: &str| key_of(&r, &get("/items/1", headers));
        let none = k("");
        // Named in Connection, X-Lang is dropped from the proxied request.
        for hop in [
            "X-Lang: de\r\nConnection: x-lang\r\n",
            "Connection: close, X-LANG \r\nX-Lang: de\r\n",
            "Connection: keep-alive\r\nConnection: x-lang\r\nX-Lang: de\r\n",
        ] {
            assert_eq!(k(hop), none, "{hop}");
        }
        assert_ne!(k("X-Lang: de\r\n"), none);
        assert_eq!(
            k("X-Lang: de\r\nConnection: close, x-other\r\n"),
            k("X-Lang: de\r\n")
        );
        // Its CGI spelling is another name to Connection: it is passed on, and keyed.
        assert_eq!(
            k("X_Lang: de\r\nConnection: x-lang\r\n"),
            k("X_Lang: de\r\n")
        );
        assert_ne!(k("X_Lang: de\r\nConnection: x-lang\r\n"), none);
        // A method override named in Connection is not passed on either.
        let plain = rules(Vec::new());
        let kp = |headers: &str| key_of(&plain, &get("/items/1", headers));
        assert_eq!(
            kp("X-HTTP-Method: DELETE\r\nConnection: x-http-method\r\n"),
            kp("")
        );
        assert_ne!(kp("X-HTTP-Method: DELETE\r\n"), kp(""));
        // Where every header is passed on (a Lambda event), it is keyed as sent.
        let lambda = |headers: &str| key_with(&r, &get("/items/1", headers), false, None, false);
        assert_eq!(
            lambda("X-Lang: de\r\nConnection: x-lang\r\n"),
            lambda("X-Lang: de\r\n")
        );
        assert_ne!(lambda("X-Lang: de\r\nConnection: x-lang\r\n"), lambda(""));
    }

    #[test]
    fn headers_that_name_the_url_split_entries_as_sent() {
        let r = rules(Vec::new());
        let k = |headers: &str| key_of(&r, &get("/items/1", headers));
        let plain = k("X-Other: 1\r\n");
        assert_eq!(plain, k(""));
        for h in [
            "X-Forwarded-Port: 1337\r\n",
            "X_Forwarded_Port: 1337\r\n",
            "Forwarded: host=evil.example\r\n",
            "X-Original-URL: /admin\r\n",
            "X-HTTP-Method-Override: DELETE\r\n",
        ] {
            assert_ne!(plain, k(h), "{h}");
        }
        let port = k("X-Forwarded-Port: 443\r\n");
        assert_eq!(port, k("x-forwarded-port: 443\r\nX-Other: 2\r\n"));
        assert_ne!(port, k("X-Forwarded-Port: 1337\r\n"));
        assert_ne!(port, k("X_Forwarded_Port: 443\r\n"), "a name as sent");
        assert_ne!(
            k("X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /a\r\n"),
            k("X-Forwarded-Prefix: /a\r\nX-Forwarded-Port: 443\r\n"),
            "in request order"
        );
    }

    #[test]
    fn the_caller_splits_entries() {
        let r = rules(Vec::new());
        let raw = get("/items/1", "");
        let alice = key_as(&r, &raw, false, Some(b"alice"));
        assert_ne!(alice, key_as(&r, &raw, false, Some(b"bob")));
        assert_eq!(alice, key_as(&r, &raw, false, Some(b"alice")));
    }

    #[test]
    fn decoding() {
        let d = |s: &[u8]| query_decoded(s).collect::<Vec<u8>>();
        assert_eq!(d(b"a+b%2b%2Fc%"), b"a b+/c%");
        assert_eq!(d(b"%4"), b"%4");
        assert_eq!(d(b"%g1%41"), b"%g1A");
        assert_eq!(d(b""), b"");
    }
}
