//! The response cache against an attacker who wants one request of theirs to fill the
//! entry other clients are then served: a GET carrying a body the backend answers by
//! (the key leaves bodies out), a listed header sent under its CGI spelling (`X_Lang`,
//! which CGI, WSGI, PHP and Rack backends read as `X-Lang`) or named in `Connection`
//! (then never sent to the backend), a listed query parameter
//! hidden behind a `;` that some backends split the query at, or spelled in another case
//! that some backends compare names without ("parameter cloaking"), headers that
//! frameworks behind a trusted proxy read as the client's URL, port or host
//! (`X-Forwarded-Port`, `Forwarded`, `X-Original-URL`); and entries a reload must not keep: those of a backend the route's upstream no longer
//! points at.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// An origin whose answers name it (`name`), its sequence number, and what it read from
/// the request the way a backend might: the body, `X-Lang` as CGI reads it (`X_Lang`
/// too, the last one sent), and `lang` from a query split at `&` and `;` (the last one).
fn origin(name: &'static str) -> Origin {
    let seq = Arc::new(AtomicUsize::new(0));
    Origin::start(move |req, s| {
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        // Under /ci/ names compare without case, as ASP.NET compares them.
        let ci = path.starts_with("/ci/");
        let lang = query
            .split(['&', ';'])
            .rev()
            .find_map(|p| {
                let (n, v) = p.split_once('=')?;
                (n == "lang" || (ci && n.eq_ignore_ascii_case("lang"))).then_some(v)
            })
            .unwrap_or("-");
        let cgi_lang = req
            .headers
            .iter()
            .rev()
            .find(|(h, _)| h.replace('_', "-").eq_ignore_ascii_case("x-lang"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("-");
        let body = if path.starts_with("/links/") {
            // Where a framework that trusts its proxy says the client came from (as
            // CGI reads names, `_` for `-`).
            let told = |h: &str| {
                req.headers
                    .iter()
                    .find(|(n, _)| n.replace('_', "-").eq_ignore_ascii_case(h))
                    .map_or("-", |(_, v)| v.as_str())
            };
            format!(
                "{name}#{n} {path} port={} forwarded={} url={} method={} https={}",
                told("x-forwarded-port"),
                told("forwarded"),
                told("x-original-url"),
                told("x-http-method"),
                told("x-proxied-https")
            )
        } else {
            format!(
                "{name}#{n} {path} body={} x-lang={cgi_lang} lang={lang}",
                String::from_utf8_lossy(&req.body)
            )
        };
        respond(s, 200, &[("content-type", "text/plain")], body.as_bytes());
        true
    })
}

fn config(origin: SocketAddr) -> String {
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    let head = one_origin_head(origin);
    format!(
        r#"{head}apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /items/{{id}}":
        integration: {http}
        cache: {{ ttl: 60s, key: [header.x-lang, querystring.lang] }}
      "GET /ci/{{id}}":
        integration: {http}
        cache: {{ ttl: 60s, key: [querystring.lang] }}
      # ANY: a method override its route does not serve is refused (tests/method_override.rs).
      "ANY /links/{{id}}":
        integration: {http}
        cache: {{ ttl: 60s }}
      "POST /search":
        integration: {http}
        cache: {{ ttl: 60s, methods: [POST] }}
      "GET /mapped/{{id}}":
        integration: {http}
        parameters: {{ "overwrite:header.x-lang": "$request.header.x-token", "overwrite:header.x-req": "$context.requestId" }}
        cache: {{ ttl: 60s }}
"#
    )
}

fn send(p: &Portico, request: &str) -> String {
    let r = p.raw(request.as_bytes());
    assert_eq!(r.status, 200, "{request}: {}", r.text());
    r.text()
}

fn get(p: &Portico, target: &str, headers: &str) -> String {
    send(
        p,
        &format!("GET {target} HTTP/1.1\r\nHost: a\r\n{headers}Connection: close\r\n\r\n"),
    )
}

#[test]
fn a_get_with_a_body_is_relayed_but_fills_no_entry() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        let fat = |framing: &str, body: &str| {
            send(
                &p,
                &format!(
                    "GET /items/1 HTTP/1.1\r\nHost: a\r\n{framing}Connection: close\r\n\r\n{body}"
                ),
            )
        };
        // The backend gets the body and answers by it; that answer is the attacker's.
        let evil = fat("Content-Length: 4\r\n", "evil");
        assert_eq!(evil, "o#1 /items/1 body=evil x-lang=- lang=-", "{driver}");
        let chunked = fat("Transfer-Encoding: chunked\r\n", "4\r\nevil\r\n0\r\n\r\n");
        assert_eq!(
            chunked, "o#2 /items/1 body=evil x-lang=- lang=-",
            "{driver}"
        );
        // Everyone else gets an answer made for a plain GET, cached from then on.
        let plain = get(&p, "/items/1", "");
        assert_eq!(plain, "o#3 /items/1 body= x-lang=- lang=-", "{driver}");
        assert_eq!(get(&p, "/items/1", ""), plain, "{driver}");
        // A body on a GET that finds the entry is answered from it (and the connection
        // goes on past the body).
        let mut c = Client::new(&p);
        let r = c.send(b"GET /items/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nevil");
        assert_eq!(r.text(), plain, "{driver}");
        assert_eq!(c.get("/items/1", "a").text(), plain, "{driver}");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 3, "{driver}");

        // A route that lists POST caches POSTs, bodies and all, as configured.
        let post = |body: &str| {
            send(
                &p,
                &format!("POST /search HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
            )
        };
        let first = post("q=1");
        assert_eq!(first, "o#4 /search body=q=1 x-lang=- lang=-", "{driver}");
        assert_eq!(post("q=2"), first, "{driver}");
    }
}

