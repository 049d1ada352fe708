//! IAM-style policies on `execute-api` ARNs, as Lambda authorizers return them and as
//! `iam` principals are configured: statements of Allow or Deny on actions and resources
//! with `*` (any run of characters, `/` included) and `?` (one character) wildcards. An
//! explicit Deny wins; no matching Allow is a denial. A policy is evaluated against each
//! request's own ARN, so a cached policy for one method neither grants nor denies another.
//! `Condition` blocks (`IpAddress` on `aws:SourceIp` and the like) are not evaluated, so
//! they fail closed: a conditional Allow grants nothing and a conditional Deny always
//! denies (taking the Allow as if its condition held would let every caller in).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<Box<str>>,
    pub resources: Vec<Box<str>>,
    /// Has a non-empty `Condition` (not evaluated: see the module comment).
    pub conditional: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// `*`/`?` glob match; `case` false compares ASCII letters ignoring case (actions). As in
/// IAM, `?` is one character, not one byte: a decoded path's `é` is two bytes, and a Deny
/// of `…/files/?` must refuse it. `*` moves on by whole characters too, so a `?` after it
/// never starts inside one (and counts a three-byte character's tail as two).
pub fn glob(pattern: &[u8], text: &[u8], case: bool) -> bool {
    let char_len = |t: usize| {
        match text[t] {
            0xf0.. => 4,
            0xe0.. => 3,
            0xc0.. => 2,
            _ => 1,
        }
        .min(text.len() - t)
    };
    let eq = |a: u8, b: u8| {
        if case {
            a == b
        } else {
            a.eq_ignore_ascii_case(&b)
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'?' {
            p += 1;
            t += char_len(t);
        } else if p < pattern.len() && pattern[p] != b'*' && eq(pattern[p], text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            let next = st + char_len(st);
            p = sp + 1;
            t = next;
            star = Some((sp, next));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

impl Policy {
    /// Whether the policy lets `action` on `arn` through: no Deny matches and an Allow does.
    pub fn allows(&self, action: &str, arn: &str) -> bool {
        let hits = |s: &&Statement| {
            s.actions
                .iter()
                .any(|a| glob(a.as_bytes(), action.as_bytes(), false))
                && s.resources
                    .iter()
                    .any(|r| glob(r.as_bytes(), arn.as_bytes(), true))
        };
        let mut allowed = false;
        for s in self.statements.iter().filter(hits) {
            match s.effect {
                Effect::Deny => return false,
                Effect::Allow if s.conditional => {}
                Effect::Allow => allowed = true,
            }
        }
        allowed
    }

    /// A `policyDocument`: `{"Version", "Statement": [ {Effect, Action, Resource} ] }`
    /// (a single statement object, and a string for Action or Resource, are accepted).
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let statements = match doc.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(s @ Value::Object(_)) => vec![s],
            _ => return Err("policyDocument has no Statement".into()),
        };
        let list = |v: Option<&Value>, what: &str| -> Result<Vec<Box<str>>, String> {
            match v {
                Some(Value::String(s)) => Ok(vec![s.as_str().into()]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(Into::into)
                            .ok_or_else(|| format!("{what} entries must be strings"))
                    })
                    .collect(),
                _ => Err(format!("a statement has no {what}")),
            }
        };
        let mut out = Vec::with_capacity(statements.len());
        for s in statements {
            let effect = match s.get("Effect").and_then(Value::as_str) {
                // Case-sensitive, as IAM's grammar: an `allow` is no Allow.
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err("a statement's Effect is not Allow or Deny".into()),
            };
            // The `Not…` forms invert a statement; dropped unread beside `Resource`, an
            // Allow with a `NotResource` granted what it was written to keep out.
            if let Some(not) = ["NotAction", "NotResource", "NotPrincipal"]
                .into_iter()
                .find(|k| s.get(k).is_some())
            {
                return Err(format!("a statement's {not} is not supported"));
            }
            let conditional = match s.get("Condition") {
                None | Some(Value::Null) => false,
                Some(Value::Object(c)) => !c.is_empty(),
                Some(_) => true,
            };
            out.push(Statement {
                effect,
                actions: list(s.get("Action"), "Action")?,
                resources: list(s.get("Resource"), "Resource")?,
                conditional,
            });
        }
        Ok(Policy { statements: out })
    }
}

/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`, the path
/// percent-decoded and without empty segments: the router skips empty segments
/// (`/p//secret/` reaches the route of `/p/secret`), and path parameters reach the
/// integration decoded (`/p/secret%2F` gives `{x+}` = `secret/`), so the ARN a policy
/// judges is the path as the integration reads it, or a trailing, doubled or escaped
/// slash (or any escaped character) would step around a `Deny` written for the path.
/// A segment's `;` parameters are left out, as the router matches `/admin;x` to `/admin`
/// (Tomcat, Jetty and Spring drop them), or `/admin;x` would step around a `Deny` on
/// `/admin` of the route it reached; but not where the route `route_key` names has a
/// literal with `;` (`GET /a;b` matches `/a;b` whole), or a `Deny` on `…/GET/a;b` would
/// never apply to its own route, and one on `…/GET/a` would. Segments of parameters only
/// are passed over, as the router passes them over. Segments are split as the router
/// splits them: at `/`, `%2F` and `%5C`.
pub fn arn(
    region: &str,
    account: &str,
    api: &str,
    stage: &str,
    method: &[u8],
    path: &[u8],
    route_key: &str,
) -> String {
    let mut out = format!(
        "arn:aws:execute-api:{region}:{account}:{api}/{stage}/{}/",
        String::from_utf8_lossy(method)
    );
    let route = route_key.split_once(' ').map_or("", |(_, path)| path);
    let mut literals = route.split('/').filter(|s| !s.is_empty());
    let mut plain = Vec::with_capacity(path.len());
    // Segments as the router split them (`%2F` and `%5C` too), so each lines up with the
    // route's literal it matched.
    let mut at = 0;
    while at < path.len() {
        let end = crate::router::segment_end(path, at);
        let segment = &path[at..end];
        at = end
            + if end < path.len() {
                crate::router::separator_len(path, end)
            } else {
                0
            };
        let end = crate::router::param_start(segment).unwrap_or(segment.len());
        if end == 0 {
            continue;
        }
        let whole = literals
            .next()
            .is_some_and(|l| !l.starts_with('{') && l.contains(';'));
        plain.push(b'/');
        plain.extend_from_slice(if whole { segment } else { &segment[..end] });
    }
    let mut decoded = Vec::with_capacity(plain.len());
    crate::http1::percent_decode(&plain, false, &mut decoded);
    let mut first = true;
    // A decoded `\` ends a segment too: IIS and Undertow read it as `/`, so
    // `/secret%5C` is `/secret/` to them, and judged as `/secret`, or it would step
    // around a `Deny` on `/secret` (a raw `\` is refused before routing).
    for segment in decoded
        .split(|&b| b == b'/' || b == b'\\')
        .filter(|s| !s.is_empty())
    {
        if !first {
            out.push('/');
        }
        first = false;
        // A policy's wildcards stay escaped: a client's `%2A` written as `*` made the ARN
        // a pattern, and a policy allowing "its own ARN" (the usual `event.methodArn`),
        // cached for the caller, then allowed every path. And `%` too, so that the
        // escapes are the only ones: `/p/%252A` (a segment `%2A`) had `/p/*`'s ARN.
        for c in String::from_utf8_lossy(segment).chars() {
            match c {
                '*' => out.push_str("%2A"),
                '?' => out.push_str("%3F"),
                '%' => out.push_str("%25"),
                c => out.push(c),
            }
        }
    }
    out
}

/// The method an ARN names: the route's own (a HEAD answered by a `GET` route is judged
/// as that GET, so a `Deny` on the route's only method covers it), or the request's on
/// `ANY` and `$default` routes.
pub fn arn_method<'a>(route_key: &'a str, request: &'a [u8]) -> &'a [u8] {
    match route_key.split_once(' ') {
        Some((m, _)) if m != "ANY" => m.as_bytes(),
        _ => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob(
            b"arn:*:api/*/GET/pets/*",
            b"arn:aws:api/prod/GET/pets/1/2",
            true
        ));
        assert!(!glob(
            b"arn:*:api/*/GET/pets/*",
            b"arn:aws:api/prod/POST/pets/1",
            true
        ));
        assert!(glob(b"a?c", b"abc", true));
        assert!(!glob(b"a?c", b"ac", true));
        assert!(glob(b"*", b"", true));
        assert!(glob(b"execute-api:*", b"EXECUTE-API:Invoke", false));
        assert!(!glob(b"ab", b"abc", true));
        // `?` is one character: two bytes of `é`, three of `€`, never half of one.
        assert!(glob("/files/?".as_bytes(), "/files/é".as_bytes(), true));
        assert!(!glob("/files/??".as_bytes(), "/files/é".as_bytes(), true));
        assert!(glob("*?".as_bytes(), "€".as_bytes(), true));
        assert!(!glob("*??".as_bytes(), "€".as_bytes(), true));
        assert!(glob("a*?c".as_bytes(), "a€€c".as_bytes(), true));
    }

    #[test]
    fn deny_wins_and_each_arn_is_judged_on_its_own() {
        let p = Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:us-east-1:0:shop/prod/GET/*"},
                {"Action": ["execute-api:*"], "Effect": "Deny", "Resource": ["arn:aws:execute-api:us-east-1:0:shop/prod/GET/secret"]}
            ]
        }))
        .unwrap();
        let a = |m: &str, path: &str| {
            arn(
                "us-east-1",
                "0",
                "shop",
                "prod",
                m.as_bytes(),
                path.as_bytes(),
                "$default",
            )
        };
        assert!(p.allows("execute-api:Invoke", &a("GET", "/pets")));
        assert!(!p.allows("execute-api:Invoke", &a("GET", "/secret")));
        assert!(!p.allows("execute-api:Invoke", &a("POST", "/pets")));
        for variant in [
            "/secret/",
            "//secret",
            "/secret//",
            "secret",
            "/secret%2F",
            "/secret%2f%2F",
            "%2Fsecret",
            "/%73ecret",
            "/secret;jsessionid=1",
            "/secret;x/",
            "/secret%3B",
            "/secret%3bjsessionid=1",
            "/secret%5C",
            "/secret%5c",
            "%5Csecret",
        ] {
            assert!(
                !p.allows("execute-api:Invoke", &a("GET", variant)),
                "{variant}"
            );
        }
        assert_eq!(
            a("GET", "//a//b/"),
            "arn:aws:execute-api:us-east-1:0:shop/prod/GET/a/b"
        );
        assert_eq!(
            a("GET", "/a%20b/c%2Fd/%zz"),
            "arn:aws:execute-api:us-east-1:0:shop/prod/GET/a b/c/d/%25zz"
        );
        assert_eq!(
            a("GET", "/"),
            "arn:aws:execute-api:us-east-1:0:shop/prod/GET/"
        );
        // `%3B` starts parameters too: a proxy in front that decodes the path (nginx)
        // hands it on as `;`.
        assert_eq!(
            a("GET", "/a;p=1/b;q/c%3Bd"),
            "arn:aws:execute-api:us-east-1:0:shop/prod/GET/a/b/c"
        );
        // A client's `*` and `?` stay escaped: an ARN is no pattern. A policy allowing
        // the ARN of `/%2A` (as a function answering with its methodArn writes) allows
        // that path only.
        let star = a("GET", "/%2A/%3f%3F");
        assert_eq!(
            star,
            "arn:aws:execute-api:us-east-1:0:shop/prod/GET/%2A/%3F%3F"
        );
        let own = Policy::parse(&json!({"Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": a("GET", "/%2A")}
        ]}))
        .unwrap();
        assert!(own.allows("execute-api:Invoke", &a("GET", "/%2A")));
        assert!(!own.allows("execute-api:Invoke", &a("GET", "/admin")));
        // A literal `%2A` (sent `%252A`) is not the `*`'s segment.
        assert_eq!(
            a("GET", "/%252A/100%25"),
            "arn:aws:execute-api:us-east-1:0:shop/prod/GET/%252A/100%25"
        );
        assert!(!own.allows("execute-api:Invoke", &a("GET", "/%252A")));
        // Effect is case-sensitive, as in IAM: `allow` is no Allow but a malformed answer.
        for effect in ["allow", "ALLOW", "deny"] {
            let statement =
                json!({"Statement": [{"Action": "*", "Effect": effect, "Resource": "*"}]});
            assert!(Policy::parse(&statement).is_err(), "{effect}");
        }
        // A route literal with `;` matched the segment whole: its ARN keeps it, and the
        // segments of parameters only the router passed over are passed over here too.
        let routed = |path: &str, key: &str| {
            arn(
                "us-east-1",
                "0",
                "shop",
                "prod",
                b"GET",
                path.as_bytes(),
                key,
            )
        };
        let base = "arn:aws:execute-api:us-east-1:0:shop/prod/GET/";
        assert_eq!(routed("/a;b", "GET /a;b"), format!("{base}a;b"));
        assert_eq!(routed("/;x/dd;v=2", "GET /dd;v=2"), format!("{base}dd;v=2"));
        assert_eq!(routed("/dd;v=2", "GET /dd"), format!("{base}dd"));
        assert_eq!(
            routed("/u/1;x/a;b/c;d", "GET /u/{id}/a;b/{proxy+}"),
            format!("{base}u/1/a;b/c")
        );
        // `%2F` and `%5C` separate segments for the router, so for lining up with the
        // route's literals too: `/u%2Fa;b` matched `GET /u/a;b` whole.
        assert_eq!(routed("/u%2Fa;b", "GET /u/a;b"), format!("{base}u/a;b"));
        assert_eq!(
            routed("%5cu%5Ca;b%2F", "GET /u/a;b"),
            format!("{base}u/a;b")
        );
        assert_eq!(routed("/x%2F1;y", "GET /x/{id}"), format!("{base}x/1"));
        assert_eq!(arn_method("GET /p/{x}", b"HEAD"), b"GET");
        assert_eq!(arn_method("ANY /p/{x}", b"HEAD"), b"HEAD");
        assert_eq!(arn_method("$default", b"PUT"), b"PUT");
        assert!(Policy::parse(
            &json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]})
        )
        .is_err());
        assert!(Policy::parse(&json!({})).is_err());
        for not in ["NotAction", "NotResource", "NotPrincipal"] {
            let doc = json!({"Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*", not: "*"}
            ]});
            assert_eq!(
                Policy::parse(&doc).err(),
                Some(format!("a statement's {not} is not supported"))
            );
        }
    }

    #[test]
    fn conditions_fail_closed() {
        let arn = "arn:aws:execute-api:us-east-1:0:shop/prod/GET/pets";
        let ip = json!({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}});
        let allow = |condition: serde_json::Value| {
            Policy::parse(&json!({"Statement": [
                {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*", "Condition": condition}
            ]}))
            .unwrap()
        };
        assert!(!allow(ip.clone()).allows("execute-api:Invoke", arn));
        assert!(allow(json!({})).allows("execute-api:Invoke", arn));
        assert!(allow(json!(null)).allows("execute-api:Invoke", arn));
        let deny = Policy::parse(&json!({"Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
            {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*", "Condition": ip}
        ]}))
        .unwrap();
        assert!(!deny.allows("execute-api:Invoke", arn));
    }
}
