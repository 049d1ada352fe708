//! What probes of `check` found it accepting in silence, or saying wrongly: IAM access
//! key IDs no request can present and regions unlike AWS's, values echoed whole in
//! messages, keys written with no value, an admin listener on every address, and the
//! hints about a JSON access-log format.

use std::path::Path;

const ROUTE: &str =
    "apis: { a: { stages: { $default: {} }, routes: { \"GET /\": { integration: { type: mock } } } } }\n";

/// `check`'s errors and warnings for `yaml`, as printed.
fn report(yaml: &str) -> (Vec<String>, Vec<String>) {
    let r = super::check_text_in(yaml, Path::new("."));
    let show = |l: &[super::ConfigError]| l.iter().map(ToString::to_string).collect();
    (show(&r.errors), show(&r.warnings))
}

/// `yaml`'s warnings at key path `at` (`at: …`), with no errors in it.
fn warned_at(yaml: &str, at: &str) -> Vec<String> {
    let (errors, warnings) = report(yaml);
    assert_eq!(errors, Vec::<String>::new(), "{yaml}");
    let at = format!("{at}: ");
    warnings
        .into_iter()
        .filter(|w| w.starts_with(&at))
        .collect()
}

fn iam(principal: &str, region: &str) -> String {
    format!("iam: {{ region: {region}, principals: {{ a: {{ {principal}, secret_access_key: s1, allow: [\"*\"] }} }} }}\n{ROUTE}")
}

/// An access key ID that no SigV4 request can name was accepted (exit 0).
#[test]
fn an_access_key_id_no_request_can_present_is_refused() {
    let at = "iam.principals.a.access_key_id: ";
    for (id, why) in [
        ("\"\"", "is empty: a signed request names its access key ID"),
        (
            "\"AK/1\"",
            "holds '/', which ends the access key ID in a SigV4 credential scope",
        ),
        ("\" AK1\"", "starts or ends with a blank"),
        ("\"AK1\\t\"", "starts or ends with a blank"),
        (
            "\"AK,1\"",
            "holds ',', which ends the Credential parameter of a signed Authorization header: only a presigned URL",
        ),
        (
            "\"AK\\x071\"",
            "holds a control character, which no header can carry",
        ),
    ] {
        let (errors, _) = report(&iam(&format!("access_key_id: {id}"), "us-east-1"));
        assert_eq!(errors.len(), 1, "{id}: {errors:?}");
        assert!(
            errors[0].starts_with(&format!("{at}{why}")),
            "{id}: {errors:?}"
        );
    }
    // `=` and inner blanks reach the check intact (botocore signed with them), and so
    // does a Unicode blank at an end (the header trims only spaces and tabs).
    for id in [
        "AKIAEXAMPLE",
        "my-key_1",
        "12345",
        "\"AK=1\"",
        "\"AK 1\"",
        "\"AK1\\u00a0\"",
    ] {
        let (errors, _) = report(&iam(&format!("access_key_id: {id}"), "us-east-1"));
        assert_eq!(errors, Vec::<String>::new(), "{id}");
    }
}

/// `-5s`, `x` and `US-EAST-1` were accepted as regions; a client signing for a real
/// region gets 403 from such a gateway. A warning (the README gives the region as a
/// name both sides agree on), and text no scope can hold stays an error.
#[test]
fn a_region_unlike_an_aws_one_is_a_warning() {
    let principal = "access_key_id: AK1";
    for region in [
        "-5s",
        "x",
        "US-EAST-1",
        "us-east",
        "us--east-1",
        "us-east-1-",
        "local",
    ] {
        let w = warned_at(&iam(principal, region), "iam.region");
        assert_eq!(w.len(), 1, "{region}: {w:?}");
        let want = format!("iam.region: {region:?} does not look like an AWS region name");
        assert!(w[0].starts_with(&want), "{w:?}");
        assert!(w[0].contains("Credential should be scoped to a valid region"));
    }
    for region in [
        "us-east-1",
        "eu-central-1",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-2",
    ] {
        assert_eq!(
            warned_at(&iam(principal, region), "iam.region"),
            Vec::<String>::new()
        );
    }
    let (errors, warnings) = report(&iam(principal, "\"us east 1\""));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("iam.region: \"us east 1\" is not a region name"));
    assert!(
        !warnings.iter().any(|w| w.starts_with("iam.region")),
        "{warnings:?}"
    );
}

