use crate::http1::encode::{
    decimal, gateway_response, gateway_response_head_only, header, imf_fixdate, own_head_end,
    reason_phrase, status_line, status_with_content,
};
use crate::http1::{parse_response, Method, ResponseBody, ResponseHead};

fn s(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap()
}

/// The text with the value of its date header (29 bytes, checked) replaced by "D".
fn undated(v: &[u8]) -> String {
    let text = s(v);
    let at = text.find("\r\ndate: ").expect("a date header") + 8;
    let value = &text[at..at + 29];
    assert!(
        value.ends_with(" GMT") && value.as_bytes()[3] == b',',
        "{value:?}"
    );
    format!("{}D{}", &text[..at], &text[at + 29..])
}

#[test]
fn imf_fixdates() {
    assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        &imf_fixdate(1_795_315_778),
        b"Sun, 22 Nov 2026 02:49:38 GMT"
    );
    assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
}

#[test]
fn own_heads_get_date_and_server_unless_present() {
    let mut out = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n".to_vec();
    own_head_end(&mut out, b"id", true, false);
    assert_eq!(
        undated(&out),
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: D\r\nserver: portico\r\n\
         x-amzn-RequestId: id\r\napigw-requestid: id\r\n\r\n"
    );
    let mut out = b"HTTP/1.1 200 OK\r\nDate: x\r\nSERVER: origin\r\n".to_vec();
    own_head_end(&mut out, b"id", true, false);
    assert_eq!(
        s(&out),
        "HTTP/1.1 200 OK\r\nDate: x\r\nSERVER: origin\r\n\
         x-amzn-RequestId: id\r\napigw-requestid: id\r\n\r\n"
    );
    // Names that merely start like them don't count.
    let mut out = b"HTTP/1.1 200 OK\r\ndates: x\r\nserver-timing: y\r\n".to_vec();
    own_head_end(&mut out, b"id", true, false);
    assert!(undated(&out).contains("server: portico\r\n"));
}

#[test]
fn decimals() {
    for n in [0u64, 7, 10, 99, 100, 4096, 1_000_000_007, u64::MAX] {
        let mut out = Vec::new();
        decimal(&mut out, n);
        assert_eq!(s(&out), n.to_string());
    }
}

#[test]
fn status_lines_and_headers() {
    let mut out = Vec::new();
    status_line(&mut out, 429);
    status_line(&mut out, 599);
    header(&mut out, b"retry-after", b"1");
    header(&mut out, b"x-evil", b"a\r\nSet-Cookie: x\0");
    header(&mut out, b"x-ctl", b"a\x01b\tc\x1b[31md\x7fe\xc3\xa9");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HTTP/1.1 429 Too Many Requests\r\nHTTP/1.1 599 \r\nretry-after: 1\r\nx-evil: a  Set-Cookie: x \r\nx-ctl: a b\tc [31md e\u{e9}\r\n"
    );
    assert_eq!(reason_phrase(404), "Not Found");
    assert_eq!(reason_phrase(504), "Gateway Timeout");
}

#[test]
fn gateway_answer_bytes() {
    let mut out = Vec::new();
    gateway_response(&mut out, 404, "Not Found", b"req-1", true, false, &[]);
    assert_eq!(
        undated(&out),
        "HTTP/1.1 404 Not Found\r\ndate: D\r\nserver: portico\r\ncontent-type: application/json\r\n\
         content-length: 23\r\nx-amzn-RequestId: req-1\r\napigw-requestid: req-1\r\n\r\n\
         {\"message\":\"Not Found\"}"
    );

    let mut out = Vec::new();
    gateway_response(
        &mut out,
        429,
        "Too Many Requests",
        b"r",
        false,
        false,
        &[("retry-after", b"2")],
    );
    let text = s(&out);
    assert!(
        text.contains(
            "\r\nconnection: close\r\nretry-after: 2\r\n\r\n{\"message\":\"Too Many Requests\"}"
        ),
        "{text}"
    );
}

#[test]
fn message_is_json_escaped() {
    let mut out = Vec::new();
    gateway_response(
        &mut out,
        400,
        "bad \"x\" \\ \n\t\u{1} caf\u{e9}",
        b"r",
        true,
        false,
        &[],
    );
    let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        s(&out[body_at..]),
        r#"{"message":"bad \"x\" \\ \n\t\u0001 café"}"#
    );
}

#[test]
fn answers_parse_back() {
    // The content-length we announce must frame exactly the body we write.
    for (msg, keep_alive) in [("Not Found", true), ("q\"uo\u{7}te", false), ("", true)] {
        let mut out = Vec::new();
        gateway_response(&mut out, 502, msg, b"id", keep_alive, false, &[]);
        let mut head = ResponseHead::new();
        assert_eq!(parse_response(&out, Method::Get, 4096, &mut head), Ok(true));
        let ResponseBody::Length(n) = head.body else {
            panic!("expected a length, got {:?}", head.body)
        };
        assert_eq!(head.head_len + n as usize, out.len());
        assert_eq!(head.keep_alive, keep_alive);
        assert_eq!(head.header(&out, "apigw-requestid"), Some(&b"id"[..]));
        assert_eq!(head.header(&out, "X-Amzn-RequestId"), Some(&b"id"[..]));

        let mut head_only = Vec::new();
        gateway_response_head_only(&mut head_only, 502, msg, b"id", keep_alive, false, &[]);
        assert_eq!(undated(&head_only), undated(&out[..head.head_len]));
    }
}

#[test]
fn no_allocation_with_capacity() {
    let mut out = Vec::with_capacity(512);
    let ptr = out.as_ptr();
    gateway_response(
        &mut out,
        403,
        "Forbidden",
        b"0123456789abcdef",
        false,
        false,
        &[("x-a", b"b")],
    );
    assert_eq!((out.as_ptr(), out.capacity()), (ptr, 512));
}

#[test]
fn statuses_with_content() {
    for s in [200, 201, 206, 302, 404, 418, 503, 599] {
        assert!(status_with_content(s), "{s}");
    }
    // No content (RFC 9110): a body behind one would be read as the next response.
    for s in [100, 101, 199, 204, 205, 304, 600, 0] {
        assert!(!status_with_content(s), "{s}");
    }
}
