//! Response compression (`server.compression`, `apis.NAME.compression`): gzip and brotli,
//! as nginx's gzip filter and API Gateway's minimumCompressionSize.
//!
//! Two halves:
//! - **Request side** — [`CompressRt::negotiate`] reads `Accept-Encoding` once per request
//!   (RFC 9110 §12.5.3: q-values, `*`, `identity`, `q=0` refusals) while the request head
//!   is still in the connection buffer; the result rides in [`Plan::accepted`] and is
//!   also part of a response-cache key (`cache/serve.rs`), so each encoding is its own
//!   cache entry.
//! - **Response side** — [`Plan::decide`] looks at the response head: never for
//!   1xx/204/205/206/304, a `Content-Encoding` already there, `Cache-Control: no-transform`,
//!   a `Content-Range`, a digest of the body (`Content-Digest`, ...), a type not listed, or a `Content-Length` below `min_size`. An
//!   eligible response gets `Vary: Accept-Encoding` whether or not this client accepted
//!   a coding (nginx's gzip_vary); a compressed one loses its `Content-Length`, gets
//!   `Content-Encoding`, and a strong `ETag` becomes weak (as nginx does).
//!   A HEAD is decided as its GET would be, from the same head (nothing in the decision
//!   reads the body), so it gets the GET's headers and no body (RFC 9110 §9.3.2; nginx
//!   answers a HEAD so): a proxied one with neither Content-Length nor chunked framing.
//!
//! Bodies held whole (mock, Lambda) are compressed in one go ([`compress_whole`]) and
//! keep a `Content-Length`. Proxied bodies stream through [`relay`]: the upstream body
//! (content-length, chunked or close-delimited) is fed to the encoder as it arrives and
//! re-framed as chunked, or close-delimited for HTTP/1.0 clients. After each upstream
//! read the encoder is sync-flushed, so a streamed body is never held back.
//!
//! Cost: nothing at all on APIs without compression (one `Option` check). gzip's deflate
//! state (a few hundred KiB) is pooled per worker thread and reset between responses;
//! brotli's state is made per response. A worker compresses at most `max_streams`
//! proxied responses at once ([`StreamSlot`]); past that a response goes uncompressed.

use std::time::Duration;

use bytes::Buf;

use crate::config::model::{self, Coding};
use crate::http1::body::ChunkedDecoder;
use crate::http1::parse::Method;
use crate::http1::response::ResponseBody;
use crate::integration::relay;
use crate::runtime::workers::Generation;
use crate::server::conn::Conn;
use crate::tls::UpstreamIo;

mod encoder;
pub use encoder::{compress_whole, Encoder};

/// A compression setting at run time.
#[derive(Debug)]
pub struct CompressRt {
    pub min_size: u64,
    /// `text/*` is kept as the prefix "text/"; others as the whole type.
    types: Box<[(Box<[u8]>, bool)]>,
    algorithms: Box<[Coding]>,
    /// Streams a worker compresses at once ([`StreamSlot`]); past it, identity.
    max_streams: u64,
}

impl CompressRt {
    pub fn compile(c: &model::Compression) -> CompressRt {
        CompressRt {
            min_size: c.min_size,
            types: c
                .types
                .iter()
                .map(|t| match t.strip_suffix('*') {
                    Some(prefix) => (prefix.as_bytes().into(), true),
                    None => (t.as_bytes().into(), false),
                })
                .collect(),
            algorithms: c.algorithms.clone().into(),
            max_streams: c.max_streams,
        }
    }

    /// The coding to use for a client that sent `accept` (None: identity). The highest
    /// q-value wins; at equal q the configured order; `identity` preferred above every
    /// coding wins too. Without the header, identity (as nginx).
    pub fn negotiate(&self, accept: Option<&[u8]>) -> Option<Coding> {
        self.negotiate_lines(accept.into_iter())
    }

