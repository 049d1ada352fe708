//! An `http` integration's `timeout` never fires early: a backend that answers within it
//! is served. The deadline was taken from the worker's coarse clock (as of its last tick,
//! up to 50 ms old), so a backend answering in 0.99 s of a 1 s timeout got 504 at 0.97 s.
//! It may fire up to one tick late (the README says so), never before.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_silent_backend_gets_its_whole_timeout_before_the_504() {
    let silent = silent_origin();
    for driver in DRIVERS {
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  silent: {{ targets: ["{silent}"] }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /slow": {{ integration: {{ type: http, upstream: silent, timeout: 200ms }} }}
"#
        );
        let p = Portico::start(&yaml, driver);
        // A 504 comes on a tick, so a request sent right after one starts on a fresh
        // coarse clock: pauses of 5–47 ms spread the clock's age at each start over a
        // tick, and ten requests catch an early deadline almost surely.
        for i in 0..10 {
            std::thread::sleep(Duration::from_millis(5 + (i * 7) % 45));
            let started = Instant::now();
            let r = p.get("/slow");
            let took = started.elapsed();
            assert_eq!(r.status, 504, "{driver} #{i}");
            assert!(
                took >= Duration::from_millis(200),
                "{driver} #{i}: 504 after {took:?} of a 200 ms timeout"
            );
        }
    }
}
