//! Codec tests. Every message is fed whole and split at every byte boundary: a prefix must
//! ask for more (or fail the same way), and the whole must give the same answer however it
//! arrived.

mod chunked;
mod encode;
mod request;
mod response;

use super::{parse_request, ParseError, ParseLimits, RequestHead};

/// Parses `msg` whole, then every prefix into a head that held another request before, and
/// checks they agree. Returns the whole message's result.
pub(super) fn parse_split(msg: &[u8], limits: &ParseLimits) -> Result<RequestHead, ParseError> {
    let mut head = RequestHead::new();
    let whole = parse_request(msg, limits, &mut head).map(|complete| {
        assert!(
            complete,
            "whole message incomplete: {:?}",
            String::from_utf8_lossy(msg)
        );
        head.clone()
    });
    let mut reused = RequestHead::new();
    let warm = b"POST /warm?x=1 HTTP/1.1\r\nHost: w\r\nA: 1\r\nB: 2\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        parse_request(warm, &ParseLimits::default(), &mut reused),
        Ok(true)
    );
    for k in 0..=msg.len() {
        let got = parse_request(&msg[..k], limits, &mut reused);
        match &whole {
            Ok(expected) if k >= expected.head_len => {
                assert_eq!(got, Ok(true), "prefix {k}");
                assert_eq!(&reused, expected, "prefix {k}");
            }
            Ok(_) => assert_eq!(got, Ok(false), "prefix {k}"),
            Err(e) => assert!(
                got == Ok(false) || got == Err(*e),
                "prefix {k}: {got:?}, whole: {e:?}"
            ),
        }
    }
    whole
}

pub(super) fn parse_ok(msg: &[u8]) -> RequestHead {
    parse_split(msg, &ParseLimits::default()).expect("valid request")
}

pub(super) fn parse_err(msg: &[u8]) -> ParseError {
    parse_split(msg, &ParseLimits::default()).expect_err("invalid request")
}

pub(super) fn text(buf: &[u8], span: super::Span) -> &str {
    std::str::from_utf8(span.get(buf)).unwrap()
}