    /// [`negotiate`](Self::negotiate) for every `Accept-Encoding` line of a request: lines
    /// repeated are one comma-joined list (RFC 9110 §5.3).
    pub fn negotiate_lines<'a>(&self, lines: impl Iterator<Item = &'a [u8]>) -> Option<Coding> {
        let mut lines = lines.peekable();
        lines.peek()?;
        // Explicit q per algorithm (gzip, br), for `*`, and for identity; in thousandths.
        let (mut gzip, mut br, mut star, mut identity) = (None, None, None, None);
        for item in lines.flat_map(|l| l.split(|&b| b == b',')) {
            let mut parts = item.split(|&b| b == b';');
            let name = parts.next().unwrap_or_default().trim_ascii();
            let mut q = 1000;
            for param in parts {
                let param = param.trim_ascii();
                if param.len() >= 2 && param[0].eq_ignore_ascii_case(&b'q') && param[1] == b'=' {
                    q = qvalue(param[2..].trim_ascii()).unwrap_or(0);
                }
            }
            let slot = if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip")
            {
                &mut gzip
            } else if name.eq_ignore_ascii_case(b"br") {
                &mut br
            } else if name == b"*" {
                &mut star
            } else if name.eq_ignore_ascii_case(b"identity") {
                &mut identity
            } else {
                continue;
            };
            *slot = Some(slot.map_or(q, |old: u16| old.max(q)));
        }
        let mut best: Option<(Coding, u16)> = None;
        for &a in self.algorithms.iter() {
            let explicit = match a {
                Coding::Gzip => gzip,
                Coding::Br => br,
            };
            let q = explicit.or(star).unwrap_or(0);
            if q > 0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((a, q));
            }
        }
        let (coding, q) = best?;
        match identity {
            Some(iq) if iq > q => None,
            _ => Some(coding),
        }
    }

    fn type_listed(&self, content_type: &[u8]) -> bool {
        let media = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        self.types.iter().any(|(t, prefix)| {
            if *prefix {
                media.len() > t.len() && media[..t.len()].eq_ignore_ascii_case(t)
            } else {
                media.eq_ignore_ascii_case(t)
            }
        })
    }
}

/// "1", "0.5", "0.001" → thousandths; None when malformed.
fn qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut q = match int[0] {
        b'0' => 0u16,
        b'1' => 1000,
        _ => return None,
    };
    for (i, &d) in frac.iter().enumerate() {
        q += u16::from(d - b'0') * [100, 10, 1][i];
    }
    (q <= 1000).then_some(q)
}

/// What compression does to the current request's response. `Copy` and kept in the
/// connection (`Conn::compress`), reset for every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// What the client's Accept-Encoding allows (None also when the API compresses nothing).
    pub accepted: Option<Coding>,
    /// The response is being compressed with this.
    pub coding: Option<Coding>,
    /// Add `Vary: Accept-Encoding` (the response was eligible and has no such Vary yet).
    pub vary: bool,
    /// The response's ETag lines are left out and its first written again, weakened
    /// ([`Plan::write_headers`]).
    pub rewrite_etag: bool,
    /// It would have been compressed, but its worker already compresses `max_streams`
    /// streams: it goes as it is (and is not stored in the response cache, whose entry
    /// for this encoding would then hold the identity body).
    pub shed: bool,
}

impl Plan {
    pub const NONE: Plan = Plan {
        accepted: None,
        coding: None,
        vary: false,
        rewrite_etag: false,
        shed: false,
    };

    /// The request side, once the route is known: the negotiated coding (a HEAD's too:
    /// it gets the headers of the GET's answer, and reads the GET's cache entry for it).
    pub fn for_request(gen: &Generation, c: &Conn, api: u32) -> Plan {
        let Some(rt) = gen.snap.apis[api as usize].compression.as_deref() else {
            return Plan::NONE;
        };
        Plan {
            accepted: rt.negotiate_lines(
                c.head
                    .headers
                    .iter()
                    .filter(|h| h.name.get(&c.rbuf).eq_ignore_ascii_case(b"accept-encoding"))
                    .map(|h| h.value.get(&c.rbuf)),
            ),
            ..Plan::NONE
        }
    }

