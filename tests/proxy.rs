//! The http integration end to end: bodies both ways, streaming, keep-alive pools,
//! upstream failures, the stale-connection retry, HEAD/204/304 (the headers a backend
//! is sent: tests/proxy_headers.rs).

mod common;

use std::io::{BufReader, Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn get_and_post_with_length_and_chunked_bodies() {
    let origin = Origin::start(|req, s| {
        if req.target.starts_with("/chunked") {
            let body = format!(
                "{} {} {}",
                req.method,
                req.target,
                String::from_utf8_lossy(&req.body)
            );
            let out = format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                &body[..3],
                body.len() - 3,
                &body[3..]
            );
            let _ = s.write_all(out.as_bytes());
        } else {
            let body = format!(
                "{} {} {}",
                req.method,
                req.target,
                String::from_utf8_lossy(&req.body)
            );
            respond(s, 200, &[("content-type", "text/plain")], body.as_bytes());
        }
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 2), driver);
        let r = p.get("/a/b?x=1&y=%20");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.text(), "GET /a/b?x=1&y=%20 ");

        let r = p.raw(b"POST /post HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        assert_eq!(r.text(), "POST /post hello");
        assert_eq!(origin.last().header("content-length"), Some("5"));

        let r = p.raw(
            b"POST /post HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(r.text(), "POST /post abcde");
        // In hand whole: sent with its length, as nginx sends a buffered body.
        assert_eq!(origin.last().header("transfer-encoding"), None);
        assert_eq!(origin.last().header("content-length"), Some("5"));

        let r = p.raw(
            b"PUT /chunked HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        );
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "PUT /chunked hi");
    }
}

