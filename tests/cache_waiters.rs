//! Requests that wait for another request's fetch of the same key are let go as soon as
//! that fetch turns out not storable (its head says `no-store`, it is too large, …), not
//! when its response has gone out whole: a slow reader of such an answer, or a slow
//! backend, held every other request of the key that long.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn config(origin: std::net::SocketAddr) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  origin: {{ targets: ["{origin}"] }}
apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 8MiB }} }}
    routes:
      "GET /c/{{p}}":
        integration: {{ type: http, upstream: origin, timeout: 10s }}
        cache: {{ ttl: 60s }}
"#
    )
}

fn get(addr: std::net::SocketAddr, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut BufReader::new(s), false).unwrap()
}

#[test]
fn waiters_go_to_the_backend_once_the_fetch_is_not_storable() {
    for driver in DRIVERS {
        // The first request's answer (`no-store`) sends its head, then holds its last
        // byte until a second request for the key reaches the backend (or 5 s pass): a
        // second request held waiting for the first never reaches it in time.
        let arrived = Arc::new(AtomicUsize::new(0));
        // Whether a later request reached the backend before the first answer ended.
        let (first_done, overlapped) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (seen, done, during) = (arrived.clone(), first_done.clone(), overlapped.clone());
        let origin = Origin::start(move |req, s| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 1 || req.target != "/c/x" {
                if !done.load(Ordering::SeqCst) {
                    during.store(true, Ordering::SeqCst);
                }
                respond(s, 200, &[("cache-control", "no-store")], b"later");
                return true;
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncache-control: no-store\r\ncontent-length: 5\r\n\r\nfirs",
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while seen.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = s.write_all(b"t");
            done.store(true, Ordering::SeqCst);
            true
        });
        let p = Portico::start(&config(origin.addr), driver);
        let addr = p.addr;
        let first = thread::spawn(move || get(addr, "/c/x"));
        assert!(
            eventually(|| arrived.load(Ordering::SeqCst) == 1),
            "{driver}: the first fetch"
        );
        let second = get(addr, "/c/x");
        assert_eq!(second.text(), "later", "{driver}");
        assert_eq!(first.join().unwrap().text(), "first", "{driver}");
        assert!(
            overlapped.load(Ordering::SeqCst),
            "{driver}: the second one waited for the first answer to end"
        );
        // Neither was stored.
        assert_eq!(get(addr, "/c/x").text(), "later", "{driver}");
        assert_eq!(arrived.load(Ordering::SeqCst), 3, "{driver}");
    }
}
