//! Failover between an upstream's targets: a request whose connection to the target picked
//! cannot be made (refused) goes to the next target, whatever its method, since nothing
//! was sent (nginx's `proxy_next_upstream error timeout`); the Host header sent is the
//! target that answers. With every target refusing, the client gets a 502. A request is
//! sent again on a new connection only when no byte of an answer came back.

mod common;

use common::*;

fn config(targets: &[String]) -> String {
    let targets = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  app:
    targets: [{targets}]
    connect_timeout: 1s
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: app, timeout: 5s }} }}
"#
    )
}

fn post(p: &Portico, path: &str) -> Response {
    p.raw(
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
        )
        .as_bytes(),
    )
}

#[test]
fn a_refused_connection_fails_over_to_the_next_target() {
    let live = Origin::fixed(b"live");
    // Nothing listens on these: connections are refused. Round robin starts at either.
    let dead = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    let targets = [dead[0].clone(), live.addr.to_string(), dead[1].clone()];
    for driver in DRIVERS {
        let p = Portico::start(&config(&targets), driver);
        for i in 0..9 {
            let r = p.get(&format!("/get/{i}"));
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "live"),
                "{driver}: GET {i}"
            );
            // A connection never made carried nothing: a POST may go elsewhere too.
            let r = post(&p, &format!("/post/{i}"));
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "live"),
                "{driver}: POST {i}"
            );
        }
        // The head went out with the Host of the target that took it, not the dead one's.
        let seen = live.seen.lock().unwrap().clone();
        let live_host = live.addr.to_string();
        assert!(
            seen.iter()
                .all(|s| s.header("host") == Some(live_host.as_str())),
            "{driver}: hosts sent {:?}",
            seen.iter().map(|s| s.header("host")).collect::<Vec<_>>()
        );
        assert!(
            seen.iter()
                .filter(|s| s.method == "POST")
                .all(|s| s.body == b"body"),
            "{driver}: a failed-over POST lost its body"
        );
        live.seen.lock().unwrap().clear();
        assert!(
            p.log_text().contains("trying another target"),
            "{driver}: the failover is not logged"
        );
    }
}

#[test]
fn every_target_refusing_is_a_502() {
    let dead = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    for driver in DRIVERS {
        let p = Portico::start(&config(&dead), driver);
        for i in 0..4 {
            assert_eq!(p.get(&format!("/{i}")).status, 502, "{driver}: GET {i}");
        }
    }
}

#[test]
fn a_target_that_refused_is_passed_over_for_a_while() {
    let live = Origin::fixed(b"live");
    for driver in DRIVERS {
        let port = free_port();
        let targets = [format!("127.0.0.1:{port}"), live.addr.to_string()];
        let p = Portico::start(&config(&targets), driver);
        // Round robin meets the dead target within two requests; it refuses.
        for i in 0..2 {
            assert_eq!(p.get(&format!("/{i}")).status, 200, "{driver}: GET {i}");
        }
        // It comes back, but the worker passes over it for the next 10 s (as nginx's
        // max_fails=1 fail_timeout=10s), rather than having every other request pay a
        // failed connect (a whole connect_timeout for one that does not answer).
        let back = Origin::start_at(port, |_, s| {
            respond(s, 200, &[], b"back");
            true
        });
        for i in 0..10 {
            let r = p.get(&format!("/later/{i}"));
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "live"),
                "{driver}: GET {i}"
            );
        }
        assert_eq!(
            back.connections.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{driver}"
        );
    }
}

/// A GET on a reused connection is sent again on a new one when the backend closed before
/// any byte of an answer (a keep-alive close racing the request); an interim response
/// (`100 Continue`) is a byte of an answer: the backend had the request, so its close
/// after one is a 502, not a second delivery.
#[test]
fn a_close_after_an_interim_response_is_not_retried() {
    let origin = Origin::start(|req, s| {
        if req.target == "/interim-then-close" {
            let _ = std::io::Write::write_all(s, b"HTTP/1.1 100 Continue\r\n\r\n");
            return false;
        }
        respond(s, 200, &[], b"warm");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        // Pools a connection, which the next request reuses.
        assert_eq!(p.get("/warm").status, 200, "{driver}");
        let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
        let r = p.get("/interim-then-close");
        assert_eq!(r.status, 502, "{driver}: {}", r.text());
        let delivered = origin.requests.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert_eq!(delivered, 1, "{driver}: the backend got the request twice");
    }
}
