//! A WebSocket route's `http` integration whose upstream has a dead target (connection
//! refused) among live ones: the call goes to the next address, as a request's does
//! (nothing was sent), with the Host of the target that takes it. Every handshake was
//! refused that the balancer sent to the dead target, one in two here, for as long as it
//! stayed dead: the failure was not remembered either, so it was picked again in turn.

// The origin records calls from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::ws::*;
use common::*;

#[test]
fn a_connect_call_to_a_refusing_target_goes_to_the_next_one() {
    let backend = Origin::start(|_, s| {
        respond(s, 200, &[], b"");
        true
    });
    // Nothing listens there: connections are refused.
    let dead = format!("127.0.0.1:{}", free_port());
    for driver in DRIVERS {
        let dir = temp_dir("ws-failover");
        let routes =
            "      $connect: { integration: { type: http, upstream: be, path: /connect } }\n";
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{dead}\", \"{}\"], connect_timeout: 1s }}\n",
            backend.addr
        ));
        let p = Portico::start(&cfg, driver);
        for i in 0..8 {
            let mut s = p.connect();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let head = raw_handshake(&mut s, "/prod", "");
            assert!(head.starts_with("HTTP/1.1 101 "), "{driver} #{i}: {head}");
        }
        let live = backend.addr.to_string();
        let seen = backend.seen.lock().unwrap().clone();
        assert!(
            seen.iter().all(|s| s.header("host") == Some(live.as_str())),
            "{driver}: hosts {:?}",
            seen.iter().map(|s| s.header("host")).collect::<Vec<_>>()
        );
    }
}

/// A target that accepts every connection and closes it unanswered is passed over for
/// 10 s after the first such call, as one that refuses is (and as for requests).
#[test]
fn a_target_that_drops_calls_is_passed_over() {
    let backend = Origin::start(|_, s| {
        respond(s, 200, &[], b"");
        true
    });
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dropping = l.local_addr().unwrap();
    std::thread::spawn(move || l.incoming().for_each(drop));
    for driver in DRIVERS {
        let dir = temp_dir("ws-dropping");
        let routes =
            "      $connect: { integration: { type: http, upstream: be, path: /connect } }\n";
        let mut cfg =
            ws_api_config(free_port(), &dir, "", routes).replace("workers: 2", "workers: 1");
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{dropping}\", \"{}\"], connect_timeout: 1s }}\n",
            backend.addr
        ));
        let p = Portico::start(&cfg, driver);
        let refused = (0..10)
            .filter(|_| {
                let mut s = p.connect();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                !raw_handshake(&mut s, "/prod", "").starts_with("HTTP/1.1 101 ")
            })
            .count();
        assert!(refused <= 1, "{driver}: {refused} of 10 handshakes refused");
    }
}

/// A listener that never accepts, its queue full: the kernel drops further SYNs, so a
/// connection to it is neither made nor refused. The streams keep the queue full.
fn full_backlog() -> (
    std::net::SocketAddr,
    std::net::TcpListener,
    Vec<std::net::TcpStream>,
) {
    use std::os::fd::AsRawFd;
    let l = listen_on_free_port();
    // SAFETY: a valid listening socket; listen() again only changes its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let held = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    (addr, l, held)
}

#[test]
fn a_connect_call_that_cannot_connect_ends_at_the_integration_timeout() {
    let (blackhole, _l, _held) = full_backlog();
    for driver in DRIVERS {
        let dir = temp_dir("ws-connect-deadline");
        let routes = "      $connect: { integration: { type: http, upstream: be, path: /connect, timeout: 1s } }\n";
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{blackhole}\"], connect_timeout: 10s }}\n"
        ));
        let p = Portico::start(&cfg, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let started = std::time::Instant::now();
        let head = raw_handshake(&mut s, "/prod", "");
        let took = started.elapsed();
        assert!(!head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        // At the 1 s timeout (room for a loaded machine), not at the 10 s connect_timeout.
        assert!(
            took < Duration::from_secs(4),
            "{driver}: answered after {took:?}: {head}"
        );
    }
}