    /// The response side: fills `coding`, `vary` and `rewrite_etag` from the response's
    /// status, headers and (when known) body length.
    pub fn decide<'h>(
        &mut self,
        rt: &CompressRt,
        status: u16,
        length: Option<u64>,
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    ) {
        self.coding = None;
        self.vary = false;
        self.rewrite_etag = false;
        self.shed = false;
        // 204, 205 and 304 have no content (205's framing says length 0): an encoded empty
        // body would be content (a gzip stream is 20 bytes), and its Content-Encoding a lie.
        if matches!(status, 100..=199 | 204 | 205 | 206 | 304)
            || length.is_some_and(|n| n < rt.min_size)
        {
            return;
        }
        let (mut typed, mut varied, mut etag) = (false, false, false);
        for (name, value) in headers {
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            if is(b"content-encoding") || is(b"content-range") || DIGESTS.iter().any(|d| is(d)) {
                return;
            } else if is(b"cache-control") {
                if has_token(value, b"no-transform") {
                    return;
                }
            } else if is(b"content-type") {
                typed = rt.type_listed(value);
            } else if is(b"vary") {
                varied |= has_token(value, b"accept-encoding") || has_token(value, b"*");
            } else if is(b"etag") {
                etag = true;
            }
        }
        if !typed {
            return;
        }
        self.vary = !varied;
        self.coding = self.accepted;
        self.rewrite_etag = self.coding.is_some() && etag;
    }

    /// Whether the response's own header `name` is left out (it is rewritten or wrong
    /// once the body is compressed).
    #[inline]
    pub fn drops(&self, name: &[u8]) -> bool {
        self.coding.is_some()
            && (name.eq_ignore_ascii_case(b"content-length")
                // Ranges would count bytes of the identity body, not of what is sent
                // (nginx's gzip filter clears it too).
                || name.eq_ignore_ascii_case(b"accept-ranges")
                || (self.rewrite_etag && name.eq_ignore_ascii_case(b"etag")))
    }

    /// Appends Content-Encoding, the ETag (`etag`: the response's first) and Vary, as
    /// decided. A compressed body is not the identity one byte for byte: a strong tag
    /// becomes weak (as nginx makes it), a weak one stays, and one that is neither
    /// (unquoted) is left out, as nginx leaves it out; a second ETag line (the field has
    /// one value) goes too, or a strong tag would stay beside the weakened one.
    pub fn write_headers(&self, etag: Option<&[u8]>, out: &mut Vec<u8>) {
        if let Some(coding) = self.coding {
            out.extend_from_slice(b"content-encoding: ");
            out.extend_from_slice(coding.token().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let (true, Some(etag)) = (self.rewrite_etag, etag.map(<[u8]>::trim_ascii)) {
            let quoted = |t: &[u8]| t.len() >= 2 && t.starts_with(b"\"") && t.ends_with(b"\"");
            let weak = etag.strip_prefix(b"W/").filter(|t| quoted(t));
            if weak.is_some() || quoted(etag) {
                out.extend_from_slice(b"etag: W/");
                out.extend_from_slice(weak.unwrap_or(etag));
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.vary {
            out.extend_from_slice(b"vary: Accept-Encoding\r\n");
        }
    }
}

/// On an API that compresses, the body varies by Accept-Encoding whatever a response
/// mapping does to `Vary`. Where the response's own Vary named Accept-Encoding (so
/// [`Plan::decide`] left the line to it) and a mapping removes or overwrites that header
/// (`dropped`), the line is written again: without it a shared cache in front hands the
/// compressed body to clients that never asked for it. `headers` are the response's own.
pub fn restore_vary<'h>(
    compresses: bool,
    dropped: bool,
    mut headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    out: &mut Vec<u8>,
) {
    if compresses
        && dropped
        && headers.any(|(n, v)| n.eq_ignore_ascii_case(b"vary") && has_token(v, b"accept-encoding"))
    {
        out.extend_from_slice(b"vary: Accept-Encoding\r\n");
    }
}

/// Digests of the body as the backend sends it (RFC 9530's Content-Digest and Repr-Digest
/// are taken over the content-coded bytes, as are RFC 3230's Digest and Content-MD5): a
/// compressed body would no longer match them, and a client that checks would refuse it.
/// Such a response is relayed as it is, as with `no-transform`.
const DIGESTS: [&[u8]; 4] = [b"content-digest", b"repr-digest", b"digest", b"content-md5"];

/// Whether a comma-separated header value lists `token` (case-insensitive, parameters
/// ignored).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        item.split(|&b| b == b'=')
            .next()
            .unwrap_or_default()
            .trim_ascii()
            .eq_ignore_ascii_case(token)
    })
}

