//! A custom domain's base path with a `.` or `..` segment is a `check` error: requests
//! with such a segment are refused with 400 before routing, so the mapping could never be
//! reached, yet check said ok.

mod common;

use common::*;

fn config(base: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:18999"]
apis:
  a:
    stages: {{ prod: {{}} }}
    routes:
      "ANY /{{proxy+}}": {{ integration: {{ type: mock, body: "a" }} }}
domains:
  api.example.com:
    mappings: {{ "{base}": a/prod }}
"#
    )
}

#[test]
fn dot_segments_in_base_paths_are_refused() {
    for base in ["v1/../x", "v1/.", "..", "./v1"] {
        let (code, text) = check(&config(base));
        assert_eq!(code, 1, "{base}: {text}");
        assert!(
            text.contains(&format!(
                r#"domains."api.example.com".mappings."{base}": base paths are "" (the root) or words separated by /"#
            )),
            "{base}: {text}"
        );
    }
    for base in ["v1.2", "v1/.well-known", "a..b", "...", ""] {
        let (code, text) = check(&config(base));
        assert_eq!(code, 0, "{base}: {text}");
    }
}
