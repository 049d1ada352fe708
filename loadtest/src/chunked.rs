//! An incremental decoder for `Transfer-Encoding: chunked` that only needs to find where a
//! body ends: both sides of the benchmark discard body bytes, so nothing is copied out.
//! It does no IO: feed it whatever the socket returned, as often as needed.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size; `digits` counts them to reject absurd sizes.
    Size {
        value: u64,
        digits: u8,
    },
    /// After the size: optional extensions up to the end of the line.
    Ext {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// After the last chunk: at the start of a trailer line (an empty line ends the body).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub const fn new() -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes body bytes from the front of `buf`; returns how many belonged to the body.
    /// When [`is_done`](Self::is_done) afterwards, the rest of `buf` is the next message.
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            self.state = match self.state {
                State::Size { value, digits } => match hex(b) {
                    Some(d) if digits < 15 => State::Size {
                        value: value << 4 | u64::from(d),
                        digits: digits + 1,
                    },
                    Some(_) => return Err(Malformed),
                    None if digits == 0 => return Err(Malformed),
                    None => {
                        // Re-examine this byte as the start of the extension/line end.
                        self.state = State::Ext { value };
                        continue;
                    }
                },
                State::Ext { value } => match b {
                    b'\n' if value == 0 => State::TrailerStart,
                    b'\n' => State::Data { remaining: value },
                    _ => State::Ext { value },
                },
                State::Data { remaining } => {
                    let take = remaining.min((buf.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == remaining {
                        State::DataCr
                    } else {
                        State::Data {
                            remaining: remaining - take,
                        }
                    };
                    continue;
                }
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    b'\n' => State::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(Malformed),
                },
                State::DataLf => match b {
                    b'\n' => State::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(Malformed),
                },
                State::TrailerStart => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(i + 1);
                    }
                    _ => State::TrailerLine,
                },
                State::TrailerLine => match b {
                    b'\n' => State::TrailerStart,
                    _ => State::TrailerLine,
                },
                State::TrailerLf => match b {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(i + 1);
                    }
                    _ => return Err(Malformed),
                },
                State::Done => return Ok(i),
            };
            i += 1;
        }
        Ok(i)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `msg` in two pieces split at every byte boundary (and byte by byte) and checks
    /// that the decoder always finds the same end.
    fn end_of(msg: &[u8]) -> Result<usize, Malformed> {
        let mut whole = ChunkedDecoder::new();
        let n = whole.feed(msg)?;
        assert!(whole.is_done(), "not done after whole message");
        for split in 0..=msg.len() {
            let mut d = ChunkedDecoder::new();
            let a = d.feed(&msg[..split])?;
            let total = if d.is_done() {
                a
            } else {
                assert_eq!(a, split);
                a + d.feed(&msg[split..])?
            };
            assert!(d.is_done());
            assert_eq!(total, n, "split at {split}");
        }
        let mut d = ChunkedDecoder::new();
        let mut total = 0;
        for b in msg.chunks(1) {
            if d.is_done() {
                break;
            }
            total += d.feed(b)?;
        }
        assert_eq!(total, n);
        Ok(n)
    }

    #[test]
    fn finds_end_at_every_split() {
        let body = b"5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        let mut msg = body.to_vec();
        msg.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(end_of(&msg), Ok(body.len()));
    }

    #[test]
    fn trailers_and_bare_lf() {
        let body = b"3\nabc\n0\nx-trailer: 1\r\n\r\n";
        assert_eq!(end_of(body), Ok(body.len()));
        assert_eq!(end_of(b"0\r\n\r\n"), Ok(5));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(ChunkedDecoder::new().feed(b"zz\r\n"), Err(Malformed));
        assert_eq!(ChunkedDecoder::new().feed(b"2\r\nabX"), Err(Malformed));
        assert_eq!(
            ChunkedDecoder::new().feed(b"ffffffffffffffffff\r\n"),
            Err(Malformed)
        );
    }

    #[test]
    fn incomplete_consumes_everything() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"10\r\nabc"), Ok(7));
        assert!(!d.is_done());
    }
}