/// The compression setting of the API that serves the current request, if any.
pub fn setting<'g>(gen: &'g Generation, c: &Conn) -> Option<&'g CompressRt> {
    let (stage, _) = c.out.served_by?;
    gen.snap.apis[stage.api as usize].compression.as_deref()
}

/// The response side of a proxied response (its head parsed into `c.rhead`): decides
/// `c.compress` and returns whether a body will be compressed. A HEAD's is decided as
/// its GET's would be (the headers say compressed), but it has no body: false.
pub fn decide(gen: &Generation, c: &mut Conn) -> bool {
    let Some(rt) = setting(gen, c) else {
        return false;
    };
    let head = c.head.method == Method::Head;
    let buf = &c.ubuf[..];
    let length = match c.rhead.body {
        // A HEAD answer's body is None: its Content-Length is the GET's body's.
        _ if head => c.rhead.content_length,
        ResponseBody::Length(n) => Some(n),
        ResponseBody::None => Some(0),
        _ => None,
    };
    let headers = c.rhead.headers.iter();
    c.compress.decide(
        rt,
        c.rhead.status,
        length,
        headers.map(|h| (h.name.get(buf), h.value.get(buf))),
    );
    if head {
        // No encoder, so no stream slot: the headers are those of a GET not shed.
        return false;
    }
    // Each stream holds its encoder's state while the client reads (brotli's about
    // 1.3 MiB, gzip's about 330 KiB): clients that never read held it without bound.
    if c.compress.coding.is_some() && StreamSlot::live() >= rt.max_streams {
        c.compress.coding = None;
        c.compress.rewrite_etag = false;
        c.compress.shed = true;
    }
    c.compress.coding.is_some()
}

