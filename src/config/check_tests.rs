//! What `check` (and a reload) reports when several things are wrong: each stage runs on
//! whatever the decoder made of the file, and skips only what an earlier error explains.

#[test]
fn a_list_item_that_fails_to_decode_does_not_renumber_the_others() {
    let errors = |yaml: &str| -> Vec<String> {
        super::check_text_in(yaml, std::path::Path::new("."))
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    // The third address repeats the second: not "listen[1] is used by listen[0]".
    let out = errors("server: { listen: [12, \"127.0.0.1:28089\", \"127.0.0.1:28089\"] }\n");
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].starts_with("server.listen[0]: expected"), "{out:?}");
    // The third key's plan is not blamed on the second.
    let out = errors(
        "api_keys:\n  - { name: a, vale: x }\n  - { name: b, value: bbbbbbbbbbbbbbbbbbbbbbbbb }\n  - { name: c, value: cccccccccccccccccccccccc, plan: nope }\n",
    );
    assert!(out.iter().all(|e| !e.starts_with("api_keys[1]")), "{out:?}");
    assert!(out.iter().any(|e| e.starts_with("api_keys[0]")), "{out:?}");
    // Without decode errors the same list is numbered as written.
    let out = errors("server: { listen: [\"127.0.0.1:28089\", \"127.0.0.1:28089\"] }\n");
    assert_eq!(
        out,
        ["server.listen[1]: 127.0.0.1:28089 is already used by server.listen[0]"]
    );
}

#[test]
fn a_misspelt_key_hides_nothing_about_its_siblings() {
    let yaml = r#"
apis:
  shop:
    stages: { prod: {} }
    throtle: { rate: 1 }
    routes:
      "GET /w": { integration: { type: http, upstream: users }, apikey_required: true }
      "GTE /y": { integration: { type: mock } }
  x:
    stage: { prod: {} }
    routes:
      "GET /q": { integration: { type: mock, status: 99 } }
"#;
    let out: Vec<String> = super::check_text_in(yaml, std::path::Path::new("."))
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        out,
        [
            r#"apis.shop: unknown key "throtle" (did you mean "throttle"?)"#,
            r#"apis.shop.routes."GET /w": unknown key "apikey_required" (did you mean "api_key_required"?)"#,
            r#"apis.x: unknown key "stage" (did you mean "stages"?)"#,
            r#"apis.shop.routes."GET /w".integration.upstream: no upstream named "users""#,
            r#"apis.shop.routes."GTE /y": unknown method "GTE"; use one of GET POST PUT DELETE PATCH HEAD OPTIONS ANY"#,
            r#"apis.x.routes."GET /q".integration.status: must be an HTTP status 200–599, got 99"#,
        ],
        // Not "apis.x.stages: an API needs at least one stage": the key meant is missing
        // because of the misspelling already reported.
    );
}

#[test]
fn a_message_names_a_list_item_by_its_place_in_the_file() {
    // The first address failed to decode, so the decoded list was one shorter: the
    // message said `server.listen[0]`, the item that failed.
    let yaml = r#"
server: { listen: ["bad", "127.0.0.1:21080"], tls_listen: ["127.0.0.1:21080"] }
admin: { listen: "127.0.0.1:21080", token: t }
"#;
    let out: Vec<String> = super::check_text_in(yaml, std::path::Path::new("."))
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    let used = "127.0.0.1:21080 is already used by server.listen[1]";
    assert!(
        out.contains(&format!("server.tls_listen[0]: {used}")),
        "{out:?}"
    );
    assert!(out.contains(&format!("admin.listen: {used}")), "{out:?}");
}

#[test]
fn renumbering_touches_only_the_list_named() {
    use super::renumber;
    let kept = [1, 3];
    assert_eq!(
        renumber("a.l[0] and a.l[1]", "a.l", &kept),
        "a.l[1] and a.l[3]"
    );
    assert_eq!(renumber("a.l[1].b[0]: x", "a.l", &kept), "a.l[3].b[0]: x");
    // Another list whose path ends alike, a longer key, the list itself, no such item.
    for same in [
        "x.a.l[0]",
        "a.l_x[0]",
        "a.l: empty",
        "a.l[7]",
        "a.l[",
        "a.l[q]",
    ] {
        assert_eq!(renumber(same, "a.l", &kept), same);
    }
}
