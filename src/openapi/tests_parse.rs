//! Reading a document, and what import makes of the parameters and bodies in it.

use serde_json::json;

use super::import::{import, parse, BasePath};

#[test]
fn yaml_merge_keys_are_applied_as_in_the_config() {
    let d = parse(
        r#"
openapi: 3.0.1
info: { title: t, version: "1" }
paths: {}
components:
  schemas:
    Base: &base
      type: object
      required: [sku]
      additionalProperties: false
    Order:
      <<: *base
      description: an order
"#,
    )
    .unwrap();
    assert_eq!(
        d.pointer("/components/schemas/Order").unwrap(),
        &json!({ "type": "object", "required": ["sku"], "additionalProperties": false,
                 "description": "an order" })
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(i.api["models"]["Order"]["required"], json!(["sku"]));
    assert!(i.api["models"]["Order"].get("<<").is_none());
}
