//! When a Lambda invoke starts and how it ends early: the route's timeout is the call's,
//! not the client's upload time, and an Invoke API that refuses a large event before
//! reading it (413, then close) is the documented 500, not a 502 for the broken write.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use common::*;

#[test]
fn a_slow_upload_does_not_use_up_the_functions_timeout() {
    let f = Function::start(|_| {
        FnReply::Slow(
            Duration::from_millis(50),
            r#"{"statusCode":200,"body":"ran"}"#.into(),
        )
    });
    let routes = format!(
        r#"      "POST /orders": {{ integration: {{ type: lambda, url: "{}", timeout: 1s }} }}"#,
        f.url()
    );
    for driver in DRIVERS {
        let p = Portico::start(&lambda_config(&f, &routes), driver);
        let before = f.calls();
        let mut s = p.connect();
        s.write_all(b"POST /orders HTTP/1.1\r\nHost: t\r\nContent-Length: 30\r\n\r\n")
            .unwrap();
        // 30 bytes over 1.5 s: each pause well inside header_timeout, the whole upload
        // longer than the route's 1 s timeout.
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(500));
            s.write_all(b"0123456789").unwrap();
        }
        let r = read_response(&mut BufReader::new(s), false).expect("an answer");
        assert_eq!((r.status, r.text().as_str()), (200, "ran"), "{driver}");
        assert_eq!(f.calls(), before + 1, "{driver}");
    }
}

#[test]
fn an_event_refused_before_it_is_read_is_a_500() {
    // The Invoke API's answer to an event over its limit, sent after the head, before
    // the body is read; closing with the body unread resets the connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let body = r#"{"Type":"User","message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}"#;
            // One write, and time for it to leave: a close with unread bytes resets the
            // connection and drops what is still queued to send.
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 413 Request Entity Too Large\r\nx-amzn-ErrorType: RequestEntityTooLargeException\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            thread::sleep(Duration::from_millis(50));
        }
    });
    let f = Function::start(|_| FnReply::Json("{}".into()));
    let routes = format!(
        r#"      "POST /upload": {{ integration: {{ type: lambda, url: "http://{addr}/2015-03-31/functions/big/invocations" }} }}"#
    );
    let body = vec![b'a'; 7 << 20];
    for driver in DRIVERS {
        let p = Portico::start(&lambda_config(&f, &routes), driver);
        let mut c = Client::new(&p);
        let mut request = format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let r = c.send(&request);
        assert_eq!(
            (r.status, r.json_message().as_str()),
            (500, "Internal server error"),
            "{driver}:\n{}",
            p.log_text()
        );
        assert!(
            eventually(|| p
                .log_text()
                .contains("answered 413 RequestEntityTooLargeException")),
            "{driver}:\n{}",
            p.log_text()
        );
        // The client connection goes on.
        assert_eq!(c.get("/v2/fine", "t").status, 200, "{driver}");
    }
}
