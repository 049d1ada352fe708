//! `portico check`: the shipped configs pass, and a file with several mistakes gets
//! every error at once, each with its key path (decode errors and cross-reference errors
//! alike); a missing file fails.

mod cli_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::{assert_lines, FOUR_ERRORS, FOUR_MISTAKES};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn check_accepts_the_shipped_configs() {
    let mut files = vec![Path::new(MANIFEST_DIR).join("config/portico.yaml")];
    let examples = Path::new(MANIFEST_DIR).join("config/examples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no examples in {}", examples.display());
    files.extend(found);
    for file in files {
        let out = Command::new(BIN)
            .args(["check", "-c"])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}:\n{text}", file.display());
        assert!(text.contains("ok"), "{}: {text}", file.display());
    }
}

#[test]
fn check_lists_every_error_at_once() {
    let (code, text) = check(&FOUR_MISTAKES.replace("{PORT}", "18080"));
    assert_eq!(code, 1, "{text}");
    assert_lines(&text, &FOUR_ERRORS, "check");
    assert!(text.contains("4 error(s)"), "{text}");
}

#[test]
fn check_lists_every_decode_error() {
    let yaml = r#"server:
  listen: ["127.0.0.1:18080"]
  colour: blue
  limits: { header_timeout: tenseconds, idle_timeout: 5 minutes }
apis:
  shop:
    stages:
      $default: {}
    routes:
      "GET /x":
        integration: { type: mock, status: 200, body: "x", timout: 2s }
"#;
    let (code, text) = check(yaml);
    assert_eq!(code, 1, "{text}");
    assert_lines(
        &text,
        &[
            FOUR_ERRORS[0],
            FOUR_ERRORS[1],
            r#"server.limits.idle_timeout: expected a duration like 250ms, 29s, 10m, got "5 minutes""#,
        ],
        "check",
    );
    assert!(
        text.lines().any(
            |l| l.starts_with(r#"apis.shop.routes."GET /x".integration: unknown key "timout""#)
        ),
        "{text}"
    );
    assert!(text.contains("4 error(s)"), "{text}");
}

#[test]
fn check_lists_every_reference_error() {
    let yaml = r#"server:
  listen: ["127.0.0.1:18080"]
upstreams:
  real: { targets: ["127.0.0.1:9"] }
apis:
  shop:
    stages:
      $default: {}
      prod: {}
    routes:
      "GET /x":
        integration: { type: http, upstream: nope }
      "GET /z":
        integration: { type: http, upstream: real, path: "/z/{id}" }
  other:
    stages:
      $default: {}
      prod: {}
    routes:
      "GET /y":
        integration: { type: mock, status: 200, body: "y" }
"#;
    let (code, text) = check(yaml);
    assert_eq!(code, 1, "{text}");
    assert_lines(
        &text,
        &[
            FOUR_ERRORS[2],
            FOUR_ERRORS[3],
            r#"apis.other.stages.prod: base path /prod on the default endpoint already belongs to API "shop""#,
            r#"apis.shop.routes."GET /z".integration.path: {id} is not a parameter of the route key"#,
        ],
        "check",
    );
    assert!(text.contains("4 error(s)"), "{text}");
}

#[test]
fn check_on_a_missing_file_fails() {
    let out = Command::new(BIN)
        .args(["check", "-c", "/nonexistent/portico.yaml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot read config file /nonexistent/portico.yaml"),
        "{text}"
    );
}

#[test]
fn output_cut_short_by_its_reader_is_not_a_panic() {
    // `portico routes | head`: the reader goes away before all is written.
    let dir = temp_dir("cli-pipe");
    let mut yaml = String::from(
        "server: { listen: [\"127.0.0.1:1\"] }\napis:\n  app:\n    stages: { $default: {} }\n    routes:\n",
    );
    for i in 0..3000 {
        yaml.push_str(&format!(
            "      \"GET /r{i}\": {{ integration: {{ type: mock }} }}\n"
        ));
    }
    let file = dir.join("big.yaml");
    std::fs::write(&file, yaml).unwrap();
    for args in [&["routes"][..], &["routes", "--json"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// A config that needs the state store (API keys), with its `state_dir` at `state`.
fn config_with_state_dir(state: &str) -> String {
    format!(
        r#"state_dir: "{state}"
server: {{ listen: ["127.0.0.1:{}"] }}
apis:
  demo:
    stages: {{ $default: {{}} }}
    routes:
      "GET /": {{ integration: {{ type: mock }}, api_key_required: true }}
usage_plans:
  basic: {{ stages: [demo/$default] }}
api_keys:
  - {{ name: k1, value: "abcdefghijklmnopqrstuvwxyz", plan: basic }}
"#,
        free_port()
    )
}

#[test]
fn check_refuses_a_state_dir_under_a_file() {
    let dir = temp_dir("check-state-dir");
    std::fs::write(dir.join("afile"), "").unwrap();
    let state = dir.join("afile/state");
    let yaml = config_with_state_dir(&state.display().to_string());
    // An error, not a warning: `run` stops whichever user it runs as.
    let (code, text) = check(&yaml);
    assert_eq!(code, 1, "{text}");
    let want = format!(
        "state_dir: {}: {} is not a directory: `run` would stop at startup",
        state.display(),
        dir.join("afile").display()
    );
    assert!(
        text.lines()
            .any(|l| l.ends_with(&want) && !l.contains("warning")),
        "{text}"
    );
    // And `run` refuses the file, saying why.
    let file = dir.join("portico.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&want), "{err}");
    // A config that needs no store says nothing of it.
    let plain = yaml
        .split("usage_plans:")
        .next()
        .unwrap()
        .replace(", api_key_required: true", "");
    let (code, text) = check(&plain);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("state_dir"), "{text}");
}

/// A `state_dir` that is a symbolic link to nothing passed `check` (`exists` follows the
/// link), then `run` stopped ("cannot create the state directory …: File exists"); an
/// empty one passed and put the store beside the config file, not in the default.
#[test]
fn check_refuses_a_dangling_symlink_or_empty_state_dir() {
    let dir = temp_dir("check-state-link");
    let link = dir.join("state");
    std::os::unix::fs::symlink(dir.join("gone"), &link).unwrap();
    for state in [link.clone(), link.join("under")] {
        let (code, text) = check(&config_with_state_dir(&state.display().to_string()));
        assert_eq!(code, 1, "{text}");
        let want = format!(
            "state_dir: {}: {} is a symbolic link to nothing: `run` would stop at startup",
            state.display(),
            link.display()
        );
        assert!(
            text.lines()
                .any(|l| l.ends_with(&want) && !l.contains("warning")),
            "{text}"
        );
    }
    let (code, text) = check(&config_with_state_dir(""));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("state_dir: is empty: give a directory, or remove the key"),
        "{text}"
    );
}

/// An admin token no request can present is an error: the router compares the
/// Authorization value with its outer blanks trimmed, so ` tok`, `tok\n` (an
/// `${env:NAME}` set from a file) or a blank token locked every admin route while check
/// said ok.
#[test]
fn an_admin_token_no_request_can_present_is_an_error() {
    let config = temp_dir("admin-token").join("portico.yaml");
    let run = |token: &str, env: &str| {
        std::fs::write(
            &config,
            format!("admin: {{ listen: \"127.0.0.1:9\", token: {token} }}\napis:\n  a:\n    stages: {{ s: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock }} }}\n"),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["check", "-c"])
            .arg(&config)
            .env("PORTICO_TEST_TOKEN", env)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    for (token, env, why) in [
        (
            "\"${env:PORTICO_TEST_TOKEN}\"",
            "secret-token-0123456789\n",
            "holds a control character",
        ),
        (
            "\" secret-token-0123456789\"",
            "",
            "starts or ends with a blank",
        ),
        (
            "\"secret-token-0123456789 \"",
            "",
            "starts or ends with a blank",
        ),
        ("\"   \"", "", "is blank"),
    ] {
        let (code, text) = run(token, env);
        assert_eq!(code, Some(1), "{token}: {text}");
        assert!(
            text.contains(&format!(
                "admin.token: {why}: no presented token can match it"
            )),
            "{token}: {text}"
        );
    }
    // Blanks inside are sent and compared as they are.
    let (code, text) = run("\"secret token 0123456789\"", "");
    assert_eq!(code, Some(0), "{text}");
    let _ = std::fs::remove_dir_all(config.parent().unwrap());
}

/// Flow collections nested far past the parser's 128 levels are refused at once: the
/// parser reads every event before its limit applies, in time that grows with the square
/// of the depth (`[[[…]]]` 100,000 deep held check for minutes). Brackets in quoted
/// scalars and comments are not nesting.
#[test]
fn deeply_nested_flow_collections_are_refused_at_once() {
    let dir = temp_dir("deep-yaml");
    let n = 300_000;
    let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let run = |args: &[&str], file: &Path| {
        let mut child = Command::new(BIN)
            .args(args)
            .arg(file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{args:?} {} still running after 60 s", file.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let config = dir.join("deep.yaml");
    std::fs::write(
        &config,
        format!("apis:\n  a:\n    stages: {{ s: {{}} }}\n    models:\n      D: {deep}\n"),
    )
    .unwrap();
    let (code, text) = run(&["check", "-c"], &config);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "recursion limit exceeded at line 5 column 1006: values nested more than 128 deep"
        ),
        "{text}"
    );
    let doc = dir.join("deep-openapi.yaml");
    std::fs::write(
        &doc,
        format!("openapi: 3.0.1\ninfo: {{ title: d, version: \"1\" }}\npaths: {{}}\ncomponents: {{ schemas: {{ D: {deep} }} }}\n"),
    )
    .unwrap();
    let (code, text) = run(&["openapi", "import"], &doc);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("recursion limit exceeded"), "{text}");

    // Brackets in quoted scalars, block scalars' comments and comments don't nest.
    let many = "[".repeat(2000);
    let fine = dir.join("fine.yaml");
    std::fs::write(
        &fine,
        format!(
            "# {many}\napis:\n  a:\n    stages: {{ s: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock, body: \"{many}\" }} }}\n      \"GET /y\": {{ integration: {{ type: mock, body: '{many}' }} }}  # {many}\n"
        ),
    )
    .unwrap();
    let (code, text) = run(&["check", "-c"], &fine);
    assert_eq!(code, Some(0), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `h2c` among an integration's upgrade protocols lets a client tunnel any HTTP/2
/// request to the backend past the API's routes and authorizers ("h2c smuggling"): check
/// warns at that list entry (any case), and says nothing for websocket alone.
#[test]
fn check_warns_when_an_upgrade_lists_h2c() {
    let yaml = |protocols: &str| {
        format!(
            r#"server: {{ listen: ["127.0.0.1:{}"] }}
upstreams:
  app: {{ targets: ["127.0.0.1:9"] }}
apis:
  demo:
    stages: {{ $default: {{}} }}
    routes:
      "GET /live":
        integration: {{ type: http, upstream: app, upgrade: {{ protocols: {protocols} }} }}
"#,
            free_port()
        )
    };
    let (code, text) = check(&yaml("[websocket, H2C]"));
    assert_eq!(code, 0, "a warning, not an error: {text}");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                "warning: apis.demo.routes.\"GET /live\".integration.upgrade.protocols[1]: ",
            )
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("h2c smuggling"), "{line}");
    assert!(line.contains("authorizers"), "{line}");
    let (code, text) = check(&yaml("[websocket]"));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("h2c"), "{text}");
}

/// Only `http` integrations are cached, and only in stages with a `cache`: a route's
/// `cache` on a mock or Lambda route, or in an API none of whose stages has one, stores
/// nothing, and check says so at that route's `cache` (config/examples/cluster.yaml had one
/// on a mock route, and nothing told its reader the cache never filled).
#[test]
fn check_warns_when_a_cache_is_on_a_route_that_is_never_cached() {
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{}"] }}
upstreams:
  app: {{ targets: ["127.0.0.1:9"] }}
apis:
  demo:
    stages: {{ $default: {{ cache: {{ capacity: 1MiB }} }}, beta: {{}} }}
    routes:
      "GET /mock": {{ integration: {{ type: mock, body: hi }}, cache: {{ ttl: 30s }} }}
      "GET /fn": {{ integration: {{ type: lambda, url: "http://127.0.0.1:9/f" }}, cache: {{}} }}
      "GET /http": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "GET /off": {{ integration: {{ type: mock }}, cache: {{ ttl: 0s }} }}
  nocache:
    stages: {{ prod: {{}} }}
    routes:
      "GET /http": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
"#,
        free_port()
    );
    let (code, text) = check(&yaml);
    assert_eq!(code, 0, "a warning, not an error: {text}");
    for route in ["GET /mock", "GET /fn"] {
        let want = format!(
            "warning: apis.demo.routes.\"{route}\".cache: not used: only http integrations are cached"
        );
        assert!(text.contains(&want), "{want}\nin\n{text}");
    }
    let want = "warning: apis.nocache.routes.\"GET /http\".cache: not used: no stage of this API has a cache";
    assert!(text.contains(want), "{want}\nin\n{text}");
    assert_eq!(text.matches("not used").count(), 3, "{text}");
}

/// A HEAD answer is never stored and a `HEAD` route's requests never read its `GET`
/// route's entries; `methods` names the methods whose answers are stored: a route
/// `cache` that none of the route's requests can fill stores nothing, and check says so.
#[test]
fn check_warns_when_a_route_cache_is_filled_by_none_of_its_methods() {
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{}"] }}
upstreams:
  app: {{ targets: ["127.0.0.1:9"] }}
apis:
  demo:
    stages: {{ $default: {{ cache: {{ capacity: 1MiB }} }} }}
    routes:
      "GET /h": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "HEAD /h": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "GET /post": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [POST] }} }}
      "GET /head": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [HEAD] }} }}
      "POST /p": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "ANY /a": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [HEAD] }} }}
      "POST /ok": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [POST] }} }}
      "ANY /ok": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [PUT] }} }}
      "GET /ok": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [GET, HEAD] }} }}
      $default: {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
"#,
        free_port()
    );
    let (code, text) = check(&yaml);
    assert_eq!(code, 0, "a warning, not an error: {text}");
    for (at, what) in [
        (r#""HEAD /h".cache"#, "a HEAD route stores nothing"),
        (
            r#""GET /post".cache.methods"#,
            "lists none of the methods whose answers this route stores (GET;",
        ),
        (
            r#""GET /head".cache.methods"#,
            "lists none of the methods whose answers this route stores (GET;",
        ),
        (
            r#""POST /p".cache"#,
            "`methods` defaults to [GET] and this is a POST route",
        ),
        (
            r#""ANY /a".cache.methods"#,
            "lists none of the methods whose answers this route stores (any method but HEAD;",
        ),
    ] {
        let want = format!("warning: apis.demo.routes.{at}: not used: {what}");
        assert!(text.contains(&want), "{want}\nin\n{text}");
    }
    assert_eq!(text.matches("not used").count(), 5, "{text}");
    // And the GET route's: its HEAD requests go to the HEAD route, never to its cache.
    let want = r#"warning: apis.demo.routes."GET /h".cache: HEAD requests for this route's paths go to route "HEAD /h""#;
    assert!(text.contains(want), "{want}\nin\n{text}");
}

