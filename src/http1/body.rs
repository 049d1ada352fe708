//! Body framing. The proxy forwards body bytes as received, but for a chunked body's end
//! (the decoder points out what a relay sends now and what it holds back, `relay_scan`),
//! so these decoders never rewrite anything: they find where a body ends, count payload
//! bytes, and refuse framing a backend could read differently from us. All state lives in
//! the decoder, so a body may arrive split at any byte.

use std::ops::Range;

use super::framing::MAX_LENGTH;
use super::parse::is_tchar;
use super::target::hex_value;

/// Hex digits in a chunk size, leading zeros included: RFC 9112 sets no bound, and
/// nginx takes any number of leading zeros (`00000000000000005` is 5, which a limit of
/// 16 digits refused); 64 leave room for any padding a peer writes while a size line
/// stays short.
const MAX_SIZE_DIGITS: u8 = 64;
/// Bytes of chunk extensions per size line (after the first ';').
const MAX_EXT_BYTES: u16 = 4096;
/// Bytes of chunk extensions in a whole body. `max_body_bytes` counts payload only, so
/// without it 1-byte chunks with 4 KiB extensions made a 10 MiB limit a 40 GiB stream.
const MAX_EXT_TOTAL: u32 = 16 * 1024;
/// Bytes of all trailer lines together, CRLFs included, before the final empty line.
const MAX_TRAILER_BYTES: u32 = 8192;

/// A backend's trailer section may be as large as its head may (`MAX_RESPONSE_HEAD` of
/// the integrations): a relay holds the final section back until it is whole, and 10
/// KiB of a backend's trailers, which nginx takes, was a 502.
const MAX_RESPONSE_TRAILER_BYTES: u32 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the buffer that belong to this body.
    pub consumed: usize,
    /// The body ended within those bytes; what follows is the next message.
    pub done: bool,
}

/// What a relay that forwards a chunked body's wire bytes does with the buffer it gave
/// [`ChunkedDecoder::relay_scan`]. A relay never sends a byte of the body's final section
/// (the last-chunk line, trailer fields and the empty line) as it came: it writes
/// [`LAST_CHUNK`] once the whole section is in and valid. Sent as it came, `0\r\n` cut
/// off by a close was a whole body to clients that end it at the last-chunk line (Python's
/// http.client does); the client of a cut must get no last chunk (HTTP-FRAMING rule 12).
/// Nor does it send a size line before its CRLF: `…\r\n0` may be the start of `01a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    /// Bytes from the buffer's start that go on now.
    pub send: usize,
    /// Bytes of the buffer that belong to this body (what follows is the next message).
    pub consumed: usize,
    /// The body ended: `send..consumed` is its final section, sent as [`LAST_CHUNK`].
    /// Else `send..` (all of it framing) is held back: the relay keeps it at the start of
    /// the buffer it gives the next call, which goes on after it. It is at most a size
    /// line or a final section, bounded by the decoder's limits (about 12 KiB).
    pub done: bool,
}

/// The final section a relay writes for a body that ended: trailer fields and last-chunk
/// extensions are not relayed, as by nginx (a peer that reads no trailers takes a trailer
/// line for the start of its next message, and a backend that merges them into the
/// headers would see fields the gateway never checked).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    BadChunk(&'static str),
    TooLarge,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::BadChunk(detail) => write!(f, "bad chunked framing: {detail}"),
            BodyError::TooLarge => f.write_str("body too large"),
        }
    }
}

impl std::error::Error for BodyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// A size line's extensions, up to CR.
    Ext(Ext),
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line, or of the empty line that ends the body.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
    /// Errors are sticky: the connection is unusable once framing is wrong.
    Failed(BodyError),
}

/// Where in a size line's extensions: `*( BWS ";" BWS name [ BWS "=" BWS value ] )`, a
/// name a token, a value a token or a quoted-string (RFC 9112 §7.1.1). The extensions are
/// relayed as sent, so they are held to the grammar: a quote left open (`;a="x`) ends the
/// line here but may not for a backend that reads quoted-strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Blanks after the size: a ';' must follow.
    BeforeSemicolon,
    /// After ';': blanks, then a name.
    BeforeName,
    Name,
    /// Blanks after a name: '=', ';' or the line's end.
    AfterName,
    /// After '=': blanks, then a token or a quoted-string.
    BeforeValue,
    Token,
    Quoted,
    /// After a backslash in a quoted-string.
    Escaped,
    /// Blanks after a value: ';' or the line's end.
    AfterValue,
}

