//! A flush or a client's refresh while a miss is being fetched: requests after it never
//! get the answer fetched before it, and that answer is not stored.

use super::admin_flush::{config_with_admin, TOKEN};
use super::*;

/// Which fetch of the origin an answer is (`… #n`).
fn fetch_number(r: &Response) -> usize {
    r.text().rsplit('#').next().unwrap().parse().unwrap()
}

/// Starts `headers`' GET of `path` on its own thread; it reaches the origin before this
/// returns (the origin answers `x-answer-slowly` requests 400 ms later).
fn slow_get(p: &Portico, path: &'static str) -> thread::JoinHandle<Response> {
    let mut s = p.connect();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nx-answer-slowly: 1\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let slow = thread::spawn(move || read_response(&mut BufReader::new(s), false).unwrap());
    thread::sleep(Duration::from_millis(150));
    slow
}

#[test]
fn a_request_after_a_flush_does_not_get_a_fetch_begun_before_it() {
    for driver in DRIVERS {
        let origin = origin();
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&config_with_admin(origin.addr, 1, admin_port), driver);
        let before = slow_get(&p, "/items/inflight");
        let flush = "/cache/flush?api=app&stage=%24default";
        assert_eq!(
            admin(admin_addr, "POST", flush, Some(TOKEN), None).status,
            202
        );
        let after = get(&p, "/items/inflight");
        assert_eq!(
            fetch_number(&after),
            2,
            "{driver}: answered with the fetch begun before the flush"
        );
        let before = before.join().unwrap();
        assert_eq!(fetch_number(&before), 1, "{driver}");
        // The fetch after the flush is the one kept, not the older one that ended last.
        assert_eq!(fetch_number(&get(&p, "/items/inflight")), 2, "{driver}");
        assert_eq!(fetched(&origin, "/items/inflight"), 2, "{driver}");
    }
}

#[test]
fn a_refresh_goes_to_the_backend_while_a_fetch_is_in_flight() {
    let fresh = "Cache-Control: max-age=0\r\n";
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        let before = slow_get(&p, "/refresh/allow");
        let refreshed = send(&p, "GET", "/refresh/allow", fresh);
        assert_eq!(
            fetch_number(&refreshed),
            2,
            "{driver}: the refresh waited for the fetch begun before it"
        );
        assert_eq!(fetch_number(&before.join().unwrap()), 1, "{driver}");
        // What later requests get is the refresh's answer, not the older fetch's.
        assert_eq!(fetch_number(&get(&p, "/refresh/allow")), 2, "{driver}");
        assert_eq!(fetched(&origin, "/refresh/allow"), 2, "{driver}");
    }
}
