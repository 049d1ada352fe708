//! Writing heads and the gateway's own answers (docs/ARCHITECTURE.md, Gateway answers) into
//! a caller-owned Vec. Nothing here allocates when the Vec already has room, so a
//! connection can keep one write buffer for its whole life.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// A final status whose answer carries content: 200–599 but 204, 205 and 304 (RFC 9110
/// §15.3.5, §15.3.6, §15.4.5). A status the config maps an answer with a body to must be
/// one: a body behind one of the others is read by the client as the next response.
pub fn status_with_content(status: u64) -> bool {
    (200..=599).contains(&status) && !matches!(status, 204 | 205 | 304)
}

/// RFC 9110 reason phrases. Unknown codes get "" (the status line stays valid: the space
/// before the reason is still written, and clients ignore the phrase anyway).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Appends "HTTP/1.1 {status} {reason}\r\n".
pub fn status_line(out: &mut Vec<u8>, status: u16) {
    debug_assert!((100..=999).contains(&status), "status {status}");
    out.extend_from_slice(b"HTTP/1.1 ");
    decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value\r\n`. CR, LF and NUL in the value become spaces: values can come
/// from config or from a client (a request id echoed back), and must never end the line.
pub fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    debug_assert!(!name.is_empty() && name.iter().all(|&b| super::parse::is_tchar(b)));
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    let at = out.len();
    out.extend_from_slice(value);
    sanitize_value(&mut out[at..]);
    out.extend_from_slice(b"\r\n");
}

/// A field value may hold no control character but tab (RFC 9110 §5.5): CR, LF and NUL
/// would end the line, and the others (\x01, ESC, DEL) make strict parsers (httparse,
/// llhttp: Node, hyper) refuse the whole message. Each becomes a space. Values that a
/// client's bytes reach (a validation error quoting its body, an authorizer's context or
/// claims) pass here on their way into a head.
pub fn sanitize_value(value: &mut [u8]) {
    for b in value {
        // is_ascii_control: 0x00–0x1F and DEL.
        if b.is_ascii_control() && *b != b'\t' {
            *b = b' ';
        }
    }
}

/// The request ids `own_head_end` writes into every answer (API Gateway's two names).
/// One id per request: a backend's, a function's or a stored response's own are not
/// passed on beside them (a client would read either, and a log two).
pub const REQUEST_ID_HEADERS: [&[u8]; 2] = [b"x-amzn-requestid", b"apigw-requestid"];

/// Whether `name` is one of [`REQUEST_ID_HEADERS`], in any case.
pub fn is_request_id(name: &[u8]) -> bool {
    REQUEST_ID_HEADERS
        .iter()
        .any(|id| id.eq_ignore_ascii_case(name))
}

/// Ends a response head the gateway writes itself (mock, proxied, function, cache hit):
/// `date` and `server` when the head (all of `out`) has none yet, the request id under
/// both names, the connection header the client needs (HTTP/1.0 keep-alive must be
/// explicit), and the empty line.
pub fn own_head_end(out: &mut Vec<u8>, request_id: &[u8], keep_alive: bool, http10: bool) {
    date_and_server(out);
    header(out, b"x-amzn-RequestId", request_id);
    header(out, b"apigw-requestid", request_id);
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

const SERVER: &[u8] = b"server: portico\r\n";

/// `date` and `server` header lines, each when the head written so far (all of `out`)
/// has none: every answer carries both, a backend's own kept.
pub fn date_and_server(out: &mut Vec<u8>) {
    let (has_date, has_server) = has_date_server(out);
    if !has_date {
        date(out);
    }
    if !has_server {
        out.extend_from_slice(SERVER);
    }
}

/// Whether a head already has a `date` and a `server` header line.
fn has_date_server(head: &[u8]) -> (bool, bool) {
    let (mut date, mut server) = (false, false);
    // memchr: a byte-at-a-time scan of every head written was ~500 instructions a response.
    for i in memchr::memchr_iter(b'\n', head) {
        let rest = &head[i + 1..];
        let starts = |name: &[u8]| {
            rest.len() > name.len()
                && rest[..name.len()].eq_ignore_ascii_case(name)
                && rest[name.len()] == b':'
        };
        match rest.first().map(u8::to_ascii_lowercase) {
            Some(b'd') => date |= starts(b"date"),
            Some(b's') => server |= starts(b"server"),
            _ => {}
        }
    }
    (date, server)
}

thread_local! {
    /// The current second and its IMF-fixdate, made once per second per worker thread.
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
    /// The current second as this thread's tick last set it (`set_unix_secs`).
    static TICKED_SECS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Sets this thread's current second for `date`; the worker's housekeeping tick calls
/// it, so that responses don't each read the clock.
pub fn set_unix_secs(secs: u64) {
    TICKED_SECS.set(Some(secs));
}

/// The current Unix second: on a worker thread the one its tick last set (at most one
/// tick late, no clock read); elsewhere the clock's.
pub fn unix_secs() -> u64 {
    TICKED_SECS.get().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Appends `date: Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7) for now.
