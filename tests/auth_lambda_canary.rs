//! A Lambda authorizer's cached verdicts on a stage with a canary: the canary's requests
//! reach the function with the canary's stage variables, so their verdicts are kept apart
//! from those of the stage's other requests (one shared entry let a verdict the canary's
//! variables produced answer every request with that token, and the reverse).

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_canary_verdict_never_answers_the_stage_s_other_requests() {
    for driver in DRIVERS {
        // Allows only events carrying the stage's own variables.
        let a = Function::start(|ev| {
            let side = ev["stageVariables"]["side"]
                .as_str()
                .unwrap_or("")
                .to_string();
            FnReply::Json(json!({"isAuthorized": side == "main"}).to_string())
        });
        let url = a.url();
        let p = Portico::start(
            &format!(
                r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    stages:
      prod:
        variables: {{ side: main }}
        canary: {{ percent: 50, variables: {{ side: canary }} }}
    authorizers:
      gate: {{ type: lambda, url: "{url}", simple_responses: true, identity_source: $request.header.authorization, result_ttl: 300s }}
    gateway_responses:
      ACCESS_DENIED: {{ status: 403, body: "denied ${{stageVariables.side}}" }}
    routes:
      "GET /a": {{ authorizer: gate, integration: {{ type: mock, body: "served ${{stageVariables.side}}" }} }}
"#
            ),
            driver,
        );
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..60 {
            let r = p.raw(
                b"GET /prod/a HTTP/1.1\r\nHost: t\r\nAuthorization: tok\r\nConnection: close\r\n\r\n",
            );
            *seen.entry((r.status, r.text())).or_insert(0) += 1;
        }
        // Each side got its own verdict: the stage's requests served, the canary's denied.
        let answers: Vec<_> = seen.keys().cloned().collect();
        assert_eq!(
            answers,
            [
                (200, "served main".to_string()),
                (403, "denied canary".to_string())
            ],
            "{driver}: {seen:?}"
        );
        // And each verdict was cached: one call per side.
        assert_eq!(a.calls(), 2, "{driver}");
    }
}