#[test]
fn a_listed_header_under_its_cgi_spelling_is_keyed() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        // The backend reads X_Lang as X-Lang; the key must not take it for absent.
        let evil = get(&p, "/items/2", "X_Lang: evil\r\n");
        assert_eq!(evil, "o#1 /items/2 body= x-lang=evil lang=-", "{driver}");
        let plain = get(&p, "/items/2", "");
        assert_eq!(plain, "o#2 /items/2 body= x-lang=- lang=-", "{driver}");
        // Nor for the plain spelling's value when both are sent.
        let both = get(&p, "/items/2", "X-Lang: de\r\nX_Lang: evil\r\n");
        assert_eq!(both, "o#3 /items/2 body= x-lang=evil lang=-", "{driver}");
        let de = get(&p, "/items/2", "X-Lang: de\r\n");
        assert_eq!(de, "o#4 /items/2 body= x-lang=de lang=-", "{driver}");
        assert_eq!(get(&p, "/items/2", "X-LANG: de\r\n"), de, "{driver}");
        // Each spelling its own entry: a backend that reads only X-Lang answers
        // `X_Lang: de` as it answers no header, and that must not fill X-Lang's entry.
        let cgi = get(&p, "/items/2", "x_lang: de\r\n");
        assert_eq!(cgi, "o#5 /items/2 body= x-lang=de lang=-", "{driver}");
        assert_eq!(get(&p, "/items/2", "X_LANG: de\r\n"), cgi, "{driver}");
        assert_eq!(get(&p, "/items/2", "X-Lang: de\r\n"), de, "{driver}");
        assert_eq!(get(&p, "/items/2", ""), plain, "{driver}");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 5, "{driver}");
    }
}