/// Streaming validator for chunked framing. Wire bytes pass through untouched (the proxy
/// forwards them raw); the decoder only finds where the body ends, counts payload bytes,
/// and rejects bad framing.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u8,
    ext_len: u16,
    ext_total: u32,
    trailer_len: u32,
    remaining: u64,
    declared: u64,
    payload: u64,
    max_payload: u64,
    /// `MAX_EXT_TOTAL` for a request body; none for a backend's answer (see
    /// [`ChunkedDecoder::for_response`]).
    max_ext_total: u32,
    /// `MAX_TRAILER_BYTES`, or `MAX_RESPONSE_TRAILER_BYTES` for a backend's answer.
    max_trailer: u32,
    /// Blanks in a size line (RFC 9112's BWS around `;` and `=`, after the line's last
    /// extension) are taken: a backend's answer only. A request's size line is relayed
    /// to the backend as it came, and llhttp (Node, even with `insecureHTTPParser`) and
    /// gunicorn refuse such a line, while the same body de-chunked by a buffered read
    /// passed: whether a request was 200 or 502 hung on how its bytes arrived. No client
    /// writes them (curl and browsers send no extensions at all): 400 at the edge.
    blanks: bool,
    /// Where, in the buffer of the last scan, a size line not yet whole or the final
    /// section began (0: in an earlier buffer); None when neither is under way.
    tail_from: Option<usize>,
    /// Bytes a relay held back (`Relay::done`) at the start of the next buffer.
    held: usize,
}

