//! `overwrite:statuscode` made of stage variables is known for each stage when the config
//! loads: a value that is not a usable status (not a number, outside 200–599, 204, 205 or 304)
//! is a `check` error at that stage. It passed check and was ignored at run time, the
//! answer keeping its status with nothing said but a debug line.

mod common;

use common::*;

fn config(status: &str, short: &str, canary_status: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    stages:
      prod:
        variables: {{ code: "{status}", short: "{short}" }}
        canary: {{ percent: 0, variables: {{ code: "{canary_status}" }} }}
    routes:
      "GET /m":
        integration: {{ type: mock, body: "m" }}
        response_parameters: {{ "200": {{ "overwrite:statuscode": "${{stageVariables.code}}" }} }}
      "GET /n":
        integration: {{ type: mock, body: "n" }}
        response_parameters: {{ "200": {{ "overwrite:statuscode": "2$stageVariables.short" }} }}
"#
    )
}

const AT: &str = r#"apis.shop.routes."GET /m".response_parameters.200."overwrite:statuscode": must be a status 200–599 other than 204, 205 and 304 (the body is already framed), got"#;

#[test]
fn unusable_statuses_from_stage_variables_are_refused() {
    let (code, text) = check(&config("abc", "0x", "202").replace("{PORT}", "18999"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(r#"{AT} "abc" in stage "prod""#)),
        "{text}"
    );
    // The unbraced spelling, after literal text: "2" + "0x".
    assert!(text.contains(r#"got "20x" in stage "prod""#), "{text}");
    let (code, text) = check(&config("204", "01", "202").replace("{PORT}", "18999"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(r#"{AT} "204" in stage "prod""#)),
        "{text}"
    );
    assert_eq!(text.matches("must be a status").count(), 1, "{text}");
    let (code, text) = check(&config("201", "01", "99").replace("{PORT}", "18999"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(r#"{AT} "99" in the canary of stage "prod""#)),
        "{text}"
    );

    // Usable values are served.
    for driver in DRIVERS {
        let p = Portico::start(&config("201", "02", "203"), driver);
        assert_eq!(p.get("/prod/m").status, 201, "{driver}");
        assert_eq!(p.get("/prod/n").status, 202, "{driver}");
    }
}