/// An API's name is its id in `api/stage` references, ARNs and `$context.apiId`: check
/// refuses one that is not letters, digits, `_`, `-` and `.` (`a/b` was accepted, and a
/// domain mapping `a/b/prod` then got "no API named \"a\"").
#[test]
fn check_refuses_api_names_that_references_cannot_name() {
    let yaml = |name: &str| {
        format!(
            "server: {{ listen: [\"127.0.0.1:{}\"] }}\napis:\n  {name:?}:\n    stages: {{ prod: {{}} }}\n    routes: {{ \"GET /p\": {{ integration: {{ type: mock }} }} }}\n",
            free_port()
        )
    };
    for name in ["a/b", "a b", "", "a*"] {
        let (code, text) = check(&yaml(name));
        assert_eq!(code, 1, "{name:?}: {text}");
        let want = format!("apis.{name:?}: API names are letters, digits, _, - and .");
        assert!(text.contains(&want), "{want}\nin\n{text}");
    }
    for name in ["shop", "users_v2", "orders-api", "api.v1"] {
        let (code, text) = check(&yaml(name));
        assert_eq!(code, 0, "{name:?}: {text}");
    }
}

/// A TRUSTED CERTIFICATE block (openssl x509 -trustout) in a domain's cert chain was
/// skipped by the PEM reader, so the chain went out without it, unsaid: it is an error
/// naming the block, as in a CA file. The file's own key (and the EC PARAMETERS
/// `openssl ecparam -genkey` writes before it) may sit there, as nginx reads it.
#[test]
fn check_refuses_a_trusted_certificate_block_in_a_cert_chain() {
    let dir = temp_dir("check-trusted-chain");
    let ca = common::tls::Ca::new("Chain CA");
    let leaf = ca.server_cert(&["a.test"]);
    let ca_pem = ca.write(&dir, "ca");
    let trusted = dir.join("trusted.pem");
    let status = Command::new("openssl")
        .args(["x509", "-trustout", "-addtrust", "serverAuth", "-in"])
        .arg(&ca_pem)
        .arg("-out")
        .arg(&trusted)
        .status()
        .unwrap();
    assert!(status.success());
    let trusted = std::fs::read_to_string(&trusted).unwrap();
    let params = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
    let key = dir.join("a.key");
    std::fs::write(&key, leaf.key_pem()).unwrap();
    let yaml = |chain: &Path| {
        format!(
            "server: {{ listen: [\"127.0.0.1:{}\"], tls_listen: [\"127.0.0.1:{}\"] }}\napis:\n  shop:\n    stages: {{ prod: {{}} }}\n    routes: {{ \"GET /\": {{ integration: {{ type: mock }} }} }}\ndomains:\n  a.test: {{ cert: {}, key: {}, mappings: {{ \"\": shop/prod }} }}\n",
            free_port(),
            free_port(),
            chain.display(),
            key.display()
        )
    };
    let chain = dir.join("chain.pem");
    std::fs::write(&chain, leaf.cert_pem() + &trusted).unwrap();
    let (code, text) = check(&yaml(&chain));
    assert_eq!(code, 1, "{text}");
    let want = format!(
        "domains.\"a.test\".cert: {}: PEM block 2 (TRUSTED CERTIFICATE) is no certificate Portico reads (openssl x509 -trustout): convert the file with `openssl crl2pkcs7",
        chain.display()
    );
    assert!(text.contains(&want), "{want}\nin\n{text}");
    // Any other block that is no certificate, and no key, is named too.
    let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
    std::fs::write(&chain, leaf.chain_pem() + csr).unwrap();
    let (code, text) = check(&yaml(&chain));
    assert_eq!(code, 1, "{text}");
    let want = "PEM block 3 (CERTIFICATE REQUEST) is no certificate: a cert file holds the domain's certificate, its chain, and at most its key";
    assert!(text.contains(want), "{want}\nin\n{text}");
    // Its chain and its key, the key's EC parameters first, are what it may hold.
    let whole = leaf.chain_pem() + params + &leaf.key_pem();
    std::fs::write(&chain, whole).unwrap();
    let (code, text) = check(&yaml(&chain));
    assert_eq!(code, 0, "{text}");
}
