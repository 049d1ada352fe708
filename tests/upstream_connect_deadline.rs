//! The integration `timeout` bounds connect + send + the response head (README): a
//! backend whose SYNs go unanswered (its accept queue is full) gets a 504 at the
//! integration timeout even when `connect_timeout` is longer, and a failover to another
//! such address does not stretch the request past it either. Under both drivers.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;

/// A listener that never accepts, its queue full: the kernel drops further SYNs, so a
/// connection to it is neither made nor refused. The streams keep the queue full.
fn full_backlog() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let l = listen_on_free_port();
    // SAFETY: a valid listening socket; listen() again only changes its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let held = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok())
        .collect();
    (addr, l, held)
}

#[test]
fn a_connect_that_hangs_ends_at_the_integration_timeout() {
    let (a, _la, _ha) = full_backlog();
    let (b, _lb, _hb) = full_backlog();
    // The queue is full: a connection now waits (the SYN is dropped).
    assert!(TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_err());
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  one: {{ targets: ["{a}"], connect_timeout: 10s }}
  two: {{ targets: ["{a}", "{b}"], connect_timeout: 2s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "GET /one": {{ integration: {{ type: http, upstream: one, timeout: 1s }} }}
      "GET /two": {{ integration: {{ type: http, upstream: two, timeout: 3s }} }}
"#
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        for (path, timeout, before) in [("/one", 1, 10), ("/two", 3, 4)] {
            let started = Instant::now();
            let r = p.get(path);
            let took = started.elapsed();
            assert_eq!(
                (r.status, r.json_message().as_str()),
                (504, "Endpoint request timed out"),
                "{driver} {path}"
            );
            // At the timeout, with room for a loaded machine; not at connect_timeout
            // (or after a second connect_timeout begun before the timeout).
            assert!(
                took >= Duration::from_millis(timeout * 1000 - 100)
                    && took < Duration::from_millis(timeout * 1000 + 900),
                "{driver} {path}: answered after {took:?} (timeout {timeout}s, was {before}s)"
            );
        }
    }
}

/// A target whose connects hang until the integration timeout (not longer than
/// `connect_timeout`) is passed over afterwards, as one that refused: it kept its whole
/// share of requests, every one a 504 a second later.
#[test]
fn a_target_whose_connect_outlasts_the_timeout_is_passed_over() {
    let (a, _la, _ha) = full_backlog();
    let live = Origin::fixed(b"live");
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  app: {{ targets: ["{a}", "{}"], connect_timeout: 5s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: app, timeout: 1s }} }}
"#,
        live.addr
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let statuses: Vec<u16> = (0..8).map(|i| p.get(&format!("/r{i}")).status).collect();
        // Round robin starts at either target: at most the first pick meets the hang.
        let timed_out = statuses.iter().filter(|&&s| s == 504).count();
        assert!(timed_out <= 1, "{driver}: {statuses:?}");
        assert!(
            statuses.iter().all(|&s| s == 200 || s == 504),
            "{driver}: {statuses:?}"
        );
        p.stop();
    }
}
