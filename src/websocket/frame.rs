//! RFC 6455 frames, IO-free: `Decoder::next` takes the bytes a client sent (as much or as
//! little as arrived) and yields whole messages and control frames; `encode` writes the
//! server's (unmasked) frames. Like the HTTP codec, it is tested by feeding the same
//! input split at every byte boundary (`frame_tests.rs`).
//!
//! What a server must refuse, and the close code it sends (RFC 6455 §5, §7.4.1):
//! unmasked client frames, RSV bits without a negotiated extension, unknown opcodes,
//! fragmented or oversized (> 125 bytes) control frames, a continuation with no message
//! in progress or a new message inside one, a bad close payload: 1002. Text that is not
//! UTF-8 (or a close reason that is not): 1007, as soon as the offending byte arrives,
//! even mid-frame (text is validated as a stream, so a bad fragment fails fast). A frame
//! or message past the configured limit: 1009, decided from the frame header before its
//! payload is buffered.

use bytes::{Buf, BytesMut};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
pub const CLOSE_BAD_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest payload of one frame.
    pub frame: usize,
    /// Largest message, all its fragments together.
    pub message: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole message: text (valid UTF-8) or binary.
    Message {
        text: bool,
        data: Vec<u8>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The client's close: its code (None when it sent none: 1005 in events) and reason.
    Close {
        code: Option<u16>,
        reason: String,
    },
}

/// The client broke the protocol or a limit: close with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// Reassembles messages from a client's frames.
pub struct Decoder {
    limits: Limits,
    /// The message being reassembled from fragments: (is text, payload so far).
    partial: Option<(bool, Vec<u8>)>,
    /// The current text message's UTF-8, checked as its bytes arrive.
    utf8: Utf8Stream,
    /// Payload bytes of the frame not yet complete that `utf8` has seen.
    checked: usize,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            partial: None,
            utf8: Utf8Stream::default(),
            checked: 0,
        }
    }

    /// The next event from `buf`, consuming its bytes; Ok(None) when more bytes are needed
    /// (nothing is consumed then). A control frame may arrive between the fragments of a
    /// message and is returned at once.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, Violation> {
        loop {
            let Some(head) = parse_head(buf, &self.limits)? else {
                return Ok(None);
            };
            let total = head.header_len + head.len;
            let text_data = match head.opcode {
                OP_TEXT => self.partial.is_none(),
                OP_CONTINUATION => matches!(self.partial, Some((true, _))),
                _ => false,
            };
            if head.opcode == OP_TEXT && text_data && self.checked == 0 {
                self.utf8 = Utf8Stream::default();
            }
            if buf.len() < total {
                // Fail fast: check the text that has arrived of this frame so far.
                let avail = (buf.len() - head.header_len).min(head.len);
                if text_data && avail > self.checked {
                    let mut part =
                        buf[head.header_len + self.checked..head.header_len + avail].to_vec();
                    unmask_from(&mut part, head.mask, self.checked);
                    self.checked = avail;
                    if !self.utf8.feed(&part) {
                        return Err(violation(CLOSE_BAD_DATA, "text is not UTF-8"));
                    }
                }
                return Ok(None);
            }
            if head.opcode & 0x8 == 0 && head.len > self.limits.message {
                return Err(violation(CLOSE_TOO_BIG, "message too big"));
            }
            buf.advance(head.header_len);
            let mut payload = buf.split_to(head.len);
            unmask(&mut payload, head.mask);
            if text_data {
                let unchecked = &payload[self.checked.min(payload.len())..];
                if !self.utf8.feed(unchecked) || (head.fin && !self.utf8.complete()) {
                    return Err(violation(CLOSE_BAD_DATA, "text is not UTF-8"));
                }
            }
            if head.opcode & 0x8 == 0 {
                self.checked = 0;
            }
            match head.opcode {
                OP_PING => return Ok(Some(Event::Ping(payload.to_vec()))),
                OP_PONG => return Ok(Some(Event::Pong(payload.to_vec()))),
                OP_CLOSE => return close_event(&payload).map(Some),
                OP_TEXT | OP_BINARY => {
                    if self.partial.is_some() {
                        return Err(violation(
                            CLOSE_PROTOCOL,
                            "new message inside a fragmented one",
                        ));
                    }
                    let text = head.opcode == OP_TEXT;
                    if head.fin {
                        return finish(text, payload.to_vec()).map(Some);
                    }
                    self.partial = Some((text, payload.to_vec()));
                }
                _ => {
                    let Some((text, data)) = self.partial.as_mut() else {
                        return Err(violation(CLOSE_PROTOCOL, "continuation without a message"));
                    };
                    if data.len() + payload.len() > self.limits.message {
                        return Err(violation(CLOSE_TOO_BIG, "message too big"));
                    }
                    data.extend_from_slice(&payload);
                    let text = *text;
                    if head.fin {
                        let (_, data) = self.partial.take().expect("checked above");
                        return finish(text, data).map(Some);
                    }
                }
            }
        }
    }
}

