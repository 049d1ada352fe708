//! Portico's own log lines (stderr), written so that what a client or a backend chose
//! can't forge one: a function's error message, a header name or a token claim is text
//! inside a record, and a newline in it would end the record and start one the reader
//! takes for Portico's. The formatter writes each record whole in one call, ending in
//! its newline; every other line break and control character in it is escaped here.

use std::io::{self, Write};

/// A `tracing_subscriber` writer: stderr, one record per write, escaped.
#[derive(Clone, Copy)]
pub struct EscapedStderr {
    /// The formatter colours its output (stderr is a terminal): keep its escape codes.
    pub ansi: bool,
}

impl Write for EscapedStderr {
    fn write(&mut self, record: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(record.len() + 16);
        escape_record(record, self.ansi, &mut out);
        io::stderr().lock().write_all(&out)?;
        Ok(record.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapedStderr {
    type Writer = EscapedStderr;
    fn make_writer(&'a self) -> EscapedStderr {
        *self
    }
}

/// `record` with its line breaks (but the last) as `\n`/`\r` and other control bytes as
/// `\xNN`; ESC is kept when `ansi` (the formatter's colours).
fn escape_record(record: &[u8], ansi: bool, out: &mut Vec<u8>) {
    let (body, end) = match record.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (record, &b""[..]),
    };
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
            }
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
}

#[cfg(test)]
mod tests {
    use super::escape_record;

    fn escaped(record: &str, ansi: bool) -> String {
        let mut out = Vec::new();
        escape_record(record.as_bytes(), ansi, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_record_stays_one_line() {
        let forged = "WARN lambda function failed reason=invalid id: 42\n2026-12-04T15:55:59Z  INFO portico::admin: admin token accepted\r\n suppressed=0\n";
        assert_eq!(
            escaped(forged, false),
            "WARN lambda function failed reason=invalid id: 42\\n2026-12-04T15:55:59Z  INFO portico::admin: admin token accepted\\r\\n suppressed=0\n"
        );
        assert_eq!(
            escaped("a\x1b[31mb\x07\x7f\tc\n", false),
            "a\\x1b[31mb\\x07\\x7f\tc\n"
        );
        // The formatter's own colours, on a terminal.
        assert_eq!(
            escaped("\x1b[33mWARN\x1b[0m x\n", true),
            "\x1b[33mWARN\x1b[0m x\n"
        );
        assert_eq!(escaped("é ü\n", false), "é ü\n");
    }
}