#[test]
fn a_header_the_client_names_in_connection_is_keyed_as_absent() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        // Named in Connection, X-Lang is hop-by-hop: the backend is not sent it and
        // answers as if no language were asked for. Keyed by its value, that answer
        // was served to every client that does send `X-Lang: de`.
        let hop = get(&p, "/items/6", "X-Lang: de\r\nConnection: x-lang\r\n");
        assert_eq!(hop, "o#1 /items/6 body= x-lang=- lang=-", "{driver}");
        let de = get(&p, "/items/6", "X-Lang: de\r\n");
        assert_eq!(de, "o#2 /items/6 body= x-lang=de lang=-", "{driver}");
        // It is the answer to the request the backend was sent: one without X-Lang.
        assert_eq!(get(&p, "/items/6", ""), hop, "{driver}");
        assert_eq!(get(&p, "/items/6", "X-Lang: de\r\n"), de, "{driver}");
        // Likewise a method override, which is otherwise passed on and keyed.
        let dropped = get(
            &p,
            "/links/2",
            "X-HTTP-Method: DELETE\r\nConnection: X-HTTP-Method\r\n",
        );
        assert!(
            dropped.ends_with(" method=- https=-"),
            "{driver}: {dropped}"
        );
        let delete = get(&p, "/links/2", "X-HTTP-Method: DELETE\r\n");
        assert!(
            delete.ends_with(" method=DELETE https=-"),
            "{driver}: {delete}"
        );
        assert_eq!(get(&p, "/links/2", ""), dropped, "{driver}");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 4, "{driver}");
    }
}

#[test]
fn a_listed_query_parameter_behind_a_semicolon_is_keyed() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        // A backend that splits at ; reads lang=evil; the key must not read lang=en.
        let cloaked = get(&p, "/items/3?lang=en&x=1;lang=evil", "");
        assert_eq!(cloaked, "o#1 /items/3 body= x-lang=- lang=evil", "{driver}");
        let en = get(&p, "/items/3?lang=en", "");
        assert_eq!(en, "o#2 /items/3 body= x-lang=- lang=en", "{driver}");
        assert_eq!(get(&p, "/items/3?x=1&lang=en", ""), en, "{driver}");
        // The cloaked request has an entry of its own.
        assert_eq!(get(&p, "/items/3?lang=en&x=1;lang=evil", ""), cloaked);
        assert_eq!(origin.requests.load(Ordering::SeqCst), 2, "{driver}");
    }
}

#[test]
fn a_listed_query_parameter_in_another_case_is_keyed() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        // A backend that reads names without case takes LANG for lang.
        let upper = get(&p, "/ci/1?LANG=evil", "");
        assert_eq!(upper, "o#1 /ci/1 body= x-lang=- lang=evil", "{driver}");
        let none = get(&p, "/ci/1", "");
        assert_eq!(none, "o#2 /ci/1 body= x-lang=- lang=-", "{driver}");
        let shadowed = get(&p, "/ci/1?lang=en&LANG=evil", "");
        assert_eq!(shadowed, "o#3 /ci/1 body= x-lang=- lang=evil", "{driver}");
        let en = get(&p, "/ci/1?lang=en", "");
        assert_eq!(en, "o#4 /ci/1 body= x-lang=- lang=en", "{driver}");
        // Each spelling has its entry (a backend that compares with case reads LANG=en
        // as no lang at all).
        assert_eq!(get(&p, "/ci/1?LANG=evil", ""), upper, "{driver}");
        assert_eq!(get(&p, "/ci/1?x=1&lang=en", ""), en, "{driver}");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 4, "{driver}");
    }
}

