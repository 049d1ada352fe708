//! A config file caught half-written by a reload: a cut that leaves no valid YAML, or an
//! empty file, is refused; a cut that leaves a valid prefix (the API and its stages, not
//! yet its routes) is a config, so it is taken, and warned of, at the API's `routes`, in
//! `POST /reload`'s answer and the log. It was taken without a word, and every request
//! then answered 404.

mod common;

use common::*;

const TOKEN: &str = "half-written-token";

fn config(port: u16, admin_port: u16) -> String {
    format!(
        r#"state_dir: "{state}"
server:
  listen: ["127.0.0.1:{port}"]
  workers: 1
admin: {{ listen: "127.0.0.1:{admin_port}", token: {TOKEN} }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /a": {{ integration: {{ type: mock, status: 200, body: a }} }}
"#,
        state = temp_dir("state").display()
    )
}

#[test]
fn a_reload_of_a_file_cut_before_its_routes_warns_that_the_api_has_none() {
    for driver in DRIVERS {
        let (port, admin_port) = (free_port(), free_port());
        let good = config(port, admin_port);
        let p = Portico::start_at(&good, driver, port);
        let admin_addr = ([127, 0, 0, 1], admin_port).into();
        let reload = || {
            let r = admin(admin_addr, "POST", "/reload", Some(TOKEN), None);
            (
                r.status,
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
            )
        };
        assert_eq!(p.get("/a").status, 200, "{driver}");
        // An empty file is refused, and the API keeps serving.
        std::fs::write(&p.config, "").unwrap();
        let (status, answer) = reload();
        assert_eq!(status, 400, "{driver}: {answer}");
        assert!(
            answer.to_string().contains("the config is empty"),
            "{driver}: {answer}"
        );
        assert_eq!(p.get("/a").status, 200, "{driver}");
        // `head -c N good.yaml`, N just before `routes:`.
        let cut = &good[..good.find("    routes:").unwrap()];
        std::fs::write(&p.config, cut).unwrap();
        let (status, answer) = reload();
        assert_eq!(status, 200, "{driver}: {answer}");
        let warnings = answer["warnings"].as_array().expect("a list of warnings");
        assert!(
            warnings.iter().any(|w| w["path"] == "apis.app.routes"
                && w["message"] == "no routes: every request to this API answers 404"),
            "{driver}: {answer}"
        );
        assert!(
            eventually(|| p.log_text().contains("apis.app.routes")),
            "{driver}: {}",
            p.log_text()
        );
        assert_eq!(p.get("/a").status, 404, "{driver}");
        // The whole file again: served, and nothing to say.
        std::fs::write(&p.config, &good).unwrap();
        let (status, answer) = reload();
        assert_eq!(status, 200, "{driver}: {answer}");
        assert_eq!(answer["warnings"], serde_json::json!([]), "{driver}");
        assert_eq!(p.get("/a").status, 200, "{driver}");
    }
}