pub fn date(out: &mut Vec<u8>) {
    let now = unix_secs();
    let text = DATE.with(|cell| {
        let (secs, text) = cell.get();
        if secs == now {
            return text;
        }
        let text = imf_fixdate(now);
        cell.set((now, text));
        text
    });
    out.extend_from_slice(b"date: ");
    out.extend_from_slice(&text);
    out.extend_from_slice(b"\r\n");
}

/// Seconds since the epoch → "Sun, 06 Nov 1994 08:49:37 GMT".
pub fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |out: &mut [u8], n: u64| {
        out[0] = b'0' + (n / 10) as u8;
        out[1] = b'0' + (n % 10) as u8;
    };
    two(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[month - 1]);
    two(&mut out[12..14], year / 100 % 100);
    two(&mut out[14..16], year % 100);
    two(&mut out[17..19], rem / 3600);
    two(&mut out[20..22], rem / 60 % 60);
    two(&mut out[23..25], rem % 60);
    out
}

/// Appends a decimal number without allocating.
pub fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

const JSON_OPEN: &[u8] = br#"{"message":""#;
const JSON_CLOSE: &[u8] = br#""}"#;

/// The gateway's own answers (docs/ARCHITECTURE.md, Gateway answers): `{"message":"..."}`
/// with the message JSON-escaped, content-type application/json, content-length,
/// x-amzn-RequestId and apigw-requestid set to `request_id`, "connection: close" when
/// !keep_alive ("connection: keep-alive" for an HTTP/1.0 client that keeps it), then
/// `extra` headers (e.g. retry-after). Appends to `out`.
pub fn gateway_response(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    request_id: &[u8],
    keep_alive: bool,
    http10: bool,
    extra: &[(&str, &[u8])],
) {
    gateway_response_head_only(out, status, message, request_id, keep_alive, http10, extra);
    out.extend_from_slice(JSON_OPEN);
    json_escape(out, message.as_bytes());
    out.extend_from_slice(JSON_CLOSE);
}

/// For HEAD requests: the same head, content-length included, and no body.
pub fn gateway_response_head_only(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    request_id: &[u8],
    keep_alive: bool,
    http10: bool,
    extra: &[(&str, &[u8])],
) {
    status_line(out, status);
    date(out);
    out.extend_from_slice(SERVER);
    header(out, b"content-type", b"application/json");
    let body_len = JSON_OPEN.len() + escaped_len(message.as_bytes()) + JSON_CLOSE.len();
    out.extend_from_slice(b"content-length: ");
    decimal(out, body_len as u64);
    out.extend_from_slice(b"\r\n");
    header(out, b"x-amzn-RequestId", request_id);
    header(out, b"apigw-requestid", request_id);
    if !keep_alive {
        header(out, b"connection", b"close");
    } else if http10 {
        header(out, b"connection", b"keep-alive");
    }
    for (name, value) in extra {
        header(out, name.as_bytes(), value);
    }
    out.extend_from_slice(b"\r\n");
}

/// The escape for one byte of a JSON string, if it needs one (RFC 8259 §7). Bytes ≥ 0x80 are
/// parts of UTF-8 characters and pass through.
fn escape_of(b: u8) -> Option<&'static [u8]> {
    const CONTROL: [&[u8]; 32] = [
        b"\\u0000", b"\\u0001", b"\\u0002", b"\\u0003", b"\\u0004", b"\\u0005", b"\\u0006",
        b"\\u0007", b"\\b", b"\\t", b"\\n", b"\\u000b", b"\\f", b"\\r", b"\\u000e", b"\\u000f",
        b"\\u0010", b"\\u0011", b"\\u0012", b"\\u0013", b"\\u0014", b"\\u0015", b"\\u0016",
        b"\\u0017", b"\\u0018", b"\\u0019", b"\\u001a", b"\\u001b", b"\\u001c", b"\\u001d",
        b"\\u001e", b"\\u001f",
    ];
    match b {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        0..=0x1f => Some(CONTROL[b as usize]),
        _ => None,
    }
}

fn escaped_len(s: &[u8]) -> usize {
    s.iter().map(|&b| escape_of(b).map_or(1, <[u8]>::len)).sum()
}

pub fn json_escape(out: &mut Vec<u8>, s: &[u8]) {
    // Copy unescaped runs in one go; messages are mostly plain text.
    let mut run = 0;
    for (i, &b) in s.iter().enumerate() {
        if let Some(esc) = escape_of(b) {
            out.extend_from_slice(&s[run..i]);
            out.extend_from_slice(esc);
            run = i + 1;
        }
    }
    out.extend_from_slice(&s[run..]);
}
