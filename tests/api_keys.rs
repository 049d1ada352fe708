//! API keys as a client (or an attacker) presents them: where the key is read from, what
//! a doubtful presentation gets, and which names a key may have. Both drivers.

mod common;

use std::net::SocketAddr;

use common::*;

const GOOD: &str = "the-good-key-0123456789";
const OTHER: &str = "the-other-key-0123456789";
const TOKEN: &str = "test-admin-token";

fn keys_config(state: &std::path::Path, admin_port: u16) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
state_dir: "{}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /secret":
        integration: {{ type: mock, status: 200, body: "secret" }}
        api_key_required: true
usage_plans:
  plan: {{ quota: {{ limit: 1000, period: day }} }}
api_keys:
  - {{ name: good, value: "{GOOD}", plan: plan }}
  - {{ name: other, value: "{OTHER}", plan: plan }}
"#,
        state.display()
    )
}

fn status(addr: SocketAddr, headers: &str, target: &str) -> Response {
    send_to(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// The key is the one `x-api-key` header (any case, surrounding blanks dropped). Two of
/// them are refused whatever they hold: the gateway would vouch for one key while the
/// backend gets both lines, and the access log and the quota would name a key the
/// backend may not read as the caller's; an `x_api_key` line counts as a second one. A key
/// in the query string is not a key.
#[test]
fn one_x_api_key_header_is_the_key_and_two_are_refused() {
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&keys_config(&state, admin_port), driver);
        let good = format!("x-api-key: {GOOD}\r\n");
        for (headers, target, want) in [
            (good.clone(), "/secret", 200),
            (format!("X-API-Key: {GOOD}\r\n"), "/secret", 200),
            (format!("x-api-key: \t{GOOD} \t\r\n"), "/secret", 200),
            (
                format!("{good}x-api-key: wrong-key-0123456789\r\n"),
                "/secret",
                403,
            ),
            (
                format!("x-api-key: wrong-key-0123456789\r\n{good}"),
                "/secret",
                403,
            ),
            (format!("{good}X-Api-Key: {OTHER}\r\n"), "/secret", 403),
            (format!("{good}{good}"), "/secret", 403),
            (format!("x-api-key: {GOOD}, {GOOD}\r\n"), "/secret", 403),
            // A CGI backend reads `x_api_key` as the same header, joined with the checked
            // one; alone, it is not the header API Gateway reads.
            (format!("x_api_key: {OTHER}\r\n{good}"), "/secret", 403),
            (format!("{good}X_Api-Key: {OTHER}\r\n"), "/secret", 403),
            (format!("x_api_key: {GOOD}\r\n"), "/secret", 403),
            (
                String::new(),
                &format!("/secret?x-api-key={GOOD}&api_key={GOOD}"),
                403,
            ),
        ] {
            let r = status(p.addr, &headers, target);
            assert_eq!(
                r.status,
                want,
                "{driver} {headers:?} {target}: {}",
                r.text()
            );
            if want == 403 {
                assert_eq!(r.json_message(), "Forbidden", "{driver} {headers:?}");
            }
        }
        // Only the three single-header requests reached the method and count.
        let r = admin(admin_addr, "GET", "/usage?plan=plan", Some(TOKEN), None);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["items"]["good"][0][0], 3, "{driver}: {v}");
        assert_eq!(v["items"]["other"][0][0], 0, "{driver}: {v}");
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}