/// A 1 MiB `upgrade.idle_timeout` was echoed whole in "expected a duration …".
#[test]
fn a_long_value_is_echoed_cut_short() {
    let long = "x".repeat(1 << 20);
    let cut = format!("{:?}… (1048576 bytes)", "x".repeat(80));
    for yaml in [
        format!("server: {{ limits: {{ idle_timeout: {long} }} }}\n{ROUTE}"),
        format!("apis: {{ a: {{ stages: {{ $default: {{}} }}, routes: {{ \"GET /\": {{ integration: {{ type: http, upstream: u, upgrade: {{ idle_timeout: {long} }} }} }} }} }} }}\nupstreams: {{ u: {{ targets: [\"127.0.0.1:1\"] }} }}\n"),
        format!("server: {{ workers: {long} }}\n{ROUTE}"),
        // A key, written explicitly: an implicit one is at most 1024 characters.
        format!("server:\n  ? {long}\n  : 1\n{ROUTE}"),
        format!("server: {{ listen: [{long}] }}\n{ROUTE}"),
        format!("admin: {{ listen: {long} }}\n{ROUTE}"),
        format!("apis: {{ a: {{ stages: {{ $default: {{}} }}, routes: {{ \"GET /\": {{ integration: {{ type: http, upstream: {long} }} }} }} }} }}\n"),
        format!("server: {{ workers: 1{} }}\n{ROUTE}", "0".repeat(1 << 20)),
    ] {
        let (errors, _) = report(&yaml);
        assert_eq!(errors.len(), 1, "{:?}", errors.iter().map(|e| &e[..200]).collect::<Vec<_>>());
        assert!(errors[0].len() < 600, "{}…", &errors[0][..600]);
        assert!(
            errors[0].contains(&cut) || errors[0].contains("… (1048577 bytes)"),
            "{}",
            errors[0]
        );
    }
    // Short values are shown whole, as before.
    let (errors, _) = report(&format!(
        "server: {{ limits: {{ idle_timeout: soon }} }}\n{ROUTE}"
    ));
    assert_eq!(
        errors,
        ["server.limits.idle_timeout: expected a duration like 250ms, 29s, 10m, got \"soon\""]
    );
}

/// `cluster: ~` ran a cluster's node alone in silence, and `state_dir: ~` and
/// `admin.listen: ~` took their defaults, while `admin:` alone was a warning.
#[test]
fn a_section_key_with_no_value_is_a_warning() {
    for (yaml, at, says) in [
        (
            "cluster: ~\n",
            "cluster",
            "no cluster (it is read as absent): this node runs alone",
        ),
        ("cluster:\n", "cluster", "no cluster"),
        ("state_dir: ~\n", "state_dir", "the default is used"),
        (
            "admin: { listen: ~, token: t0123456789abcdef }\n",
            "admin.listen",
            "the default address 127.0.0.1:9901 is used",
        ),
        (
            "server: { listen: ~, tls_listen: ~ }\n",
            "server.listen",
            "the default address 127.0.0.1:8080 is used",
        ),
        (
            "server: { tls_listen: ~ }\n",
            "server.tls_listen",
            "no TLS listener",
        ),
        (
            "server: { access_log: ~ }\n",
            "server.access_log",
            "no access log",
        ),
        (
            "server: { access_log: { path: ~ } }\n",
            "server.access_log.path",
            "no access log",
        ),
        (
            "server: { access_log: { path: stdout, format: ~ } }\n",
            "server.access_log.format",
            "the default format is used",
        ),
        (
            "server: { compression: ~ }\n",
            "server.compression",
            "no compression",
        ),
        ("iam: ~\n", "iam", "no IAM principals"),
        (
            "iam: { region: ~ }\n",
            "iam.region",
            "the default region us-east-1 is used",
        ),
        ("watch: ~\n", "watch", "the config file is not watched"),
    ] {
        let w = warned_at(&format!("{yaml}{ROUTE}"), at);
        let want = format!("{at}: written with no value: {says}");
        assert!(w.len() == 1 && w[0].starts_with(&want), "{yaml}: {w:?}");
    }
    // A route cache's `methods: ~` or `statuses: ~` took the defaults in silence, while
    // an empty list is an error.
    for key in ["methods", "statuses"] {
        let yaml = format!("apis: {{ a: {{ stages: {{ $default: {{ cache: {{ capacity: 1MiB }} }} }}, routes: {{ \"GET /\": {{ integration: {{ type: mock }}, cache: {{ {key}: ~ }} }} }} }} }}\n");
        let at = format!("apis.a.routes.\"GET /\".cache.{key}");
        let w = warned_at(&yaml, &at);
        assert!(
            w.len() == 1 && w[0].contains("written with no value: the default is used"),
            "{key}: {w:?}"
        );
    }
    // An upstream's `health:` alone turned checks off, with nothing said.
    let yaml = format!("upstreams: {{ u: {{ targets: [\"127.0.0.1:1\"], health: ~ }} }}\n{ROUTE}");
    let w = warned_at(&yaml, "upstreams.u.health");
    assert!(
        w.len() == 1 && w[0].contains("written with no value: no health checks"),
        "{w:?}"
    );
}

