//! Route selection on WebSocket messages (API Gateway's `routeSelectionExpression`):
//! `$request.body.PATH` alone, or text with `${request.body.PATH}` parts, or literal text;
//! `\$` is a literal dollar. PATH is dotted keys with optional `[n]` indexes. A value is
//! used as text: strings as they are, other JSON stringified, a missing path as "".
//! A message that is not JSON can't be evaluated when the expression reads the body: it
//! goes to `$default`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    parts: Vec<Part>,
}

impl Selection {
    pub fn compile(expr: &str) -> Result<Selection, String> {
        if let Some(path) = expr.strip_prefix("$request.body.") {
            if !path.contains(['$', '{', '}']) {
                return Ok(Selection {
                    parts: vec![Part::Body(path_steps(path)?)],
                });
            }
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = expr;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("\\$") {
                text.push('$');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("${") {
                let end = r
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
                let var = &r[..end];
                let path = var
                    .strip_prefix("request.body.")
                    .ok_or_else(|| format!("{var:?}: only request.body.PATH can select a route"))?;
                if !text.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut text)));
                }
                parts.push(Part::Body(path_steps(path)?));
                rest = &r[end + 1..];
            } else if rest.starts_with('$') {
                return Err(format!(
                    "{expr:?}: write $request.body.PATH, ${{request.body.PATH}} or \\$ for a dollar"
                ));
            } else {
                let c = rest.chars().next().expect("not empty");
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(text));
        }
        Ok(Selection { parts })
    }

    /// The route key a message selects; None when the expression needs a JSON body and
    /// the message is not one (the message goes to `$default`).
    pub fn evaluate(&self, message: &[u8]) -> Option<String> {
        let needs_body = self.parts.iter().any(|p| matches!(p, Part::Body(_)));
        let body: Option<Value> = if needs_body {
            Some(serde_json::from_slice(message).ok()?)
        } else {
            None
        };
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(t) => out.push_str(t),
                Part::Body(steps) => {
                    let mut v = body.as_ref();
                    for step in steps {
                        v = match step {
                            Step::Key(k) => v.and_then(|v| v.get(k)),
                            Step::Index(i) => v.and_then(|v| v.get(i)),
                        };
                    }
                    match v {
                        None | Some(Value::Null) => {}
                        Some(Value::String(s)) => out.push_str(s),
                        Some(other) => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Some(out)
    }
}

fn path_steps(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for seg in path.split('.') {
        let (key, mut idx) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if key.is_empty() && idx.is_empty() {
            return Err(format!("empty segment in body path {path:?}"));
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while !idx.is_empty() {
            let close = idx
                .find(']')
                .ok_or_else(|| format!("unclosed [ in body path {path:?}"))?;
            let n = idx[1..close]
                .parse()
                .map_err(|_| format!("bad index in body path {path:?}"))?;
            steps.push(Step::Index(n));
            idx = &idx[close + 1..];
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        br#"{"service":"chat","action":"join","data":{"room":"room1234","n":[1,2]}}"#;

    fn eval(expr: &str, msg: &[u8]) -> Option<String> {
        Selection::compile(expr).unwrap().evaluate(msg)
    }

    /// The worked examples of API Gateway's route selection table.
    #[test]
    fn api_gateway_examples() {
        assert_eq!(eval("$request.body.action", MSG).as_deref(), Some("join"));
        assert_eq!(eval("${request.body.action}", MSG).as_deref(), Some("join"));
        assert_eq!(
            eval("${request.body.service}/${request.body.action}", MSG).as_deref(),
            Some("chat/join")
        );
        assert_eq!(
            eval("${request.body.action}-${request.body.invalidPath}", MSG).as_deref(),
            Some("join-")
        );
        assert_eq!(eval("action", MSG).as_deref(), Some("action"));
        assert_eq!(eval("\\$default", MSG).as_deref(), Some("$default"));
    }

    #[test]
    fn paths_values_and_non_json() {
        assert_eq!(
            eval("$request.body.data.room", MSG).as_deref(),
            Some("room1234")
        );
        assert_eq!(eval("$request.body.data.n[1]", MSG).as_deref(), Some("2"));
        assert_eq!(eval("$request.body.data.n", MSG).as_deref(), Some("[1,2]"));
        assert_eq!(eval("$request.body.nope", MSG).as_deref(), Some(""));
        assert_eq!(eval("$request.body.action", b"not json"), None);
        // A literal expression needs no JSON.
        assert_eq!(eval("fixed", b"not json").as_deref(), Some("fixed"));
    }

    #[test]
    fn bad_expressions() {
        for bad in [
            "${request.body.a",
            "$context.routeKey",
            "${request.header.x}",
            "$request.body.",
        ] {
            assert!(Selection::compile(bad).is_err(), "{bad}");
        }
    }
}
