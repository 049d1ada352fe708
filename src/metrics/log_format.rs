//! Access-log formats with API Gateway's `$context` variables, compiled once per config
//! into literal pieces and variable slots, and rendered per request straight into the
//! worker's log buffer. A format that starts with `{` is JSON: values are JSON-escaped
//! so every line stays valid JSON whatever a client sends.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    RequestId,
    SourceIp,
    UserAgent,
    ApiKeyId,
    HttpMethod,
    Path,
    Protocol,
    RouteKey,
    Stage,
    ApiId,
    DomainName,
    Status,
    ResponseLength,
    ResponseLatency,
    IntegrationLatency,
    IntegrationStatus,
    IntegrationError,
    ErrorMessage,
    ErrorResponseType,
    RequestTime,
    RequestTimeEpoch,
    Canary,
}

/// Names after `$context.`; longer names first so prefixes don't win.
const NAMES: &[(&str, Var)] = &[
    ("identity.sourceIp", Var::SourceIp),
    ("identity.userAgent", Var::UserAgent),
    ("identity.apiKeyId", Var::ApiKeyId),
    ("integration.latency", Var::IntegrationLatency),
    ("integration.status", Var::IntegrationStatus),
    ("integration.error", Var::IntegrationError),
    ("error.responseType", Var::ErrorResponseType),
    ("error.message", Var::ErrorMessage),
    ("extendedRequestId", Var::RequestId),
    ("requestTimeEpoch", Var::RequestTimeEpoch),
    ("requestTime", Var::RequestTime),
    ("requestId", Var::RequestId),
    ("httpMethod", Var::HttpMethod),
    ("path", Var::Path),
    ("protocol", Var::Protocol),
    ("routeKey", Var::RouteKey),
    ("stage", Var::Stage),
    ("apiId", Var::ApiId),
    ("domainName", Var::DomainName),
    ("status", Var::Status),
    ("responseLength", Var::ResponseLength),
    ("responseLatency", Var::ResponseLatency),
    ("integrationLatency", Var::IntegrationLatency),
    ("integrationStatus", Var::IntegrationStatus),
    ("canary", Var::Canary),
    // The name API Gateway and parameter mappings use.
    ("isCanaryRequest", Var::Canary),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    Var(Var),
    /// A `$context.x` Portico does not know: rendered as "-" like an empty value.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    parts: Vec<Part>,
    json: bool,
}

impl LogFormat {
    pub fn compile(format: &str) -> LogFormat {
        const PREFIX: &str = "$context.";
        let mut parts = Vec::new();
        let mut rest = format;
        while let Some(at) = rest.find(PREFIX) {
            if at > 0 {
                parts.push(Part::Literal(rest.as_bytes()[..at].into()));
            }
            let after = &rest[at + PREFIX.len()..];
            let ident = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
                .count();
            match NAMES.iter().find(|(n, _)| after[..ident].starts_with(n)) {
                Some((name, var)) => {
                    parts.push(Part::Var(*var));
                    rest = &after[name.len()..];
                }
                None => {
                    parts.push(Part::Unknown);
                    rest = &after[ident..];
                }
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.as_bytes().into()));
        }
        LogFormat {
            parts,
            json: format.trim_start().starts_with('{'),
        }
    }

    /// Appends one line (with its newline) for `r`.
    pub fn render(&self, out: &mut Vec<u8>, r: &LogRecord<'_>) {
        for part in &self.parts {
            match part {
                Part::Literal(b) => out.extend_from_slice(b),
                Part::Unknown => out.push(b'-'),
                Part::Var(v) => {
                    let start = out.len();
                    r.value(*v, out);
                    if out.len() == start {
                        out.push(b'-');
                    } else {
                        self.escape_from(out, start);
                    }
                }
            }
        }
        out.push(b'\n');
    }

    /// Makes the bytes appended since `start` safe inside the format: JSON string
    /// escaping for JSON formats, control characters replaced otherwise.
    fn escape_from(&self, out: &mut Vec<u8>, start: usize) {
        let needs = out[start..]
            .iter()
            .any(|&b| b < 0x20 || b == 0x7f || (self.json && (b == b'"' || b == b'\\')));
        if !needs {
            return;
        }
        let raw: Vec<u8> = out.drain(start..).collect();
        for b in raw {
            match b {
                b'"' if self.json => out.extend_from_slice(b"\\\""),
                b'\\' if self.json => out.extend_from_slice(b"\\\\"),
                0..=0x1f | 0x7f if self.json => {
                    let _ = write!(out, "\\u{:04x}", b);
                }
                0..=0x1f | 0x7f => out.push(b' '),
                _ => out.push(b),
            }
        }
    }
}