thread_local! {
    /// Responses this worker is compressing as they stream.
    static STREAMS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One of the worker's compressed streams, counted while it lives (a counter per
/// worker thread: no lock).
pub struct StreamSlot(());

impl StreamSlot {
    pub fn take() -> StreamSlot {
        STREAMS.with(|n| n.set(n.get() + 1));
        StreamSlot(())
    }

    pub fn live() -> u64 {
        STREAMS.with(std::cell::Cell::get)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        STREAMS.with(|n| n.set(n.get() - 1));
    }
}

/// The response side of a Lambda function's answer: decides `c.compress` and returns it.
pub fn decide_whole(
    gen: &Generation,
    c: &mut Conn,
    reply: &crate::integration::lambda_response::Reply,
) -> Plan {
    // A HEAD too: its Content-Length and other headers are the GET's (the caller sends
    // no body).
    if let Some(rt) = setting(gen, c) {
        let headers = reply.headers.iter();
        c.compress.decide(
            rt,
            reply.status,
            Some(reply.body.len() as u64),
            headers.map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        );
    }
    c.compress
}

/// Chunk-size placeholder: 8 hex digits (leading zeros are valid) and CRLF.
const CHUNK_HEAD: usize = 10;

/// Relays the upstream body (after its head, from `c.ubuf` on) through the encoder of
/// `c.compress`, appended to the head already in `c.wbuf`: as chunks for HTTP/1.1
/// clients, raw for HTTP/1.0 ones (the connection then closes to end the body).
/// Ok(true) when the upstream body ended by its own framing (the connection to it can
/// be reused).
pub(crate) async fn relay(
    c: &mut Conn,
    up: &mut UpstreamIo,
    timers: &crate::runtime::coarse_timer::CoarseTimers,
    wait: Duration,
) -> std::io::Result<bool> {
    let Some(coding) = c.compress.coding else {
        unreachable!("relay() runs only for a response being compressed");
    };
    let chunked = c.head.minor_version == 1;
    let body = c.rhead.body;
    // Taken with no await since `decide` counted the streams.
    let _slot = StreamSlot::take();
    let mut enc = Encoder::new(coding);
    let mut left = match body {
        ResponseBody::Length(n) => n,
        _ => 0,
    };
    let mut dec = ChunkedDecoder::for_response();
    let mut eof = false;
    // Whether the head (and anything after it) has gone to the client.
    let mut sent = false;
    loop {
        let mark = c.wbuf.len();
        if chunked {
            c.wbuf.extend_from_slice(&[b'0'; CHUNK_HEAD - 2]);
            c.wbuf.extend_from_slice(b"\r\n");
        }
        let from = c.wbuf.len();
        let ok;
        let done = {
            let (ubuf, wbuf) = (&mut c.ubuf, &mut c.wbuf);
            match body {
                ResponseBody::None => {
                    ok = true;
                    true
                }
                ResponseBody::Length(_) => {
                    let k = left.min(ubuf.len() as u64) as usize;
                    ok = enc.write(&ubuf[..k], wbuf);
                    ubuf.advance(k);
                    left -= k as u64;
                    left == 0
                }
                ResponseBody::Chunked => {
                    let mut fine = true;
                    let bytes: &[u8] = ubuf;
                    let scan = dec.scan(bytes, |r| fine &= enc.write(&bytes[r], wbuf));
                    let scan = scan.map_err(|_| relay::bad_chunked_body(sent))?;
                    ok = fine;
                    ubuf.advance(scan.consumed);
                    scan.done
                }
                ResponseBody::UntilClose => {
                    ok = enc.write(ubuf, wbuf);
                    ubuf.clear();
                    eof
                }
            }
        };
        let ok = ok
            && if done {
                enc.finish(&mut c.wbuf)
            } else {
                enc.flush(&mut c.wbuf)
            };
        if !ok {
            return Err(std::io::Error::other("compressing the response failed"));
        }
        let n = c.wbuf.len() - from;
        if let Some(cap) = &mut c.capture {
            cap.body(&c.wbuf[from..]);
        }
        c.out.body_sent += n as u64;
        if chunked {
            if n == 0 {
                c.wbuf.truncate(mark); // a zero-size chunk would end the body
            } else {
                let size = format_hex8(n);
                c.wbuf[mark..mark + CHUNK_HEAD - 2].copy_from_slice(&size);
                c.wbuf.extend_from_slice(b"\r\n");
            }
            if done {
                c.wbuf.extend_from_slice(b"0\r\n\r\n");
            }
        }
        if !c.wbuf.is_empty() {
            sent = true;
            c.flush_wbuf().await?;
        }
        if done {
            return Ok(!matches!(body, ResponseBody::UntilClose));
        }
        if relay::read_upstream(c, up, timers, wait).await? == 0 {
            if body != ResponseBody::UntilClose {
                return Err(relay::cut_short());
            }
            if up.truncated() {
                return Err(relay::truncated()); // no close_notify: see relay_until_close
            }
            eof = true;
        }
    }
}

fn format_hex8(n: usize) -> [u8; 8] {
    debug_assert!(n <= u32::MAX as usize);
    let mut out = [b'0'; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[(n >> (28 - 4 * i)) & 0xf];
    }
    out
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;
