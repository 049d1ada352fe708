//! `$context.integration.status` is the status the function code returned, while
//! `$context.integrationStatus` (and `$context.integration.integrationStatus`) is the
//! Lambda service's, as AWS's HTTP API logging variables say; for an http integration
//! both are the backend's status. `integration.status` was an alias of
//! `integrationStatus`, so a function returning 404 logged 200 for both.

mod common;

use common::*;

const FORMAT: &str = r#"{"p":"$context.path","s":"$context.status","is":"$context.integrationStatus","iis":"$context.integration.integrationStatus","i":"$context.integration.status"}"#;

#[test]
fn a_functions_own_status_is_integration_status() {
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":404,"body":"no"}"#.into()));
    let origin = Origin::start(|_, s| {
        respond(s, 503, &[], b"busy");
        true
    });
    for driver in DRIVERS {
        let log = temp_dir("integration-status").join("access.log");
        let yaml = lambda_config(
            &f,
            r#"      "GET /h": { integration: { type: http, upstream: be } }"#,
        )
        .replace(
            "  workers: 2\n",
            &format!(
                "  workers: 2\n  access_log: {{ path: \"{}\", format: '{FORMAT}' }}\n",
                log.display()
            ),
        );
        let yaml = format!(
            "{yaml}upstreams: {{ be: {{ targets: [\"{}\"] }} }}\n",
            origin.addr
        );
        let p = Portico::start(&yaml, driver);
        assert_eq!(p.get("/v2/a").status, 404, "{driver}");
        assert_eq!(p.get("/h").status, 503, "{driver}");
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| text().lines().count() >= 2),
            "{driver}: {}",
            text()
        );
        let text = text();
        assert!(
            text.contains(r#"{"p":"/v2/a","s":"404","is":"200","iis":"200","i":"404"}"#),
            "{driver}: {text}"
        );
        assert!(
            text.contains(r#"{"p":"/h","s":"503","is":"503","iis":"503","i":"503"}"#),
            "{driver}: {text}"
        );
    }
}
