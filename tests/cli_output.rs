//! The commands that print (`openapi import`, `openapi export`, `routes`, `check`, help) fail
//! when their output can't be written: `> /dev/full` (as a full disk) exited 0 with
//! nothing written, and a script went on with an empty config. A reader that goes away
//! early (`| head`) is still no error.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `portico ARGS` with stdout to /dev/full: (exit code, stderr).
fn to_full_disk(args: &[&str]) -> (Option<i32>, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(BIN)
        .args(args)
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_command_whose_output_cannot_be_written_fails() {
    let spec = Path::new(MANIFEST_DIR).join("tests/data/openapi/http-api.yaml");
    let dir = temp_dir("cli-output");
    let config = dir.join("portico.yaml");
    std::fs::write(
        &config,
        "server: { listen: [\"127.0.0.1:18080\"] }\napis:\n  a:\n    stages: { prod: {} }\n    routes:\n      \"GET /x\": { integration: { type: mock } }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let spec = spec.to_str().unwrap();
    for args in [
        &["openapi", "import", spec][..],
        &[
            "openapi", "export", "-c", config, "--api", "a", "--stage", "prod",
        ],
        &["routes", "-c", config],
        &["routes", "-c", config, "--json"],
        &["check", "-c", config],
        // clap's help and version (clap's own printing exited 0 with nothing written).
        &["--help"],
        &["help"],
        &["--version"],
        &["routes", "--help"],
    ] {
        let (code, err) = to_full_disk(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("portico: writing output: No space left on device"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_is_no_error() {
    let spec = Path::new(MANIFEST_DIR).join("tests/data/openapi/http-api.yaml");
    let mut child = Command::new(BIN)
        .args(["openapi", "import"])
        .arg(&spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed unread, as `| head -0` would.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("writing output"), "{err}");
}
