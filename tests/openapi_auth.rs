//! Authorizers from OpenAPI files end to end: an HTTP API document with the security
//! schemes of AWS's documented `x-amazon-apigateway-authorizer` example (a JWT authorizer
//! and a Lambda REQUEST authorizer) plus an `awsSigv4` scheme, served with
//! `apis.NAME.openapi` against a real identity provider (tests/py/idp.py, PyJWT) and real
//! function endpoints; `portico openapi import` of it; the export and the import of that
//! export enforcing the same authorizers.

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::*;
use serde_json::{json, Value};

const AUTHZ_ARN: &str = "arn:aws:lambda:us-west-2:123456789012:function:function-name";
const ME_ARN: &str = "arn:aws:lambda:us-west-2:123456789012:function:me";

fn invocations(arn: &str) -> String {
    format!("arn:aws:apigateway:us-west-2:lambda:path/2015-03-31/functions/{arn}/invocations")
}

/// AWS's example security schemes (Developer Guide, x-amazon-apigateway-authorizer), with
/// the issuer and audience of the test's identity provider.
fn document(issuer: &str) -> Value {
    let integration = json!({
        "type": "aws_proxy", "httpMethod": "POST", "uri": invocations(ME_ARN),
        "payloadFormatVersion": "2.0"
    });
    json!({
        "openapi": "3.0.1",
        "info": { "title": "shop", "version": 1 },
        "paths": {
            "/me": { "get": {
                "security": [{ "jwt-authorizer-oauth": ["profile.read"] }],
                "x-amazon-apigateway-integration": integration
            } },
            "/orders": { "post": {
                "security": [{ "lambda-authorizer": [] }],
                "x-amazon-apigateway-integration": integration
            } },
            "/reports": { "get": {
                "security": [{ "sigv4": [] }],
                "x-amazon-apigateway-integration": integration
            } },
            "/open": { "get": { "x-amazon-apigateway-integration": integration } }
        },
        "components": { "securitySchemes": {
            "jwt-authorizer-oauth": {
                "type": "oauth2",
                "x-amazon-apigateway-authorizer": {
                    "type": "jwt",
                    "jwtConfiguration": { "issuer": issuer, "audience": ["shop-api", "audience2"] },
                    "identitySource": "$request.header.Authorization"
                }
            },
            "lambda-authorizer": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authorizer": {
                    "type": "request",
                    "identitySource": "$request.header.Authorization",
                    "authorizerUri": invocations(AUTHZ_ARN),
                    "authorizerPayloadFormatVersion": "2.0",
                    "authorizerResultTtlInSeconds": 300,
                    "enableSimpleResponses": true
                }
            },
            "sigv4": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": "awsSigv4"
            }
        } }
    })
}

fn config(file: &std::path::Path, authz: &Function, me: &Function) -> String {
    format!(
        r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 1 }}
iam:
  principals:
    r: {{ access_key_id: AKIAEXAMPLE, secret_access_key: s3cret, allow: ["*"] }}
apis:
  shop:
    openapi: {}
    lambda_functions:
      "{AUTHZ_ARN}": "{}"
      "{ME_ARN}": "{}"
    stages: {{ $default: {{}} }}
"#,
        file.display(),
        authz.url(),
        me.url()
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(idp: &Idp, scope: &str) -> String {
    idp.mint(json!({ "claims": {
        "iss": idp.issuer(), "aud": "shop-api", "sub": "user-1",
        "exp": now() + 600, "iat": now() - 5, "scope": scope,
    } }))
}

