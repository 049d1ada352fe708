//! The OpenAPI export of a config that reads credentials from `${env:NAME}`: the
//! document (admin `GET /apis/{api}/openapi` and `portico openapi export`) writes the
//! references as the file has them, as `GET /config` does, while requests still carry
//! the values.

mod common;

use std::process::Command;

use common::*;

const SECRETS: [(&str, &str); 3] = [
    ("EXPORT_BACKEND_TOKEN", "backend-cred-2"),
    ("EXPORT_STAGE_SECRET", "stage-2"),
    ("EXPORT_MOCK_SECRET", "mock-3"),
];

/// Names the config reads from the environment: upstream and model names, which the
/// export resolves (a `${env:…}` there named nothing the document has).
const NAMES: [(&str, &str); 2] = [("EXPORT_UPSTREAM", "be"), ("EXPORT_MODEL", "Order")];

fn config(origin: &Origin, port: u16, admin_port: u16) -> String {
    format!(
        r#"admin: {{ listen: "127.0.0.1:{admin_port}", token: tok }}
server: {{ listen: ["127.0.0.1:{port}"], workers: 1 }}
upstreams: {{ be: {{ targets: ["{}"] }} }}
apis:
  app:
    stages: {{ $default: {{ variables: {{ sv: "${{env:EXPORT_STAGE_SECRET}}", plain: "p" }} }} }}
    models:
      Order: {{ type: object, required: [sku] }}
    gateway_responses:
      DEFAULT_4XX: {{ headers: {{ x-why: "k=${{env:EXPORT_MOCK_SECRET}}" }} }}
    routes:
      "GET /m":
        integration: {{ type: http, upstream: be, timeout: 7s }}
        parameters: {{ "overwrite:header.Authorization": "Bearer ${{env:EXPORT_BACKEND_TOKEN}}" }}
      "POST /o":
        integration: {{ type: http, upstream: "${{env:EXPORT_UPSTREAM}}", path: /o }}
        request_validator: body-only
        request_model: {{ application/json: "${{env:EXPORT_MODEL}}" }}
      "GET /mock":
        integration: {{ type: mock, headers: {{ x-k: "${{env:EXPORT_MOCK_SECRET}}" }}, body: "b ${{env:EXPORT_MOCK_SECRET}}" }}
"#,
        origin.addr
    )
}

/// What the export must say, and must not.
fn assert_references(doc: &serde_json::Value, how: &str) {
    let text = doc.to_string();
    for (_, secret) in SECRETS {
        assert!(!text.contains(secret), "{how}: {secret} in {text}");
    }
    let http = &doc["paths"]["/m"]["get"]["x-amazon-apigateway-integration"];
    assert_eq!(
        http["requestParameters"]["overwrite:header.Authorization"],
        "Bearer ${env:EXPORT_BACKEND_TOKEN}",
        "{how}"
    );
    // Values the config parses are the running ones, names as they resolve.
    assert_eq!(http["timeoutInMillis"], 7000, "{how}");
    let post = &doc["paths"]["/o"]["post"];
    let uri = post["x-amazon-apigateway-integration"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        uri.starts_with("http://127.0.0.1:") && uri.ends_with("/o"),
        "{how}: {uri}"
    );
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Order",
        "{how}"
    );
    assert_eq!(
        doc["x-portico-stage-variables"],
        serde_json::json!({ "sv": "${env:EXPORT_STAGE_SECRET}", "plain": "p" }),
        "{how}"
    );
    let mock = &doc["paths"]["/mock"]["get"]["x-amazon-apigateway-integration"];
    assert_eq!(
        mock["responses"]["default"]["responseParameters"]["method.response.header.x-k"],
        "'${env:EXPORT_MOCK_SECRET}'",
        "{how}"
    );
    assert_eq!(
        doc["x-amazon-apigateway-gateway-responses"]["DEFAULT_4XX"]["responseParameters"]
            ["gatewayresponse.header.x-why"],
        "'k=${env:EXPORT_MOCK_SECRET}'",
        "{how}"
    );
}

