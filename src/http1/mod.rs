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
pub mod hop;
pub mod parse;
pub mod response;
mod target;

pub use body::{BodyError, ChunkedDecoder, LengthDecoder, Scan};
pub use parse::{
    parse_request, BodyKind, HeaderSpan, Method, ParseError, ParseLimits, RequestHead, Span,
};
pub use response::{parse_response, ResponseBody, ResponseHead};
pub use target::{decode_unreserved, has_dot_segment};

#[cfg(test)]
mod tests;
