//! Unit tests of the scalar parsers behind the decoder.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("29s"), Some(Duration::from_secs(29)));
    assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    for bad in [
        "",
        "abc",
        "s",
        "10x",
        "-1s",
        "1.5s",
        "99999999999999999999h",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("64MiB"), Some(64 << 20));
    assert_eq!(parse_size("10KiB"), Some(10 << 10));
    assert_eq!(parse_size("1GiB"), Some(1 << 30));
    assert_eq!(parse_size("10MB"), Some(10_000_000));
    assert_eq!(parse_size("512KB"), Some(512_000));
    assert_eq!(parse_size("1024"), Some(1024));
    assert_eq!(parse_size("64 MiB"), Some(64 << 20));
    for bad in ["", "MiB", "64mb", "1.5GiB", "-1", "99999999999GiB"] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
}

#[test]
fn env_refs() {
    let env = |name: &str| (name == "A").then(|| "alpha".to_string());
    assert_eq!(
        expand_env("x${env:A}y${env:A}", &env).unwrap(),
        "xalphayalpha"
    );
    assert!(matches!(
        expand_env("plain", &env),
        Ok(Cow::Borrowed("plain"))
    ));
    assert_eq!(
        expand_env("${stageVariables.b}", &env).unwrap(),
        "${stageVariables.b}"
    );
    assert_eq!(
        expand_env("${env:B}/${env:C}", &env).unwrap_err(),
        vec![
            "environment variable B is not set",
            "environment variable C is not set"
        ]
    );
    assert_eq!(
        expand_env("${env:A", &no_env).unwrap_err(),
        vec!["unterminated ${env:...} in \"${env:A\""]
    );
    assert_eq!(
        expand_env("${env:1x}", &no_env).unwrap_err(),
        vec!["\"1x\" is not an environment variable name"]
    );
}

#[test]
fn addresses() {
    assert_eq!(
        parse_socket_addr("127.0.0.1:9001"),
        Some(SocketAddr::from(([127, 0, 0, 1], 9001)))
    );
    assert_eq!(
        parse_socket_addr("localhost:9001"),
        Some(SocketAddr::from(([127, 0, 0, 1], 9001)))
    );
    assert_eq!(parse_socket_addr("[::1]:80").map(|a| a.port()), Some(80));
    for bad in [
        "example.com:80",
        "127.0.0.1",
        "localhost",
        "localhost:x",
        ":80",
    ] {
        assert_eq!(parse_socket_addr(bad), None, "{bad}");
    }
}

#[test]
fn suggestions() {
    let known = ["listen", "tls_listen", "workers"];
    assert_eq!(did_you_mean("lisen", &known), Some("listen"));
    assert_eq!(did_you_mean("worker", &known), Some("workers"));
    assert_eq!(did_you_mean("zzz", &known), None);
}
