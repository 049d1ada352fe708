//! A clean stop logs no error: SIGTERM while a slow request is in flight lets it finish,
//! closes the listeners, and the log has no ERROR line (under io_uring the cancelled
//! accept used to surface as `accept failed … os error 22`).

mod common;

use std::io::{BufReader, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigterm_with_a_request_in_flight_finishes_it_and_logs_no_error() {
    for driver in DRIVERS {
        let origin = Origin::start(|_, s| {
            thread::sleep(Duration::from_millis(800));
            respond(s, 200, &[], b"slow");
            true
        });
        // Two workers: both have accept loops to stop, only one has the request.
        let p = Portico::start(&proxy_config(origin.addr, 2), driver);
        let (tx, rx) = mpsc::channel();
        let mut s = p.connect();
        thread::spawn(move || {
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let _ = tx.send(read_response(&mut BufReader::new(s), false));
        });
        assert!(
            eventually(|| origin.requests.load(std::sync::atomic::Ordering::SeqCst) == 1),
            "{driver}: the request never reached the origin"
        );
        p.signal(15);
        let r = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{driver}: no answer"))
            .unwrap_or_else(|e| panic!("{driver}: the in-flight request failed: {e}"));
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(r.body, b"slow", "{driver}");

        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.log_text().contains("stopped") {
            assert!(Instant::now() < deadline, "{driver}: {}", p.log_text());
            thread::sleep(Duration::from_millis(20));
        }
        let log = p.log_text();
        assert!(log.contains("draining"), "{driver}: {log}");
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(
            errors.is_empty(),
            "{driver}: a clean stop logged {errors:#?}"
        );
        assert_eq!(p.stop().code(), Some(0), "{driver}");
    }
}
