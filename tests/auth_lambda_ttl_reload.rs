//! A Lambda authorizer's `result_ttl` lowered by a reload bounds the verdicts cached
//! before it: an Allow stored for 300s is asked for again once it is older than the new
//! 1s, and the function's changed answer applies.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

fn config(f: &Function, ttl: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      gate: {{ type: lambda, url: "{}", simple_responses: true, identity_source: [$request.header.x-token], result_ttl: {ttl} }}
    routes:
      "GET /s": {{ authorizer: gate, integration: {{ type: mock, status: 200, body: s }} }}
"#,
        f.url()
    )
}

#[test]
fn a_lowered_result_ttl_bounds_verdicts_cached_before_the_reload() {
    for driver in DRIVERS {
        let allow = Arc::new(AtomicBool::new(true));
        let answer = allow.clone();
        let f = Function::start(move |_| {
            let ok = answer.load(Ordering::SeqCst);
            FnReply::Json(format!(r#"{{"isAuthorized": {ok}}}"#))
        });
        // One worker: every request meets the verdict cached by the first.
        let p = Portico::start(&config(&f, "300s"), driver);
        let get = || {
            p.raw(b"GET /s HTTP/1.1\r\nHost: t\r\nx-token: alice\r\nConnection: close\r\n\r\n")
                .status
        };
        assert_eq!(get(), 200);
        assert_eq!(get(), 200);
        assert_eq!(f.calls(), 1, "the second request used the cached Allow");

        // The function now denies alice; the reload asks for verdicts of at most 1s.
        allow.store(false, Ordering::SeqCst);
        let text = std::fs::read_to_string(&p.config).unwrap();
        std::fs::write(
            &p.config,
            text.replace("result_ttl: 300s", "result_ttl: 1s"),
        )
        .unwrap();
        p.signal(1);
        assert!(eventually(|| p.log_text().contains("config reloaded")));
        // Past the new TTL (whole seconds) since the Allow was stored.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            get(),
            403,
            "{driver}: the 300s Allow outlived the new 1s TTL"
        );
        assert_eq!(f.calls(), 2);
    }
}