#[test]
fn ten_mib_upload_and_download_stream_through_intact() {
    let data: Vec<u8> = (0..10 * 1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let served = data.clone();
    let origin = Origin::start(move |req, s| {
        if req.method == "GET" {
            respond(s, 200, &[], &served);
        } else {
            // Answer with a digest of what arrived so the test can check every byte.
            let sum: u64 = req
                .body
                .iter()
                .enumerate()
                .map(|(i, b)| (i as u64 + 1) * u64::from(*b))
                .sum();
            respond(s, 200, &[], format!("{} {sum}", req.body.len()).as_bytes());
        }
        true
    });
    let want: u64 = data
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u64 + 1) * u64::from(*b))
        .sum();
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 2), driver);
        let r = p.get("/big");
        assert_eq!(r.status, 200);
        assert!(r.body == data, "{driver}: downloaded bytes differ");

        let mut s = p.connect();
        s.write_all(
            format!(
                "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        )
        .unwrap();
        for chunk in data.chunks(64 * 1024) {
            s.write_all(chunk).unwrap();
        }
        let r = read_response(&mut BufReader::new(s.try_clone().unwrap()), false).unwrap();
        assert_eq!(
            r.text(),
            format!("{} {want}", data.len()),
            "{driver}: uploaded bytes differ"
        );

        // The same upload, chunked.
        let mut s = p.connect();
        s.write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        for chunk in data.chunks(100_000) {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .unwrap();
            s.write_all(chunk).unwrap();
            s.write_all(b"\r\n").unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
        let r = read_response(&mut BufReader::new(s), false).unwrap();
        assert_eq!(
            r.text(),
            format!("{} {want}", data.len()),
            "{driver}: chunked upload differs"
        );
    }
}

#[test]
fn upstream_connections_are_reused() {
    let origin = Origin::fixed(b"ok");
    for driver in DRIVERS {
        // One worker so every request lands in the same pool.
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let before = origin.connections.load(Ordering::SeqCst);
        for _ in 0..20 {
            assert_eq!(p.get("/x").status, 200);
        }
        let opened = origin.connections.load(Ordering::SeqCst) - before;
        assert_eq!(
            opened, 1,
            "{driver}: 20 sequential requests opened {opened} upstream connections"
        );
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let origin = Origin::start(|req, s| {
        respond(s, 200, &[], req.target.as_bytes());
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let mut s = p.connect();
        let mut batch = Vec::new();
        for i in 0..10 {
            batch.extend_from_slice(format!("GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
        batch.extend_from_slice(b"POST /last HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
        s.write_all(&batch).unwrap();
        let mut r = BufReader::new(s);
        for i in 0..10 {
            assert_eq!(
                read_response(&mut r, false).unwrap().text(),
                format!("/r{i}"),
                "{driver}"
            );
        }
        assert_eq!(read_response(&mut r, false).unwrap().text(), "/last");
    }
}

#[test]
fn dead_target_is_502_and_slow_target_is_504_quickly() {
    let dead = free_port();
    let slow = Origin::start(|_, s| {
        std::thread::sleep(Duration::from_secs(4));
        respond(s, 200, &[], b"late");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(
            &proxy_config(format!("127.0.0.1:{dead}").parse().unwrap(), 1),
            driver,
        );
        let t = Instant::now();
        let r = p.get("/x");
        assert_eq!(r.status, 502, "{driver}");
        assert_eq!(r.json_message(), "Bad Gateway");
        assert!(t.elapsed() < Duration::from_secs(2));

        let p = Portico::start(&proxy_config(slow.addr, 1), driver);
        let t = Instant::now();
        let r = p.get("/x");
        assert_eq!(r.status, 504, "{driver}");
        assert_eq!(r.json_message(), "Endpoint request timed out");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
            "{took:?}"
        );
    }
}

#[test]
fn garbage_and_reset_from_the_upstream_are_502() {
    let origin = Origin::start(|req, s| {
        if req.target == "/garbage" {
            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n");
        } else if req.target == "/badchunk" {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            );
        } else if req.target == "/badlater" {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n");
            std::thread::sleep(Duration::from_millis(100));
            let _ = s.write_all(b"zz\r\nhello\r\n0\r\n\r\n");
        } else {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
        }
        false
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        assert_eq!(p.get("/garbage").status, 502, "{driver}");
        // Everything the client gets for `request` until the connection closes.
        let until_closed = |request: &[u8]| {
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            String::from_utf8_lossy(&got).into_owned()
        };
        // A body cut short after the head: the client sees the connection close early.
        let text = until_closed(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("abc"), "{text}");
        // A chunked body broken before any byte went to the client: the client gets a
        // 502 instead of a bare close, and its connection goes on.
        let mut s = p.connect();
        let bad = b"GET /badchunk HTTP/1.1\r\nHost: t\r\n\r\n";
        s.write_all(bad).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let r = read_response(&mut reader, false).expect("a 502");
        assert_eq!(r.status, 502, "{driver}");
        s.write_all(b"GET /garbage HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = read_response(&mut reader, false).expect("the next answer");
        assert_eq!(
            r.status, 502,
            "{driver}: the next request on the connection"
        );
        // The same for an HTTP/1.0 client, whose body would have been de-chunked.
        let r = p.raw(b"GET /badchunk HTTP/1.0\r\nHost: t\r\n\r\n");
        assert_eq!(r.status, 502, "{driver}");
        // Broken after the first chunk went out: the head has been sent, so the client
        // sees the body end early (the connection closes).
        let text = until_closed(b"GET /badlater HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("3\r\nabc\r\n"), "{text}");
        // The worker keeps serving.
        assert_eq!(p.get("/garbage").status, 502);
    }
}

#[test]
fn stale_pooled_connection_is_retried_once() {
    // The origin answers one request per connection and then closes without saying so
    // (no "connection: close"), like a backend whose keep-alive timeout just expired.
    let origin = Origin::start(|req, s| {
        respond(s, 200, &[], req.target.as_bytes());
        false
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let before = origin.requests.load(Ordering::SeqCst);
        for i in 0..5 {
            let r = p.get(&format!("/r{i}"));
            assert_eq!(r.status, 200, "{driver}: request {i}");
            assert_eq!(r.text(), format!("/r{i}"));
            std::thread::sleep(Duration::from_millis(50));
        }
        // Every request after the first found the pooled connection closed: either the
        // check before reuse saw the close, or (when the close raced the request) the
        // retry answered them; not luck.
        let log = p.log_text();
        let caught = log.matches("pooled connection was stale").count()
            + log.matches("was closed; discarded").count();
        assert!(
            caught >= 4,
            "{driver}: neither the reuse check nor the retry caught the closes:\n{log}"
        );
        assert_eq!(
            origin.requests.load(Ordering::SeqCst) - before,
            5,
            "each request reached the origin once"
        );
        // POST is not idempotent: it must not be replayed, so it may fail, but never hang.
        let r = p
            .raw(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
        assert!(r.status == 200 || r.status == 502, "{}", r.status);
    }
}

#[test]
fn head_204_and_304_have_no_body() {
    let origin = Origin::start(|req, s| {
        match req.target.as_str() {
            "/204" => {
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            }
            "/304" => {
                let _ = s.write_all(b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n");
            }
            _ => respond(s, 200, &[], b"0123456789"),
        }
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let mut s = p.connect();
        s.write_all(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /204 HTTP/1.1\r\nHost: t\r\n\r\nGET /304 HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let head = read_response(&mut r, true).unwrap();
        assert_eq!(head.status, 200, "{driver}");
        assert_eq!(head.header("content-length"), Some("10"));
        assert_eq!(read_response(&mut r, false).unwrap().status, 204);
        assert_eq!(read_response(&mut r, false).unwrap().status, 304);
        // If HEAD, 204 or 304 had leaked a body, this would not parse as the 4th answer.
        assert_eq!(read_response(&mut r, false).unwrap().text(), "0123456789");
    }
}

/// A backend that writes a body after its HEAD answer, or after a 204 or 304 that
/// announced one, a moment later (a framework that writes the body it would send a GET,
/// a handler that sets the length and writes anyway): the peek at checkout cannot see
/// bytes that are not there yet, so the next request sent on that connection read them as
/// its answer. Such a connection is not pooled; a 304 that announces nothing still is.
#[test]
fn a_body_written_late_after_a_bodiless_answer_is_never_the_next_answer() {
    let origin = Origin::start(|req, s| {
        let head: &[u8] = match (req.method.as_str(), req.target.as_str()) {
            ("HEAD", _) => b"HTTP/1.1 200 OK\r\ncontent-length: 47\r\n\r\n",
            (_, "/304") => b"HTTP/1.1 304 Not Modified\r\ncontent-length: 47\r\n\r\n",
            (_, "/204") => b"HTTP/1.1 204 No Content\r\ncontent-length: 47\r\n\r\n",
            (_, "/plain304") => {
                let _ = s.write_all(b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n");
                return true;
            }
            _ => {
                respond(s, 200, &[], b"own answer");
                return true;
            }
        };
        let _ = s.write_all(head);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nHIJACKED");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        for (method, path) in [("HEAD", "/h"), ("GET", "/304"), ("GET", "/204")] {
            let mut s = p.connect();
            write!(
                s,
                "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let first = read_response(&mut BufReader::new(s), true).unwrap();
            assert!(
                first.status < 400,
                "{driver} {method} {path}: {}",
                first.status
            );
            let next = p.get("/x");
            assert_eq!(next.text(), "own answer", "{driver}: after {method} {path}");
        }
        // A 304 that announces no body keeps its connection.
        let before = origin.connections.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(p.get("/plain304").status, 304, "{driver}");
        assert_eq!(p.get("/x").text(), "own answer", "{driver}");
        assert_eq!(
            origin.connections.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{driver}: reused"
        );
    }
}

#[test]
fn close_delimited_upstream_body_is_chunked_for_http11_and_raw_for_http10() {
    let origin = Origin::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end");
        false
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let mut s = p.connect();
        s.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(s);
        let first = read_response(&mut r, false).unwrap();
        assert_eq!(
            first.header("transfer-encoding"),
            Some("chunked"),
            "{driver}"
        );
        assert_eq!(first.text(), "until the end");
        // The client connection stayed usable.
        assert_eq!(
            read_response(&mut r, false).unwrap().text(),
            "until the end"
        );

        let r = p.raw(b"GET /c HTTP/1.0\r\n\r\n");
        assert_eq!(r.text(), "until the end");
        assert_eq!(r.header("transfer-encoding"), None);
    }
}

#[test]
fn http10_client_and_expect_continue() {
    let origin = Origin::echo();
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        // HTTP/1.0 without keep-alive: answered, then closed.
        let r = p.raw(b"POST /e HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(r.text(), "hi", "{driver}");
        // HTTP/1.0 with keep-alive: two requests on one connection.
        let mut s = p.connect();
        s.write_all(b"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.header("connection"), Some("keep-alive"));
        s.write_all(b"POST /e HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nz")
            .unwrap();
        assert_eq!(read_response(&mut reader, false).unwrap().text(), "z");

        // Expect: 100-continue: the body is sent only after the interim response.
        let mut s = p.connect();
        s.write_all(
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(origin.last().header("expect"), None);
        s.write_all(b"body").unwrap();
        let r = read_response(&mut BufReader::new(s), false).unwrap();
        assert_eq!(r.text(), "body");
    }
}

#[test]
fn graceful_drain_finishes_the_request_in_flight() {
    let origin = Origin::start(|_, s| {
        std::thread::sleep(Duration::from_millis(800));
        respond(s, 200, &[], b"finished");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 2), driver);
        let mut s = p.connect();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let addr = p.addr;
        let waiter = std::thread::spawn(move || p.stop());
        let r = read_response(&mut BufReader::new(s), false).unwrap();
        assert_eq!(r.text(), "finished", "{driver}");
        assert_eq!(r.header("connection"), Some("close"));
        let status = waiter.join().unwrap();
        assert!(status.success(), "{driver}: exit {status}");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening after exit"
        );
    }
}

/// Bodies of 2 KiB and more that arrive with their head go to the client in one gathered
/// write with it (server/gather.rs tests partial writes): length-delimited and chunked,
/// pipelined, each response must follow the last one exactly.
#[test]
fn bodies_read_with_their_head_are_relayed_whole_and_in_order() {
    let body: Vec<u8> = (0..24 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let served = body.clone();
    let origin = Origin::start(move |req, s| {
        if req.target == "/chunked" {
            let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            out.extend_from_slice(format!("{:x}\r\n", served.len()).as_bytes());
            out.extend_from_slice(&served);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
            let _ = s.write_all(&out);
        } else {
            respond(s, 200, &[("x-path", &req.target)], &served);
        }
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let before = origin.connections.load(Ordering::SeqCst);
        let s = p.connect();
        let mut w = s.try_clone().unwrap();
        w.write_all(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /chunked HTTP/1.1\r\nHost: t\r\n\r\nGET /three HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(s);
        for path in ["/one", "/chunked", "/three"] {
            let resp = read_response(&mut r, false).unwrap();
            assert_eq!(resp.status, 200, "{driver} {path}");
            if path != "/chunked" {
                assert_eq!(resp.header("x-path"), Some(path), "{driver}");
            }
            assert!(resp.body == body, "{driver} {path}: body differs");
        }
        // Nothing of a body may stay behind in the upstream buffer: the connection is
        // reused only when it is empty.
        let opened = origin.connections.load(Ordering::SeqCst) - before;
        assert_eq!(
            opened, 1,
            "{driver}: {opened} upstream connections for three requests"
        );
    }
}
