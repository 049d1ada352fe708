//! Conditional requests answered from a stored response, as RFC 9111 §4.3.2 asks of a
//! cache and nginx does: a GET or HEAD whose `If-None-Match` names the stored 200's
//! `ETag` (weak comparison, `*` for any), or, without `If-None-Match`, whose
//! `If-Modified-Since` is the stored `Last-Modified` exactly (nginx's default
//! `if_modified_since exact`), is answered `304 Not Modified` with the stored headers and
//! no body. A browser revalidating its copy was sent the whole body again.

use crate::http1::parse::Method;
use crate::http1::RequestHead;

/// Whether the request (`buf` holds its head's bytes) is answered 304 from a stored
/// response of `status` whose head is `stored` (status line, then header lines).
pub fn not_modified(head: &RequestHead, buf: &[u8], status: u16, stored: &[u8]) -> bool {
    if status != 200 || !matches!(head.method, Method::Get | Method::Head) {
        return false;
    }
    let mut if_none_match = head
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"if-none-match"))
        .peekable();
    if if_none_match.peek().is_some() {
        // If-Modified-Since is ignored beside it (RFC 9110 §13.1.3).
        let Some(etag) = stored_header(stored, b"etag") else {
            return false;
        };
        return if_none_match.any(|h| etag_listed(h.value.get(buf), etag));
    }
    match (
        head.header(buf, "if-modified-since"),
        stored_header(stored, b"last-modified"),
    ) {
        (Some(since), Some(modified)) => since.trim_ascii() == modified,
        _ => false,
    }
}

/// The 304's head: its status line, then [`header_lines`] of the stored head.
pub const STATUS_LINE: &[u8] = b"HTTP/1.1 304 Not Modified\r\n";

/// The stored head's header lines (its status line left out). The stored
/// `content-length` stays, which RFC 9110 §8.6 allows in a 304 (the length a 200 would
/// have had).
pub fn header_lines(stored: &[u8]) -> &[u8] {
    stored
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(&b""[..], |i| &stored[i + 2..])
}

/// The value of the first stored header line named `name`, trimmed.
fn stored_header<'a>(stored: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    stored.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// Whether the If-None-Match value `list` names `etag` by weak comparison: opaque tags
/// equal whether either is `W/` (RFC 9110 §8.8.3.2). Tags are quoted and may hold commas.
fn etag_listed(list: &[u8], etag: &[u8]) -> bool {
    let Some(wanted) = opaque(etag) else {
        return false;
    };
    let mut rest = list.trim_ascii();
    if rest == b"*" {
        return true;
    }
    loop {
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some(end) = tag
            .strip_prefix(b"\"")
            .and_then(|t| t.iter().position(|&b| b == b'"'))
        else {
            return false; // not an entity-tag: nothing after it is read
        };
        if tag[..end + 2] == *wanted {
            return true;
        }
        rest = &tag[end + 2..];
    }
}

/// An entity-tag without its `W/`, quotes kept; None when it is not one.
fn opaque(etag: &[u8]) -> Option<&[u8]> {
    let e = etag.strip_prefix(b"W/").unwrap_or(etag);
    (e.len() >= 2 && e[0] == b'"' && e[e.len() - 1] == b'"').then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\nLast-Modified: Wed, 01 Jan 2025 00:00:00 GMT\r\ncontent-length: 5\r\n";

    fn check(method: &str, headers: &str, status: u16, stored: &[u8]) -> bool {
        let raw = format!("{method} /x HTTP/1.1\r\nHost: a\r\n{headers}\r\n");
        let mut head = RequestHead::new();
        assert!(
            crate::http1::parse_request(raw.as_bytes(), &Default::default(), &mut head).unwrap()
        );
        not_modified(&head, raw.as_bytes(), status, stored)
    }

    #[test]
    fn if_none_match_by_weak_comparison() {
        for inm in [
            "\"v1\"",
            "W/\"v1\"",
            "*",
            "\"a,b\", W/\"v1\"",
            " \"x\" ,\"v1\"",
        ] {
            let h = format!("If-None-Match: {inm}\r\n");
            assert!(check("GET", &h, 200, STORED), "{inm}");
            assert!(check("HEAD", &h, 200, STORED), "{inm}");
        }
        assert!(check(
            "GET",
            "If-None-Match: \"x\"\r\nIf-None-Match: \"v1\"\r\n",
            200,
            STORED
        ));
        for inm in ["\"v2\"", "\"v1", "v1", "\"V1\"", "\"x\", junk, \"v1\""] {
            let h = format!("If-None-Match: {inm}\r\n");
            assert!(!check("GET", &h, 200, STORED), "{inm}");
        }
        let weak = b"HTTP/1.1 200 OK\r\netag: W/\"v1\"\r\n";
        assert!(check("GET", "If-None-Match: \"v1\"\r\n", 200, weak));
        let none = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n";
        assert!(!check("GET", "If-None-Match: \"v1\"\r\n", 200, none));
        // Only a 200 to a GET or HEAD.
        assert!(!check("GET", "If-None-Match: \"v1\"\r\n", 404, STORED));
        assert!(!check("POST", "If-None-Match: \"v1\"\r\n", 200, STORED));
    }

    #[test]
    fn if_modified_since_exactly_and_never_beside_if_none_match() {
        let ims = "If-Modified-Since: Wed, 01 Jan 2025 00:00:00 GMT\r\n";
        assert!(check("GET", ims, 200, STORED));
        assert!(!check(
            "GET",
            "If-Modified-Since: Thu, 02 Jan 2025 00:00:00 GMT\r\n",
            200,
            STORED
        ));
        let both = format!("If-None-Match: \"v2\"\r\n{ims}");
        assert!(!check("GET", &both, 200, STORED));
        assert!(!check("GET", "", 200, STORED));
        assert!(!check("GET", "If-Match: \"v1\"\r\n", 200, STORED));
    }

    #[test]
    fn the_304_head_keeps_the_stored_lines() {
        let mut out = STATUS_LINE.to_vec();
        out.extend_from_slice(header_lines(STORED));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\nContent-Type: text/plain\r\n"));
        assert!(text.ends_with("content-length: 5\r\n"));
    }
}