#[test]
fn export_writes_env_references_not_their_values() {
    let origin = Origin::echo();
    let admin_port = free_port();
    let port = free_port();
    let yaml = config(&origin, port, admin_port);
    let dir = temp_dir("openapi-export-env");
    let cfg = dir.join("portico.yaml");
    std::fs::write(&cfg, &yaml).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["openapi", "export", "-c"])
        .arg(&cfg)
        .args(["--api", "app", "--stage", "$default"])
        .envs(SECRETS)
        .envs(NAMES)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_references(&exported, "portico openapi export");

    // Imported again, the references come back as written, for the new config to read
    // from its own environment (a mapping's was skipped as "not a mapping value").
    let file = dir.join("exported.json");
    std::fs::write(&file, exported.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["openapi", "import"])
        .arg(&file)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("skipped"), "{stderr}");
    assert!(
        stdout.contains("Bearer ${env:EXPORT_BACKEND_TOKEN}"),
        "{stdout}"
    );

    for driver in DRIVERS {
        let env: Vec<(&str, &str)> = SECRETS.iter().chain(&NAMES).copied().collect();
        let p = Portico::start_at_with_env(&yaml, driver, port, &env);
        let admin_addr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let r = admin(
            admin_addr,
            "GET",
            "/apis/app/openapi?stage=$default",
            Some("tok"),
            None,
        );
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let served: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_references(&served, driver);
        assert_eq!(served, exported, "{driver}");
        // The running config still sends what the variables hold.
        let r = p.get("/m");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            origin.last().header("authorization"),
            Some("Bearer backend-cred-2"),
            "{driver}"
        );
        let r = p.get("/mock");
        assert_eq!(r.text(), "b mock-3", "{driver}");
        p.stop();
    }
}

#[test]
fn export_redacts_secrets_the_file_repeats_as_get_config_does() {
    let dir = temp_dir("openapi-export-secrets");
    let cfg = dir.join("portico.yaml");
    std::fs::write(
        &cfg,
        r#"admin: { listen: "127.0.0.1:9", token: &tok tok-abcdef-secret }
cluster: { redis: "redis://:password@127.0.0.1:9" }
iam:
  principals:
    alice:
      access_key_id: AKIAEXAMPLEALICE
      secret_access_key: &sk wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY
      allow: ["*"]
usage_plans: { p: { stages: [a/prod] } }
api_keys: [ { name: k, value: key-0123456789abcdefghij, plan: p } ]
apis:
  a:
    stages: { prod: { variables: { t: *tok, k: key-0123456789abcdefghij } } }
    models:
      Login: { type: object, required: [password], properties: { password: { type: string } } }
    routes:
      "GET /x":
        integration: { type: mock, body: "tok-abcdef-secret", headers: { x-k: *sk, x-a: "Bearer tok-abcdef-secret" } }
      "POST /users/password-reset":
        integration: { type: mock, status: 201, body: "reset" }
        request_validator: body-only
        request_model: Login
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["openapi", "export", "-c"])
        .arg(&cfg)
        .args(["--api", "a", "--stage", "prod"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = doc.to_string();
    for secret in [
        "tok-abcdef-secret",
        "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "key-0123456789abcdefghij",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(
        doc["x-portico-stage-variables"],
        serde_json::json!({ "t": "[redacted]", "k": "[redacted]" })
    );
    let mock = &doc["paths"]["/x"]["get"]["x-amazon-apigateway-integration"];
    assert_eq!(
        mock["responses"]["default"]["responseParameters"]["method.response.header.x-k"],
        "'[redacted]'"
    );
    assert_eq!(
        mock["responses"]["default"]["responseParameters"]["method.response.header.x-a"],
        "'Bearer [redacted]'"
    );
    // The API's shape is never redacted, though the Redis password is `password`.
    assert!(
        doc["paths"]["/users/password-reset"]["post"].is_object(),
        "{text}"
    );
    assert_eq!(
        doc["components"]["schemas"]["Login"]["required"],
        serde_json::json!(["password"])
    );
}
