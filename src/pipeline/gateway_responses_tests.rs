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
