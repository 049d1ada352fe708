//! Upstream response heads. Same zero-copy shape as requests; the rules follow RFC 9112
//! §6.3 for where the body ends, stricter where a lenient reading would let a backend
//! desynchronise the client connection we forward to: both Content-Length and
//! Transfer-Encoding, conflicting lengths, Transfer-Encoding on HTTP/1.0, a transfer-coding
//! other than `chunked` and bare LFs are errors (the caller answers 502) instead of being
//! resolved by precedence.

use std::mem::MaybeUninit;

use super::framing::Framing;
use super::parse::{
    find_header, has_bare_lf, httparse_detail, skip_empty_lines, span_of, HeaderSpan, Method,
    ParseError, Span, HEADER_SLOTS,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body follows the head (HEAD request, 1xx, 204, 304, or Content-Length: 0).
    None,
    Length(u64),
    Chunked,
    /// Delimited by the upstream closing the connection.
    UntilClose,
}

/// A parsed response head; spans point into the buffer given to [`parse_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub minor_version: u8,
    /// Empty when missing or when it holds obs-text (httparse drops those).
    pub reason: Span,
    pub headers: Vec<HeaderSpan>,
    pub head_len: usize,
    pub body: ResponseBody,
    /// The upstream connection may carry another request after this body.
    pub keep_alive: bool,
    /// The Content-Length the upstream sent, also where the body is `None` (a HEAD
    /// answer or a 304 keeps the length of the representation).
    pub content_length: Option<u64>,
    /// Connection names other fields: see [`super::hop::HopByHop`].
    pub connection_names: bool,
}

impl ResponseHead {
    pub fn new() -> Self {
        Self::with_headers(Vec::with_capacity(32))
    }

    /// A head that parses into `headers` (an empty table, e.g. a spare one).
    pub fn with_headers(mut headers: Vec<HeaderSpan>) -> Self {
        headers.clear();
        ResponseHead {
            status: 0,
            minor_version: 1,
            reason: Span::default(),
            headers,
            head_len: 0,
            body: ResponseBody::None,
            keep_alive: false,
            content_length: None,
            connection_names: false,
        }
    }

    /// First header with this name, compared ASCII case-insensitively.
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        find_header(&self.headers, buf, name)
    }
}

impl Default for ResponseHead {
    fn default() -> Self {
        Self::new()
    }
}

