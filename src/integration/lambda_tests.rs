//! Unit tests of `lambda.rs`.

use super::*;

#[test]
fn urls() {
    assert_eq!(
        parse_url("http://127.0.0.1:9000/2015-03-31/functions/function/invocations"),
        Ok((
            "127.0.0.1",
            9000,
            "/2015-03-31/functions/function/invocations"
        ))
    );
    assert_eq!(parse_url("http://fn.local"), Ok(("fn.local", 80, "/")));
    assert_eq!(parse_url("http://[::1]:81/x"), Ok(("[::1]", 81, "/x")));
    assert_eq!(parse_url("http://[::1]/x"), Ok(("[::1]", 80, "/x")));
    assert!(parse_url("https://x/").is_err());
    assert!(parse_url("http://:80/").is_err());
    assert!(parse_url("http://x:99999/").is_err());
    assert!(parse_url("http://x/a b").is_err());
    // Credentials in the url are not sent; the error says so without repeating them
    // (it said "has no host", and printed the password into the log).
    let e = parse_url("http://fn:s3cret@127.0.0.1:9000/f").unwrap_err();
    assert!(
        e.contains("user:password@") && e.contains("127.0.0.1:9000"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn urls_that_cant_go_on_a_request_line_as_written_are_refused() {
    // Each was sent as written (a `..` the endpoint resolves, braces no request target
    // may hold), failed at run time (a host of braces), or was blamed on its port.
    let why = |url: &str| parse_url(url).unwrap_err();
    assert!(why("http://127.0.0.1:41711/fn/../admin").contains(". or .. segment"));
    assert!(why("http://127.0.0.1:41711/fn/%2e%2e/admin").contains(". or .. segment"));
    assert!(why("http://127.0.0.1:41711/fn/{id}").contains("{ or }"));
    assert!(why("http://{id}/x").contains("bad host"));
    assert!(why("http://${x}/x").contains("bad host"));
    assert!(why("http://127.0.0.1:9000?x=1").contains("has a query but no path"));
    // The Invoke API's own query (an alias or version) is sent as written; a dot-segment
    // is looked for in the path only.
    let invoke = "http://127.0.0.1:9000/2015-03-31/functions/orders/invocations?Qualifier=live";
    assert_eq!(
        parse_url(invoke),
        Ok((
            "127.0.0.1",
            9000,
            "/2015-03-31/functions/orders/invocations?Qualifier=live"
        ))
    );
    assert_eq!(parse_url("http://h/f?a=..").map(|u| u.2), Ok("/f?a=.."));
    assert!(why("http://h/f/..?a=1").contains("segment"));
    assert!(why("http://127.0.0.1:9000#top").contains("#"));
    assert!(why("http://127.0.0.1:+9000/f").contains("bad port"));
    assert!(why("http://127.0.0.1:0/f").contains("bad port"));
    assert_eq!(
        parse_url("http://fn.local:9000"),
        Ok(("fn.local", 9000, "/"))
    );
    assert_eq!(
        parse_url("http://[::1]:81/a.b/c%7B"),
        Ok(("[::1]", 81, "/a.b/c%7B"))
    );
}

#[test]
fn head_fills_its_room_exactly() {
    let head = b"POST /f HTTP/1.1\r\nhost: h\r\n";
    let room = head.len() + LENGTH_ROOM;
    let mut buf = vec![0u8; room];
    buf.extend_from_slice(b"{\"a\":1}");
    let start = fill_head(&mut buf, room, head);
    assert_eq!(
        &buf[start..],
        b"POST /f HTTP/1.1\r\nhost: h\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
    );
}
