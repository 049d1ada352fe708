use super::*;
use base64::Engine;
use serde_json::json;

fn rt(audience: &[&str], leeway: u64) -> JwtRt {
    JwtRt {
        source: super::super::jwks::source(
            "https://unit.test/issuer",
            Some("http://127.0.0.1:9/none"),
        ),
        token: TokenSource::Header("authorization".into()),
        issuer: "https://unit.test/issuer".into(),
        audience: audience.iter().map(|s| s.to_string()).collect(),
        algorithms: vec![Alg::Rs256],
        leeway,
        fingerprint: [0; 32],
    }
}

fn payload(v: serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(v.to_string())
        .into_bytes()
}

const NOW: u64 = 1_800_000_000;

#[test]
fn claims_are_strings_the_api_gateway_way() {
    let p = payload(json!({
        "iss": "https://unit.test/issuer", "aud": ["x", "shop"], "exp": NOW + 60,
        "n": 1.5, "b": false, "arr": ["a", 2, true], "obj": {"k": "v"}, "nul": null,
        "scp": ["s1", "s2"], "scope": "s3"
    }));
    let v = check_claims(&p, &rt(&["shop"], 0), NOW).unwrap();
    let get = |k: &str| {
        v.claims
            .iter()
            .find(|(n, _)| &**n == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(get("exp"), Some((NOW + 60).to_string()));
    assert_eq!(get("n").as_deref(), Some("1.5"));
    assert_eq!(get("b").as_deref(), Some("false"));
    assert_eq!(get("arr").as_deref(), Some("[a 2 true]"));
    assert_eq!(get("obj").as_deref(), Some(r#"{"k":"v"}"#));
    assert_eq!(get("nul"), None);
    let scopes: Vec<&str> = v.scopes.iter().map(|s| &**s).collect();
    assert_eq!(scopes, ["s3", "s1", "s2"]);
    assert_eq!(&*v.scopes_json, r#"["s3","s1","s2"]"#);
    assert!(has_scope(&v, &["s2".into()]));
    assert!(!has_scope(&v, &["s9".into()]));
    assert!(has_scope(&v, &[]));
    assert_eq!(v.exp, NOW + 60);
}

#[test]
fn time_claims_with_and_without_leeway() {
    let base = |extra: serde_json::Value| {
        let mut c = json!({"iss": "https://unit.test/issuer", "aud": "shop"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        payload(c)
    };
    let strict = rt(&["shop"], 0);
    let loose = rt(&["shop"], 30);
    let exp_now = base(json!({"exp": NOW}));
    assert_eq!(
        check_claims(&exp_now, &strict, NOW).unwrap_err(),
        JwtError::Expired
    );
    assert!(check_claims(&exp_now, &loose, NOW).is_ok());
    // `now` is whole seconds: NOW + 0.5 has passed somewhere in second NOW.
    let exp_half = base(json!({"exp": NOW as f64 + 0.5}));
    assert_eq!(
        check_claims(&exp_half, &strict, NOW).unwrap_err(),
        JwtError::Expired
    );
    assert!(check_claims(&exp_half, &strict, NOW - 1).is_ok());
    let nbf = base(json!({"exp": NOW + 100, "nbf": NOW + 10}));
    assert_eq!(
        check_claims(&nbf, &strict, NOW).unwrap_err(),
        JwtError::NotYetValid
    );
    assert!(check_claims(&nbf, &loose, NOW).is_ok());
    let iat = base(json!({"exp": NOW + 100, "iat": NOW + 10}));
    assert_eq!(
        check_claims(&iat, &strict, NOW).unwrap_err(),
        JwtError::IssuedInFuture
    );
    let typed = base(json!({"exp": (NOW + 100).to_string()}));
    assert_eq!(
        check_claims(&typed, &strict, NOW).unwrap_err(),
        JwtError::Malformed
    );
    let no_exp = base(json!({}));
    assert_eq!(
        check_claims(&no_exp, &strict, NOW).unwrap_err(),
        JwtError::NoExpiry,
        "refused, and not said to have expired"
    );
}

#[test]
fn audience_then_client_id() {
    let r = rt(&["app"], 0);
    let c = |v: serde_json::Value| payload(v);
    let iss = "https://unit.test/issuer";
    let ok = c(json!({"iss": iss, "client_id": "app", "exp": NOW + 9}));
    assert!(check_claims(&ok, &r, NOW).is_ok());
    let aud_wins = c(json!({"iss": iss, "aud": "other", "client_id": "app", "exp": NOW + 9}));
    assert_eq!(
        check_claims(&aud_wins, &r, NOW).unwrap_err(),
        JwtError::Audience
    );
    let bad_iss = c(json!({"iss": iss.to_owned() + "/", "aud": "app", "exp": NOW + 9}));
    assert_eq!(
        check_claims(&bad_iss, &r, NOW).unwrap_err(),
        JwtError::Issuer
    );
}

#[test]
fn header_checks() {
    let h = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let tok = |header: serde_json::Value| format!("{}.e30.c2ln", h(header));
    let allowed = [Alg::Rs256];
    assert!(parse(
        tok(json!({"alg": "RS256", "kid": "a"})).as_bytes(),
        &allowed
    )
    .is_ok());
    for alg in ["none", "HS256", "RS384", "ES256"] {
        let t = tok(json!({"alg": alg, "kid": "a"}));
        assert_eq!(
            parse(t.as_bytes(), &allowed).err(),
            Some(JwtError::Algorithm),
            "{alg}"
        );
    }
    let t = tok(json!({"alg": "RS256"}));
    assert_eq!(
        parse(t.as_bytes(), &allowed).err(),
        Some(JwtError::UnknownKey)
    );
    let t = tok(json!({"alg": "RS256", "kid": "a", "crit": ["exp-ext"], "exp-ext": true}));
    assert_eq!(
        parse(t.as_bytes(), &allowed).err(),
        Some(JwtError::Malformed)
    );
    assert_eq!(parse(b"a.b", &allowed).err(), Some(JwtError::Malformed));
    assert_eq!(parse(b"a.b.c.d", &allowed).err(), Some(JwtError::Malformed));
}

#[test]
fn a_key_of_another_family_or_alg_never_verifies() {
    let set = KeySet {
        keys: vec![
            Jwk {
                kid: Some("k".into()),
                alg: Some("RS512".into()),
                key: KeyMaterial::Rsa {
                    n: vec![1; 256].into(),
                    e: vec![1, 0, 1].into(),
                },
            },
            Jwk {
                kid: Some("e".into()),
                alg: None,
                key: KeyMaterial::Ec {
                    curve: Curve::P256,
                    point: vec![4; 65].into(),
                },
            },
        ],
        generation: 1,
    };
    let h = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    // RS256 token against an RS512-pinned key: the algorithm is refused (it was "kid
    // does not match", and asked the issuer for its keys again).
    let t = format!("{}.e30.c2ln", h(json!({"alg": "RS256", "kid": "k"})));
    let p = parse(t.as_bytes(), &[Alg::Rs256]).unwrap();
    assert_eq!(p.verify(&set), Err(JwtError::Algorithm));
    let t = format!("{}.e30.c2ln", h(json!({"alg": "RS256", "kid": "other"})));
    let p = parse(t.as_bytes(), &[Alg::Rs256]).unwrap();
    assert_eq!(p.verify(&set), Err(JwtError::UnknownKey));
    // RS256 naming an EC key.
    let t = format!("{}.e30.c2ln", h(json!({"alg": "RS256", "kid": "e"})));
    let p = parse(t.as_bytes(), &[Alg::Rs256]).unwrap();
    assert_eq!(p.verify(&set), Err(JwtError::Signature));
}
