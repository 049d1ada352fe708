//! YAML's own tags (`!!int`, `!!float`, `!!str`, `%TAG` handles, verbatim tags): read
//! where a value fits them, an error at its key where one does not, every one reported.

use crate::config::load::load_str;
use crate::config::model::Integration;

#[test]
fn a_yaml_tag_a_value_does_not_fit_is_an_error_at_its_key_and_the_others_still_come() {
    // `!!float hi` stopped the parse ("not valid YAML: … expected a float"), hiding the
    // file's other errors; `!!binary aGk=` was served as the text "aGk=".
    let yaml = r#"
server:
  workers: 999
  limits: { header_timeout: soon }
apis:
  a:
    stages: { $default: {} }
    routes:
      'GET /b': { integration: { type: mock, body: !!float hi } }
      'GET /n': { integration: { type: mock, status: !!int x1 } }
      'GET /f': { integration: { type: mock, status: !!float 200 } }
      'GET /s': { integration: { type: mock, body: !!binary aGk= } }
      'GET /t': { integration: { type: mock, body: !!timestamp 2001-12-14 } }
      'GET /c': { integration: { type: http, upstream: nope } }
"#;
    let report = crate::config::check_text_in(yaml, std::path::Path::new("."));
    let got: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    let has = |want: &str| got.iter().any(|e| e == want);
    for want in [
        r#"apis.a.routes."GET /b".integration.body: "hi" is not a float, as its tag !!float says"#,
        r#"apis.a.routes."GET /n".integration.status: "x1" is not an integer, as its tag !!int says"#,
        // A plain whole number under `!!float` is a float, as `!!float "200"` is.
        r#"apis.a.routes."GET /f".integration.status: expected a whole number ≥ 0, got 200.0"#,
        r#"apis.a.routes."GET /s".integration.body: YAML's !!binary tag is not supported: write the value itself, untagged"#,
        r#"apis.a.routes."GET /t".integration.body: YAML's !!timestamp tag is not supported: write the value itself, untagged"#,
    ] {
        assert!(has(want), "no {want:?} in {got:#?}");
    }
    // The rest of the file is still checked.
    for key in [
        "server.workers",
        "server.limits.header_timeout",
        r#"apis.a.routes."GET /c".integration.upstream"#,
    ] {
        assert!(
            got.iter().any(|e| e.starts_with(key)),
            "no {key} in {got:#?}"
        );
    }
    // Tags a value fits are read as before, and `!!str` keeps text as text.
    let cfg = load_str(
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n      'GET /b': { integration: { type: mock, status: !!int 201, body: !!str 12 } }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let Integration::Mock { status, body, .. } = &cfg.apis[0].1.routes[0].1.integration else {
        panic!()
    };
    assert_eq!((*status, &**body), (201, "12"));
}

#[test]
fn a_bad_yaml_tag_behind_an_anchor_is_an_error_at_its_key_too() {
    // The parser reports a node at its start: the anchor's, before the tag.
    let yaml = "server:\n  workers: 999\napis:\n  a:\n    stages: { $default: {} }\n    routes:\n      'GET /b': { integration: { type: mock, body: &x !!float hi } }\n      'GET /c': { integration: { type: mock, body: *x } }\n";
    let report = crate::config::check_text_in(yaml, std::path::Path::new("."));
    let got: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(
        got.iter().any(|e| e
            == r#"apis.a.routes."GET /b".integration.body: "hi" is not a float, as its tag !!float says"#),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.starts_with("server.workers")),
        "{got:#?}"
    );
}

#[test]
fn yaml_tags_in_every_spelling_and_on_every_kind_of_node() {
    let check = |yaml: &str| -> Vec<String> {
        let report = crate::config::check_text_in(yaml, std::path::Path::new("."));
        report.errors.iter().map(ToString::to_string).collect()
    };
    let route = |i: usize, body: &str| {
        format!("      'GET /r{i}': {{ integration: {{ type: mock, body: {body} }} }}\n")
    };
    let file = |pre: &str, bodies: &[&str]| {
        let routes: String = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| route(i, b))
            .collect();
        format!("{pre}server:\n  workers: 999\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n{routes}")
    };
    let at = |i: usize| format!(r#"apis.a.routes."GET /r{i}".integration.body: "#);
    // Verbatim, under %TAG handles, behind an anchor: each an error at its key, the
    // rest of the file checked (server.workers).
    let got = check(&file(
        "%TAG !! tag:yaml.org,2002:\n%TAG !y! tag:yaml.org,2002:\n---\n",
        &[
            "!<tag:yaml.org,2002:binary> aGk=",
            "!<tag:yaml.org,2002:float> hi",
            "!y!timestamp 2001-12-14",
            "&s !!int nope",
            "!!int { type: mock }",
            "!!null",
            "!!int \"12\"",
        ],
    ));
    let unsupported = "tag is not supported: write the value itself, untagged";
    for (i, want) in [
        (0, format!("YAML's !!binary {unsupported}")),
        (
            1,
            r#""hi" is not a float, as its tag !!float says"#.to_string(),
        ),
        (2, format!("YAML's !!timestamp {unsupported}")),
        (
            3,
            r#""nope" is not an integer, as its tag !!int says"#.to_string(),
        ),
        (
            4,
            "a map is not an integer, as its tag !!int says".to_string(),
        ),
    ] {
        let want = format!("{}{want}", at(i));
        assert!(got.contains(&want), "no {want:?} in {got:#?}");
    }
    // An empty `!!null` is null, and `!!int "12"` is 12 (which a body can't be).
    assert!(!got.iter().any(|e| e.starts_with(&at(5))), "{got:#?}");
    assert!(
        got.iter()
            .any(|e| e.starts_with(&at(6)) && !e.contains("tag")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.starts_with("server.workers")),
        "{got:#?}"
    );
    // Many of them: every one reported.
    let many: Vec<String> = (0..40).map(|i| format!("!!float x{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let got = check(&file("", &many));
    let tagged = got
        .iter()
        .filter(|e| e.contains("as its tag !!float says"))
        .count();
    assert_eq!(tagged, 40, "{got:#?}");
    // The primary handle, and a handle whose prefix holds part of the name.
    let got = check(&file(
        "%TAG ! tag:yaml.org,2002:\n%TAG !e! tag:yaml.org,2002:bin\n---\n",
        &["!float hi", "!e!ary aGk=", "!str 1.10", "!int 0x1F"],
    ));
    for (i, want) in [
        (
            0,
            r#""hi" is not a float, as its tag !!float says"#.to_string(),
        ),
        (1, format!("YAML's !!binary {unsupported}")),
    ] {
        let want = format!("{}{want}", at(i));
        assert!(got.contains(&want), "no {want:?} in {got:#?}");
    }
    assert!(!got.iter().any(|e| e.starts_with(&at(2))), "{got:#?}");
    assert!(
        got.iter()
            .any(|e| e.starts_with(&at(3)) && !e.contains("tag")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.starts_with("server.workers")),
        "{got:#?}"
    );
    // `!!` keeps its meaning when `!` is given another prefix, and a prefix written
    // with %-escapes is read decoded.
    for pre in [
        "%TAG ! tag:example.com,2026:\n---\n",
        "%TAG ! tag%3Ayaml.org%2C2002:\n---\n",
    ] {
        let got = check(&file(pre, &["!!float hi", "!!binary aGk="]));
        let float = format!(r#"{}"hi" is not a float, as its tag !!float says"#, at(0));
        let binary = format!("{}YAML's !!binary {unsupported}", at(1));
        assert!(
            got.contains(&float) && got.contains(&binary),
            "{pre}: {got:#?}"
        );
        assert!(
            got.iter().any(|e| e.starts_with("server.workers")),
            "{got:#?}"
        );
    }
    let got = check(&file("%TAG ! tag%3Ayaml.org,2002:\n---\n", &["!float hi"]));
    assert!(
        got.iter()
            .any(|e| e.starts_with(&at(0)) && e.contains("!!float")),
        "{got:#?}"
    );
    // Text as written through a handle: `!str 1.10` is "1.10"; `!!int "200"` a status.
    let yaml = "%TAG ! tag:yaml.org,2002:\n---\napis:\n  a:\n    stages: { $default: {} }\n    routes:\n      'GET /b': { integration: { type: mock, status: !!int \"201\", body: !str 1.10 } }\n";
    let cfg = load_str(yaml).unwrap_or_else(|e| panic!("{e}"));
    let Integration::Mock { status, body, .. } = &cfg.apis[0].1.routes[0].1.integration else {
        panic!()
    };
    assert_eq!((*status, &**body), (201, "1.10"));
    // A %TAG that gives `!!` another prefix makes no type of YAML's.
    let got = check(&file(
        "%TAG !! tag:example.com,2026:\n---\n",
        &["!!float hi"],
    ));
    assert!(!got.iter().any(|e| e.contains("!!float")), "{got:#?}");
}

#[test]
fn yaml_tags_on_collections_keys_and_in_odd_spellings() {
    let check = |yaml: &str| -> Vec<String> {
        let report = crate::config::check_text_in(yaml, std::path::Path::new("."));
        report.errors.iter().map(ToString::to_string).collect()
    };
    let vars = |pre: &str, vars: &str| {
        format!("{pre}apis:\n  a:\n    stages:\n      prod:\n        variables: {{ {vars} }}\n    routes:\n      'GET /x': {{ integration: {{ type: mock }} }}\n")
    };
    let at = "apis.a.stages.prod.variables";
    let has = |got: &[String], want: &str| got.iter().any(|e| e == want);
    // `!!str` on a map, a float with two signs, a tag on a key, a global tag of no
    // type Portico knows, Portico's own marker written by a file.
    let got = check(&vars(
        "",
        "m: !!str { a: b }, f: !!float \"++12.5\", !!float lo: x, u: !<tag:example.com,2000:x> y, t: !~yaml:int \"1\"",
    ));
    for want in [
        format!("{at}.m: a map is not text, as its tag !!str says"),
        format!(r#"{at}.f: "++12.5" is not a float, as its tag !!float says"#),
        format!(r#"{at}.lo: "lo" is not a float, as its tag !!float says"#),
        format!("{at}.u: this YAML tag is not supported: write the value itself, untagged"),
    ] {
        assert!(has(&got, &want), "no {want:?} in {got:#?}");
    }
    // Quoted past 64 bits: its text where text goes, as unquoted.
    let cfg = load_str(&vars(
        "",
        "big: !!int \"99999999999999999999999\", n: ! 12, e: !!str",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let stage = &cfg.apis[0].1.stages[0].1;
    let var = |k: &str| {
        stage
            .variables
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(var("big").as_deref(), Some("99999999999999999999999"));
    assert_eq!(var("n").as_deref(), Some("12"));
    assert_eq!(var("e").as_deref(), Some(""));
    // A long %TAG prefix: custom when it is not YAML's, YAML's when it is.
    let custom = "%TAG !e! tag:example.com,2000:app/a-long-prefix/\n---\n";
    let got = check(&vars(custom, "v: !e!tag:yaml.org%2C2002:float hi"));
    assert!(!got.iter().any(|e| e.contains("as its tag")), "{got:#?}");
    let core = "%TAG !e! tag:yaml.org,2002:aaaaaaaaaaaaaaaaa\n---\n";
    let got = check(&vars(core, "v: !e!x hi"));
    assert!(
        has(
            &got,
            &format!("{at}.v: this YAML tag is not supported: write the value itself, untagged")
        ),
        "{got:#?}"
    );
}

/// A key's text is as written (`!!float 200:` is "200") whether or not the file has
/// other errors: one elsewhere made every tagged number key read "200.0", an error of its
/// own that was not there without it.
#[test]
fn a_tagged_number_key_reads_as_written_beside_other_errors() {
    let file = |extra: &str| {
        format!(
            "apis:\n  a:\n    stages: {{ !!float 1: {{}}, s: {{ variables: {{ x: y{extra} }} }} }}\n    routes:\n      'GET /m':\n        integration: {{ type: mock, body: m }}\n        response_parameters: {{ !!float 200: {{ 'overwrite:header.x-b': c }} }}\n"
        )
    };
    let report = |yaml: &str| -> Vec<String> {
        let report = crate::config::check_text_in(yaml, std::path::Path::new("."));
        report.errors.iter().map(ToString::to_string).collect()
    };
    assert_eq!(report(&file("")), Vec::<String>::new());
    assert_eq!(
        report(&file(", z: !!float hi")),
        [r#"apis.a.stages.s.variables.z: "hi" is not a float, as its tag !!float says"#]
    );
}