/// A config key's name follows the rules of `POST /api-keys`, so `DELETE /api-keys/{name}`
/// can always revoke it: an empty name or `..` could not be addressed at all.
#[test]
fn config_key_names_are_ones_the_admin_api_can_revoke() {
    let yaml = r#"
api_keys:
  - { name: "", value: "empty-name-0123456789abcdef" }
  - { name: "..", value: "dots-name-0123456789abcdef" }
  - { name: "a/b", value: "slash-name-0123456789abcdef" }
  - { name: "tab\there", value: "tab-name-0123456789abcdef" }
  - { name: "bob smith", value: "bob-name-0123456789abcdef" }
"#;
    let (code, out) = check(yaml);
    assert_eq!(code, 1, "{out}");
    let long = format!(
        "{yaml}  - {{ name: {}, value: long-name-0123456789abcdef }}\n",
        "n".repeat(129)
    );
    let (_, long_out) = check(&long);
    for want in [
        "api_keys[0].name: name must be 1 to 128 characters",
        "api_keys[1].name: name must not be . or .., start or end with a space, nor hold a slash, a backslash, a control character, or one that shows as nothing or as a space (U+200B, U+202E, U+00A0, …)",
        "api_keys[2].name: name must not be",
        "api_keys[3].name: name must not be",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    assert!(!out.contains("api_keys[4]"), "{out}");
    assert!(
        long_out.contains("api_keys[5].name: name must be 1 to 128 characters"),
        "{long_out}"
    );
}

/// `DELETE /api-keys/{name}` revokes the name for good. A key created through the admin
/// API and later shadowed by a config key of the same name (the config key wins) must not
/// come back at the next start once that name is revoked.
#[test]
fn a_revoked_name_stays_revoked_after_restart_when_a_created_key_shared_it() {
    const CREATED: &str = "zed-created-0123456789abcdef";
    const CONFIGURED: &str = "zed-configured-0123456789abcdef";
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let base = keys_config(&state, admin_port);
        let with_zed = format!("{base}  - {{ name: zed, value: \"{CONFIGURED}\" }}\n");
        let works = |p: &Portico, key: &str| {
            status(p.addr, &format!("x-api-key: {key}\r\n"), "/secret").status == 200
        };

        let p = Portico::start(&base, driver);
        let body = format!(r#"{{"name":"zed","value":"{CREATED}"}}"#);
        let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(&body));
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        assert!(works(&p, CREATED), "{driver}");
        assert!(p.stop().success());

        // The config now names a key zed too: it wins, and is revoked by name.
        let p = Portico::start(&with_zed, driver);
        assert!(works(&p, CONFIGURED) && !works(&p, CREATED), "{driver}");
        let r = admin(admin_addr, "DELETE", "/api-keys/zed", Some(TOKEN), None);
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert!(!works(&p, CONFIGURED) && !works(&p, CREATED), "{driver}");
        assert!(p.stop().success());

        let p = Portico::start(&with_zed, driver);
        assert!(
            !works(&p, CONFIGURED),
            "{driver}: the config key after restart"
        );
        assert!(
            !works(&p, CREATED),
            "{driver}: the created key after restart"
        );
        let r = admin(admin_addr, "GET", "/api-keys", Some(TOKEN), None);
        assert!(!r.text().contains("zed"), "{driver}: {}", r.text());
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}

/// `stages: []` on a usage plan is refused: read as "absent" it accepted the plan's keys
/// on every stage, the opposite of what AWS does with a plan that has no API stages.
#[test]
fn an_empty_stages_list_on_a_usage_plan_is_an_error() {
    let plan = |stages: &str| {
        format!(
            "apis:\n  app:\n    stages: {{ prod: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock }}, api_key_required: true }}\nusage_plans:\n  p: {{ {stages}quota: {{ limit: 5, period: day }} }}\napi_keys:\n  - {{ name: k, value: \"a-key-in-plan-p-0123456789\", plan: p }}\n"
        )
    };
    let (code, out) = check(&plan("stages: [], "));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "usage_plans.p.stages: an empty list: leave stages out for every stage, or list some"
        ),
        "{out}"
    );
    for ok in ["", "stages: [app/prod], "] {
        let (code, out) = check(&plan(ok));
        assert_eq!(code, 0, "{ok:?}: {out}");
    }
}

/// A created key hidden by a config key of the same name is back once that config key
/// leaves the config: at a reload as at a restart (it came back only at a restart).
#[test]
fn a_created_key_hidden_by_a_config_key_is_back_when_the_config_key_goes_on_reload() {
    const CREATED: &str = "yan-created-0123456789abcdef";
    const CONFIGURED: &str = "yan-configured-0123456789abcdef";
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&keys_config(&state, admin_port), driver);
        let works =
            |key: &str| status(p.addr, &format!("x-api-key: {key}\r\n"), "/secret").status == 200;
        let reload = |yaml: &str| {
            let yaml = yaml.replace("{PORT}", &p.addr.port().to_string());
            std::fs::write(&p.config, yaml).unwrap();
            let r = admin(admin_addr, "POST", "/reload", Some(TOKEN), None);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
        };
        let base = keys_config(&state, admin_port);
        let body = format!(r#"{{"name":"yan","plan":"plan","value":"{CREATED}"}}"#);
        let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(&body));
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        assert!(works(CREATED), "{driver}");

        reload(&format!(
            "{base}  - {{ name: yan, value: \"{CONFIGURED}\" }}\n"
        ));
        assert!(
            works(CONFIGURED) && !works(CREATED),
            "{driver}: the config key wins"
        );
        reload(&base);
        assert!(!works(CONFIGURED), "{driver}");
        assert!(works(CREATED), "{driver}: the created key after the reload");
        let r = admin(admin_addr, "GET", "/api-keys", Some(TOKEN), None);
        assert!(
            r.text().contains(r#""name":"yan""#),
            "{driver}: {}",
            r.text()
        );
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}

