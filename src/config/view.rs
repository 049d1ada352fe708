//! The running config as JSON for `GET /config`: the file as written (so `${env:NAME}`
//! references stay unexpanded and never leak what they point to), with the values that
//! are secrets even when written literally replaced.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// JSON view of config text that has already passed validation.
pub fn redacted_view(text: &str) -> Value {
    // Parsed as the loader parsed it: an integer past 64 bits shows as the float JSON
    // would read, not as a view of null; merge keys applied, so a secret written through
    // `<<:` sits at the key the loader reads it from, where it is redacted below.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut yaml = match super::yaml::parse(text) {
        Ok(p) => p.root,
        Err(_) => return Value::Null,
    };
    if yaml.apply_merge().is_err() {
        return Value::Null;
    }
    super::yaml::floats_for_big_ints(&mut yaml);
    let mut json = serde_json::to_value(&yaml).unwrap_or(Value::Null);
    // Each secret redacted where it is read, kept (with what stands for it) to replace
    // it elsewhere: an anchor (`token: &t …`) can repeat it, whole, under any other key
    // (`*t`). A secret YAML reads as a number or a bool repeats as one.
    let mut secrets: Vec<(Value, Value)> = Vec::new();
    let mut redact = |v: &mut Value| match std::mem::replace(v, Value::String(REDACTED.into())) {
        other @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
            secrets.push((other, Value::String(REDACTED.into())))
        }
        other => strings_in(&other, &mut secrets),
    };
    if let Some(token) = json.pointer_mut("/admin/token") {
        redact(token);
    }
    if let Some(Value::Array(keys)) = json.get_mut("api_keys") {
        for key in keys {
            if let Some(v) = key.get_mut("value") {
                redact(v);
            }
        }
    }
    // SigV4 principals: the secret and any session token.
    if let Some(Value::Object(principals)) = json.pointer_mut("/iam/principals") {
        for p in principals.values_mut() {
            for field in ["secret_access_key", "session_token"] {
                if let Some(v) = p.get_mut(field) {
                    redact(v);
                }
            }
        }
    }
    match json.pointer_mut("/cluster/redis") {
        Some(Value::String(url)) => {
            let (shown, password) = redact_userinfo(url);
            if let Some(password) = password {
                // The URL itself holds the password: an alias of it shows as masked.
                secrets.push((Value::String(url.clone()), Value::String(shown.clone())));
                for form in password_forms(password) {
                    secrets.push((Value::String(form), Value::String(REDACTED.into())));
                }
            }
            *url = shown;
        }
        Some(other) => redact(other),
        None => {}
    }
    secrets.retain(|(s, _)| s.as_str().is_none_or(|s| !s.is_empty() && s != REDACTED));
    if !secrets.is_empty() {
        redact_repeats(&mut json, &secrets);
    }
    json
}

/// Every text in `v`, keys included, each to be replaced by the redaction mark.
fn strings_in(v: &Value, out: &mut Vec<(Value, Value)>) {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            out.push((v.clone(), Value::String(REDACTED.into())))
        }
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.push((Value::String(k.clone()), Value::String(REDACTED.into())));
            strings_in(v, out);
        }),
        Value::Null => {}
    }
}

/// The text a map key has when the scalar is written as one (JSON keys are strings:
/// a YAML key `12345` reads as the text "12345").
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replaces each scalar (value or key) that is one of `secrets` with what stands for
/// it (an alias of a secret repeats it whole, of the same type; a longer text that
/// holds one was written so by hand).
fn redact_repeats(v: &mut Value, secrets: &[(Value, Value)]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| redact_repeats(i, secrets)),
        Value::Object(m) => {
            let key_secret = |k: &str| secrets.iter().find(|(s, _)| key_text(s) == k);
            if m.keys().any(|k| key_secret(k).is_some()) {
                *m = std::mem::take(m)
                    .into_iter()
                    .map(|(k, v)| match key_secret(&k) {
                        Some((_, shown)) => (key_text(shown), v),
                        None => (k, v),
                    })
                    .collect();
            }
            m.values_mut().for_each(|v| redact_repeats(v, secrets));
        }
        Value::Null => {}
        scalar => {
            if let Some((_, shown)) = secrets.iter().find(|(s, _)| s == scalar) {
                *scalar = shown.clone();
            }
        }
    }
}

