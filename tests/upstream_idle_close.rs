//! An idle pooled connection that the backend closes (its own keep-alive timeout, 5 s in
//! Node.js, shorter than the pool's) is closed by Portico within a sweep, about a second,
//! as nginx closes a cached upstream connection when the upstream does; it stayed open
//! (CLOSE_WAIT, holding a place in the pool) until the pool's idle_timeout. Under both
//! drivers.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn an_idle_connection_the_backend_closes_is_closed_within_a_sweep() {
    for driver in DRIVERS {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // How long after the backend's close Portico closed its end (None: not in 20 s).
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
            let mut w = s.try_clone().unwrap();
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            // Idle now: the backend gives up on it after a moment.
            thread::sleep(Duration::from_millis(300));
            s.shutdown(Shutdown::Write).unwrap();
            let closed = Instant::now();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut rest = Vec::new();
            let done = r.read_to_end(&mut rest).is_ok();
            let _ = tx.send(done.then(|| closed.elapsed()));
        });
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  origin: {{ targets: ["{addr}"], connect_timeout: 1s, pool: {{ idle_timeout: 60s }} }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: origin, timeout: 5s }} }}
"#
        );
        let p = Portico::start(&yaml, driver);
        assert_eq!(p.get("/a").text(), "ok", "{driver}");
        let took = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(6)),
            "{driver}: Portico closed its end after {took:?}"
        );
        drop(p);
    }
}
