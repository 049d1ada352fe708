//! Parsers for command-line values: durations, target URLs, CPU lists, headers.
//! Pure functions, tested below.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// `250ms`, `10s`, `1m`, `2h`, `1.5s`, `100us`; a bare number means seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{s}`: expected e.g. 500ms, 10s, 1m"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("invalid duration unit `{other}` in `{s}`")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration `{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A target: where to connect, what to put in `Host`, and the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://`: TLS (as `--tls`).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Value of the Host header: the authority as written in the URL.
    pub authority: String,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Target {
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.host))
    }
}

/// `http://host[:port][/path?query]`, `https://…` (port 443 by default) or `host:port/…`.
pub fn url(s: &str) -> Result<Target, String> {
    let (rest, tls) = if let Some(r) = s.strip_prefix("http://") {
        (r, false)
    } else if let Some(r) = s.strip_prefix("https://") {
        (r, true)
    } else if s.contains("://") {
        return Err(format!(
            "unsupported scheme in `{s}`: use http:// or https://"
        ));
    } else {
        (s, false)
    };
    let default_port = if tls { 443 } else { 80 };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let path = match path.find('#') {
        Some(i) => path[..i].to_string(),
        None => path,
    };
    if authority.is_empty() {
        return Err(format!("no host in `{s}`"));
    }
    if authority.contains('@') {
        return Err(format!("credentials in the URL are not supported: `{s}`"));
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let end = inner
            .find(']')
            .ok_or_else(|| format!("unclosed `[` in `{s}`"))?;
        let host = format!("[{}]", &inner[..end]);
        match &inner[end + 1..] {
            "" => (host, default_port),
            p => (host, port(p.strip_prefix(':').unwrap_or("x"), s)?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), port(p, s)?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in `{s}`"));
    }
    Ok(Target {
        tls,
        host,
        port,
        authority: authority.to_string(),
        path,
    })
}

fn port(p: &str, url: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("invalid port `{p}` in `{url}`"))
}

/// A `--cpus` value; a newtype so that clap takes it as one value, not many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

pub fn cpu_list(s: &str) -> Result<CpuList, String> {
    cpus(s).map(CpuList)
}

/// `1`, `0,1`, `0-3`, `0,2-3`.
pub fn cpus(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid cpu list `{s}`: expected e.g. 1, 0,1 or 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(format!("empty cpu list `{s}`"));
    }
    out.dedup();
    Ok(out)
}

/// `name: value` → (name, value), both trimmed.
pub fn header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("invalid header `{s}`: expected `name: value`"))?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(format!("invalid header name in `{s}`"));
    }
    if value.contains(['\r', '\n']) {
        return Err(format!("invalid header value in `{s}`"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("250us"), Ok(Duration::from_micros(250)));
        assert!(duration("").is_err());
        assert!(duration("s").is_err());
        assert!(duration("10x").is_err());
        assert!(duration("0s").is_err());
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn urls() {
        let t = url("http://127.0.0.1:8080/path?q=1").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/path?q=1");

        let t = url("http://localhost").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("localhost", 80, "/")
        );

        let t = url("127.0.0.1:9000").unwrap();
        assert_eq!((t.port, t.path.as_str()), (9000, "/"));

        let t = url("http://[::1]:8080/a#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("[::1]", 8080, "/a")
        );
        assert_eq!(t.resolve().unwrap(), "[::1]:8080".parse().unwrap());

        let t = url("http://h:1?x").unwrap();
        assert_eq!(t.path, "/?x");

        let t = url("https://bench.local/x").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "bench.local", 443));
        let t = url("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            (t.tls, t.port, t.authority.as_str()),
            (true, 8443, "127.0.0.1:8443")
        );
        assert!(!url("http://127.0.0.1/").unwrap().tls);

        assert!(url("ftp://x/").is_err());
        assert!(url("http://:80/").is_err());
        assert!(url("http://host:port/").is_err());
        assert!(url("http://host:70000/").is_err());
        assert!(url("http:///x").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpus("1"), Ok(vec![1]));
        assert_eq!(cpus("0,1"), Ok(vec![0, 1]));
        assert_eq!(cpus("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(cpus("").is_err());
        assert!(cpus("a").is_err());
        assert!(cpus("3-1").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(
            header("X-Api-Key:  abc "),
            Ok(("X-Api-Key".into(), "abc".into()))
        );
        assert_eq!(header("a:"), Ok(("a".into(), "".into())));
        assert!(header("novalue").is_err());
        assert!(header("bad name: v").is_err());
        assert!(header("x: a\r\nb").is_err());
    }
}