/// `POST /api-keys` refuses a field it does not take rather than ignoring it: API
/// Gateway's `{"enabled": false}` created a live key, and a misspelt plan field a key in
/// no plan (accepted on every stage, without the plan's limits). A body that is not an
/// object is refused as such.
#[test]
fn creating_a_key_with_a_field_it_does_not_take_is_refused() {
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&keys_config(&state, admin_port), driver);
        let value = "disabled-key-0123456789abcdef";
        for (body, field) in [
            (
                format!(r#"{{"name": "off", "value": "{value}", "enabled": false}}"#),
                "\"enabled\"",
            ),
            (
                format!(r#"{{"name": "off", "value": "{value}", "plan_name": "plan"}}"#),
                "\"plan_name\"",
            ),
        ] {
            let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(&body));
            assert_eq!(r.status, 400, "{driver}: {body}: {}", r.text());
            assert!(
                r.json_message().contains(&format!("unknown field {field}")),
                "{driver}: {}",
                r.text()
            );
            assert_eq!(
                status(p.addr, &format!("x-api-key: {value}\r\n"), "/secret").status,
                403,
                "{driver}: {body} made a live key"
            );
        }
        // A field given twice: the last would win, a key in no plan.
        let body =
            format!(r#"{{"name": "off", "value": "{value}", "plan": "plan", "plan": null}}"#);
        let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(&body));
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert!(
            r.json_message().contains(r#""plan" given twice"#),
            "{}",
            r.text()
        );
        assert_eq!(
            status(p.addr, &format!("x-api-key: {value}\r\n"), "/secret").status,
            403,
            "{driver}: a duplicate made a live key"
        );
        for body in [r#"["off"]"#, r#""off""#, "7"] {
            let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(body));
            assert_eq!(r.status, 400, "{driver}: {body}");
            assert!(r.json_message().contains("JSON object"), "{}", r.text());
        }
        let r = admin(admin_addr, "GET", "/api-keys", Some(TOKEN), None);
        assert!(!r.text().contains("\"off\""), "{driver}: {}", r.text());
        // The fields it takes still make a key.
        let body = format!(r#"{{"name": "on", "value": "{value}", "plan": "plan"}}"#);
        let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(&body));
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        let r = status(p.addr, &format!("x-api-key: {value}\r\n"), "/secret");
        assert_eq!(r.status, 200, "{driver}");
    }
}

/// A created key whose plan a reload removes (or renames) is refused, and the reload says
/// why in its answer's warnings and its log, as a start's log does: it answered
/// `"warnings":[]` and the 403s went unexplained.
#[test]
fn a_reload_that_removes_a_created_keys_plan_warns_about_the_key() {
    const CUST: &str = "cust-created-0123456789abcdef";
    let want = serde_json::json!([{
        "path": "usage_plans",
        "message": r#"the API key "cust" is in usage plan "plan", which the config does not have; it is refused until the config has that plan"#,
    }]);
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let base = keys_config(&state, admin_port);
        let p = Portico::start(&base, driver);
        let body = format!(r#"{{"name":"cust","plan":"plan","value":"{CUST}"}}"#);
        let r = admin(admin_addr, "POST", "/api-keys", Some(TOKEN), Some(&body));
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        let cust = || status(p.addr, &format!("x-api-key: {CUST}\r\n"), "/secret").status;
        assert_eq!(cust(), 200, "{driver}");

        let renamed = base
            .replace("\n  plan: {", "\n  renamed: {")
            .replace("plan: plan }", "plan: renamed }")
            .replace("{PORT}", &p.addr.port().to_string());
        std::fs::write(&p.config, renamed).unwrap();
        let r = admin(admin_addr, "POST", "/reload", Some(TOKEN), None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let answer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(answer["warnings"], want, "{driver}");
        assert_eq!(cust(), 403, "{driver}");
        let log = p.log_text();
        let logged = log
            .lines()
            .find(|l| l.contains("WARN") && l.contains("\"cust\""));
        let logged = logged.unwrap_or_else(|| panic!("{driver}: not logged: {log}"));
        assert!(logged.contains("key=usage_plans"), "{driver}: {logged}");
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}