/// What one request leaves for its access-log line.
#[derive(Debug, Clone)]
pub struct LogRecord<'a> {
    pub request_id: &'a [u8],
    pub source_ip: IpAddr,
    pub user_agent: &'a [u8],
    pub api_key_id: &'a str,
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub protocol: &'a str,
    pub route_key: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub domain_name: &'a [u8],
    pub status: u16,
    pub response_length: u64,
    pub response_latency: Duration,
    pub integration_latency: Option<Duration>,
    pub integration_status: Option<u16>,
    pub integration_error: &'a str,
    pub error_message: &'a str,
    pub error_response_type: &'a str,
    pub request_time: SystemTime,
    pub canary: bool,
}

impl LogRecord<'_> {
    fn value(&self, v: Var, out: &mut Vec<u8>) {
        match v {
            Var::RequestId => out.extend_from_slice(self.request_id),
            Var::SourceIp => {
                let _ = write!(out, "{}", self.source_ip);
            }
            Var::UserAgent => out.extend_from_slice(self.user_agent),
            Var::ApiKeyId => out.extend_from_slice(self.api_key_id.as_bytes()),
            Var::HttpMethod => out.extend_from_slice(self.method),
            Var::Path => out.extend_from_slice(self.path),
            Var::Protocol => out.extend_from_slice(self.protocol.as_bytes()),
            Var::RouteKey => out.extend_from_slice(self.route_key.as_bytes()),
            Var::Stage => out.extend_from_slice(self.stage.as_bytes()),
            Var::ApiId => out.extend_from_slice(self.api_id.as_bytes()),
            Var::DomainName => out.extend_from_slice(self.domain_name),
            Var::Status => {
                let _ = write!(out, "{}", self.status);
            }
            Var::ResponseLength => {
                let _ = write!(out, "{}", self.response_length);
            }
            Var::ResponseLatency => {
                let _ = write!(out, "{}", self.response_latency.as_millis());
            }
            Var::IntegrationLatency => {
                if let Some(d) = self.integration_latency {
                    let _ = write!(out, "{}", d.as_millis());
                }
            }
            Var::IntegrationStatus => {
                if let Some(s) = self.integration_status {
                    let _ = write!(out, "{s}");
                }
            }
            Var::IntegrationError => out.extend_from_slice(self.integration_error.as_bytes()),
            Var::ErrorMessage => out.extend_from_slice(self.error_message.as_bytes()),
            Var::ErrorResponseType => out.extend_from_slice(self.error_response_type.as_bytes()),
            Var::RequestTime => clf_time(out, self.request_time),
            Var::RequestTimeEpoch => {
                let ms = self
                    .request_time
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let _ = write!(out, "{ms}");
            }
            Var::Canary => out.extend_from_slice(if self.canary { b"true" } else { b"false" }),
        }
    }
}

/// API Gateway's `requestTime`: `22/Nov/2026:02:49:38 +0000` (UTC).
pub fn clf_time(out: &mut Vec<u8>, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    let _ = write!(
        out,
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s % 3600 / 60,
        s % 60
    );
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord<'static> {
        LogRecord {
            request_id: b"id-1",
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: b"curl/8 \"quoted\"\n",
            api_key_id: "",
            method: b"GET",
            path: b"/prod/x",
            protocol: "HTTP/1.1",
            route_key: "GET /x",
            stage: "prod",
            api_id: "shop",
            domain_name: b"api.example.com",
            status: 200,
            response_length: 11,
            response_latency: Duration::from_millis(7),
            integration_latency: Some(Duration::from_millis(5)),
            integration_status: Some(200),
            integration_error: "",
            error_message: "",
            error_response_type: "",
            request_time: UNIX_EPOCH + Duration::from_secs(1795315778),
            canary: false,
        }
    }

    #[test]
    fn json_formats_stay_valid_json() {
        let f = LogFormat::compile(
            r#"{"id":"$context.requestId","ua":"$context.identity.userAgent","status":"$context.status","key":"$context.identity.apiKeyId","x":"$context.nope","t":"$context.requestTime","e":$context.requestTimeEpoch}"#,
        );
        let mut out = Vec::new();
        f.render(&mut out, &record());
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["ua"], "curl/8 \"quoted\"\n");
        assert_eq!(v["status"], "200");
        assert_eq!(v["key"], "-");
        assert_eq!(v["x"], "-");
        assert_eq!(v["t"], "22/Nov/2026:02:49:38 +0000");
        assert_eq!(v["e"], 1795315778000u64);
    }

    #[test]
    fn plain_formats_have_no_control_characters() {
        let f = LogFormat::compile("$context.httpMethod $context.path $context.status $context.identity.userAgent ($context.responseLatency ms)");
        let mut out = Vec::new();
        f.render(&mut out, &record());
        assert_eq!(out, b"GET /prod/x 200 curl/8 \"quoted\"  (7 ms)\n");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
    }
}
