//! A reload keeps the tokens each worker holds of a limit that did not change: the
//! tokens it leased and had not spent yet, and those refused requests gave back. They
//! were dropped with the generation, so every reload took up to a batch per worker and
//! limit off the limit, and the route tokens a plan's refusals had returned.

mod common;

use std::net::SocketAddr;

use common::*;

const KEY_A: &str = "throttle-reload-key-a-0123456789";
const KEY_B: &str = "throttle-reload-key-b-0123456789";
const TOKEN: &str = "throttle-reload-admin-token";

#[test]
fn a_reload_keeps_the_tokens_refused_requests_gave_back() {
    let state = temp_dir("throttle-reload");
    let admin_port = free_port();
    let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
state_dir: "{}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages:
      $default: {{ variables: {{ tag: one }} }}
    routes:
      "GET /k":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
        throttle: {{ rate: 0.001, burst: 15 }}
usage_plans:
  p: {{ throttle: {{ rate: 0.001, burst: 10 }} }}
api_keys:
  - {{ name: a, value: "{KEY_A}", plan: p }}
  - {{ name: b, value: "{KEY_B}", plan: p }}
"#,
        state.display()
    );
    for driver in DRIVERS {
        for reload in [false, true] {
            let p = Portico::start(&config, driver);
            let admitted = |key: &str, n: usize| {
                (0..n)
                    .filter(|_| get_with_key(p.addr, "/k", Some(key)).status == 200)
                    .count()
            };
            // Key a: its plan's 10, and 10 refused by the plan, each giving its route
            // token back.
            assert_eq!(admitted(KEY_A, 20), 10, "{driver}");
            if reload {
                // Only a stage variable no route reads changes: every limit stays.
                let changed = config.replace("tag: one", "tag: two");
                std::fs::write(
                    &p.config,
                    changed.replace("{PORT}", &p.addr.port().to_string()),
                )
                .unwrap();
                let r = admin(admin_addr, "POST", "/reload", Some(TOKEN), None);
                assert_eq!(r.status, 200, "{driver}: {}", r.text());
            }
            // The route's 15 less a's 10: 5 for key b, reload or not.
            assert_eq!(admitted(KEY_B, 10), 5, "{driver}, reload: {reload}");
            assert!(p.stop().success());
            let _ = std::fs::remove_dir_all(&state);
        }
    }
}
