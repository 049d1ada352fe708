//! The tee that fills the cache: while the relay streams a backend response to the client
//! as usual, a [`Capture`] copies what passes into the form a hit is written from. It
//! never holds the client back: it copies bytes the relay already has, and gives up (and
//! frees its buffer) as soon as the response turns out not to be storable.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::rules::{forbids_storing, StatusSet, MAX_ITEM_BYTES};
use crate::config::model::Coding;
use crate::http1::encode;
use crate::http1::hop::HopByHop;
use crate::http1::parse::HEADER_SLOTS;
use crate::http1::response::{ResponseBody, ResponseHead};
use crate::pipeline::compress::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No response head yet.
    Waiting,
    Copying,
    Complete,
    Abandoned,
}

/// A response being captured for the cache (only ever for the one request per key that
/// went to the backend).
pub struct Capture {
    statuses: StatusSet,
    codings: Codings,
    /// [`super::rules::RouteCacheRt::vary_ok`].
    vary_ok: Arc<[Box<str>]>,
    state: State,
    status: u16,
    head: Vec<u8>,
    body: BytesMut,
    initial_age: u64,
    /// The requests waiting for this fetch: let go of as soon as it can't be stored, not
    /// when the response has gone out whole (a slow reader, or an answer of 10 MB, held
    /// every other request of the key that long).
    waiting: Option<super::Waiting>,
}

/// What a complete capture stores.
pub struct Captured {
    pub status: u16,
    pub head: Bytes,
    pub body: Bytes,
    pub initial_age: u64,
}

/// Headers a stored head leaves out besides hop-by-hop ones: the framing (a hit always
/// carries a content-length of its own), the per-request ids a hit gets anew, and `age`
/// (a hit computes it).
const LEFT_OUT: [&[u8]; 3] = [b"transfer-encoding", b"content-length", b"age"];

/// Header lines a hit adds to the stored ones before the head is parsed again
/// (`serve::edited_head`, on a route with CORS or response mappings): `age`.
pub(super) const HIT_ADDS: usize = 1;

/// Which content codings of the backend's a stored response may carry: what every
/// request that shares its key can decode. A backend that compresses by Accept-Encoding
/// answered a client that accepts gzip with a gzip body; stored under a key that leaves
/// Accept-Encoding out, it went to every client, those that can't decode it too (nginx
/// keeps such answers apart by their `Vary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codings {
    /// The key lists `header.accept-encoding`: each client's own list has its entries.
    Any,
    /// The API compresses and this request accepts this coding: the key holds it, so
    /// every request of the entry accepts it.
    Only(Coding),
    /// Only identity (no Content-Encoding) is safe for every request of the entry.
    Identity,
}

impl Codings {
    fn allow(self, content_encoding: &[u8]) -> bool {
        let v = content_encoding.trim_ascii();
        v.is_empty()
            || v.eq_ignore_ascii_case(b"identity")
            || match self {
                Codings::Any => true,
                Codings::Only(c) => v.eq_ignore_ascii_case(c.token().as_bytes()),
                Codings::Identity => false,
            }
    }
}

impl Capture {
    pub fn new(statuses: StatusSet, codings: Codings, vary_ok: Arc<[Box<str>]>) -> Capture {
        Capture {
            statuses,
            codings,
            vary_ok,
            state: State::Waiting,
            status: 0,
            head: Vec::new(),
            body: BytesMut::new(),
            initial_age: 0,
            waiting: None,
        }
    }

    /// Looks at the backend's response head (`buf` holds the bytes its spans point
    /// into) and either starts copying or gives up for good.
    /// The stored head is the one this response is sent with: `compress` (decided for
    /// it) drops and adds headers as the relay does, and the body passed to [`body`]
    /// is then the compressed one.
    ///
    /// [`body`]: Capture::body
    pub fn start(&mut self, rhead: &ResponseHead, buf: &[u8], compress: &Plan) {
        if self.state != State::Waiting {
            return;
        }
        self.state = State::Abandoned;
        self.start_copy(rhead, buf, compress);
        if self.state == State::Abandoned {
            self.release_waiting();
        }
    }

