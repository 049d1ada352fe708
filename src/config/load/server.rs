//! `server:` (listeners, limits, access log, compression, throttle) and `admin:`.

use super::*;
use crate::config::decode::shown;

pub(super) fn server(d: &mut Decoder, v: &Value, p: &KeyPath) -> Server {
    let f = d.fields(v, p, SERVER_KEYS);
    let mut s = Server::default();
    f.set(d, "listen", &mut s.listen, Decoder::addrs);
    f.set(d, "tls_listen", &mut s.tls_listen, Decoder::addrs);
    s.default_domain = f.opt(d, "default_domain", Decoder::string);
    f.set(d, "redirect_https", &mut s.redirect_https, Decoder::bool);
    f.set(d, "workers", &mut s.workers, workers);
    f.set(d, "driver", &mut s.driver, |d, v, p| {
        use DriverChoice::*;
        d.choice(
            v,
            p,
            &[("auto", Auto), ("io_uring", IoUring), ("epoll", Epoll)],
        )
    });
    f.set(d, "limits", &mut s.limits, |d, v, p| Some(limits(d, v, p)));
    f.set(d, "access_log", &mut s.access_log, |d, v, p| {
        Some(access_log(d, v, p))
    });
    f.set(d, "throttle", &mut s.throttle, throttle);
    s.compression = f.opt(d, "compression", compression).flatten();
    s
}