/// `admin.listen: 0.0.0.0:…` said nothing, though /health and /metrics answer there
/// without the token.
#[test]
fn an_admin_listener_on_every_address_is_a_warning() {
    let yaml =
        |addr: &str| format!("admin: {{ listen: \"{addr}\", token: t0123456789abcdef }}\n{ROUTE}");
    for addr in ["0.0.0.0:9901", "[::]:9901", "[::ffff:0.0.0.0]:9901"] {
        let w = warned_at(&yaml(addr), "admin.listen");
        assert_eq!(w.len(), 1, "{addr}: {w:?}");
        assert!(
            w[0].contains(
                "listens on every address of this host: /health and /metrics answer anyone"
            ),
            "{w:?}"
        );
    }
    for addr in [
        "127.0.0.1:9901",
        "10.0.0.5:9901",
        "192.168.1.2:9901",
        "[::1]:9901",
        "localhost:9901",
    ] {
        assert_eq!(
            warned_at(&yaml(addr), "admin.listen"),
            Vec::<String>::new(),
            "{addr}"
        );
    }
}

/// The access log's JSON hints: "put each $context variable in quotes" was said of a
/// template whose variables all were, and "an empty value is logged as -" of a variable
/// whose value is never JSON unquoted.
#[test]
fn json_access_log_hints_say_what_is_wrong() {
    let at = "server.access_log.format: it starts with {, so lines are meant to be JSON, but ";
    let hint = |format: &str| -> String {
        let yaml =
            format!("server: {{ access_log: {{ path: stdout, format: '{format}' }} }}\n{ROUTE}");
        let w = warned_at(&yaml, "server.access_log.format");
        assert_eq!(w.len(), 1, "{format}: {w:?}");
        assert!(w[0].starts_with(at), "{w:?}");
        w[0][at.len()..].to_string()
    };
    let broken = "the text around the variables is not JSON, whatever their values: see its braces, commas and quotes";
    // Not JSON whatever the values: no word of quotes.
    let got = hint(r#"{"a":"$context.status""#);
    assert!(got.starts_with("not JSON: EOF while parsing"), "{got}");
    assert!(got.ends_with(&format!(": {broken}")), "{got}");
    assert!(!got.contains("in quotes"), "{got}");
    // A date text unquoted.
    let got = hint(r#"{"b": $context.requestTime}"#);
    assert_eq!(got, "$context.requestTime is outside quotes: $context.requestTime is a date text (22/Nov/2026:02:49:38 +0000), which is not JSON unquoted; put each $context variable in quotes");
    let got = hint(r#"{"p": ${context.path}}"#);
    assert!(got.ends_with(": ${context.path} is text, which is not JSON unquoted; put each $context variable in quotes"), "{got}");
    // A number that may be empty, as before; and after a number that is always there.
    let number = ": an empty value is logged as -; put each $context variable in quotes";
    for format in [
        r#"{"l": $context.integrationLatency}"#,
        r#"{"t": $context.requestTimeEpoch, "l": $context.integration.latency}"#,
    ] {
        assert!(hint(format).ends_with(number), "{format}");
    }
    // Outside quotes, and broken besides: both.
    let got = hint(r#"{"l": $context.requestId"#);
    assert!(
        got.ends_with(&format!(
            "put each $context variable in quotes, and even then {broken}"
        )),
        "{got}"
    );
    // messageString in quotes, and the rest broken.
    let got = hint(r#"{"e":"$context.error.messageString""#);
    assert!(
        got.ends_with(&format!("remove the ones around it, and also {broken}")),
        "{got}"
    );
    // messageString in quotes, and a text variable outside them.
    let got = hint(r#"{"e":"$context.error.messageString","t":$context.requestTime}"#);
    assert!(got.ends_with("remove the ones around it, and put each other $context variable in quotes ($context.requestTime is a date text (22/Nov/2026:02:49:38 +0000), which is not JSON unquoted)"), "{got}");
}
