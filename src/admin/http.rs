//! The admin listener's HTTP/1.1: one request per connection, parsed from what the
//! connection has sent with the gateway's own head parser, a Content-Length body, an
//! answer, close. Admin traffic is a handful
//! of requests, so this trades the hot path's zero-copy care for owned, simple values.

use std::io::Write;

use serde_json::Value;

use crate::http1::{parse_request, BodyKind, Method, ParseLimits, RequestHead};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Percent-encoded, as sent, without the query.
    pub path: String,
    /// Decoded pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case names.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter given more than once. Every admin route takes each
    /// parameter once, so the router refuses a repeat (400) rather than let a handler act
    /// on one of `?stage=prod&stage=beta` unsaid.
    pub fn repeated_query(&self) -> Option<&str> {
        self.query
            .iter()
            .enumerate()
            .find(|(i, (n, _))| self.query[..*i].iter().any(|(m, _)| m == n))
            .map(|(_, (n, _))| n.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(body).expect("JSON values serialize"),
        }
    }

    /// JSON already written.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    /// `{"message": ...}`, the shape of every gateway answer.
    pub fn message(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "message": message }))
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    /// The response as bytes on the wire (`connection: close`: one request per connection).
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        crate::http1::encode::status_line(&mut out, self.status);
        // As every data-plane answer: a client or monitor reading `date` (clock skew,
        // caching) finds it here too.
        crate::http1::encode::date(&mut out);
        out.extend_from_slice(b"server: portico\r\n");
        let no_body = self.status == 204 || self.status == 304;
        if !no_body {
            // Writing to a Vec cannot fail.
            let _ = write!(
                out,
                "content-type: {}\r\ncontent-length: {}\r\n",
                self.content_type,
                self.body.len()
            );
        }
        for (n, v) in &self.headers {
            let _ = write!(out, "{n}: {v}\r\n");
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        if !head_only && !no_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// A request that cannot be served: the status and message to answer with.
pub type Refused = (u16, &'static str);

/// Most a connection may send for one request (head and body), so the reader never
/// buffers more than the parser would accept.
pub const MAX_REQUEST_BYTES: usize = MAX_HEAD + MAX_BODY as usize;

/// The request in what a connection has sent so far: `Ok(None)` until all of it (head
/// and Content-Length body) is there.
pub fn parse(buf: &[u8]) -> Result<Option<Request>, Refused> {
    Ok(match parse_head(buf)? {
        Some((head, Some(body))) => Some(request(buf, &head, body)),
        _ => None,
    })
}

/// The request without its body when its head is whole and its body has not all
/// arrived, and whether it asks `Expect: 100-continue` (HTTP/1.1 only: the client waits
/// for a 100, curl a second, before sending the body).
pub fn awaiting_body(buf: &[u8]) -> Option<(Request, bool)> {
    match parse_head(buf) {
        Ok(Some((head, None))) => Some((request(buf, &head, &[]), head.expect_continue)),
        _ => None,
    }
}

/// The request without its body once its head is whole, whatever the body's framing (a
/// chunked one too, which `parse` refuses with 411): a refusal on the head alone (401)
/// comes before one on the body's framing.
pub fn head_alone(buf: &[u8]) -> Option<Request> {
    let mut head = RequestHead::new();
    match parse_request(buf, &LIMITS, &mut head) {
        Ok(true) => Some(request(buf, &head, &[])),
        _ => None,
    }
}

/// What the admin listener accepts of a request's head.
const LIMITS: ParseLimits = ParseLimits {
    max_header_bytes: MAX_HEAD,
    max_request_line: 8192,
    max_body_bytes: MAX_BODY,
    max_headers: 64,
};

/// A whole head, with its body once all of it is there.
type Head<'a> = (RequestHead, Option<&'a [u8]>);

/// The head once whole, with the body once all of it is there.
fn parse_head(buf: &[u8]) -> Result<Option<Head<'_>>, Refused> {
    let mut head = RequestHead::new();
    match parse_request(buf, &LIMITS, &mut head) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => return Err((e.status(), e.message())),
    }
    let len = match head.body {
        BodyKind::Empty => 0,
        BodyKind::Length(n) => n as usize,
        BodyKind::Chunked => return Err((411, "Length Required")),
    };
    let body = buf.get(head.head_len..head.head_len + len);
    Ok(Some((head, body)))
}

fn request(buf: &[u8], head: &RequestHead, body: &[u8]) -> Request {
    let headers = head
        .headers
        .iter()
        .map(|h| {
            (
                String::from_utf8_lossy(h.name.get(buf)).to_ascii_lowercase(),
                h.value.get(buf).to_vec(),
            )
        })
        .collect();
    let query = head
        .query
        .map(|q| parse_query(q.get(buf)))
        .unwrap_or_default();
    Request {
        method: head.method,
        path: String::from_utf8_lossy(head.path.get(buf)).into_owned(),
        query,
        headers,
        body: body.to_vec(),
    }
}

pub fn parse_query(q: &[u8]) -> Vec<(String, String)> {
    q.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Decodes %XX (and `+` as space in query strings); invalid escapes stay as they are.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(s.len());
    crate::http1::percent_decode(s, plus_is_space, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_percent_decoding() {
        assert_eq!(
            parse_query(b"plan=gold&key=a%20b&from=2024-01-01&x&y=1+2"),
            vec![
                ("plan".into(), "gold".into()),
                ("key".into(), "a b".into()),
                ("from".into(), "2024-01-01".into()),
                ("x".into(), "".into()),
                ("y".into(), "1 2".into()),
            ]
        );
        assert_eq!(percent_decode(b"a%2Fb%", false), "a/b%");
        assert_eq!(percent_decode(b"%zz%4", false), "%zz%4");
        assert_eq!(percent_decode(b"a+b", false), "a+b");
    }

    #[test]
    fn a_request_is_whole_only_with_its_last_byte() {
        let wire = b"POST /api-keys?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
        for cut in 0..wire.len() {
            assert!(parse(&wire[..cut]).unwrap().is_none(), "complete at {cut}");
        }
        let req = parse(wire).unwrap().unwrap();
        assert_eq!((req.method, req.path.as_str()), (Method::Post, "/api-keys"));
        assert_eq!(req.query("x"), Some("1"));
        assert_eq!(req.repeated_query(), None);
        assert_eq!(req.header("host"), Some(&b"a"[..]));
        assert_eq!(req.body, b"body");
        let twice = parse(b"POST /cache/flush?s=a&t=1&s=b HTTP/1.1\r\nHost: a\r\n\r\n");
        let twice = twice.unwrap().unwrap();
        assert_eq!(twice.query("s"), Some("a"));
        assert_eq!(twice.repeated_query(), Some("s"));
        let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(chunked).unwrap_err().0, 411);
    }
}