/// `auto` or a count of workers (how many is `validate`'s). Its own message: "a whole
/// number ≥ 0" named neither `auto` nor that 0 is refused.
fn workers(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Workers> {
    let max = crate::config::validate::MAX_WORKERS;
    let expected = format!("auto or a number of workers, 1 to {max}");
    let count = |n: u64| Some(Workers::Count(usize::try_from(n).unwrap_or(usize::MAX)));
    match v {
        Value::String(w) if w == "auto" => return Some(Workers::Auto),
        Value::Number(n) if n.as_u64().is_some() => return n.as_u64().and_then(count),
        Value::String(w) if w.contains("${env:") => {
            let text = d.parsed_text(v, p)?;
            if text == "auto" {
                return Some(Workers::Auto);
            }
            if let Ok(n) = text.trim().parse::<u64>() {
                return count(n);
            }
            d.error(p, format!("expected {expected}, got {}", shown(&text)));
            return None;
        }
        _ if crate::config::yaml::big_int(v).is_some() => {
            d.out_of_range(p, &expected, v);
            return None;
        }
        _ => {}
    }
    let quoted = matches!(v, Value::String(s) if s.trim().parse::<u64>().is_ok());
    let hint = if quoted {
        " (write a number without quotes)"
    } else {
        ""
    };
    let got = crate::config::decode::describe(v);
    d.error(p, format!("expected {expected}, got {got}{hint}"));
    None
}

/// `compression: off`, or a map of settings (every key optional).
pub(super) fn compression(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Option<Compression>> {
    if matches!(v, Value::Bool(false)) || matches!(v, Value::String(s) if s == "off") {
        return Some(None);
    }
    if !matches!(v, Value::Mapping(_)) {
        d.error(
            p,
            "expected off or a map (min_size, types, algorithms, max_streams)",
        );
        return None;
    }
    let f = d.fields(v, p, &["min_size", "types", "algorithms", "max_streams"]);
    let mut c = Compression::default();
    f.set(d, "min_size", &mut c.min_size, Decoder::size);
    f.set(d, "max_streams", &mut c.max_streams, Decoder::u64);
    if let Some((v, p)) = f.get("types") {
        let types = d.list_of(v, &p, |d, v, p| {
            let t = d.parsed_text(v, p)?.to_ascii_lowercase();
            let valid = t.split_once('/').is_some_and(|(a, b)| {
                let token = crate::http1::parse::is_token;
                token(a) && a != "*" && (b == "*" || token(b))
            });
            if !valid {
                d.error(
                    p,
                    format!(
                        "expected a media type like application/json or text/*, got {}",
                        shown(&t)
                    ),
                );
                return None;
            }
            Some(t)
        });
        if written_empty(v) {
            d.error(&p, "lists no media type");
        }
        c.types = types;
    }
    if let Some((v, p)) = f.get("algorithms") {
        let algorithms = d.list_of(v, &p, |d, v, p| {
            d.choice(v, p, &[("gzip", Coding::Gzip), ("br", Coding::Br)])
        });
        if written_empty(v) {
            d.error(&p, "lists no algorithm (gzip, br)");
        }
        for (i, a) in algorithms.iter().enumerate() {
            if algorithms[..i].contains(a) {
                d.error(&p, format!("lists {} twice", a.token()));
            }
        }
        c.algorithms = algorithms;
    }
    Some(Some(c))
}

/// A list written with no item: one whose items all failed to decode has each error at
/// its item already, and one that is no list at all has its type error.
fn written_empty(v: &Value) -> bool {
    match v {
        Value::Sequence(items) => items.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

pub(super) fn limits(d: &mut Decoder, v: &Value, p: &KeyPath) -> Limits {
    let f = d.fields(v, p, LIMITS_KEYS);
    let mut l = Limits::default();
    f.set(
        d,
        "max_header_bytes",
        &mut l.max_header_bytes,
        Decoder::usize_size,
    );
    f.set(d, "max_body_bytes", &mut l.max_body_bytes, Decoder::size);
    f.set(
        d,
        "request_buffer_bytes",
        &mut l.request_buffer_bytes,
        Decoder::size,
    );
    f.set(
        d,
        "max_buffered_bodies_bytes",
        &mut l.max_buffered_bodies_bytes,
        Decoder::size,
    );
    f.set(
        d,
        "header_timeout",
        &mut l.header_timeout,
        Decoder::duration,
    );
    f.set(d, "idle_timeout", &mut l.idle_timeout, Decoder::duration);
    f.set(d, "drain_timeout", &mut l.drain_timeout, Decoder::duration);
    f.set(d, "send_timeout", &mut l.send_timeout, Decoder::duration);
    l
}

pub(super) fn access_log(d: &mut Decoder, v: &Value, p: &KeyPath) -> AccessLog {
    let f = d.fields(v, p, &["path", "format"]);
    let mut log = AccessLog::default();
    f.set(d, "path", &mut log.path, |d, v, p| match v {
        // YAML 1.1 habits: `off` written as `false` means the same thing.
        Value::Bool(false) => Some(LogPath::Off),
        _ => match d.parsed_text(v, p)?.as_str() {
            "stdout" => Some(LogPath::Stdout),
            "off" => Some(LogPath::Off),
            "" => {
                d.error(p, "expected stdout, off or a file path, got \"\"");
                None
            }
            file => Some(LogPath::File(PathBuf::from(file))),
        },
    });
    f.set(d, "format", &mut log.format, Decoder::string);
    log
}

pub(super) fn admin(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Admin> {
    let f = d.fields(v, p, &["listen", "token"]);
    // Loopback by default: the admin API can create keys, it is not for the world.
    let listen = f
        .opt(d, "listen", Decoder::socket_addr)
        .unwrap_or(DEFAULT_ADMIN_LISTEN.into());
    // A number or boolean is its text as written, as an API key's value: a type error
    // would print the secret (`expected a string, got 9081726354091827364`).
    let token = f.opt(d, "token", Decoder::text);
    Some(Admin { listen, token })
}

/// `{rate, burst}`, or `off` (also `false`) for no limit at this level: Some(None).
pub(super) fn throttle(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Option<Throttle>> {
    match v {
        Value::Bool(false) => return Some(None),
        Value::String(_) => {
            let s = d.parsed_text(v, p)?;
            if s == "off" {
                return Some(None);
            }
            d.error(
                p,
                format!("expected off or {{ rate: N, burst: N }}, got {}", shown(&s)),
            );
            return None;
        }
        _ => {}
    }
    let f = d.fields(v, p, &["rate", "burst"]);
    // Checked here, not in validation: a bad burst makes the throttle absent, and a bad
    // rate must still be reported with it.
    let rate = f.need(d, "rate", |d, v, p| {
        let rate = d.f64(v, p)?;
        // Rate 0 is a valid way to block; negative or NaN is a typo.
        if rate.is_finite() && rate >= 0.0 {
            return Some(rate);
        }
        // `.inf` reads as "no limit", which README spells as a rate of 1e9 or more.
        let message = match rate == f64::INFINITY {
            true => "must be a finite number ≥ 0 (for no limit, 1e9 or more, or throttle: off)",
            false => "must be a number ≥ 0",
        };
        d.error(p, format!("{message}, got {rate}"));
        None
    });
    let burst = f.need(d, "burst", Decoder::u64);
    Some(Some(Throttle {
        rate: rate?,
        burst: burst?,
    }))
}
