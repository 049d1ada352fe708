//! Unit tests of gateway_responses.rs: how a template finds its references.

use super::*;

#[test]
fn braced_and_unbraced_references_are_found_in_order() {
    // The braced one came first and was left as literal text: the search looked for
    // `$context.` before `${context.`, wherever each was.
    let b = Body::compile(
        "${context.stage}-$context.requestId/${stageVariables.env}$stageVariables.x.",
    )
    .unwrap();
    assert_eq!(
        &*b.0,
        &[
            Piece::Ctx(Var::Stage),
            Piece::Lit((*b"-").into()),
            Piece::Ctx(Var::RequestId),
            Piece::Lit((*b"/").into()),
            Piece::Stage("env".into()),
            Piece::Stage("x".into()),
            Piece::Lit((*b".").into()),
        ]
    );
    assert!(Body::compile("${stageVariables.a-b}").is_err());
    assert!(Body::compile("$context.nope").is_err());
}

#[test]
fn a_fallbacks_status_is_the_status_of_its_class_customised_without_one() {
    let def = |status: Option<u16>, body: Option<&str>| GatewayResponse {
        status,
        headers: Vec::new(),
        body: body.map(str::to_string),
    };
    let rt = GatewayResponsesRt::compile(&[
        ("DEFAULT_4XX".into(), def(Some(418), None)),
        ("BAD_REQUEST_PARAMETERS".into(), def(None, Some("{}"))),
        ("UNAUTHORIZED".into(), def(Some(401), None)),
        ("INTEGRATION_FAILURE".into(), def(None, Some("{}"))),
    ])
    .unwrap();
    let status = |t, s| rt.find(t, s).and_then(|c| c.status);
    assert_eq!(status(ResponseType::BadRequestParameters, 400), Some(418));
    assert_eq!(status(ResponseType::Unauthorized, 401), Some(401));
    // Not customised: through DEFAULT_4XX itself.
    assert_eq!(status(ResponseType::AccessDenied, 403), Some(418));
    // No DEFAULT_5XX status: the 5XX type answers with its own.
    assert_eq!(status(ResponseType::IntegrationFailure, 504), None);
}

#[test]
fn values_are_quoted_for_the_media_type_a_browser_reads() {
    let esc = |ct: &str| Escape::for_content_type(Some(ct.as_bytes()));
    assert_eq!(Escape::for_content_type(None), Escape::Json);
    assert_eq!(esc("application/problem+json; charset=utf-8"), Escape::Json);
    assert_eq!(esc("Application/JSON"), Escape::Json);
    assert_eq!(esc("text/plain; charset=utf-8"), Escape::None);
    assert_eq!(esc("text/html"), Escape::Html);
    // A browser renders the last type of a list: the first one chose JSON quoting (or
    // none), which leaves `<script>` as it is.
    assert_eq!(esc("application/json, text/html"), Escape::Html);
    assert_eq!(esc("text/plain, text/html"), Escape::Html);
    assert_eq!(esc("text/html, application/json"), Escape::Json);
    // XML, SVG and types Portico does not know run markup too; no type at all is sniffed.
    for ct in [
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "application/x-foo",
        "json",
        "",
    ] {
        assert_eq!(esc(ct), Escape::Html, "{ct}");
    }
}
