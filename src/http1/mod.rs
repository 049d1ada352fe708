//! HTTP/1.1 codec. parse/response/body/encode do no IO: pure functions over byte slices,
//! allocation-free once the caller's Vecs are warm, tested by feeding every message split
//! at every byte boundary (see tests/). `server::conn` drives them over a monoio stream.
//!
//! Request lifecycle as the codec sees it: [`parse_request`] until `Ok(true)`; the body is
//! `head_len..` and is framed by [`body::LengthDecoder`] or [`body::ChunkedDecoder`] per
//! [`BodyKind`]; the next request starts where the body decoder reports `done`.

#![forbid(unsafe_code)]

pub mod body;
pub mod encode;
mod framing;
pub mod hop;
pub mod media_type;
pub mod parse;
pub mod response;
mod target;

pub use body::{BodyError, ChunkedDecoder, LengthDecoder, Relay, Scan, LAST_CHUNK};
pub use parse::{
    parse_request, BodyKind, HeaderSpan, Method, ParseError, ParseLimits, RequestHead, Span,
};
pub use response::{parse_response, ResponseBody, ResponseHead};
pub use target::{
    decode_unreserved, has_dot_segment, has_malformed_escape, has_nul_escape, percent_decode,
    upper_case_escapes,
};

/// Whether two header names are one name to a CGI, WSGI, PHP or Rack backend: any case,
/// and `_` read as `-` (`X_Forwarded_For` and `X-Forwarded-For` are both
/// `HTTP_X_FORWARDED_FOR`). Where a gateway writes, drops, maps or checks a header, a
/// client's other spelling must be treated alike, or the backend may read the unchecked one.
pub fn same_cgi_name(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y))
}

#[cfg(test)]
mod tests;
