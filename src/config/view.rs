//! The running config as JSON for `GET /config`: the file as written (so `${env:NAME}`
//! references stay unexpanded and never leak what they point to), with the values that
//! are secrets even when written literally replaced.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// JSON view of config text that has already passed validation.
pub fn redacted_view(text: &str) -> Value {
    // Parsed as the loader parsed it: an integer past 64 bits shows as the float JSON
    // would read, not as a view of null.
    let mut yaml = match super::yaml::parse(text) {
        Ok(p) => p.root,
        Err(_) => return Value::Null,
    };
    super::yaml::floats_for_big_ints(&mut yaml);
    let mut json = serde_json::to_value(&yaml).unwrap_or(Value::Null);
    if let Some(token) = json.pointer_mut("/admin/token") {
        *token = Value::String(REDACTED.into());
    }
    if let Some(Value::Array(keys)) = json.get_mut("api_keys") {
        for key in keys {
            if let Some(v) = key.get_mut("value") {
                *v = Value::String(REDACTED.into());
            }
        }
    }
    // SigV4 principals: the secret and any session token.
    if let Some(Value::Object(principals)) = json.pointer_mut("/iam/principals") {
        for p in principals.values_mut() {
            for field in ["secret_access_key", "session_token"] {
                if let Some(v) = p.get_mut(field) {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
    if let Some(Value::String(url)) = json.pointer_mut("/cluster/redis") {
        *url = redact_userinfo(url);
    }
    json
}

/// `redis://user:password@host` → `redis://user:[redacted]@host` (a password in the URL).
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let user = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        None => REDACTED.to_string(),
    };
    format!("{scheme}://{user}{}", &rest[at..])
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
        assert_eq!(redis("redis://h:6379"), "redis://h:6379");
        assert_eq!(v["iam"]["principals"]["r"]["access_key_id"], "AK");
    }
}
