//! A target that accepts connections and drops them unanswered (a crashing backend
//! behind a listener that still accepts, a sidecar whose app is gone) is passed over by
//! the worker for 10 s after the first such failure, as a target that refuses
//! connections is (nginx counts both toward `max_fails=1 fail_timeout=10s`); it got its
//! whole share of requests, every one a 502. The request that met the failure is not
//! sent elsewhere (README: a request that reached a target is not sent to another one).

mod common;

use std::net::TcpListener;
use std::thread;

use common::*;

/// Accepts every connection and closes it at once, unanswered.
fn dropping_origin() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            drop(s);
        }
    });
    addr
}

#[test]
fn a_target_that_drops_connections_is_passed_over() {
    let live = Origin::fixed(b"live");
    let dropping = dropping_origin();
    for driver in DRIVERS {
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  app: {{ targets: ["{dropping}", "{}"], connect_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: app, timeout: 5s }} }}
"#,
            live.addr
        );
        let p = Portico::start(&yaml, driver);
        let statuses: Vec<u16> = (0..12).map(|i| p.get(&format!("/r{i}")).status).collect();
        let failed = statuses.iter().filter(|&&s| s != 200).count();
        // Round robin starts at either target: at most the first pick meets the failure.
        assert!(failed <= 1, "{driver}: {statuses:?}");
        assert!(
            statuses.iter().all(|&s| s == 200 || s == 502),
            "{driver}: {statuses:?}"
        );
    }
}