#[test]
fn headers_that_name_the_url_for_the_backend_are_keyed() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        // Each has its own entry: the method override is passed on and answered by;
        // the others are dropped from proxied requests (frameworks build links from
        // them, or serve the path they name) but still keyed, as a function gets them.
        let mut answers = Vec::new();
        for (n, headers) in [
            (1, "X-Forwarded-Port: 1337\r\n"),
            (2, "X_Forwarded_Port: 1337\r\n"),
            (3, "Forwarded: host=evil.example;proto=http\r\n"),
            (4, "X-Original-URL: /admin\r\n"),
            (5, "X-HTTP-Method: DELETE\r\n"),
            (6, "X-Proxied-Https: on\r\n"),
        ] {
            let r = get(&p, "/links/1", headers);
            assert!(r.starts_with(&format!("o#{n} /links/1 ")), "{driver}: {r}");
            if n != 5 {
                assert!(
                    r.ends_with(" port=- forwarded=- url=- method=- https=-"),
                    "{r}"
                );
            } else {
                assert!(r.ends_with(" method=DELETE https=-"), "{r}");
            }
            answers.push((headers, r));
        }
        let plain = get(&p, "/links/1", "");
        let want = "o#7 /links/1 port=- forwarded=- url=- method=- https=-";
        assert_eq!(plain, want, "{driver}");
        assert_eq!(get(&p, "/links/1", ""), plain, "{driver}");
        // Each is served its own answer from the cache (a proxy in front that sets one
        // on every request still has every answer cached).
        for (headers, answer) in &answers {
            assert_eq!(&get(&p, "/links/1", headers), answer, "{driver} {headers}");
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), 7, "{driver}");
        // The `_method` query override too, as each framework reads its name: the
        // backend answers it, and the plain URL keeps its own answer.
        for (n, path) in [
            (8, "/links/1?_method=DELETE"),
            (9, "/links/1?.method=DELETE"),
            (10, "/links/1?%20_method=PUT"),
            (11, "/links/1?%5B_method%5D=PATCH"),
        ] {
            let r = get(&p, path, "");
            assert!(
                r.starts_with(&format!("o#{n} /links/1 ")),
                "{driver} {path}: {r}"
            );
        }
        assert_eq!(get(&p, "/links/1", ""), plain, "{driver}");
        assert_eq!(get(&p, "/links/1?x=1", ""), plain, "{driver}");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 11, "{driver}");
    }
}

/// Rewrites the config and waits for the reload to be applied.
fn reload(p: &Portico, yaml: &str) {
    let before = p.log_text().matches("config reloaded").count();
    std::fs::write(
        &p.config,
        yaml.replace("{PORT}", &p.addr.port().to_string()),
    )
    .unwrap();
    p.signal(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.log_text().matches("config reloaded").count() == before {
        assert!(Instant::now() < deadline, "no reload: {}", p.log_text());
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(100));
}

#[test]
fn a_reload_that_points_the_upstream_elsewhere_drops_the_old_backends_entries() {
    for driver in DRIVERS {
        let (old, new) = (origin("old"), origin("new"));
        let p = Portico::start(&config(old.addr), driver);
        let first = get(&p, "/items/4", "");
        assert_eq!(first, "old#1 /items/4 body= x-lang=- lang=-", "{driver}");
        // Reloading the same config keeps the entry.
        reload(&p, &config(old.addr));
        assert_eq!(get(&p, "/items/4", ""), first, "{driver}");
        // The same route, its upstream now at another backend: that backend answers.
        reload(&p, &config(new.addr));
        let moved = get(&p, "/items/4", "");
        assert_eq!(moved, "new#1 /items/4 body= x-lang=- lang=-", "{driver}");
        assert_eq!(get(&p, "/items/4", ""), moved, "{driver}: and is cached");
        assert_eq!(old.requests.load(Ordering::SeqCst), 1, "{driver}");
    }
}

/// What a route's mappings put into the backend's request is keyed: a value no
/// `cache.key` can name (a header here; `$context.identity.sourceIp`, a certificate's
/// subject, an authorizer's claim alike) made one caller's answer another's. Values each
/// request has its own of (`$context.requestId`) split nothing.
#[test]
fn what_mappings_send_the_backend_is_keyed() {
    for driver in DRIVERS {
        let origin = origin("o");
        let p = Portico::start(&config(origin.addr), driver);
        let a = get(&p, "/mapped/1", "x-token: a\r\n");
        assert_eq!(a, "o#1 /mapped/1 body= x-lang=a lang=-", "{driver}");
        let b = get(&p, "/mapped/1", "x-token: b\r\n");
        assert_eq!(b, "o#2 /mapped/1 body= x-lang=b lang=-", "{driver}");
        assert_eq!(get(&p, "/mapped/1", "x-token: a\r\n"), a, "{driver}: a hit");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 2, "{driver}");
    }
}
