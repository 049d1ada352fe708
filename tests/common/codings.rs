//! Decoders for the content codings Portico's compression writes, so tests compare a
//! compressed body with what the origin sent.

use std::io::Read;

/// A gzip body as text.
pub fn gunzip(b: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut out)
        .expect("a gzip body");
    out
}

/// A brotli body as text.
pub fn unbrotli(b: &[u8]) -> String {
    let mut out = String::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_string(&mut out)
        .expect("a brotli body");
    out
}