fn req(p: &Portico, method: &str, path: &str, auth: Option<&str>) -> Response {
    let a = auth.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
    p.raw(
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{a}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// What the OpenAPI file's authorizers must do, however the API was loaded.
fn assert_enforced(p: &Portico, idp: &Idp, me: &Function, authz: &Function, what: &str) {
    let r = req(p, "GET", "/me", None);
    assert_eq!(
        (r.status, r.json_message().as_str()),
        (401, "Unauthorized"),
        "{what}"
    );
    let good = token(idp, "profile.read orders.write");
    let r = req(p, "GET", "/me", Some(&format!("Bearer {good}")));
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert_eq!(
        me.last_event()["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
        "user-1",
        "{what}"
    );
    // The operation's scopes are the route's authorization scopes.
    let r = req(
        p,
        "GET",
        "/me",
        Some(&format!("Bearer {}", token(idp, "other"))),
    );
    assert_eq!(r.status, 403, "{what}");

    let calls = authz.calls();
    assert_eq!(req(p, "POST", "/orders", None).status, 401, "{what}");
    assert_eq!(authz.calls(), calls, "{what}: no identity, no call");
    assert_eq!(
        req(p, "POST", "/orders", Some("deny")).status,
        403,
        "{what}"
    );
    assert_eq!(
        req(p, "POST", "/orders", Some("allow")).status,
        200,
        "{what}"
    );
    // authorizerResultTtlInSeconds: the verdict for "allow" is cached.
    let calls = authz.calls();
    assert_eq!(
        req(p, "POST", "/orders", Some("allow")).status,
        200,
        "{what}"
    );
    assert_eq!(authz.calls(), calls, "{what}: cached");

    // awsSigv4 → authorization: iam; unsigned requests are refused.
    assert_eq!(req(p, "GET", "/reports", None).status, 403, "{what}");
    assert_eq!(req(p, "GET", "/open", None).status, 200, "{what}");
}

fn portico(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn jwt_and_lambda_authorizers_from_an_openapi_file_are_enforced_and_round_trip() {
    let idp = Idp::start();
    let me = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"me"}"#.into()));
    let authz = Function::start(|ev| {
        let ok = ev["identitySource"][0].as_str() == Some("allow");
        FnReply::Json(json!({ "isAuthorized": ok }).to_string())
    });
    let dir = temp_dir("openapi-auth");
    let file = dir.join("shop.json");
    std::fs::write(&file, document(&idp.issuer()).to_string()).unwrap();
    let yaml = config(&file, &authz, &me);
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        assert_enforced(&p, &idp, &me, &authz, &format!("file, {driver}"));
        p.stop();
    }

    // `openapi import` writes the same authorizers and route keys.
    let (code, out, err) = portico(&["openapi", "import", &file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let imported: Value = serde_yaml_ng::from_str(&out).unwrap();
    let api = &imported["apis"]["shop"];
    let jwt = &api["authorizers"]["jwt-authorizer-oauth"];
    assert_eq!(jwt["type"], "jwt");
    assert_eq!(jwt["issuer"], idp.issuer().as_str());
    assert_eq!(jwt["audience"], json!(["shop-api", "audience2"]));
    let lambda = &api["authorizers"]["lambda-authorizer"];
    assert_eq!(lambda["type"], "lambda");
    assert_eq!(lambda["simple_responses"], true);
    assert_eq!(lambda["result_ttl"], "300s");
    assert_eq!(
        lambda["identity_source"],
        json!(["$request.header.Authorization"])
    );
    assert_eq!(
        api["routes"]["GET /me"]["authorizer"],
        "jwt-authorizer-oauth"
    );
    assert_eq!(
        api["routes"]["GET /me"]["authorization_scopes"],
        json!(["profile.read"])
    );
    assert_eq!(api["routes"]["GET /reports"]["authorization"], "iam");
    assert!(api["routes"]["GET /open"].get("authorizer").is_none());

    // Export writes them back; the import of the export enforces the same.
    let cfg = dir.join("portico.yaml");
    std::fs::write(&cfg, yaml.replace("{PORT}", &free_port().to_string())).unwrap();
    let c = cfg.display().to_string();
    let args = [
        "openapi", "export", "-c", &c, "--api", "shop", "--stage", "$default",
    ];
    let (code, exported, err) = portico(&args);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&exported).unwrap();
    let schemes = &doc["components"]["securitySchemes"];
    let az = &schemes["jwt-authorizer-oauth"]["x-amazon-apigateway-authorizer"];
    assert_eq!(az["type"], "jwt");
    assert_eq!(az["jwtConfiguration"]["issuer"], idp.issuer().as_str());
    let az = &schemes["lambda-authorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(az["authorizerUri"], invocations(AUTHZ_ARN).as_str());
    assert_eq!(az["authorizerResultTtlInSeconds"], 300);
    assert_eq!(schemes["sigv4"]["x-amazon-apigateway-authtype"], "awsSigv4");
    assert_eq!(
        doc["paths"]["/me"]["get"]["security"],
        json!([{ "jwt-authorizer-oauth": ["profile.read"] }])
    );
    // Without the authorizers extension: no schemes, and no dangling requirement.
    let (_, plain, _) = portico(&[&args[..], &["--extensions", "integrations"]].concat());
    assert!(!plain.contains("jwt-authorizer-oauth"), "{plain}");

    let again = dir.join("exported.json");
    std::fs::write(&again, &exported).unwrap();
    let yaml = config(&again, &authz, &me);
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        assert_enforced(&p, &idp, &me, &authz, &format!("export, {driver}"));
        p.stop();
    }
}

#[test]
fn unusable_authorizers_skip_their_methods_rather_than_open_them() {
    let doc = json!({
        "openapi": "3.0.1",
        "info": { "title": "t", "version": "1" },
        "security": [{ "cognito": [] }],
        "paths": {
            "/a": { "get": {
                "security": [{ "cognito": [] }],
                "x-amazon-apigateway-integration": { "type": "mock" }
            } },
            "/b": { "get": {
                "security": [{ "nope": [] }],
                "x-amazon-apigateway-integration": { "type": "mock" }
            } },
            "/c": { "get": { "x-amazon-apigateway-integration": { "type": "mock" } } }
        },
        "components": { "securitySchemes": {
            "cognito": { "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authorizer": { "type": "cognito_user_pools",
                    "providerARNs": ["arn:aws:cognito-idp:us-east-1:123456789012:userpool/p"] } }
        } }
    });
    let file = temp_dir("openapi-auth-bad").join("t.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let (code, out, err) = portico(&["openapi", "import", &file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let routes = &serde_yaml_ng::from_str::<Value>(&out).unwrap()["apis"]["t"]["routes"];
    assert!(routes.get("GET /a").is_none(), "{out}");
    assert!(routes.get("GET /b").is_none(), "{out}");
    assert!(routes.get("GET /c").is_some(), "{out}");
    for want in [
        "#/components/securitySchemes/cognito/x-amazon-apigateway-authorizer/type",
        "#/paths/~1a/get/security",
        "#/paths/~1b/get/security",
        "#/security: root-level security is ignored",
    ] {
        assert!(err.contains(want), "{want} in {err}");
    }
}

/// A REST API (Swagger 2.0) as API Gateway's examples write one: a TOKEN authorizer with
/// REST's identity source syntax, a REQUEST authorizer with two sources, an API key
/// required with an authorizer, keys from the authorizer, IAM by `x-amazon-apigateway-auth`.
#[test]
fn rest_style_swagger_authorizers_are_imported() {
    let integration =
        json!({ "type": "mock", "responses": { "default": { "statusCode": "200" } } });
    let doc = json!({
        "swagger": "2.0",
        "info": { "title": "rest", "version": "2016-09-12T23:19:28Z" },
        "x-amazon-apigateway-api-key-source": "AUTHORIZER",
        "securityDefinitions": {
            "api_key": { "type": "apiKey", "name": "x-api-key", "in": "header" },
            "tok": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": "oauth2",
                "x-amazon-apigateway-authorizer": {
                    "type": "token",
                    "authorizerUri": invocations(AUTHZ_ARN),
                    "identityValidationExpression": "^x-[a-z]+",
                    "authorizerResultTtlInSeconds": 60
                }
            },
            "req": {
                "type": "apiKey", "name": "Unused", "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {
                    "type": "request",
                    "identitySource": "method.request.header.x-token, method.request.querystring.tenant",
                    "authorizerUri": invocations(AUTHZ_ARN)
                }
            }
        },
        "paths": {
            "/pets": { "get": {
                "security": [{ "api_key": [], "tok": [] }],
                "x-amazon-apigateway-integration": integration
            } },
            "/orders": { "post": {
                "security": [{ "req": [] }],
                "x-amazon-apigateway-integration": integration
            } },
            "/admin": { "get": {
                "x-amazon-apigateway-auth": { "type": "AWS_IAM" },
                "x-amazon-apigateway-integration": integration
            } }
        }
    });
    let file = temp_dir("openapi-auth-rest").join("rest.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let (code, out, err) = portico(&["openapi", "import", &file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let api = &serde_yaml_ng::from_str::<Value>(&out).unwrap()["apis"]["rest"];
    assert_eq!(api["api_key_source"], "authorizer", "{out}");
    let tok = &api["authorizers"]["tok"];
    assert_eq!(
        (&tok["type"], &tok["payload_format"], &tok["result_ttl"]),
        (&json!("lambda"), &json!("1.0"), &json!("60s"))
    );
    assert_eq!(
        tok["identity_source"],
        json!(["$request.header.Authorization"])
    );
    assert!(
        err.contains("securityDefinitions/tok/x-amazon-apigateway-authorizer: a TOKEN authorizer"),
        "{err}"
    );
    assert_eq!(
        api["authorizers"]["req"]["identity_source"],
        json!(["$request.header.x-token", "$request.querystring.tenant"])
    );
    let pets = &api["routes"]["GET /pets"];
    assert_eq!(
        (&pets["authorizer"], &pets["api_key_required"]),
        (&json!("tok"), &json!(true))
    );
    assert_eq!(api["routes"]["POST /orders"]["authorizer"], "req");
    assert_eq!(api["routes"]["GET /admin"]["authorization"], "iam");
}
