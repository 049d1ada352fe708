//! Tests of `template`: parsing both syntaxes and rendering each source.

use super::*;

#[test]
fn parses_mixed_values_both_syntaxes() {
    assert_eq!(
        parse("t-$request.header.x-org/${request.querystring.q}$context.identity.sourceIp.")
            .unwrap(),
        vec![
            Ref::Lit("t-"),
            Ref::Header("x-org"),
            Ref::Lit("/"),
            Ref::Query("q"),
            Ref::Context("identity.sourceIp"),
            Ref::Lit(".")
        ]
    );
    assert_eq!(
        parse("/v/$request.path.id.json$request.path").unwrap(),
        vec![
            Ref::Lit("/v/"),
            Ref::PathParam("id"),
            Ref::Lit(".json"),
            Ref::Path
        ]
    );
    assert_eq!(
        parse("cost: 5$ ${stageVariables.v}").unwrap(),
        vec![Ref::Lit("cost: 5$ "), Ref::Stage("v")]
    );
    assert!(parse("$request.body.x")
        .unwrap_err()
        .contains("not supported"));
    assert!(parse("$request.cookie.x").is_err());
    assert!(parse("${request.header.x").is_err());
}

#[test]
fn a_misspelt_reference_is_an_error_and_other_dollars_are_text() {
    // They went to the backend as written: `$stagevariables.region`.
    for bad in [
        "$stagevariables.region",
        "$Request.header.x-org",
        "$method.request.header.x-org",
        "$Context.requestId",
        "a-$Response.header.x",
    ] {
        let e = parse(bad).unwrap_err();
        assert!(e.contains("is not a mapping value"), "{bad}: {e}");
    }
    for text in ["$5.00", "US$", "$HOME", "$ .x", "costs $ 5.", "$_x.y"] {
        assert_eq!(parse(text).unwrap(), vec![Ref::Lit(text)], "{text}");
    }
}

#[test]
fn claim_names_with_a_colon_must_be_braced() {
    let e = parse("$context.authorizer.claims.cognito:groups").unwrap_err();
    assert!(
        e.contains("write ${context.authorizer.claims.cognito:groups}"),
        "{e}"
    );
    assert!(parse("g=$context.authorizer.claims.https://example.com/roles").is_err());
    assert_eq!(
        parse("${context.authorizer.claims.cognito:groups}").unwrap(),
        vec![Ref::Context("authorizer.claims.cognito:groups")]
    );
    // A colon as a separator stays one.
    assert!(parse("$context.authorizer.claims.sub:$context.stage").is_ok());
    assert!(parse("$context.authorizer.claims.sub: x").is_ok());
    assert!(parse("$context.stage:v1").is_ok());
}

#[test]
fn compile_resolves_stage_variables_and_params() {
    let vars = vec![("v".to_string(), "two".to_string())];
    let params = vec!["id".to_string()];
    let t = Template::compile("a-${stageVariables.v}-$request.path.id", &vars, &params).unwrap();
    assert_eq!(
        t.pieces(),
        &[Piece::Lit((*b"a-two-").into()), Piece::PathParam(0)]
    );
    assert!(Template::compile("$stageVariables.nope", &vars, &params).is_err());
    assert!(Template::compile("$request.path.nope", &vars, &params).is_err());
    assert!(Template::compile("$context.nope", &vars, &params).is_err());
    let lit = Template::compile("x", &vars, &params).unwrap();
    assert_eq!(lit.as_static(), Some(&b"x"[..]));
}

#[test]
fn encodes_only_when_needed() {
    let mut out = b"q=".to_vec();
    out.extend_from_slice(b"a b&c");
    encode_tail(&mut out, 2, query_safe);
    assert_eq!(out, b"q=a%20b%26c");
    let mut out = b"/a%20b".to_vec();
    encode_tail(&mut out, 0, path_safe);
    assert_eq!(out, b"/a%20b");
    // A % that starts no escape is a percent sign: never the start of a new escape.
    for (value, encoded) in [
        (&b"/%%36%31dmin"[..], &b"/%25%36%31dmin"[..]),
        (b"/a%zz", b"/a%25zz"),
        (b"/a%", b"/a%25"),
        (b"/a%4", b"/a%254"),
    ] {
        let mut out = value.to_vec();
        encode_tail(&mut out, 0, path_safe);
        assert_eq!(out, encoded);
    }
    let mut out = b"q=".to_vec();
    out.extend_from_slice(b"1;admin=1");
    encode_tail(&mut out, 2, query_safe);
    assert_eq!(out, b"q=1%3Badmin%3D1");
    let mut out = b"q=".to_vec();
    out.extend_from_slice(b"50%+off%2B");
    encode_tail(&mut out, 2, query_safe);
    assert_eq!(out, b"q=50%25%2Boff%2B");
}

#[test]
fn query_names_as_backends_read_them() {
    for raw in [
        &b"debug"[..],
        b"%64ebug",
        b"+debug",
        b"%20%20debug",
        b"debug%00x",
        b"debug[]",
        b"debug[a][b]",
        b"%64ebug%5B%5D",
        b"debug]",
        b"[debug]",
        b"]debug",
        b"debug]x",
        // Rack files `debug[x` under `debug` (PHP: `debug_x`).
        b"debug[x",
        // ASP.NET reads names in any case.
        b"DEBUG",
        b"%44ebug",
    ] {
        assert!(
            query_name_is(raw, b"debug"),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    for raw in [&b"debugx"[..], b"debu", b"x+debug", b"", b"%00debug"] {
        assert!(
            !query_name_is(raw, b"debug"),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(query_name_is(b"user.id", b"user_id") && query_name_is(b"user+id", b"user_id"));
    // PHP: an unclosed `[` is `_`.
    assert!(query_name_is(b"debug[x", b"debug_x") && !query_name_is(b"debug[x]", b"debug_x"));
}
