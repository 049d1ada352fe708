//! The fields that decide where a message ends and whether its connection stays open
//! (Content-Length, Transfer-Encoding, Connection), read the same way for requests
//! ([`super::parse`]) and responses ([`super::response`]).

use super::parse::{is_token, trim_ows};

/// The fields that decide where a message ends and whether the connection stays open,
/// shared by requests and responses. Fields may repeat; their list elements accumulate.
#[derive(Default, Debug)]
pub(crate) struct Framing {
    pub content_length: Option<u64>,
    pub transfer_encoding: bool,
    /// The last transfer-coding seen so far is `chunked`.
    pub chunked_last: bool,
    /// Some transfer-coding is not `chunked`.
    pub other_coding: bool,
    chunked_seen: bool,
    pub close: bool,
    pub keep_alive_token: bool,
    pub upgrade: bool,
    /// Some Connection token names a field other than Keep-Alive or Upgrade (both
    /// hop-by-hop anyway), so forwarding must look the names up.
    pub names_fields: bool,
}

impl Framing {
    /// Ok(true) when `name` is Content-Length, Transfer-Encoding or Connection.
    pub(crate) fn observe(&mut self, name: &[u8], value: &[u8]) -> Result<bool, &'static str> {
        match name.len() {
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive_token = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        self.upgrade = true;
                    } else if !token.is_empty() {
                        self.names_fields = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // "5, 5" and repeated equal fields are one length (RFC 9110 §8.6); anything
                // else would let two parsers disagree on where the body ends.
                for item in value.split(|&b| b == b',').map(trim_ows) {
                    let n = parse_decimal(item)?;
                    if self.content_length.is_some_and(|prev| prev != n) {
                        return Err("conflicting Content-Length");
                    }
                    self.content_length = Some(n);
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.transfer_encoding = true;
                for coding in value.split(|&b| b == b',').map(trim_ows) {
                    if !is_token(coding) {
                        return Err("invalid transfer-coding");
                    }
                    self.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                    self.other_coding |= !self.chunked_last;
                    if self.chunked_last {
                        if self.chunked_seen {
                            return Err("chunked applied twice");
                        }
                        self.chunked_seen = true;
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked to keep alive.
    pub(crate) fn keep_alive(&self, minor_version: u8) -> bool {
        !self.close && (minor_version == 1 || self.keep_alive_token)
    }
}

/// A length is at most 2^63 - 1, as nginx's (a signed file offset): a peer that holds
/// lengths in a signed 64-bit number (curl, nginx) cannot read a larger one as we do, so
/// it frames the body otherwise (a backend's `18446744073709551615`, relayed, had curl
/// take the close after a timeout for the end of a whole body). Refused both ways: a 400
/// for a request, a 502 for a response.
fn parse_decimal(v: &[u8]) -> Result<u64, &'static str> {
    if v.is_empty() {
        return Err("empty Content-Length");
    }
    v.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err("non-digit in Content-Length");
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .filter(|&n| n <= MAX_LENGTH)
            .ok_or("Content-Length overflows")
    })
}

/// The largest Content-Length or chunk size (and sum of chunk sizes) read: i64::MAX.
pub(crate) const MAX_LENGTH: u64 = i64::MAX as u64;
