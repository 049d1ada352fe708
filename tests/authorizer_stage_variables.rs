//! An authorizer is the API's, shared by every stage, and its url is called as written:
//! `${stageVariables.NAME}` in a Lambda authorizer's url (or a JWT issuer) is a `check`
//! error. It passed check, and the function endpoint was asked for the text itself
//! (`POST /${stageVariables.fn}/invocations`), a 500 for every request of the route.

mod common;

use common::*;

fn config(url: &str, issuer: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    authorizers:
      gate: {{ type: lambda, url: "{url}", payload_format: "2.0", simple_responses: true, identity_source: [$request.header.Authorization] }}
      users: {{ type: jwt, issuer: "{issuer}", audience: [shop], identity_source: $request.header.Authorization }}
    stages:
      prod: {{ variables: {{ fn: authz, idp: idp.example }} }}
    routes:
      "GET /p":
        authorizer: gate
        integration: {{ type: mock, body: "p" }}
      "GET /j":
        authorizer: users
        integration: {{ type: mock, body: "j" }}
"#
    )
}

fn check_config(yaml: &str) -> (i32, String) {
    check(&yaml.replace("{PORT}", "18999"))
}

#[test]
fn stage_variables_in_authorizers_are_refused() {
    let (code, text) = check_config(&config(
        "http://127.0.0.1:9000/2015-03-31/functions/${stageVariables.fn}/invocations",
        "https://$stageVariables.idp/realm",
    ));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(r#"apis.shop.authorizers.gate.url: stage variables are not resolved in an authorizer's url"#),
        "{text}"
    );
    assert!(
        text.contains(r#"apis.shop.authorizers.users.issuer: stage variables are not resolved in an authorizer"#),
        "{text}"
    );
    for driver in DRIVERS {
        let refused = Portico::try_start(
            &config(
                "http://127.0.0.1:9000/${stageVariables.fn}/invocations",
                "https://idp.example/realm",
            ),
            driver,
        );
        assert!(refused.is_err(), "{driver}: started");
    }

    // Literal urls are fine.
    let (code, text) = check_config(&config(
        "http://127.0.0.1:9000/2015-03-31/functions/authz/invocations",
        "https://idp.example/realm",
    ));
    assert_eq!(code, 0, "{text}");
}
