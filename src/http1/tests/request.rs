use super::{parse_err, parse_ok, parse_split, text};
use crate::http1::{
    parse_request, BodyKind, LengthDecoder, Method, ParseError, ParseLimits, RequestHead,
};

const CURL: &[u8] = b"GET /users/42?lang=en&x= HTTP/1.1\r\nHost: api.example.com:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

fn bad(detail_hint: &str, msg: &[u8]) {
    match parse_err(msg) {
        ParseError::BadRequest(_) => {}
        other => panic!("{detail_hint}: expected 400, got {other:?}"),
    }
}

#[test]
fn origin_form_get() {
    let h = parse_ok(CURL);
    assert_eq!(h.method, Method::Get);
    assert_eq!(text(CURL, h.method_span), "GET");
    assert_eq!(text(CURL, h.target), "/users/42?lang=en&x=");
    assert_eq!(text(CURL, h.path), "/users/42");
    assert_eq!(text(CURL, h.query.unwrap()), "lang=en&x=");
    assert_eq!(h.authority, None);
    assert_eq!(text(CURL, h.host.unwrap()), "api.example.com:8080");
    assert_eq!(h.minor_version, 1);
    assert_eq!(h.head_len, CURL.len());
    assert_eq!(h.body, BodyKind::Empty);
    assert!(h.keep_alive && !h.expect_continue && !h.upgrade);
    assert_eq!(h.headers.len(), 3);
    assert_eq!(text(CURL, h.headers[1].name), "User-Agent");
    assert_eq!(text(CURL, h.headers[1].value), "curl/8.5.0");
    assert_eq!(h.header(CURL, "user-agent"), Some(&b"curl/8.5.0"[..]));
    assert_eq!(h.header(CURL, "ACCEPT"), Some(&b"*/*"[..]));
    assert_eq!(h.header(CURL, "missing"), None);
}

#[test]
fn body_follows_head() {
    let msg = b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    let h = parse_ok(msg);
    assert_eq!(h.body, BodyKind::Length(5));
    assert_eq!(&msg[h.head_len..], b"hello");

    let msg =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(parse_ok(msg).body, BodyKind::Chunked);
    let msg = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n";
    assert_eq!(parse_ok(msg).body, BodyKind::Chunked);
    // A coding before chunked, in one field or two: not forwarded (501).
    for msg in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_eq!(parse_err(msg), ParseError::NotImplemented);
    }
    let msg = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(parse_ok(msg).body, BodyKind::Empty);
}

#[test]
fn absolute_form_and_asterisk() {
    let msg = b"GET http://Backend.example:81/a/b?q HTTP/1.1\r\nHost: other\r\n\r\n";
    let h = parse_ok(msg);
    assert_eq!(text(msg, h.authority.unwrap()), "Backend.example:81");
    assert_eq!(text(msg, h.host.unwrap()), "Backend.example:81");
    assert_eq!(text(msg, h.path), "/a/b");
    assert_eq!(text(msg, h.query.unwrap()), "q");

    let msg = b"GET HTTPS://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n";
    let h = parse_ok(msg);
    assert_eq!(text(msg, h.authority.unwrap()), "h.example");
    assert!(h.path.is_empty());
    assert_eq!(h.query, None);

    let msg = b"GET http://h.example?x=1 HTTP/1.1\r\nHost: h.example\r\n\r\n";
    let h = parse_ok(msg);
    assert!(h.path.is_empty());
    assert_eq!(text(msg, h.query.unwrap()), "x=1");

    let msg = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = parse_ok(msg);
    assert_eq!(h.method, Method::Options);
    assert_eq!(text(msg, h.path), "*");
    assert_eq!(h.query, None);

    let msg = b"GET /? HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(parse_ok(msg).query.map(|q| q.len()), Some(0));
}

