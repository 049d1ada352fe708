//! What the command line says of itself to a new user: the missing default config file
//! named whole (it named only the fallback, `/etc/portico/portico.yaml`, to someone who
//! ran Portico from another directory than the repository's), and the command an
//! imported config was written by, with its options (re-running the one the comment
//! gave, without `--api`, wrote another API name).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");

#[test]
fn without_a_config_file_both_defaults_are_named() {
    if Path::new("/etc/portico/portico.yaml").exists() {
        println!("note: skipped: /etc/portico/portico.yaml exists on this host");
        return;
    }
    let dir = temp_dir("no-config");
    for args in [&["check"][..], &["routes"], &[]] {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("neither config/portico.yaml (in the current directory) nor /etc/portico/portico.yaml exists; give one with -c FILE"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_imported_config_names_the_command_that_wrote_it() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/openapi/shop.yaml");
    let spec = spec.display().to_string();
    let out = Command::new(BIN)
        .args([
            "openapi",
            "import",
            &spec,
            "--api",
            "myshop",
            "--basepath",
            "split",
        ])
        .current_dir(temp_dir("import-comment"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("# Written by `portico openapi import {spec} --api myshop --basepath split`; edit freely.")
    );
    assert!(stdout.contains("myshop:"), "{stdout}");
}