impl ChunkedDecoder {
    /// TooLarge once the declared chunk sizes add up past `max_payload`; checked at each
    /// size line, so oversized data is refused before any of it is forwarded.
    pub fn new(max_payload: u64) -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            ext_len: 0,
            ext_total: 0,
            trailer_len: 0,
            remaining: 0,
            declared: 0,
            payload: 0,
            max_payload,
            max_ext_total: MAX_EXT_TOTAL,
            max_trailer: MAX_TRAILER_BYTES,
            blanks: false,
            tail_from: None,
            held: 0,
        }
    }

    /// A backend's answer: no payload limit, and no limit on the extensions of the whole
    /// body (that one keeps a client from streaming past `max_body_bytes` in extensions;
    /// nginx relays a backend's, ~20 KB of them was a 502). Each size line's own limit
    /// stays: a relay holds an unfinished one back, so it must fit the buffer.
    pub fn for_response() -> Self {
        ChunkedDecoder {
            max_ext_total: u32::MAX,
            max_trailer: MAX_RESPONSE_TRAILER_BYTES,
            blanks: true,
            ..Self::new(u64::MAX)
        }
    }

    /// Consumes a prefix of `buf` belonging to this body: stops at the end of the body
    /// (done=true, consumed = bytes up to and including the final CRLF after trailers) or at
    /// the end of buf. Calls `on_data(range)` for each payload byte range within buf.
    pub fn scan(
        &mut self,
        buf: &[u8],
        on_data: impl FnMut(Range<usize>),
    ) -> Result<Scan, BodyError> {
        self.scan_from(buf, 0, on_data)
    }

    /// As `scan`, for a relay that forwards the wire bytes (see [`Relay`]): `buf` starts
    /// with the bytes the last call held back, which are not scanned again; `consumed`
    /// and the data ranges count from `buf`'s start.
    pub fn relay_scan(
        &mut self,
        buf: &[u8],
        on_data: impl FnMut(Range<usize>),
    ) -> Result<Relay, BodyError> {
        let held = std::mem::take(&mut self.held);
        debug_assert!(held <= buf.len(), "the held bytes lead the buffer");
        let scan = self.scan_from(buf, held.min(buf.len()), on_data)?;
        let send = self.tail_from.unwrap_or(scan.consumed);
        if !scan.done {
            self.held = scan.consumed - send;
        }
        Ok(Relay {
            send,
            consumed: scan.consumed,
            done: scan.done,
        })
    }

    /// Scans `buf[from..]`; positions count from `buf`'s start.
    fn scan_from(
        &mut self,
        buf: &[u8],
        from: usize,
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<Scan, BodyError> {
        let mut i = from;
        // Under way since an earlier buffer: a relay holds its bytes at the start.
        self.tail_from = self.in_tail().then_some(0);
        while i < buf.len() {
            match self.state {
                State::Data => {
                    let n =
                        (buf.len() - i).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                    on_data(i..i + n);
                    i += n;
                    self.remaining -= n as u64;
                    self.payload += n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::Done => {
                    return Ok(Scan {
                        consumed: i,
                        done: true,
                    })
                }
                State::Failed(e) => return Err(e),
                _ => {
                    if self.state == State::Size && self.digits == 0 {
                        // A size line begins: held until whole (it may be the last).
                        self.tail_from = Some(i);
                    }
                    let b = buf[i];
                    i += 1;
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                    if self.state == State::Data {
                        // A chunk's size line, whole: it goes on with the data.
                        self.tail_from = None;
                    }
                }
            }
        }
        match self.state {
            State::Failed(e) => Err(e),
            state => Ok(Scan {
                consumed: i,
                done: state == State::Done,
            }),
        }
    }

    /// Payload bytes seen so far (chunk data only, no framing).
    pub fn payload_len(&self) -> u64 {
        self.payload
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Within a size line (begun: a digit is in, as a blank or `;` can't start one), or
    /// past the last one: bytes a relay holds back.
    fn in_tail(&self) -> bool {
        match self.state {
            State::Size => self.digits > 0,
            State::Data | State::DataCr | State::DataLf | State::Failed(_) => false,
            _ => true,
        }
    }

    /// One framing byte (anything but chunk data).
    fn step(&mut self, b: u8) -> Result<(), BodyError> {
        use BodyError::BadChunk;
        self.state = match self.state {
            State::Size => match b {
                // A blank too: `\t;a=b` had no digit and was taken for a last chunk.
                b'\r' | b';' | b' ' | b'\t' if self.digits == 0 => {
                    return Err(BadChunk("missing chunk size"))
                }
                b'\r' => State::SizeLf,
                b' ' | b'\t' if !self.blanks => return Err(BadChunk("blank in a chunk size line")),
                b';' | b' ' | b'\t' => {
                    self.ext_len = 0;
                    State::Ext(if b == b';' {
                        Ext::BeforeName
                    } else {
                        Ext::BeforeSemicolon
                    })
                }
                _ => {
                    let digit = hex_value(b).ok_or(BadChunk("invalid chunk size"))?;
                    if self.digits == MAX_SIZE_DIGITS {
                        return Err(BadChunk("chunk size too long"));
                    }
                    self.digits += 1;
                    // As a Content-Length (framing::MAX_LENGTH): a peer that holds sizes
                    // in a signed 64-bit number frames `ffffffffffffffff` otherwise.
                    // Checked before the shift, which would drop the high bits.
                    if self.size > MAX_LENGTH >> 4 {
                        return Err(BadChunk("chunk size too large"));
                    }
                    self.size = (self.size << 4) | u64::from(digit);
                    State::Size
                }
            },
            State::Ext(at) => {
                let next = ext_step(at, b, self.blanks)?;
                if b == b'\r' {
                    State::SizeLf
                } else {
                    self.ext_len += 1;
                    self.ext_total = self.ext_total.saturating_add(1);
                    if self.ext_len > MAX_EXT_BYTES {
                        return Err(BadChunk("chunk extension too long"));
                    }
                    if self.ext_total > self.max_ext_total {
                        return Err(BadChunk("chunk extensions too long in all"));
                    }
                    State::Ext(next)
                }
            }
            State::SizeLf => {
                expect(b, b'\n', "expected LF after chunk size")?;
                let size = std::mem::take(&mut self.size);
                self.digits = 0;
                if size == 0 {
                    self.trailer_len = 0;
                    State::TrailerStart
                } else {
                    // Both at most MAX_LENGTH: the sum fits.
                    let total = self.declared + size;
                    if total > self.max_payload {
                        return Err(BodyError::TooLarge);
                    }
                    if total > MAX_LENGTH {
                        return Err(BadChunk("chunk sizes add up past 2^63 - 1"));
                    }
                    self.declared = total;
                    self.remaining = size;
                    State::Data
                }
            }
            State::DataCr => {
                expect(b, b'\r', "expected CRLF after chunk data")?;
                State::DataLf
            }
            State::DataLf => {
                expect(b, b'\n', "expected CRLF after chunk data")?;
                State::Size
            }
            State::TrailerStart if b == b'\r' => State::FinalLf,
            State::TrailerStart | State::TrailerName => {
                self.count_trailer()?;
                if b == b':' && self.state == State::TrailerName {
                    State::TrailerValue
                } else if is_tchar(b) {
                    State::TrailerName
                } else {
                    return Err(BadChunk("invalid trailer name"));
                }
            }
            State::TrailerValue => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::TrailerLf,
                    b'\t' | 0x20..=0x7e | 0x80..=0xff => State::TrailerValue,
                    _ => return Err(BadChunk("invalid trailer value")),
                }
            }
            State::TrailerLf => {
                self.count_trailer()?;
                expect(b, b'\n', "expected LF after trailer")?;
                State::TrailerStart
            }
            State::FinalLf => {
                expect(b, b'\n', "expected LF after last chunk")?;
                State::Done
            }
            State::Data | State::Done | State::Failed(_) => unreachable!("handled in scan"),
        };
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), BodyError> {
        self.trailer_len += 1;
        if self.trailer_len > self.max_trailer {
            return Err(BodyError::BadChunk("trailers too long"));
        }
        Ok(())
    }
}

#[cfg(test)]
impl ChunkedDecoder {
    /// Passes over the rest of the chunk's data unseen: sizes near 2^63 can't be fed.
    pub(crate) fn skip_data(&mut self) {
        assert_eq!(self.state, State::Data);
        self.payload += self.remaining;
        self.remaining = 0;
        self.state = State::DataCr;
    }
}

/// One byte of a size line's extensions (`Ext`); CR ends the line except inside a
/// quoted-string; a blank outside one only when `blanks`. No bare LF, control or (outside a quoted-string)
/// byte that is not a token's can hide a line end.
fn ext_step(at: Ext, b: u8, blanks: bool) -> Result<Ext, BodyError> {
    let blank = b == b' ' || b == b'\t';
    if blank && !blanks && !matches!(at, Ext::Quoted | Ext::Escaped) {
        return Err(BodyError::BadChunk("blank in a chunk size line"));
    }
    Ok(match (at, b) {
        (Ext::BeforeSemicolon, _) if blank => at,
        // Blanks after the size and nothing else (a backend's answer: `5 \r\n`), as
        // nginx reads them.
        (Ext::BeforeSemicolon, b'\r') => at,
        (Ext::BeforeSemicolon, b';') => Ext::BeforeName,
        (Ext::BeforeSemicolon, _) => return Err(BodyError::BadChunk("invalid chunk size")),
        (Ext::Quoted | Ext::Escaped, b'\r') => {
            return Err(BodyError::BadChunk(
                "unterminated quoted-string in chunk extension",
            ))
        }
        // A name and a value are tokens, never empty (`5;`, `5;a=`, `5;a;`): held to the
        // grammar, as the extensions are relayed as sent.
        (Ext::BeforeName | Ext::BeforeValue, b'\r') => {
            return Err(BodyError::BadChunk("invalid chunk extension"))
        }
        (_, b'\r') => at,
        (Ext::BeforeName | Ext::BeforeValue | Ext::AfterName, _) if blank => at,
        (Ext::BeforeName | Ext::Name, _) if is_tchar(b) => Ext::Name,
        (Ext::Name, _) if blank => Ext::AfterName,
        (Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue, b';') => Ext::BeforeName,
        (Ext::Name | Ext::AfterName, b'=') => Ext::BeforeValue,
        (Ext::BeforeValue, b'"') => Ext::Quoted,
        (Ext::BeforeValue | Ext::Token, _) if is_tchar(b) => Ext::Token,
        (Ext::Token | Ext::AfterValue, _) if blank => Ext::AfterValue,
        (Ext::Quoted, b'"') => Ext::AfterValue,
        (Ext::Quoted, b'\\') => Ext::Escaped,
        (Ext::Quoted | Ext::Escaped, b'\t' | 0x20..=0x7e | 0x80..=0xff) => Ext::Quoted,
        _ => return Err(BodyError::BadChunk("invalid chunk extension")),
    })
}

fn expect(b: u8, want: u8, detail: &'static str) -> Result<(), BodyError> {
    if b == want {
        Ok(())
    } else {
        Err(BodyError::BadChunk(detail))
    }
}

/// Content-Length framing: counts down the declared length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthDecoder {
    remaining: u64,
}

impl LengthDecoder {
    pub fn new(len: u64) -> Self {
        LengthDecoder { remaining: len }
    }

    /// The bytes of `buf` that belong to the body; the rest is the next message.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        let n = (buf.len() as u64).min(self.remaining);
        self.remaining -= n;
        Scan {
            consumed: n as usize,
            done: self.remaining == 0,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}
