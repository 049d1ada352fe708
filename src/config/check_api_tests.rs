//! What `check` says about an API as a whole: routes that can never be let through, and
//! an API that has nothing to serve.

use super::check_tests::errors;

/// `api_key_source: authorizer` reads the key from a Lambda authorizer's answer only
/// (`pipeline::admission`): a route that requires a key and has no Lambda authorizer
/// refused every request 403, and `check` said ok.
#[test]
fn a_key_from_the_authorizer_needs_a_lambda_authorizer_on_the_route() {
    let yaml = r#"
iam: { principals: { ops: { access_key_id: AKIDEXAMPLE, secret_access_key: s, allow: ["*"] } } }
apis:
  shop:
    stages: { prod: {} }
    api_key_source: authorizer
    authorizers:
      gate: { type: lambda, url: "http://127.0.0.1:9000/2015-03-31/functions/authz/invocations" }
      users: { type: jwt, issuer: "https://idp.example", audience: [a] }
    routes:
      "GET /gated": { authorizer: gate, api_key_required: true, integration: { type: mock } }
      "GET /bare": { api_key_required: true, integration: { type: mock } }
      "GET /jwt": { authorizer: users, api_key_required: true, integration: { type: mock } }
      "GET /iam": { authorization: iam, api_key_required: true, integration: { type: mock } }
      "GET /open": { integration: { type: mock } }
      "GET /typo": { authorizer: gat, api_key_required: true, integration: { type: mock } }
"#;
    let out = errors(yaml);
    let tail = ": every request would be refused 403, whatever x-api-key it sends; give the route a Lambda authorizer, or use api_key_source: header";
    let head = "the API's `api_key_source: authorizer` takes the key from a Lambda authorizer's usageIdentifierKey, and";
    assert_eq!(
        out,
        [
            format!(r#"apis.shop.routes."GET /bare".api_key_required: {head} it has no authorizer{tail}"#),
            format!(r#"apis.shop.routes."GET /jwt".api_key_required: {head} its authorizer "users" is a JWT authorizer, which gives none{tail}"#),
            format!(r#"apis.shop.routes."GET /iam".api_key_required: {head} its `authorization: iam` gives none{tail}"#),
            // An unknown name is reported as such, once.
            r#"apis.shop.routes."GET /typo".authorizer: no authorizer "gat" (did you mean "gate"?)"#.into(),
        ]
    );
    // With the header as the source, the same routes are fine.
    let header = yaml
        .replace("api_key_source: authorizer", "api_key_source: header")
        .replace("authorizer: gat,", "authorizer: gate,");
    assert_eq!(errors(&header), Vec::<String>::new());
}

/// The same route from an OpenAPI file (`apis.NAME.openapi`): the import maps
/// `x-amazon-apigateway-api-key-source: AUTHORIZER` and an operation whose only security
/// is the API key, and `check` refuses what it makes.
#[test]
fn an_imported_route_keyed_by_a_missing_authorizer_is_refused() {
    let dir = std::env::temp_dir().join(format!("portico-keysource-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let doc = r#"openapi: "3.0.1"
info: { title: shop, version: "1" }
x-amazon-apigateway-api-key-source: AUTHORIZER
components:
  securitySchemes:
    api_key: { type: apiKey, name: x-api-key, in: header }
paths:
  /orders:
    get:
      security: [{ api_key: [] }]
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses: { default: { statusCode: "200" } }
"#;
    std::fs::write(dir.join("shop.yaml"), doc).unwrap();
    let yaml = "apis:\n  shop:\n    openapi: shop.yaml\n    stages: { prod: {} }\n";
    let report = super::check_text_in(yaml, &dir);
    let out: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(
        out.iter().any(|e| e.starts_with(
            r#"apis.shop.routes."GET /orders".api_key_required: the API's `api_key_source: authorizer` takes the key from a Lambda authorizer's usageIdentifierKey, and it has no authorizer"#
        )),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check`'s warnings for `yaml` (files relative to `base`), as printed.
fn warnings(yaml: &str, base: &std::path::Path) -> Vec<String> {
    let report = super::check_text_in(yaml, base);
    assert_eq!(report.errors, [], "{yaml}");
    report.warnings.iter().map(ToString::to_string).collect()
}

/// A config caught half-written (`head -c 300 good.yaml`) is often a valid YAML prefix:
/// the API and its stages, none of its routes. It was taken without a word, and every
/// request was a 404.
#[test]
fn an_api_without_routes_is_a_warning() {
    let here = std::path::Path::new(".");
    let cut = "apis:\n  app:\n    stages: { $default: {} }\n";
    let none = "apis.app.routes: no routes: every request to this API answers 404";
    assert_eq!(warnings(cut, here), [none]);
    assert_eq!(warnings(&format!("{cut}    routes:\n"), here), [none]);
    assert_eq!(warnings(&format!("{cut}    routes: {{}}\n"), here), [none]);
    let ws = "apis:\n  chat:\n    protocol: websocket\n    stages: { prod: {} }\n";
    let out = warnings(ws, here);
    assert!(
        out.contains(
            &"apis.chat.routes: no routes: connections open, but no message reaches a backend"
                .to_string()
        ),
        "{out:?}"
    );
    // One route is enough.
    let served =
        format!("{cut}    routes:\n      \"GET /a\": {{ integration: {{ type: mock }} }}\n");
    assert_eq!(warnings(&served, here), Vec::<String>::new());
    // A route that does not decode is the error, not "no routes".
    let report = super::check_text_in(
        &format!("{cut}    routes:\n      \"GET /a\": {{ integration: {{ type: mo }} }}\n"),
        here,
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.warnings, []);
}

/// Routes imported from an OpenAPI file count; one with no operations is warned of at
/// `openapi`, and one that cannot be read is the error alone.
#[test]
fn routes_from_an_openapi_file_count() {
    let dir = std::env::temp_dir().join(format!("portico-noroutes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let doc = |paths: &str| {
        format!("openapi: \"3.0.1\"\ninfo: {{ title: shop, version: \"1\" }}\npaths:{paths}\n")
    };
    let op = "\n  /a:\n    get:\n      x-amazon-apigateway-integration: { type: mock, requestTemplates: { application/json: '{\"statusCode\": 200}' }, responses: { default: { statusCode: \"200\" } } }";
    std::fs::write(dir.join("full.yaml"), doc(op)).unwrap();
    std::fs::write(dir.join("empty.yaml"), doc(" {}")).unwrap();
    let yaml =
        |file: &str| format!("apis:\n  shop:\n    openapi: {file}\n    stages: {{ prod: {{}} }}\n");
    assert_eq!(warnings(&yaml("full.yaml"), &dir), Vec::<String>::new());
    assert_eq!(
        warnings(&yaml("empty.yaml"), &dir),
        ["apis.shop.openapi: empty.yaml gives no routes and the API lists none: every request to this API answers 404"]
    );
    let report = super::check_text_in(&yaml("missing.yaml"), &dir);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.warnings, []);
    let _ = std::fs::remove_dir_all(&dir);
}
