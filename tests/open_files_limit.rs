//! `portico run` raises its soft limit on open files to the hard one: under a shell's
//! usual 1024, about a thousand idle keep-alive connections from one client locked
//! every new client out ("Too many open files").

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    let dir = temp_dir("nofile");
    let port = free_port();
    let cfg = dir.join("portico.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{ listen: [\"127.0.0.1:{port}\"], workers: 1 }}\napis:\n  app:\n    stages: {{ $default: {{}} }}\n    routes: {{ \"GET /ping\": {{ integration: {{ type: mock }} }} }}\n"
        ),
    )
    .unwrap();
    // prlimit sets the limits and runs portico in its place (the same process).
    let mut child = Command::new("prlimit")
        .args([
            "--nofile=256:4096",
            env!("CARGO_BIN_EXE_portico"),
            "run",
            "-c",
        ])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) is installed");
    let limits = format!("/proc/{}/limits", child.id());
    let soft = || -> Option<String> {
        let text = std::fs::read_to_string(&limits).ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3).map(str::to_string)
    };
    let until = Instant::now() + Duration::from_secs(10);
    while soft().as_deref() != Some("4096") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = soft();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen.as_deref(),
        Some("4096"),
        "the soft limit stayed as it was"
    );
}
