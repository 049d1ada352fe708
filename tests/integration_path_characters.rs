//! An http integration's `path` goes onto the backend's request line byte for byte, stage
//! variables substituted, so `check` (and so `run` and reloads) refuses one that holds a
//! character no request-target may (`" < > \ ^ ` { } | [ ]`, RFC 3986), written in it or
//! from a stage variable. Before, both passed check and the backend got
//! `GET /a"<b>|^`{}[]/c HTTP/1.1`, where an `overwrite:path` sends the same characters
//! percent-encoded. Written percent-encoded, the path is served as written.

mod common;

use common::*;

fn config(path: &str, v: &str, upstream: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  ua: {{ targets: ["{upstream}"] }}
apis:
  a:
    stages: {{ $default: {{ variables: {{ v: '{v}' }} }} }}
    routes:
      "GET /x/{{p}}": {{ integration: {{ type: http, upstream: ua, path: '{path}' }} }}
"#
    )
}

const AT: &str = r#"apis.a.routes."GET /x/{p}".integration.path: "#;

#[test]
fn a_character_no_request_target_holds_is_refused_in_a_path_and_its_variables() {
    for (path, v, first) in [
        ("/${stageVariables.v}/{p}", r#"a"<b>|^`{}[]"#, "has `\"`"),
        ("/a|b/{p}", "x", "has `|`"),
        ("/a[1]/{p}", "x", "has `[`"),
        ("/${stageVariables.v}/{p}", "{p}", "has `{`"),
    ] {
        let (code, text) = check(&config(path, v, "127.0.0.1:9"));
        assert_eq!(code, 1, "{path} {v}: {text}");
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("apis.")).collect();
        assert_eq!(errors.len(), 1, "{path} {v}: {text}");
        assert!(
            errors[0].starts_with(&format!("{AT}{first} (one of")),
            "{path} {v}: {text}"
        );
    }
    let yaml = config("/a|b/{p}", "x", "127.0.0.1:9");
    for driver in DRIVERS {
        assert!(
            Portico::try_start(&yaml, driver).is_err(),
            "{driver}: started"
        );
    }
}

#[test]
fn the_same_characters_percent_encoded_are_served_as_written() {
    let origin = Origin::fixed(b"ok");
    let yaml = config(
        "/${stageVariables.v}/a%7Cb/{p}",
        "%22%5B1%5D",
        &origin.addr.to_string(),
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = p.get("/x/c");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/%22%5B1%5D/a%7Cb/c", "{driver}");
    }
}
