//! Lambda REQUEST authorizers: the identity-source value is every value a backend may
//! read under that name, not the first one. A query parameter given twice (its name
//! escaped or not) and a header beside its `_` spelling (CGI, WSGI, PHP and Rack
//! backends read both as one HTTP_ name) reach the function comma-joined, as API
//! Gateway hands a repeated header or query parameter on, and key the result cache that
//! way: a cached Allow for `token=mine` is not reused for `token=mine&token=victim`.
//! A header the gateway writes into the event itself (`X-Forwarded-For`, the client's
//! address appended) is its value there, not the client's lines alone.

mod common;

use std::io::{BufReader, Write};
use std::net::SocketAddr;

use common::*;
use serde_json::json;

/// Allows exactly the identity value "mine", and says what it saw in the context.
fn authorizer() -> Function {
    Function::start(|ev| {
        let seen = ev["identitySource"][0].as_str().unwrap_or("").to_string();
        FnReply::Json(
            json!({"isAuthorized": seen == "mine", "context": {"seen": seen}}).to_string(),
        )
    })
}

fn config(a: &Function, origin: &Origin) -> String {
    let (u, o) = (a.url(), origin.addr);
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 3s, idle_timeout: 5s, drain_timeout: 1s }}
upstreams:
  echo: {{ targets: ["{o}"] }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      q: {{ type: lambda, url: "{u}", simple_responses: true, identity_source: $request.querystring.token, result_ttl: 300s }}
      h: {{ type: lambda, url: "{u}", simple_responses: true, identity_source: $request.header.x-token, result_ttl: 300s }}
      xff: {{ type: lambda, url: "{u}", simple_responses: true, identity_source: $request.header.X-Forwarded-For, result_ttl: 300s }}
      xffu: {{ type: lambda, url: "{u}", simple_responses: true, identity_source: $request.header.X_Forwarded_For, result_ttl: 300s }}
    routes:
      "GET /q": {{ authorizer: q, integration: {{ type: http, upstream: echo }} }}
      "GET /h": {{ authorizer: h, integration: {{ type: http, upstream: echo }} }}
      "GET /xff": {{ authorizer: xff, integration: {{ type: http, upstream: echo }} }}
      "GET /xffu": {{ authorizer: xffu, integration: {{ type: http, upstream: echo }} }}
"#
    )
}

fn get(p: &Portico, target: &str, headers: &str) -> Response {
    p.raw(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn repeated_identity_values_all_reach_the_function_and_the_cache_key() {
    for driver in DRIVERS {
        let a = authorizer();
        let origin = Origin::echo();
        let p = Portico::start(&config(&a, &origin), driver);

        // The caller's own token: allowed, and the verdict cached.
        assert_eq!(get(&p, "/q?token=mine", "").status, 200);
        let calls = a.calls();
        assert_eq!(get(&p, "/q?token=mine", "").status, 200);
        assert_eq!(a.calls(), calls, "the second request is a cache hit");

        // A second token beside it: the backend's query parser may read either one (PHP
        // and Rails the last), so the function must judge both, and the cached Allow for
        // the first alone must not let it through.
        for q in ["token=mine&token=victim", "token=mine&%74oken=victim"] {
            let r = get(&p, &format!("/q?{q}"), "");
            assert_eq!(r.status, 403, "{q}: {}", r.text());
            assert_eq!(
                a.last_event()["identitySource"],
                json!(["mine,victim"]),
                "{q}"
            );
        }

        // The header and its _ spelling, which a CGI-style backend reads as one.
        assert_eq!(get(&p, "/h", "X-Token: mine\r\n").status, 200);
        let r = get(&p, "/h", "X-Token: mine\r\nX_Token: victim\r\n");
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(a.last_event()["identitySource"], json!(["mine,victim"]));
        // A plain repeated header was already joined (API Gateway's way).
        let r = get(&p, "/h", "X-Token: mine\r\nX-Token: victim\r\n");
        assert_eq!(r.status, 403, "{}", r.text());
    }
}

/// One request from the loopback address `from` (any of 127.0.0.0/8 reaches Portico).
fn get_from(p: &Portico, from: [u8; 4], target: &str, headers: &str) -> Response {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&p.addr.into()).unwrap();
    let mut s: std::net::TcpStream = socket.into();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    read_response(&mut BufReader::new(s), false).expect("a response")
}

/// The authorizer sees `X-Forwarded-For` with the peer appended, and the identity is
/// that same value: a verdict made for one address's request is not reused for another
/// address sending the same header (it was keyed on the client's line alone), and a
/// request without the header is judged, not refused unheard.
#[test]
fn a_forwarded_for_identity_is_the_value_the_function_judged() {
    for driver in DRIVERS {
        let a = Function::start(|ev| {
            let seen = ev["identitySource"][0].as_str().unwrap_or("").to_string();
            let allowed = seen == "k2, 127.0.0.2";
            FnReply::Json(json!({"isAuthorized": allowed}).to_string())
        });
        let origin = Origin::echo();
        let p = Portico::start(&config(&a, &origin), driver);
        let r = get_from(&p, [127, 0, 0, 2], "/xff", "X-Forwarded-For: k2\r\n");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let ev = a.last_event();
        assert_eq!(ev["identitySource"], json!(["k2, 127.0.0.2"]), "{driver}");
        assert_eq!(
            ev["headers"]["x-forwarded-for"], "k2, 127.0.0.2",
            "{driver}"
        );
        let calls = a.calls();
        // The same line from another address: another identity, judged again.
        let r = get_from(&p, [127, 0, 0, 1], "/xff", "X-Forwarded-For: k2\r\n");
        assert_eq!(r.status, 403, "{driver}: {}", r.text());
        assert_eq!(a.calls(), calls + 1, "{driver}");
        assert_eq!(a.last_event()["identitySource"], json!(["k2, 127.0.0.1"]));
        // No line of its own: the function still gets the address (the event has it).
        let r = get_from(&p, [127, 0, 0, 1], "/xff", "");
        assert_eq!(r.status, 403, "{driver}: {}", r.text());
        assert_eq!(a.last_event()["identitySource"], json!(["127.0.0.1"]));
        // Its `_` spelling is not the header the event carries, nor the identity.
        get_from(
            &p,
            [127, 0, 0, 1],
            "/xff",
            "X_Forwarded_For: k2, 127.0.0.2\r\n",
        );
        assert_eq!(a.last_event()["identitySource"], json!(["127.0.0.1"]));
        // Nor when the identity source is written with `_`: it names the same header,
        // the event's (it read the client's lines, so a verdict was cached under them).
        let r = get_from(&p, [127, 0, 0, 2], "/xffu", "X-Forwarded-For: k2\r\n");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let r = get_from(&p, [127, 0, 0, 1], "/xffu", "X_Forwarded_For: k2\r\n");
        assert_eq!(r.status, 403, "{driver}: {}", r.text());
        assert_eq!(a.last_event()["identitySource"], json!(["127.0.0.1"]));
    }
}
