//! The Autobahn TestSuite's cases against a WebSocket API echo route (a mock with body
//! `$request.body`, no backend), run by the `kosoku` runner (PyPI; `.ci/run` installs it
//! into the venv PORTICO_PYTHON points at). Every case must be OK, NON-STRICT or
//! INFORMATIONAL (kosoku exits non-zero otherwise), except these sections, left out:
//! - 1.2.* binary messages: closed with 1003 by design (API Gateway's behaviour; with
//!   `binary_frames: base64` they arrive as base64 text, not echoed as binary);
//! - 9.* limits and performance: messages up to 16 MiB, past any configured limit;
//! - 12.* and 13.* permessage-deflate, which Portico does not negotiate.

mod common;

use std::process::Command;

use common::*;

#[test]
fn autobahn_cases_pass_against_an_echo_route() {
    common::ws::require_websockets();
    let python = common::ws::python();
    let probe = Command::new(&python).args(["-c", "import kosoku"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs the `kosoku` package next to `websockets`: run .ci/run, or \
         .ci/venv/bin/pip install kosoku and PORTICO_PYTHON=.ci/venv/bin/python"
    );
    for driver in DRIVERS {
        let cfg = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 2
apis:
  echo:
    protocol: websocket
    limits: { frame: 16MiB, message: 16MiB, idle: 1m, max_duration: 1h }
    stages: { $default: {} }
    routes:
      $default: { integration: { type: mock, body: "$request.body" }, route_response: true }
"#;
        let p = Portico::start(cfg, driver);
        let out_dir = temp_dir("autobahn");
        let run = Command::new(&python)
            .args(["-c", "import sys; from kosoku._cli import main; sys.argv[0] = 'kosoku'; sys.exit(main())"])
            .args(["-x", "1.2.*", "-x", "9.*", "-x", "12.*", "-x", "13.*", "-p", "2", "-o"])
            .arg(&out_dir)
            .arg(p.addr.to_string())
            .output()
            .expect("kosoku runs");
        let text = String::from_utf8_lossy(&run.stdout).to_string()
            + &String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{driver}: {text}");
        assert!(text.contains("cases passed"), "{driver}: {text}");
        p.stop();
    }
}