/// The secrets `cfg` holds, as it uses them and as its file writes them (a
/// `${env:NAME}` reference is no secret: documents show it, never what it stands for).
pub fn secrets_of(cfg: &super::model::Config) -> Vec<String> {
    let mut out = Vec::new();
    for cfg in [Some(cfg), cfg.as_written.as_deref()].into_iter().flatten() {
        out.extend(cfg.admin.as_ref().and_then(|a| a.token.clone()));
        out.extend(cfg.api_keys.iter().map(|k| k.value.clone()));
        for (_, p) in cfg.iam.iter().flat_map(|i| &i.principals) {
            out.push(p.secret_access_key.clone());
            out.extend(p.session_token.clone());
        }
        if let Some(password) = cfg
            .cluster
            .as_ref()
            .and_then(|c| redact_userinfo(&c.redis).1)
        {
            out.extend(password_forms(password));
        }
    }
    out.retain(|s| !s.is_empty() && !s.contains("${env:"));
    out.sort();
    out.dedup();
    out
}

/// Replaces each of `secrets` in the text values of `v` (not its keys, and not the
/// fields that name a status code or a setting) with the redaction mark: a whole text
/// that is one, or one held inside a longer text (`'secret'`, `Bearer secret`) when it
/// has 6 characters or more (a shorter one inside is left: it would hit ordinary words).
pub fn redact_secrets_in(v: &mut Value, secrets: &[String]) {
    const INSIDE_FROM: usize = 6;
    const SETTINGS: [&str; 7] = [
        "statusCode",
        "type",
        "httpMethod",
        "passthroughBehavior",
        "connectionType",
        "payloadFormatVersion",
        "timeoutInMillis",
    ];
    match v {
        Value::String(s) => {
            let mut shown: Option<String> = None;
            for secret in secrets {
                let now = shown.as_deref().unwrap_or(s);
                if now == secret {
                    shown = Some(REDACTED.into());
                    break;
                }
                if secret.chars().count() >= INSIDE_FROM && now.contains(secret.as_str()) {
                    shown = Some(now.replace(secret.as_str(), REDACTED));
                }
            }
            if let Some(shown) = shown {
                *s = shown;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact_secrets_in(i, secrets)),
        Value::Object(m) => m
            .iter_mut()
            .filter(|(k, _)| !SETTINGS.contains(&k.as_str()))
            .for_each(|(_, v)| redact_secrets_in(v, secrets)),
        _ => {}
    }
}

/// A Redis URL's password as the URL writes it and as it is sent (`%40` is `@`): either
/// one repeated elsewhere is the password.
fn password_forms(password: String) -> Vec<String> {
    let mut decoded = Vec::new();
    crate::http1::percent_decode(password.as_bytes(), false, &mut decoded);
    match String::from_utf8(decoded) {
        Ok(decoded) if decoded != password => vec![decoded, password],
        _ => vec![password],
    }
}

/// `redis://user:password@host` → `redis://user:[redacted]@host` (a password in the URL),
/// and the password.
fn redact_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let Some(at) = authority.rfind('@') else {
        return (url.to_string(), None);
    };
    let (user, password) = match authority[..at].split_once(':') {
        Some((user, password)) => (format!("{user}:{REDACTED}"), password),
        None => (REDACTED.to_string(), &authority[..at]),
    };
    let shown = format!("{scheme}://{user}{}", &rest[at..]);
    (shown, Some(password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_env_refs_stay_unexpanded() {
        let v = redacted_view(
            "admin: { listen: \"127.0.0.1:9901\", token: hunter2 }\napi_keys:\n  - { name: alice, value: s3cret, plan: gold }\n  - { name: bob, value: \"${env:BOB}\" }\nserver: { listen: [\"127.0.0.1:8080\"] }\n",
        );
        let text = v.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert_eq!(v["admin"]["token"], REDACTED);
        assert_eq!(v["api_keys"][0]["name"], "alice");
        assert_eq!(v["api_keys"][1]["value"], REDACTED);
        assert_eq!(v["server"]["listen"][0], "127.0.0.1:8080");
        let v = redacted_view(
            "iam:\n  principals:\n    r: { access_key_id: AK, secret_access_key: sk, session_token: st }\n",
        );
        assert_eq!(v["iam"]["principals"]["r"]["secret_access_key"], REDACTED);
        assert_eq!(v["iam"]["principals"]["r"]["session_token"], REDACTED);
        let redis = |url: &str| {
            redacted_view(&format!("cluster: {{ redis: \"{url}\" }}\n"))["cluster"]["redis"].clone()
        };
        assert_eq!(
            redis("redis://app:pw@10.0.0.1:6379/2"),
            "redis://app:[redacted]@10.0.0.1:6379/2"
        );
        assert_eq!(redis("redis://:pw@h"), "redis://:[redacted]@h");
        // The password as sent (`%40` is `@`), repeated elsewhere, is redacted too.
        let w = redacted_view(
            "cluster: { redis: \"redis://u:p%40ss@h\" }
apis: { a: { stages: { s: { variables: { pw: \"p@ss\", enc: \"p%40ss\" } } } } }
",
        );
        let vars = &w["apis"]["a"]["stages"]["s"]["variables"];
        assert_eq!(
            (vars["pw"].as_str(), vars["enc"].as_str()),
            (Some(REDACTED), Some(REDACTED))
        );
        assert_eq!(redis("redis://h:6379"), "redis://h:6379");
        assert_eq!(v["iam"]["principals"]["r"]["access_key_id"], "AK");
    }

    #[test]
    fn secrets_written_through_merge_keys_or_repeated_by_aliases_are_redacted() {
        let v = redacted_view(concat!(
            "admin: { listen: \"127.0.0.1:9901\", <<: { token: tok-LEAKME-123 } }\n",
            "api_keys:\n  - { name: alice, plan: gold, <<: { value: alice-LEAKME-0123456789 } }\n",
            "iam: { principals: { rep: { <<: { secret_access_key: IAMSECRET }, access_key_id: AKID } } }\n",
            "cluster: { <<: { redis: \"redis://app:REDISPW@h:6379\" } }\n",
        ));
        let text = v.to_string();
        assert!(
            !text.contains("LEAKME") && !text.contains("IAMSECRET"),
            "{text}"
        );
        assert!(!text.contains("REDISPW") && !text.contains("<<"), "{text}");
        assert_eq!(v["admin"]["token"], REDACTED);
        assert_eq!(v["admin"]["listen"], "127.0.0.1:9901");
        assert_eq!(v["api_keys"][0]["value"], REDACTED);
        assert_eq!(v["api_keys"][0]["plan"], "gold");
        assert_eq!(v["iam"]["principals"]["rep"]["secret_access_key"], REDACTED);
        assert_eq!(v["iam"]["principals"]["rep"]["access_key_id"], "AKID");
        assert_eq!(v["cluster"]["redis"], "redis://app:[redacted]@h:6379");
        // An anchor on a secret, its alias under keys that are no secret (as a value
        // and as a key): redacted there too.
        let v = redacted_view(concat!(
            "admin: { token: &t tok-ALIASED }\n",
            "cluster: { redis: \"redis://:PW@h\" }\n",
            "apis: { a: { stages: { prod: { variables: { x: *t, y: PW, *t : 1, z: kept } } } } }\n",
        ));
        let text = v.to_string();
        assert!(
            !text.contains("ALIASED") && !text.contains("PW\""),
            "{text}"
        );
        assert_eq!(v["apis"]["a"]["stages"]["prod"]["variables"]["x"], REDACTED);
        assert_eq!(v["apis"]["a"]["stages"]["prod"]["variables"]["y"], REDACTED);
        assert_eq!(v["apis"]["a"]["stages"]["prod"]["variables"][REDACTED], 1);
        assert_eq!(v["apis"]["a"]["stages"]["prod"]["variables"]["z"], "kept");
    }

    #[test]
    fn aliases_of_the_redis_url_and_of_secrets_read_as_numbers_are_redacted() {
        let v = redacted_view(concat!(
            "cluster: { redis: &r \"redis://app:REDISPW@127.0.0.1:41299\", node: n1 }\n",
            "api_keys:\n",
            "  - { name: alice, value: &k 12345678901234567890, plan: gold }\n",
            "  - { name: bob, value: &b 12345678901234567890123, plan: gold }\n",
            "  - { name: carol, value: &c true, plan: gold }\n",
            "apis: { a: { stages: { prod: { variables: ",
            "{ r: *r, y: *k, z: *b, c: *c, *k : 1, n: 42 } } } } }\n",
        ));
        let text = v.to_string();
        assert!(!text.contains("REDISPW"), "{text}");
        assert!(
            !text.contains("1234567890") && !text.contains("e+22"),
            "{text}"
        );
        let vars = &v["apis"]["a"]["stages"]["prod"]["variables"];
        assert_eq!(vars["r"], "redis://app:[redacted]@127.0.0.1:41299");
        assert_eq!(vars["y"], REDACTED);
        assert_eq!(vars["z"], REDACTED);
        assert_eq!(vars["c"], REDACTED);
        assert_eq!(vars[REDACTED], 1);
        assert_eq!(vars["n"], 42);
        assert_eq!(v["api_keys"][0]["value"], REDACTED);
        assert_eq!(v["cluster"]["node"], "n1");
    }
}
