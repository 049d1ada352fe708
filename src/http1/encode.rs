//! Writing heads and the gateway's own answers (DESIGN §5) into a caller-owned Vec. Nothing
//! here allocates when the Vec already has room, so a connection can keep one write buffer
//! for its whole life.

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
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        out.extend(value.iter().map(|&b| match b {
            b'\r' | b'\n' | 0 => b' ',
            b => b,
        }));
    } else {
        out.extend_from_slice(value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Ends a response head the gateway writes itself (mock, proxied, function, cache hit):
/// the request id under both names, the connection header the client needs (HTTP/1.0
/// keep-alive must be explicit), and the empty line.
pub fn own_head_end(out: &mut Vec<u8>, request_id: &[u8], keep_alive: bool, http10: bool) {
    header(out, b"x-amzn-RequestId", request_id);
    header(out, b"apigw-requestid", request_id);
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
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

/// The gateway's own answers (DESIGN §5): `{"message":"..."}` with the message JSON-escaped,
/// content-type application/json, content-length, x-amzn-RequestId and apigw-requestid set
/// to `request_id`, "connection: close" when !keep_alive ("connection: keep-alive" for an
/// HTTP/1.0 client that keeps it), then `extra` headers (e.g. retry-after). Appends to `out`.
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
