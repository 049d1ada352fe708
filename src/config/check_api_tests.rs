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

/// A `state_dir` that is a file stops `run` ("File exists") whoever runs it: an error,
/// not the warning for a directory this user could not write.
#[test]
fn a_state_dir_that_is_a_file_is_an_error() {
    let dir = std::env::temp_dir().join(format!("portico-state-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    for state in [file.clone(), file.join("under")] {
        let yaml = format!(
            "state_dir: \"{}\"\nadmin: {{ token: t }}\n",
            state.display()
        );
        let report = super::check_text_in(&yaml, std::path::Path::new("."));
        let want = format!(
            "state_dir: {}: {} is not a directory: `run` would stop at startup",
            state.display(),
            file.display()
        );
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors, [want], "{:?}", report.warnings);
        assert!(report.warnings.iter().all(|w| w.path != "state_dir"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `stages:` given a text, not a list: its type error alone, not also "an empty list".
#[test]
fn usage_plan_stages_as_text_is_a_type_error_only() {
    let out = errors("usage_plans: { p: { stages: shop/prod } }\n");
    assert_eq!(
        out,
        [r#"usage_plans.p.stages: expected a list, got "shop/prod""#]
    );
}

/// A key under `apis` that is not text drops its own entry: the other APIs are still
/// checked (it hid every error under `apis`).
#[test]
fn a_key_that_is_not_text_hides_nothing_about_its_siblings() {
    for bad in ["~: {}", "? {x: 1}\n  : {}"] {
        let yaml = format!(
            "apis:\n  {bad}\n  shop:\n    stages: {{ prod: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: http, upstream: nope }} }}\n"
        );
        let out = errors(&yaml);
        assert!(
            out.iter().any(|e| e.starts_with("apis: keys must be text")),
            "{out:?}"
        );
        assert!(
            out.iter().any(|e| e.contains("no upstream named \"nope\"")),
            "{out:?}"
        );
    }
}

/// `run` builds every route once per stage and per canary; 1,500 stages × 1,500 routes
/// (258 KB of text) passed `check` and took gigabytes to run. The count is checked first.
#[test]
fn a_config_that_compiles_to_too_many_routes_is_refused_at_the_api() {
    let api = |name: &str, stages: usize, canaries: usize, routes: usize| {
        let stages: String = (0..stages)
            .map(|i| match i < canaries {
                true => format!("{name}{i}: {{ canary: {{ percent: 5 }} }}, "),
                false => format!("{name}{i}: {{}}, "),
            })
            .collect();
        let routes: String = (0..routes)
            .map(|i| format!("      \"GET /r{i}\": {{ integration: {{ type: mock }} }}\n"))
            .collect();
        format!("  {name}:\n    stages: {{ {stages} }}\n    routes:\n{routes}")
    };
    // 300 stages, 10 of them with a canary, × 400 routes = 124,000.
    let out = errors(&format!("apis:\n{}", api("big", 300, 10, 400)));
    assert_eq!(
        out,
        ["apis.big: 300 stages and 10 canaries × 400 routes = 124000 compiled routes (each route is built once per stage and canary), over the limit of 100000"]
    );
    // Two APIs each under the limit, over it together.
    let yaml = format!("apis:\n{}{}", api("a", 100, 0, 600), api("b", 100, 0, 500));
    assert_eq!(
        errors(&yaml),
        ["apis: the APIs compile to 110000 routes in all (each route once per stage and canary; apis.a: 60000), over the limit of 100000"]
    );
    // At the limit, fine.
    let yaml = format!("apis:\n{}{}", api("a", 100, 0, 500), api("b", 50, 50, 500));
    assert_eq!(errors(&yaml), Vec::<String>::new());
}

/// Text a route's compiled form writes out per stage counts that many times: a 1 MB mock
/// body was copied into each of 1,500 stages (1.5 GB from a 1.3 MB file; a reload aborted
/// the gateway). A body without stage variables is shared by the stages and counts once.
#[test]
fn a_config_whose_routes_compile_to_too_much_text_is_refused_at_the_api() {
    let api = |name: &str, stages: usize, body: &str| {
        let stages: String = (0..stages)
            .map(|i| format!("{name}{i}: {{ variables: {{ v: a{i} }} }}, "))
            .collect();
        format!(
            "  {name}:\n    stages: {{ {stages} }}\n    routes:\n      \"GET /p\": {{ integration: {{ type: mock, body: \"{body}\" }} }}\n"
        )
    };
    let mb = "x".repeat(1_000_000);
    let var = format!("{mb}${{stageVariables.v}}");
    assert_eq!(
        errors(&format!("apis:\n{}", api("a", 300, &var))),
        ["apis.a: its routes compile to 300005700 bytes of text in 300 stages and canaries (text that names a stage variable is written out once per stage), over the limit of 268435456"]
    );
    // Shared by 2,000 stages: 1 MB.
    assert_eq!(
        errors(&format!("apis:\n{}", api("a", 2000, &mb))),
        Vec::<String>::new()
    );
    // Two APIs, each under the limit, over it together.
    let half = format!("{}${{stageVariables.v}}", &mb[..500_000]);
    let yaml = format!("apis:\n{}{}", api("a", 300, &half), api("b", 250, &half));
    assert_eq!(
        errors(&yaml),
        ["apis: the APIs' routes compile to 275010450 bytes of text in all (apis.a: 150005700), over the limit of 268435456"]
    );
}

/// A route whose integration does not decode is still checked in its other fields, and
/// the stand-in for its integration adds nothing: only the type error and the missing
/// authorizer (it was left out with the route).
#[test]
fn a_route_whose_integration_fails_still_has_its_authorizer_checked() {
    let yaml = r#"
apis:
  shop:
    stages: { prod: {} }
    routes:
      "GET /y": { integration: { type: htp }, authorizer: missing, parameters: { "overwrite:header.x-a": "'1'" }, cache: { ttl: 10s } }
      "GET /z": { authorizer: missing }
"#;
    let out = errors(yaml);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(
        out[0].starts_with(r#"apis.shop.routes."GET /y".integration.type: "#),
        "{out:?}"
    );
    assert!(
        out[1].starts_with(r#"apis.shop.routes."GET /z": missing key "integration""#),
        "{out:?}"
    );
    assert!(
        out[2].starts_with(r#"apis.shop.routes."GET /y".authorizer: no authorizer "missing""#),
        "{out:?}"
    );
    assert!(
        out[3].starts_with(r#"apis.shop.routes."GET /z".authorizer: no authorizer "missing""#),
        "{out:?}"
    );
    // Nothing about the stand-in's kind either (a mock's or a Lambda's cache stores
    // nothing); the warning there is the route's own.
    let report = super::check_text_in(yaml, std::path::Path::new("."));
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            r#"apis.shop.routes."GET /y".cache: not used: no stage of this API has a cache (stages.NAME.cache.capacity turns it on)"#
        ]
    );
}

/// An unknown key says nothing about the rest of its entry, nor about the entries
/// around it; an error in a route does not hide its API's bad name or its own key's.
#[test]
fn an_error_inside_an_entry_does_not_hide_its_name() {
    let yaml = r#"
apis:
  "bad name":
    stages: { prod: {} }
    routes:
      "GET /x": { integration: { type: mock }, bogus: 1 }
"#;
    let out = errors(yaml);
    assert_eq!(out.len(), 2, "{out:?}");
    let unknown = r#"apis."bad name".routes."GET /x": unknown key "bogus" (expected one of: "#;
    assert!(out[0].starts_with(unknown), "{out:?}");
    assert_eq!(
        out[1],
        r#"apis."bad name": API names are letters, digits, _, - and ."#
    );
    let yaml = r#"
apis:
  "bad name":
    stages: { prod: {} }
    routes:
      "GET x": { integration: { type: mock, status: soon } }
"#;
    let out = errors(yaml);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(
        out[0].starts_with(r#"apis."bad name".routes."GET x".integration.status: "#),
        "{out:?}"
    );
    assert_eq!(
        out[1],
        r#"apis."bad name": API names are letters, digits, _, - and ."#
    );
    assert!(
        out[2].starts_with(r#"apis."bad name".routes."GET x": "#),
        "{out:?}"
    );
    // What an entry holds still hides what follows from it: a domain whose cert does not
    // decode is not also "key without cert".
    let yaml = "domains:\n  example.com: { cert: 5, key: k.pem }\n";
    let out = errors(yaml);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with(r#"domains."example.com".cert: "#),
        "{out:?}"
    );
}

/// An authorizer with an error is kept by its name: a route naming it got a second,
/// false error ("no authorizer", "the API has no authorizers"), and so did the checks
/// that depend on its kind.
#[test]
fn a_broken_authorizer_keeps_its_name_for_the_routes_naming_it() {
    let api = |auth: &str| {
        format!(
            r#"
apis:
  a:
    api_key_source: authorizer
    stages: {{ $default: {{}} }}
    authorizers: {{ j: {auth} }}
    routes:
      "GET /x": {{ integration: {{ type: mock }}, authorizer: j, api_key_required: true }}
      "GET /y": {{ integration: {{ type: mock }}, authorizer: j, authorization_scopes: [read] }}
"#
        )
    };
    for (auth, error) in [
        (
            "{ type: jwt, issuer: 5, audience: [a] }",
            "apis.a.authorizers.j.issuer: expected",
        ),
        (
            "{ type: jwt, issuer: \"https://i.example\" }",
            "apis.a.authorizers.j: missing key \"audience\"",
        ),
        (
            "{ type: lambda }",
            "apis.a.authorizers.j: missing key \"url\"",
        ),
        (
            "{ type: lambda, url: 5 }",
            "apis.a.authorizers.j.url: expected",
        ),
        (
            "{ type: jvt, issuer: \"https://i.example\", audience: [a] }",
            "apis.a.authorizers.j.type: ",
        ),
        (
            "{ url: \"http://127.0.0.1:1/authz\" }",
            "apis.a.authorizers.j: missing key \"type\"",
        ),
        ("[x]", "apis.a.authorizers.j: expected a map"),
    ] {
        let out = errors(&api(auth));
        let lambda = auth.contains("lambda") || auth.contains("url");
        let kind_error = match lambda {
            // The route with scopes has a Lambda authorizer: that is the route's own error.
            true => {
                r#"apis.a.routes."GET /y".authorization_scopes: scopes need a JWT authorizer on the route"#
            }
            // The route that needs a key has a JWT authorizer: so is that.
            false => r#"apis.a.routes."GET /x".api_key_required: "#,
        };
        assert_eq!(out.len(), 2 + usize::from(!lambda), "{auth}: {out:?}");
        assert!(out[0].starts_with(error), "{auth}: {out:?}");
        assert!(
            out.iter().any(|e| e.starts_with(kind_error)),
            "{auth}: {out:?}"
        );
        assert!(
            !out.iter().any(|e| e.contains("no authorizer")),
            "{auth}: {out:?}"
        );
        // Nor a warning about the stand-in.
        let report = super::check_text_in(&api(auth), std::path::Path::new("."));
        assert!(report.warnings.is_empty(), "{auth}: {:?}", report.warnings);
    }
}

/// A value that did not decode hides the warnings about the default in its place:
/// `admin: [x]` has no token, `openapi: [x]` gives no routes, but both are the error.
#[test]
fn no_warning_about_what_stands_in_for_a_value_that_did_not_decode() {
    for (yaml, error) in [
        (
            "admin: [x]\napis: { a: { stages: { $default: {} }, routes: { \"GET /\": { integration: { type: mock } } } } }\n",
            "admin: expected a map",
        ),
        (
            "apis: { a: { stages: { $default: {} }, openapi: [x] } }\n",
            "apis.a.openapi: expected",
        ),
    ] {
        let report = super::check_text_in(yaml, std::path::Path::new("."));
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(error), "{errors:?}");
        assert!(report.warnings.is_empty(), "{yaml}: {:?}", report.warnings);
    }
}
