//! `cluster.redis` as `check` and `run` see it: an address redis-rs cannot use is an
//! error at its key path (it passed, and the node served with Redis down for good),
//! without the password in the message; the forms redis-rs takes pass.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn with_redis(url: &str) -> String {
    format!("cluster: {{ redis: '{url}', node: n1 }}\n")
}

#[test]
fn an_unusable_redis_address_is_an_error_at_its_key_path() {
    for url in [
        "redis://127.0.0.1:notaport",
        "redis://127.0.0.1:99999",
        "redis://127.0.0.1:6379/abc",
        "redis://:sec/ret@127.0.0.1:6379",
        "redis://127.0.0.1:0",
        "redis://a host:6379",
    ] {
        let (code, out) = check(&with_redis(url));
        assert_eq!(code, 1, "{url}: {out}");
        assert!(out.contains("cluster.redis: "), "{url}: {out}");
        assert!(
            !out.contains("sec/ret") && !out.contains("ret@"),
            "{url}: {out}"
        );
    }
    let (_, out) = check(&with_redis("redis://:sec/ret@127.0.0.1:6379"));
    assert!(out.contains("percent-encoded"), "{out}");
}

#[test]
fn the_redis_address_forms_redis_rs_takes_pass() {
    for url in [
        "redis://127.0.0.1:1",
        "redis://127.0.0.1",
        "redis://[::1]:1",
        "redis://127.0.0.1:1/3",
        "redis://user:p%2Fw%40rd%23@127.0.0.1:1/2",
        "redis://:pw@localhost:1",
    ] {
        let (code, out) = check(&with_redis(url));
        // Unreachable (port 1): a warning, not an error.
        assert_eq!(code, 0, "{url}: {out}");
        assert!(!out.contains("pw") && !out.contains("p%2F"), "{url}: {out}");
    }
}

#[test]
fn run_refuses_an_unusable_redis_address() {
    let dir = temp_dir("cluster-config");
    let file = dir.join("portico.yaml");
    let yaml = format!(
        "server: {{ listen: [\"127.0.0.1:{}\"], workers: 1 }}\nstate_dir: \"{}\"\n{}apis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /\": {{ integration: {{ type: mock, status: 200 }} }}\n",
        free_port(),
        dir.display(),
        with_redis("redis://127.0.0.1:6379/abc")
    );
    std::fs::write(&file, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["run", "-c"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run served with an unusable Redis address");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("cluster.redis"), "{err}");
}