#[test]
fn connection_semantics() {
    let h = parse_ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n");
    assert!(!h.keep_alive);
    let h = parse_ok(b"GET / HTTP/1.0\r\n\r\n");
    assert!(!h.keep_alive);
    assert_eq!(h.minor_version, 0);
    assert_eq!(h.host, None);
    let h = parse_ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n");
    assert!(h.keep_alive);

    let h = parse_ok(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
    );
    assert!(h.expect_continue);
    // HTTP/1.0 clients do not understand 100 Continue (RFC 9110 §10.1.1).
    let h = parse_ok(b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(!h.expect_continue);

    let h = parse_ok(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    assert!(h.upgrade);
    let h = parse_ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert!(!h.upgrade);
    let h = parse_ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n");
    assert!(!h.upgrade);
}

#[test]
fn methods() {
    assert_eq!(Method::from_bytes(b"DELETE"), Method::Delete);
    assert_eq!(Method::from_bytes(b"get"), Method::Other);
    assert_eq!(Method::from_bytes(b"PROPFIND"), Method::Other);
    assert!(Method::Put.is_idempotent() && Method::Trace.is_idempotent());
    assert!(!Method::Post.is_idempotent() && !Method::Patch.is_idempotent());
    let msg = b"PROPFIND /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = parse_ok(msg);
    assert_eq!(h.method, Method::Other);
    assert_eq!(text(msg, h.method_span), "PROPFIND");
    for msg in [
        &b"M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"VERSION_CONTROL /x HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(parse_ok(msg).method, Method::Other);
    }
    // As nginx: a method is upper-case letters, '_' and '-'; TRACE is 405.
    for msg in [
        &b"get /x HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"Get /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET2 /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"G.ET /x HTTP/1.2\r\nHost: a\r\n\r\n",
    ] {
        bad("method not in upper case", msg);
    }
    assert_eq!(
        parse_err(b"TRACE /x HTTP/1.1\r\nHost: a\r\n\r\n"),
        ParseError::MethodNotAllowed
    );
}

#[test]
fn pipelined_heads() {
    let msg = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n";
    let first = parse_ok(msg);
    assert_eq!(text(msg, first.path), "/a");
    let rest = &msg[first.head_len..];
    let second = parse_ok(rest);
    assert_eq!(text(rest, second.path), "/b");
    assert_eq!(first.head_len + second.head_len, msg.len());
}

#[test]
fn pipelined_after_a_body() {
    let msg = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    let first = parse_ok(msg);
    let mut body = LengthDecoder::new(3);
    let scan = body.scan(&msg[first.head_len..]);
    assert!(scan.done);
    // The stray CRLF some clients send after a body is skipped and counted.
    let rest = &msg[first.head_len + scan.consumed..];
    let second = parse_ok(rest);
    assert_eq!(text(rest, second.path), "/b");
    assert_eq!(second.head_len, rest.len());
}

#[test]
fn leading_empty_lines() {
    let msg = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = parse_ok(msg);
    assert_eq!(h.head_len, msg.len());
    assert_eq!(text(msg, h.method_span), "GET");
    bad(
        "too many",
        b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    bad("bare LF", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    bad("bare CR", b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

fn limits(max_header_bytes: usize, max_request_line: usize) -> ParseLimits {
    ParseLimits {
        max_header_bytes,
        max_request_line,
        ..ParseLimits::default()
    }
}

#[test]
fn request_line_limit() {
    let l = limits(1000, 30);
    // "GET /" + 16 + " HTTP/1.1" = 30 bytes: exactly at the limit.
    let at = b"GET /aaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n";
    assert!(parse_split(at, &l).is_ok());
    let over = b"GET /aaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(parse_split(over, &l), Err(ParseError::UriTooLong));
    // No line end yet, already past the limit.
    let long = [b"GET /".as_slice(), &[b'a'; 100]].concat();
    let mut h = RequestHead::new();
    assert_eq!(parse_request(&long[..30], &l, &mut h), Ok(false));
    assert_eq!(
        parse_request(&long[..31], &l, &mut h),
        Err(ParseError::UriTooLong)
    );
    assert_eq!(
        parse_request(&long, &l, &mut h),
        Err(ParseError::UriTooLong)
    );
    // The default limits.
    let huge = [b"GET /".as_slice(), &[b'a'; 8200]].concat();
    assert_eq!(
        parse_request(&huge, &ParseLimits::default(), &mut h),
        Err(ParseError::UriTooLong)
    );
}

#[test]
fn header_bytes_limit() {
    let msg = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\n";
    assert!(parse_split(msg, &limits(msg.len(), 100)).is_ok());
    assert_eq!(
        parse_split(msg, &limits(msg.len() - 1, 100)),
        Err(ParseError::HeaderTooLarge)
    );
    // Incomplete and already too long.
    let mut h = RequestHead::new();
    let l = limits(40, 100);
    assert_eq!(parse_request(&msg[..40], &l, &mut h), Ok(false));
    assert_eq!(
        parse_request(&msg[..41], &l, &mut h),
        Err(ParseError::HeaderTooLarge)
    );
    // Leading empty lines count.
    let msg = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        parse_split(msg, &limits(msg.len() - 1, 100)),
        Err(ParseError::HeaderTooLarge)
    );
}

#[test]
fn header_count_limit() {
    let mut msg = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..99 {
        msg.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    msg.extend_from_slice(b"\r\n");
    assert_eq!(parse_ok(&msg).headers.len(), 100);
    let more = [&msg[..msg.len() - 2], b"X-last: v\r\n\r\n"].concat();
    assert_eq!(parse_err(&more), ParseError::HeaderTooLarge);
    let l = ParseLimits {
        max_headers: 2,
        ..ParseLimits::default()
    };
    assert_eq!(
        parse_split(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", &l),
        Err(ParseError::HeaderTooLarge)
    );
}

#[test]
fn body_limit() {
    let l = ParseLimits {
        max_body_bytes: 10,
        ..ParseLimits::default()
    };
    let ok = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(parse_split(ok, &l).unwrap().body, BodyKind::Length(10));
    let over = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(parse_split(over, &l), Err(ParseError::BodyTooLarge));
}

#[test]
fn content_length_smuggling() {
    bad(
        "CL+TE",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    bad(
        "TE+CL",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    );
    bad(
        "two CLs",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    );
    bad(
        "CL list",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
    );
    for v in [
        "+5",
        "-1",
        "5a",
        "0x5",
        "5 5",
        "",
        "1.0",
        "18446744073709551616",
        // Past 2^63 - 1 is no length (nginx answers 400 too), not a large one.
        "18446744073709551615",
        "9223372036854775808",
    ] {
        let msg = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
        bad(v, msg.as_bytes());
    }
    let same = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n";
    assert_eq!(parse_ok(same).body, BodyKind::Length(5));
    let max = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n";
    assert_eq!(parse_err(max), ParseError::BodyTooLarge);
}

#[test]
fn transfer_encoding_smuggling() {
    for te in [
        "gzip",
        "chunked, gzip",
        "identity",
        "chunked, chunked",
        "chunked;q=1",
        "chunked,",
        ", chunked",
        "\"chunked\"",
    ] {
        let msg = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
        bad(te, msg.as_bytes());
    }
    bad("chunked in two fields", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
    bad(
        "TE on 1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
}

#[test]
fn header_syntax() {
    bad(
        "obs-fold",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n",
    );
    bad(
        "obs-fold tab",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n",
    );
    bad(
        "space before first header",
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    );
    bad(
        "space before colon",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n",
    );
    bad("tab before colon", b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n");
    bad(
        "NUL in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n",
    );
    bad(
        "CR in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n",
    );
    bad(
        "LF in value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n",
    );
    bad("bare LF line ends", b"GET / HTTP/1.1\nHost: a\n\n");
    bad("bare LF at end", b"GET / HTTP/1.1\r\nHost: a\r\n\n");
    bad("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n");
    bad("empty name", b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n");
}

#[test]
fn request_line_syntax() {
    bad("HTTP/0.9", b"GET /\r\n\r\n");
    bad("version 0.9", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n");
    bad("two-digit minor", b"GET / HTTP/1.12\r\nHost: a\r\n\r\n");
    bad("no minor", b"GET / HTTP/2\r\nHost: a\r\n\r\n");
    bad(
        "junk after the version",
        b"GET / HTTP/1.2x\r\nHost: a\r\n\r\n",
    );
    bad(
        "junk after a later major",
        b"GET / HTTP/2.0 \r\nHost: a\r\n\r\n",
    );
    bad(
        "HTTP/1.2 with a bare LF",
        b"GET / HTTP/1.2\nHost: a\r\n\r\n",
    );
    bad("lowercase version", b"GET / http/1.1\r\nHost: a\r\n\r\n");
    bad("two spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n");
    bad("relative target", b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n");
    bad(
        "authority-form",
        b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    bad("other scheme", b"GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n");
    bad(
        "empty authority",
        b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    bad("userinfo", b"GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n");
    bad("asterisk with GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n");
    bad(
        "asterisk with query",
        b"OPTIONS *?x HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    bad("fragment", b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n");
    bad(
        "non-ASCII",
        "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes(),
    );
    assert_eq!(
        parse_err(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        ParseError::NotImplemented
    );
}

/// nginx's reading of a version: a later HTTP/1 minor is served as HTTP/1.1 (its headers
/// checked as strictly), a later major is 505.
#[test]
fn later_versions() {
    let msg = b"POST /a?q HTTP/1.2\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
    let h = parse_ok(msg);
    assert_eq!(h.minor_version, 1);
    assert_eq!((h.method, text(msg, h.target)), (Method::Post, "/a?q"));
    assert_eq!(text(msg, h.host.unwrap()), "a");
    assert_eq!(
        (h.body, h.keep_alive, h.head_len),
        (BodyKind::Length(2), true, msg.len() - 2)
    );
    assert_eq!(h.headers.len(), 2);
    let msg = b"GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n";
    assert!(!parse_ok(msg).keep_alive);
    bad("HTTP/1.2 without Host", b"GET / HTTP/1.2\r\nX: 1\r\n\r\n");
    bad(
        "HTTP/1.2 with obs-fold",
        b"GET / HTTP/1.2\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
    );
    bad(
        "HTTP/1.2, CL and TE",
        b"POST / HTTP/1.2\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    bad(
        "HTTP/1.2 and a dot-segment",
        b"GET /a/../b HTTP/1.2\r\nHost: a\r\n\r\n",
    );
    let limits = ParseLimits {
        max_headers: 2,
        ..Default::default()
    };
    let msg = b"GET / HTTP/1.2\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_eq!(
        super::parse_split(msg, &limits),
        Err(ParseError::HeaderTooLarge)
    );
    for msg in [
        &b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/3.0\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        assert_eq!(parse_err(msg), ParseError::VersionNotSupported);
    }
}

#[test]
fn host_rules() {
    bad("missing Host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
    bad(
        "missing Host, absolute-form",
        b"GET http://h/ HTTP/1.1\r\n\r\n",
    );
    bad("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n");
    bad("Host with path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n");
    bad("Host with userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n");
    bad("Host with space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
    let msg = b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n";
    assert_eq!(text(msg, parse_ok(msg).host.unwrap()), "[::1]:8080");
    // An http URI's host is never empty (RFC 9110 §4.2.1); nginx answers 400 too.
    bad("empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
    bad("blank Host", b"GET / HTTP/1.1\r\nHost:  \r\n\r\n");
    bad("empty Host on 1.0", b"GET / HTTP/1.0\r\nHost:\r\n\r\n");
}

#[test]
fn errors_map_to_statuses() {
    let cases = [
        (ParseError::BadRequest("x"), 400, "Bad Request"),
        (ParseError::UriTooLong, 414, "Request-URI Too Long"),
        (
            ParseError::HeaderTooLarge,
            431,
            "Request Header Fields Too Large",
        ),
        (ParseError::BodyTooLarge, 413, "Request Entity Too Large"),
        (ParseError::NotImplemented, 501, "Not Implemented"),
        (
            ParseError::VersionNotSupported,
            505,
            "HTTP Version Not Supported",
        ),
        (ParseError::MethodNotAllowed, 405, "Method Not Allowed"),
    ];
    for (e, status, message) in cases {
        assert_eq!((e.status(), e.message()), (status, message));
    }
}

#[test]
fn warm_head_does_not_allocate() {
    let mut h = RequestHead::new();
    let l = ParseLimits::default();
    assert_eq!(parse_request(CURL, &l, &mut h), Ok(true));
    let (ptr, cap) = (h.headers.as_ptr(), h.headers.capacity());
    for _ in 0..3 {
        assert_eq!(parse_request(CURL, &l, &mut h), Ok(true));
        assert_eq!((h.headers.as_ptr(), h.headers.capacity()), (ptr, cap));
    }
}