    /// Those who wait for this fetch: released when it gives up.
    pub(super) fn set_waiting(&mut self, waiting: super::Waiting) {
        self.waiting = Some(waiting);
    }

    fn release_waiting(&mut self) {
        if let Some(w) = self.waiting.take() {
            w.release();
        }
    }

    /// `start` once the capture is `Abandoned` unless this sets it `Copying`.
    fn start_copy(&mut self, rhead: &ResponseHead, buf: &[u8], compress: &Plan) {
        // Sent uncompressed for want of a compression slot: not this encoding's entry.
        if compress.shed {
            return;
        }
        let expected = match rhead.body {
            ResponseBody::None => 0,
            ResponseBody::Length(n) if n <= MAX_ITEM_BYTES as u64 => n as usize,
            ResponseBody::Chunked => 0,
            // Too large, or close-delimited: a cut-short body would look complete.
            ResponseBody::Length(_) | ResponseBody::UntilClose => return,
        };
        // 206 and 304 answer the Range or conditional headers of one request, which the
        // key leaves out (validation refuses them in `statuses` too).
        if !self.statuses.contains(rhead.status) || matches!(rhead.status, 206 | 304) {
            return;
        }
        let hop = HopByHop::new(&rhead.headers, buf, rhead.connection_names);
        let mut head = Vec::with_capacity(rhead.head_len + 32);
        head.extend_from_slice(b"HTTP/1.1 ");
        encode::decimal(&mut head, u64::from(rhead.status));
        head.push(b' ');
        head.extend_from_slice(rhead.reason.get(buf));
        head.extend_from_slice(b"\r\n");
        for h in &rhead.headers {
            let (name, value) = (h.name.get(buf), h.value.get(buf));
            if forbids_storing(name, value)
                || (name.eq_ignore_ascii_case(b"content-encoding") && !self.codings.allow(value))
                || (name.eq_ignore_ascii_case(b"vary") && !self.key_covers(value))
            {
                return;
            }
            if name.eq_ignore_ascii_case(b"age") {
                self.initial_age = delta_seconds(value);
            }
            if LEFT_OUT.iter().any(|n| n.eq_ignore_ascii_case(name))
                || encode::is_request_id(name)
                || hop.drops(name)
                || compress.drops(name)
            {
                continue;
            }
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        compress.write_headers(rhead.header(buf, "etag"), &mut head);
        // A hit may parse this head again with the `content-length` `complete` adds and
        // the lines it adds itself: beyond the parser's slots that parse fails. A backend
        // answer of 254 fields and a `transfer-encoding` was relayed (256 is the limit)
        // and then every hit of it went out as `HTTP/1.1 0` with no head at all.
        let fields = head.iter().filter(|&&b| b == b'\n').count() - 1;
        if fields + 1 + HIT_ADDS > HEADER_SLOTS {
            return;
        }
        self.head = head;
        self.body = BytesMut::with_capacity(expected);
        self.status = rhead.status;
        self.state = State::Copying;
    }

    /// Whether every request header a `Vary` value names is one the entry's requests
    /// agree on. An answer that varies by one the key leaves out (`Origin` from a
    /// backend that does its own CORS, `Accept-Language`, `Cookie`) was stored and served
    /// to requests it was not made for: one request with `Origin: https://evil.example`
    /// filled the entry every browser on the real origin then got (nginx keeps such
    /// answers apart; here they are not stored).
    fn key_covers(&self, vary: &[u8]) -> bool {
        vary.split(|&b| b == b',').all(|name| {
            let name = name.trim_ascii();
            name.is_empty()
                || name.eq_ignore_ascii_case(b"accept-encoding")
                || self
                    .vary_ok
                    .iter()
                    .any(|ok| name.eq_ignore_ascii_case(ok.as_bytes()))
        })
    }

    /// Body payload as it passes (de-chunked).
    #[inline]
    pub fn body(&mut self, bytes: &[u8]) {
        if self.state != State::Copying {
            return;
        }
        if self.body.len() + bytes.len() > MAX_ITEM_BYTES {
            self.abandon();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    /// The whole body went through.
    pub fn complete(&mut self) {
        if self.state == State::Copying {
            if !matches!(self.status, 204 | 304) {
                self.head.extend_from_slice(b"content-length: ");
                encode::decimal(&mut self.head, self.body.len() as u64);
                self.head.extend_from_slice(b"\r\n");
            }
            self.state = State::Complete;
        }
    }

    pub fn abandon(&mut self) {
        self.state = State::Abandoned;
        self.head = Vec::new();
        self.body = BytesMut::new();
        self.release_waiting();
    }

    /// The stored form, if the whole response was captured.
    pub fn finish(self) -> Option<Captured> {
        (self.state == State::Complete).then(|| Captured {
            status: self.status,
            head: Bytes::from(self.head),
            body: self.body.freeze(),
            initial_age: self.initial_age,
        })
    }
}

/// An `age` value (RFC 9111 §1.2.2 delta-seconds): one that does not fit is the greatest
/// value that does, not 0; one that is not a number is 0, as if absent.
fn delta_seconds(value: &[u8]) -> u64 {
    let v = value.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    v.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::parse::Method;
    use crate::http1::parse_response;

    fn captured(raw: &[u8], body: &[&[u8]]) -> Option<Captured> {
        let mut rhead = ResponseHead::new();
        assert!(parse_response(raw, Method::Get, 65536, &mut rhead).unwrap());
        let mut cap = Capture::new(
            StatusSet::of(&[200, 204]),
            Codings::Identity,
            Vec::new().into(),
        );
        cap.start(&rhead, raw, &Plan::NONE);
        for b in body {
            cap.body(b);
        }
        cap.complete();
        cap.finish()
    }

    #[test]
    fn stores_a_clean_head_with_its_own_length() {
        let c = captured(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\nAge: 7\r\nx-amzn-RequestId: old\r\nETag: \"v1\"\r\n\r\n",
            &[b"hel", b"lo"],
        )
        .expect("stored");
        assert_eq!(c.status, 200);
        assert_eq!(c.initial_age, 7);
        assert_eq!(
            &c.head[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\ncontent-length: 5\r\n"
        );
        assert_eq!(&c.body[..], b"hello");
        let empty = captured(b"HTTP/1.1 204 No Content\r\n\r\n", &[]).expect("stored");
        assert_eq!(&empty.head[..], b"HTTP/1.1 204 No Content\r\n");
    }

    #[test]
    fn a_head_a_hit_could_not_parse_again_is_not_stored() {
        let raw = |fields: usize| {
            let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..fields {
                raw.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
            }
            raw.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            raw
        };
        // The most a hit can parse: these, content-length and age.
        let most = HEADER_SLOTS - 1 - HIT_ADDS;
        let c = captured(&raw(most), &[b"ok"]).expect("stored");
        let mut hit = c.head.to_vec();
        hit.extend_from_slice(b"age: 0\r\n\r\n");
        let mut rhead = ResponseHead::new();
        assert_eq!(
            parse_response(&hit, Method::Get, usize::MAX, &mut rhead),
            Ok(true)
        );
        assert!(captured(&raw(most + 1), &[b"ok"]).is_none());
    }

    #[test]
    fn the_backends_age_as_delta_seconds() {
        for (value, age) in [
            (&b"7"[..], 7),
            (b" 12 ", 12),
            (b"18446744073709551615", u64::MAX),
            (b"99999999999999999999999", u64::MAX),
            (b"", 0),
            (b"-1", 0),
            (b"1.5", 0),
            (b"0x10", 0),
        ] {
            assert_eq!(
                delta_seconds(value),
                age,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn what_is_never_stored() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncache-control: private, max-age=60\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1048577\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n", // close-delimited
        ] {
            assert!(
                captured(raw, &[]).is_none(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let big = vec![0u8; 600 * 1024];
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(
            captured(raw, &[&big, &big]).is_none(),
            "over 1 MiB once de-chunked"
        );
        assert!(captured(raw, &[&big]).is_some());
        let mut rhead = ResponseHead::new();
        parse_response(raw, Method::Get, 65536, &mut rhead).unwrap();
        let mut cap = Capture::new(StatusSet::of(&[200]), Codings::Identity, Vec::new().into());
        cap.start(&rhead, raw, &Plan::NONE);
        cap.body(b"cut short");
        assert!(cap.finish().is_none(), "an incomplete body");
    }
}
