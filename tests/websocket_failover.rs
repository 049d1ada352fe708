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