/// Ok(true) complete, Ok(false) need more. 1xx: body None (caller skips 100 and parses again
/// after head_len). `max_head` bounds the head including leading empty lines
/// (→ HeaderTooLarge). Errors mean the upstream sent something we will not forward: 502.
/// We never send CONNECT upstream, so its 2xx tunnel case does not arise.
pub fn parse_response(
    buf: &[u8],
    request_method: Method,
    max_head: usize,
    head: &mut ResponseHead,
) -> Result<bool, ParseError> {
    let Some(skip) = skip_empty_lines(buf)? else {
        return Ok(false);
    };
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); HEADER_SLOTS];
    let mut res = httparse::Response::new(&mut []);
    // Default config = strict: no obs-fold, no space before ':', no invalid lines skipped.
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        &buf[skip..],
        &mut slots,
    );
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => skip + n,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err(ParseError::HeaderTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(false),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeaderTooLarge),
        Err(httparse::Error::Version) => {
            return later_minor_version(buf, skip, request_method, max_head, head)
        }
        Err(e) => return Err(ParseError::BadRequest(httparse_detail(e))),
    };
    if head_len > max_head || head_len > u32::MAX as usize {
        return Err(ParseError::HeaderTooLarge);
    }
    if has_bare_lf(&buf[skip..head_len]) {
        return Err(ParseError::BadRequest("bare LF in response head"));
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(ParseError::BadRequest("incomplete status line"));
    };
    // RFC 9110 §15 defines 100–599; httparse reads any three digits. A 600 was relayed
    // as if it meant something (nginx answers it 502, as Portico answers 099).
    if !(100..=599).contains(&status) {
        return Err(ParseError::BadRequest("status code outside 100-599"));
    }

    let mut framing = Framing::default();
    head.headers.clear();
    for h in res.headers.iter() {
        head.headers.push(HeaderSpan {
            name: span_of(buf, h.name.as_bytes()),
            value: span_of(buf, h.value),
        });
        framing
            .observe(h.name.as_bytes(), h.value)
            .map_err(ParseError::BadRequest)?;
    }
    if framing.transfer_encoding {
        if framing.content_length.is_some() {
            return Err(ParseError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if minor == 0 {
            return Err(ParseError::BadRequest("Transfer-Encoding on HTTP/1.0"));
        }
        // As nginx: no relay of ours keeps another coding. An HTTP/1.0 client, a
        // close-delimited body re-chunked, compression and the cache all dropped it, so
        // clients took gzip-coded bytes for the payload.
        if framing.other_coding {
            return Err(ParseError::BadRequest("transfer-coding other than chunked"));
        }
    }

    let bodiless = request_method == Method::Head
        || (100..200).contains(&status)
        || status == 204
        || status == 304;
    head.body = if bodiless {
        ResponseBody::None
    } else if framing.transfer_encoding {
        ResponseBody::Chunked
    } else {
        match framing.content_length {
            Some(0) => ResponseBody::None,
            Some(n) => ResponseBody::Length(n),
            None => ResponseBody::UntilClose,
        }
    };
    head.status = status;
    head.minor_version = minor;
    head.reason = res
        .reason
        .map_or(Span::default(), |r| span_of(buf, r.as_bytes()));
    head.head_len = head_len;
    head.keep_alive = framing.keep_alive(minor) && head.body != ResponseBody::UntilClose;
    head.content_length = framing.content_length;
    head.connection_names = framing.names_fields;
    Ok(true)
}

/// A status line httparse refused for its version. `HTTP/1.x` for x ≥ 2 is read as
/// HTTP/1.1 (RFC 9110 §2.5: a recipient processes a later minor version as the highest
/// one it implements), as request lines are; any other version stays an error (502).
/// Rare enough to parse a copy with the digit replaced: spans are offsets, the same in
/// both.
fn later_minor_version(
    buf: &[u8],
    skip: usize,
    request_method: Method,
    max_head: usize,
    head: &mut ResponseHead,
) -> Result<bool, ParseError> {
    const SHAPE: &[u8] = b"HTTP/1.# ";
    for (i, &want) in SHAPE.iter().enumerate() {
        let Some(&b) = buf.get(skip + i) else {
            return Ok(false);
        };
        let fits = match want {
            b'#' => (b'2'..=b'9').contains(&b),
            _ => b == want,
        };
        if !fits {
            return Err(ParseError::BadRequest(httparse_detail(
                httparse::Error::Version,
            )));
        }
    }
    let mut copy = buf[..buf.len().min(max_head + 1)].to_vec();
    copy[skip + 7] = b'1';
    parse_response(&copy, request_method, max_head, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_past_599_is_a_bad_upstream_answer() {
        for line in ["HTTP/1.1 600 Six", "HTTP/1.1 999 X", "HTTP/1.2 600 Six"] {
            let raw = format!("{line}\r\nContent-Length: 0\r\n\r\n");
            let got = parse_response(raw.as_bytes(), Method::Get, 1024, &mut ResponseHead::new());
            assert!(
                matches!(got, Err(ParseError::BadRequest(_))),
                "{line}: {got:?}"
            );
        }
        for status in [100, 599] {
            let raw = format!("HTTP/1.1 {status} X\r\n\r\n");
            let mut head = ResponseHead::new();
            let got = parse_response(raw.as_bytes(), Method::Get, 1024, &mut head);
            assert_eq!((got, head.status), (Ok(true), status));
        }
    }
}