struct Head {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    len: usize,
    header_len: usize,
}

/// The frame header at the start of `buf`, checked; None until it is all there.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, Violation> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    if b0 & 0x70 != 0 {
        return Err(violation(CLOSE_PROTOCOL, "reserved bits set"));
    }
    let opcode = b0 & 0x0F;
    let control = opcode & 0x8 != 0;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err(violation(CLOSE_PROTOCOL, "unknown opcode")),
    }
    if b1 & 0x80 == 0 {
        return Err(violation(CLOSE_PROTOCOL, "client frame not masked"));
    }
    let short = usize::from(b1 & 0x7F);
    if control && (!fin || short > 125) {
        return Err(violation(
            CLOSE_PROTOCOL,
            "control frame fragmented or too long",
        ));
    }
    let (len, at) = match short {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let n = u64::from_be_bytes(b);
            if n >> 63 != 0 {
                return Err(violation(CLOSE_PROTOCOL, "frame length out of range"));
            }
            (n, 10)
        }
        n => (n as u64, 2),
    };
    // Decided from the header: an oversized payload is never buffered.
    if len > limits.frame as u64 {
        return Err(violation(CLOSE_TOO_BIG, "frame too big"));
    }
    if buf.len() < at + 4 {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buf[at..at + 4]);
    Ok(Some(Head {
        fin,
        opcode,
        mask,
        len: len as usize,
        header_len: at + 4,
    }))
}

/// A whole message (text was validated as it arrived).
fn finish(text: bool, data: Vec<u8>) -> Result<Event, Violation> {
    Ok(Event::Message { text, data })
}

/// UTF-8 validated across chunks: a sequence cut by a chunk or fragment boundary waits
/// in `carry` for its other bytes.
#[derive(Default)]
struct Utf8Stream {
    carry: [u8; 4],
    len: usize,
}

impl Utf8Stream {
    /// false: `bytes` make the text invalid.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while self.len > 0 && !bytes.is_empty() {
            self.carry[self.len] = bytes[0];
            self.len += 1;
            bytes = &bytes[1..];
            match std::str::from_utf8(&self.carry[..self.len]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_some() => return false,
                Err(_) if self.len == 4 => return false,
                Err(_) => {}
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) if e.error_len().is_some() => false,
            Err(e) => {
                let tail = &bytes[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.len = tail.len();
                true
            }
        }
    }

    /// No sequence left open.
    fn complete(&self) -> bool {
        self.len == 0
    }
}

fn close_event(payload: &[u8]) -> Result<Event, Violation> {
    match payload.len() {
        0 => Ok(Event::Close {
            code: None,
            reason: String::new(),
        }),
        1 => Err(violation(CLOSE_PROTOCOL, "close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !sendable_close_code(code) {
                return Err(violation(CLOSE_PROTOCOL, "invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| violation(CLOSE_BAD_DATA, "close reason is not UTF-8"))?;
            Ok(Event::Close {
                code: Some(code),
                reason: reason.to_string(),
            })
        }
    }
}

/// Codes a peer may put in a close frame: RFC 6455's and those IANA's registry added
/// since (1012 Service Restart, 1013 Try Again Later, 1014 Bad Gateway, which clients
/// such as Python's `websockets` send); 1005, 1006 and 1015 are reserved for reports,
/// 1004 and 1016–2999 unassigned.
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs a client payload with its masking key.
pub fn unmask(data: &mut [u8], mask: [u8; 4]) {
    unmask_from(data, mask, 0);
}

/// Unmasks bytes that start `offset` bytes into the payload.
fn unmask_from(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[(i + offset) & 3];
    }
}

/// Writes one unfragmented, unmasked server frame.
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Writes a close frame with a code and a reason (cut to fit a control frame).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(out, OP_CLOSE, &payload);
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
