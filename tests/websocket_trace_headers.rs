//! The trace headers of a WebSocket API's `http` integration calls, as README's "Trace
//! headers" states them (it contradicted its WebSocket section, which listed
//! X-Amzn-Trace-Id as not forwarded): the `$connect` call carries one X-Amzn-Trace-Id,
//! the client's Root continued with a new Parent, and no traceparent or
//! x-amzn-requestid (the client's dropped); message and `$disconnect` calls carry none.

// The origin records calls from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::ws::*;
use common::*;

const ROOT: &str = "Root=1-5759e988-bd862e3fe1be46a994272793";

/// A masked, final client frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8, 9, 8, 7, 6];
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]),
    );
    out
}

/// The values of header `name` on the backend's call to `target`.
fn values(backend: &Origin, target: &str, name: &str) -> Vec<String> {
    let seen = backend.seen.lock().unwrap();
    let call = seen
        .iter()
        .find(|r| r.target == target)
        .unwrap_or_else(|| panic!("no call to {target}"));
    call.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn only_the_connect_call_carries_a_trace_header() {
    let backend = Origin::start(|_, s| {
        respond(s, 200, &[], b"");
        true
    });
    let routes = "      $connect: { integration: { type: http, upstream: be, path: /connect } }\n      $default: { integration: { type: http, upstream: be, path: /message } }\n      $disconnect: { integration: { type: http, upstream: be, path: /disconnect } }\n";
    for driver in DRIVERS {
        backend.seen.lock().unwrap().clear();
        let dir = temp_dir("ws-trace");
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  be: {{ targets: [\"{}\"] }}\n",
            backend.addr
        ));
        let p = Portico::start(&cfg, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let extra = format!(
            "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\
             X-Amzn-Trace-Id: {ROOT};Parent=53995c3f42cd8ad8;Sampled=1\r\n\
             x-amzn-requestid: spoofed\r\n"
        );
        let head = raw_handshake(&mut s, "/prod", &extra);
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        s.write_all(&frame(1, b"hello")).unwrap();
        assert!(
            eventually(|| backend.seen.lock().unwrap().len() >= 2),
            "{driver}: the message call"
        );
        s.write_all(&frame(8, &1000u16.to_be_bytes())).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            eventually(|| backend.seen.lock().unwrap().len() >= 3),
            "{driver}: the $disconnect call"
        );

        let trace = values(&backend, "/connect", "x-amzn-trace-id");
        assert_eq!(trace.len(), 1, "{driver}: {trace:?}");
        assert!(
            trace[0].starts_with(&format!("{ROOT};Parent=")),
            "{trace:?}"
        );
        assert!(
            !trace[0].contains("53995c3f42cd8ad8"),
            "{driver}: {trace:?}"
        );
        for name in ["traceparent", "x-amzn-requestid"] {
            assert_eq!(
                values(&backend, "/connect", name),
                [""; 0],
                "{driver}: {name}"
            );
        }
        for target in ["/message", "/disconnect"] {
            for name in ["x-amzn-trace-id", "traceparent", "x-amzn-requestid"] {
                let got = values(&backend, target, name);
                assert!(got.is_empty(), "{driver}: {target} {name}: {got:?}");
            }
        }
        p.stop();
    }
}
