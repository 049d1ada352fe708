//! Malformed input and request smuggling (issue 2; docs/ARCHITECTURE.md, Gateway answers):
//! every case gets `400 {"message":"Bad Request"}` and a close, the origin never sees it,
//! and the worker keeps serving a well-behaved client on another connection all along. Also
//! the request targets the parser accepts: origin-form, absolute-form, and `*` for OPTIONS
//! only; a path with a dot-segment is refused, and percent-encoded unreserved characters
//! are routed and forwarded decoded.

mod common;

use std::io::{BufReader, Cursor, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;

/// One worker, so the good client and the bad ones share it. `/up…` goes to the origin;
/// there is no catch-all route, so `OPTIONS *` matches nothing.
fn config(origin: SocketAddr) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 10s, drain_timeout: 1s }}
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /ok":
        integration: {{ type: mock, status: 200, headers: {{ content-type: text/plain }}, body: "ok" }}
      "ANY /up":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
      "ANY /up/{{proxy+}}":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
"#
    )
}

/// Requests that must be refused with 400 and a close, and never reach the origin.
fn bad_requests() -> Vec<(&'static str, Vec<u8>)> {
    let long_ext = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;{}\r\nhello\r\n0\r\n\r\n",
        "e".repeat(4097)
    );
    let cases: Vec<(&str, &[u8])> = vec![
        (
            "Content-Length and Transfer-Encoding",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding then Content-Length",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n",
        ),
        (
            "two different Content-Length fields",
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        ("a Content-Length list that differs", b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!"),
        ("a Content-Length that is not a number", b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello"),
        (
            "Transfer-Encoding: chunked, gzip",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        ),
        ("Transfer-Encoding: gzip", b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"),
        (
            "chunked twice over two fields",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            b"POST /up HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "chunk size zz",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            // Leading zeros are padding up to 64 digits in all (nginx reads any number).
            "chunk size of 65 hex digits",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000000000000000000000000000000000000000000000005\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a last chunk of blanks and an extension, no size",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n\t;a=b\r\n\r\n",
        ),
        (
            "a negative chunk size",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunk data longer than its size",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        ),
        ("obs-fold", b"GET /up HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n"),
        ("obs-fold with a tab", b"GET /up HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\tc\r\n\r\n"),
        ("whitespace before the colon", b"GET /up HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n"),
        (
            "whitespace before the colon of Transfer-Encoding",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
        ),
        ("NUL in a value", b"GET /up HTTP/1.1\r\nHost: t\r\nX-A: b\0c\r\n\r\n"),
        ("bare CR in a value", b"GET /up HTTP/1.1\r\nHost: t\r\nX-A: b\rc\r\n\r\n"),
        ("bare LF in a value", b"GET /up HTTP/1.1\r\nHost: t\r\nX-A: b\nX-B: c\r\n\r\n"),
        ("lines ending in a bare LF", b"GET /up HTTP/1.1\nHost: t\n\n"),
        ("request-target foo", b"GET foo HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("asterisk-form with GET", b"GET * HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a fragment in the target", b"GET /up#frag HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("userinfo in an absolute-form target", b"GET http://user@t/up HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("absolute-form of another scheme", b"GET ftp://t/up HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("HTTP/1.1 without Host", b"GET /up HTTP/1.1\r\nX-A: b\r\n\r\n"),
        ("two Host fields", b"GET /up HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("a Host with a path", b"GET /up HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        ("an empty Host", b"GET /up HTTP/1.1\r\nHost: \r\n\r\n"),
        // More than host and port: the first part picked a domain, the backend got all.
        ("a Host with two ports", b"GET /up HTTP/1.1\r\nHost: t:80:90\r\n\r\n"),
        ("a Host with a port that is not digits", b"GET /up HTTP/1.1\r\nHost: t:abc\r\n\r\n"),
        ("a Host with an empty name", b"GET /up HTTP/1.1\r\nHost: :80\r\n\r\n"),
        ("a Host with an unclosed IP-literal", b"GET /up HTTP/1.1\r\nHost: [::1\r\n\r\n"),
        // A list to a backend reading X-Forwarded-Host (Rack: the last, Express: the first).
        ("a Host with a comma", b"GET /up HTTP/1.1\r\nHost: other,secure.example\r\n\r\n"),
        ("a Host with an empty label", b"GET /up HTTP/1.1\r\nHost: secure.example..\r\n\r\n"),
        ("an absolute-form authority with a comma", b"GET http://a,b/up HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("an absolute-form target with an empty host", b"GET http://:80/up HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("garbage bytes", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
        ("text that is not HTTP", b"hello there\r\n\r\n"),
        ("HTTP/0.9", b"GET /up HTTP/0.9\r\nHost: t\r\n\r\n"),
        ("two spaces in the request line", b"GET  /up HTTP/1.1\r\nHost: t\r\n\r\n"),
        // Dot-segments: a backend that resolved them would serve a path that was not the
        // one routed (and checked), e.g. /up/../ok.
        ("a .. segment", b"GET /up/../ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a . segment", b"GET /up/./x HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a trailing .. segment", b"GET /up/x/.. HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("an encoded .. segment", b"GET /up/%2e%2E/ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a .. ended by an encoded slash", b"GET /up/..%2Fok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a .. ended by a backslash", b"GET /up/..\\ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a .. in an absolute-form target", b"GET http://t/up/../ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        // A % without two hex digits: decoding around it made a new escape, /%%36%31dmin
        // routed as the text /%61dmin and read as /admin by a backend that decodes.
        ("a stray % before escapes", b"GET /%%36%31dmin HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("an encoded .. behind stray %s", b"GET /up/%2%65%2%65/ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a % at the end of the path", b"GET /up/x% HTTP/1.1\r\nHost: t\r\n\r\n"),
        // Another path to a backend that ends it at a NUL, or reads \ as / (IIS).
        ("a %00 in the path", b"GET /up/..%00/ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a backslash in the path", b"GET /up\\secret HTTP/1.1\r\nHost: t\r\n\r\n"),
        // A backend reading quoted-strings would go on past the CRLF.
        (
            "a chunk extension's quote left open",
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"x\r\nabc\r\n0\r\n\r\n",
        ),
    ];
    let mut cases: Vec<(&str, Vec<u8>)> = cases.into_iter().map(|(n, b)| (n, b.to_vec())).collect();
    cases.push(("chunk extension over 4096 bytes", long_ext.into_bytes()));
    cases
}

fn assert_bad_request(got: &[u8], what: &str) {
    let text = String::from_utf8_lossy(got).to_string();
    let mut cur = Cursor::new(got);
    let r = read_response(&mut cur, false)
        .unwrap_or_else(|e| panic!("{what}: no response ({e}): {text:?}"));
    assert_eq!(r.status, 400, "{what}: {text:?}");
    assert_eq!(r.body, br#"{"message":"Bad Request"}"#, "{what}: {text:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    assert_eq!(r.header("connection"), Some("close"), "{what}");
    let id = r
        .header("x-amzn-RequestId")
        .unwrap_or_else(|| panic!("{what}: no request id"));
    assert_eq!(r.header("apigw-requestid"), Some(id), "{what}");
    assert_eq!(
        cur.position() as usize,
        got.len(),
        "{what}: bytes after the answer: {text:?}"
    );
}

/// A well-behaved client on one keep-alive connection, asking `GET /ok` until told to stop.
struct GoodClient {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    handle: thread::JoinHandle<Result<(), String>>,
}

impl GoodClient {
    fn start(p: &Portico) -> GoodClient {
        let s = p.connect();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (st, sv) = (stop.clone(), served.clone());
        let handle = thread::spawn(move || {
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            while !st.load(Ordering::SeqCst) {
                w.write_all(b"GET /ok HTTP/1.1\r\nHost: good\r\n\r\n")
                    .map_err(|e| e.to_string())?;
                let resp = read_response(&mut r, false)
                    .map_err(|e| format!("after {}: {e}", sv.load(Ordering::SeqCst)))?;
                if resp.status != 200 || resp.text() != "ok" || resp.header("connection").is_some()
                {
                    return Err(format!(
                        "bad answer {} {:?} {:?}",
                        resp.status,
                        resp.text(),
                        resp.headers
                    ));
                }
                sv.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        });
        GoodClient {
            stop,
            served,
            handle,
        }
    }

    fn finish(self, what: &str) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: the good client failed: {e}"));
        self.served.load(Ordering::SeqCst)
    }
}

#[test]
fn malformed_requests_get_400_and_close_and_never_reach_the_origin() {
    let origin = Origin::fixed(b"from origin");
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let before = origin.connections.load(Ordering::SeqCst);
        let good = GoodClient::start(&p);
        for (what, request) in bad_requests() {
            let what = format!("{driver}: {what}");
            let mut s = p.connect();
            s.write_all(&request).unwrap();
            let got = read_until_closed(&mut s, Duration::from_secs(5));
            assert_bad_request(&got, &what);
            // A new connection is served too.
            let r = p.get("/ok");
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "ok"),
                "{what}: not served afterwards"
            );
        }
        let served = good.finish(driver);
        assert!(served > 0, "{driver}: the good client got nothing");
        assert_eq!(
            origin.connections.load(Ordering::SeqCst),
            before,
            "{driver}: a malformed request reached the origin"
        );
        // The route does reach the origin, so the check above means something.
        let r = p.get("/up/after");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "from origin"),
            "{driver}"
        );
    }
}

/// Chunk extensions are not payload, so `max_body_bytes` does not bound them: past 16 KiB
/// in one body they are a 400 and a close. They were relayed without end (1-byte chunks
/// with 4 KiB extensions: a stream thousands of times the body limit).
#[test]
fn chunk_extensions_past_16_kib_in_one_body_are_refused() {
    let origin = Origin::start(|_, s| {
        respond(s, 200, &[], b"took it");
        true
    });
    let chunk = format!("1;{}\r\nx\r\n", "e".repeat(4000));
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let mut s = p.connect();
        s.write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        // Writes stop mattering once the server has answered and closed.
        for _ in 0..64 {
            if s.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 400 "), "{driver}: {text}");
        assert!(text.contains("connection: close"), "{driver}: {text}");
    }
}

#[test]
fn bad_framing_after_a_good_request_on_the_same_connection() {
    let origin = Origin::fixed(b"from origin");
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let before = origin.connections.load(Ordering::SeqCst);
        // A pipelined good request, then a smuggling attempt: the first is answered, the
        // second refused, and nothing after it is read as a request.
        let mut s = p.connect();
        s.write_all(
            b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nPOST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /up/smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let mut cur = Cursor::new(&got[..]);
        let first = read_response(&mut cur, false).unwrap();
        assert_eq!(
            (first.status, first.text().as_str()),
            (200, "ok"),
            "{driver}"
        );
        let rest = &got[cur.position() as usize..];
        assert_bad_request(rest, &format!("{driver}: pipelined CL+TE"));
        assert_eq!(
            origin.connections.load(Ordering::SeqCst),
            before,
            "{driver}: the smuggled request reached the origin"
        );
    }
}

#[test]
fn accepted_request_target_forms() {
    let origin = Origin::start(|req, s| {
        let body = format!(
            "{} {} host={}",
            req.method,
            req.target,
            req.header("x-forwarded-host").unwrap_or("-")
        );
        respond(s, 200, &[], body.as_bytes());
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        // Absolute-form is routed by its path; the origin gets origin-form.
        let r = p.raw(
            b"GET http://example.com/ok HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "{driver}: absolute-form"
        );
        let r = p.raw(b"GET http://example.com:8080/up/a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            r.text(),
            "GET /up/a/b?x=1 host=example.com:8080",
            "{driver}: absolute-form to the origin"
        );
        let r = p.raw(
            b"GET HTTP://EXAMPLE.COM/ok HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{driver}: the scheme is case-insensitive");

        // `OPTIONS *` is well-formed; no route matches it.
        let r = p.raw(b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 404, "{driver}: OPTIONS *");
        assert_eq!(r.body, br#"{"message":"Not Found"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        // Answered without closing: a well-formed request keeps the connection.
        let mut s = p.connect();
        s.write_all(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut rd = BufReader::new(s);
        assert_eq!(
            read_response(&mut rd, false).unwrap().status,
            404,
            "{driver}"
        );
        assert_eq!(
            read_response(&mut rd, false).unwrap().text(),
            "ok",
            "{driver}"
        );

        // `//ok` is origin-form; empty segments are skipped when routing.
        let r = p.get("//ok");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{driver}: //ok");
        // HTTP/1.0 needs no Host.
        let r = p.raw(b"GET /ok HTTP/1.0\r\n\r\n");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "{driver}: HTTP/1.0 without Host"
        );
        // A few empty lines before a request are tolerated (RFC 9112 §2.2).
        let r = p.raw(b"\r\nGET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}: leading CRLF");
        // Chunk sizes of 16 hex digits and extensions up to 4096 bytes are fine.
        let r = p.raw(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0000000000000005\r\nhello\r\n0\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}: 16-digit chunk size");
        let ext = format!(
            "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;{}\r\nhello\r\n0\r\n\r\n",
            "e".repeat(4096)
        );
        assert_eq!(
            p.raw(ext.as_bytes()).status,
            200,
            "{driver}: 4096-byte chunk extension"
        );
        // A quoted-string with a blank (RFC 9112 §7.1.1); blanks around ';' and '=' are
        // 400 in a request: the line goes on as sent, and llhttp and gunicorn refuse it.
        let r = p.raw(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a=\"x y\"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(
            r.status, 200,
            "{driver}: quoted chunk extension with a blank"
        );
        let r = p.raw(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5 ; a = \"x y\"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(r.status, 400, "{driver}: chunk extension with blanks");
        // Percent-encoded unreserved characters are the characters (RFC 3986 §6.2.2.2):
        // routed and forwarded decoded; other escapes and the query stay as sent.
        let r = p.get("/%6Fk");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "{driver}: /%6Fk"
        );
        let r = p.get("/up/%61%2D%7e%20x%2Fy?q=%61");
        assert_eq!(r.text(), "GET /up/a-~%20x%2Fy?q=%61 host=test", "{driver}");
        // Dots that are not whole segments are ordinary path bytes.
        for path in [
            "/up/file.json",
            "/up/.well-known/x",
            "/up/a..b",
            "/up/...",
            "/up/v1.2",
        ] {
            let r = p.get(path);
            assert_eq!(
                r.text(),
                format!("GET {path} host=test"),
                "{driver}: {path}"
            );
        }
        // Clients resolve dot-segments before sending: curl's request for /up/a/../b is
        // /up/b; with --path-as-is it sends the segment and gets a 400.
        let url = |path: &str| format!("http://{}{path}", p.addr);
        let out = std::process::Command::new("curl")
            .args(["-s", &url("/up/a/../b")])
            .output()
            .expect("curl runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("GET /up/b host={}", p.addr),
            "{driver}"
        );
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--path-as-is",
                "-w",
                " %{http_code}",
                &url("/up/../ok"),
            ])
            .output()
            .expect("curl runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            r#"{"message":"Bad Request"} 400"#,
            "{driver}: --path-as-is"
        );
        // A transfer-coding before the final chunked is not forwarded (as nginx: 501): a
        // backend that did not know it could read the body as another request.
        let mut s = p.connect();
        s.write_all(
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        )
        .unwrap();
        let got = String::from_utf8_lossy(&read_until_closed(&mut s, Duration::from_secs(5)))
            .into_owned();
        assert!(
            got.starts_with("HTTP/1.1 501 "),
            "{driver}: gzip, chunked: {got}"
        );
        assert!(got.contains("connection: close"), "{driver}: {got}");
    }
}

/// A HEAD refused before it is routed is answered without a body too (RFC 9112 §6.3):
/// behind a proxy that keeps the connection, the body would be read as the next answer.
#[test]
fn a_refused_head_request_gets_no_body() {
    let origin = Origin::fixed(b"from origin");
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        for (request, status) in [
            (&b"HEAD /up/%zz HTTP/1.1\r\nHost: t\r\n\r\n"[..], 400),
            (b"HEAD /up HTTP/1.1\r\nHost: t\r\nX-A: b\0c\r\n\r\n", 400),
            (b"HEAD /up HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ] {
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let got = read_until_closed(&mut s, Duration::from_secs(5));
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.starts_with(&format!("HTTP/1.1 {status} ")),
                "{driver}: {text}"
            );
            assert!(
                text.ends_with("\r\n\r\n"),
                "{driver}: a body after the head: {text}"
            );
        }
        // Another method still gets the message.
        let mut s = p.connect();
        s.write_all(b"GET /up/%zz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(
            String::from_utf8_lossy(&got).ends_with("Bad Request\"}"),
            "{driver}"
        );
    }
}

#[test]
fn connect_is_not_implemented() {
    let origin = Origin::fixed(b"from origin");
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let mut s = p.connect();
        s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
            .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        let r = read_response(&mut Cursor::new(&got[..]), false).unwrap();
        assert_eq!(r.status, 501, "{driver}");
        assert_eq!(r.json_message(), "Not Implemented");
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(p.get("/ok").status, 200);
        assert_eq!(origin.connections.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn equal_content_lengths_are_refused_or_forwarded_as_one() {
    // RFC 9112 §6.3: a list of identical values may be processed as that one value. A proxy
    // that accepts it must then forward one plain Content-Length: backends such as nginx
    // refuse a duplicate or a list, so forwarding it verbatim splits the two views again.
    let origin = Origin::echo();
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let cases: [(&str, &[u8]); 2] = [
            (
                "two equal Content-Length fields",
                b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
            ),
            (
                "a Content-Length list of equal values",
                b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2, 2\r\n\r\nhi",
            ),
        ];
        for (what, request) in cases {
            let what = format!("{driver}: {what}");
            let before = origin.requests.load(Ordering::SeqCst);
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let mut rd = BufReader::new(s);
            let r = read_response(&mut rd, false).unwrap_or_else(|e| panic!("{what}: {e}"));
            if r.status == 400 {
                let mut rest = Vec::new();
                let _ = rd.read_to_end(&mut rest);
                assert_eq!(r.header("connection"), Some("close"), "{what}");
                assert!(rest.is_empty(), "{what}");
                continue;
            }
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "hi"),
                "{what}: {:?}",
                r.headers
            );
            assert_eq!(origin.requests.load(Ordering::SeqCst), before + 1, "{what}");
            let seen = origin.last();
            let lengths: Vec<&str> = seen
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(lengths, ["2"], "{what}: the backend got {:?}", seen.headers);
        }
    }
}
