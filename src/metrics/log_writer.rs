//! Portico's own log lines (stderr), written so that what a client or a backend chose
//! can't forge one: a function's error message, a header name or a token claim is text
//! inside a record, and a newline in it would end the record and start one the reader
//! takes for Portico's. The formatter writes each record whole in one call, ending in
//! its newline; every other line break and control character in it is escaped here.
//! On a terminal the formatter's colour codes must stay raw while a value's ESC must
//! not (it could move the cursor or retitle the terminal): values are written by
//! [`fields`], which escapes their ESC before the record is put together.

use std::fmt;
use std::io::{self, Write};

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::Writer;

/// The field formatter: `name=value` as tracing's default one writes them (names in
/// italics on a terminal), with each ESC in a value (a message, a reason a function or
/// client chose) written `\x1b`.
pub fn fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, field, value| {
        if field.name() != "message" {
            if w.has_ansi_escapes() {
                write!(w, "\x1b[3m{}\x1b[0m\x1b[2m=\x1b[0m", field.name())?;
            } else {
                write!(w, "{}=", field.name())?;
            }
        }
        fmt::Write::write_fmt(&mut NoEsc(w), format_args!("{value:?}"))
    })
    .delimited(" ")
}

/// Writes through, with ESC as `\x1b`.
struct NoEsc<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for NoEsc<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\x1b') {
            self.0.write_str(&rest[..i])?;
            self.0.write_str("\\x1b")?;
            rest = &rest[i + 1..];
        }
        self.0.write_str(rest)
    }
}

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
/// `\xNN`, C1 controls (U+0080–U+009F: U+009B is a terminal's CSI) and U+2028/U+2029
/// (line breaks to some readers) byte by byte as `\xNN` too, as the access log writes
/// them; ESC is kept when `ansi` (the formatter's colours: [`fields`] escaped the
/// values').
fn escape_record(record: &[u8], ansi: bool, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |out: &mut Vec<u8>, b: u8| {
        out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]])
    };
    let (body, end) = match record.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (record, &b""[..]),
    };
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        // The UTF-8 forms of U+0080–U+009F, U+2028 and U+2029.
        let special = match body[i..] {
            [0xc2, 0x80..=0x9f, ..] => 2,
            [0xe2, 0x80, 0xa8 | 0xa9, ..] => 3,
            _ => 0,
        };
        if special > 0 {
            for &b in &body[i..i + special] {
                hex(out, b);
            }
            i += special;
            continue;
        }
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            0..=0x1f | 0x7f => hex(out, b),
            _ => out.push(b),
        }
        i += 1;
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
        // C1 controls and U+2028/U+2029, whatever `ansi` says.
        for ansi in [false, true] {
            assert_eq!(
                escaped("boom\u{9b}31mRED\u{2028}x\u{2029}\u{85}é\n", ansi),
                "boom\\xc2\\x9b31mRED\\xe2\\x80\\xa8x\\xe2\\x80\\xa9\\xc2\\x85é\n"
            );
        }
    }

    /// A value's ESC is escaped by the field formatter, so only the formatter's own
    /// colour codes reach the terminal raw.
    #[test]
    #[allow(clippy::disallowed_types)]
    fn a_values_escape_is_escaped_with_colours_on() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                let mut out = self.0.lock().unwrap();
                super::escape_record(b, true, &mut out);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let out = sink.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(true)
            .fmt_fields(super::fields())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let reason = "boom\x1b]0;pwned\x07\x1b[2J";
            tracing::warn!(reason = %reason, "lambda function failed");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.contains("boom\\x1b]0;pwned\\x07\\x1b[2J"), "{text:?}");
        assert!(!text.contains("boom\x1b"), "{text:?}");
        // The formatter's colours are still there.
        assert!(text.contains("\x1b["), "{text:?}");
    }
}
