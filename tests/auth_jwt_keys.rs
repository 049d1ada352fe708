//! JWT authorizers read a key set's integers as numbers: an RSA modulus published with a
//! leading zero octet (Java's `BigInteger.toByteArray()`, 257 octets for a 2048-bit key)
//! and an EC coordinate published without its leading zero octet verify tokens as any
//! JOSE library does, instead of failing every token as "signature is invalid".

mod common;

use common::*;
use serde_json::Value;

/// Keys, the key set an issuer with such an encoder publishes, and a token of each key.
const KEYS: &str = r#"
import base64, json, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
claims = {"iss": "https://issuer.test", "aud": "api", "sub": "u", "exp": int(time.time()) + 3600}
r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
n = r.public_key().public_numbers().n
while True:
    e = ec.generate_private_key(ec.SECP256R1())
    p = e.public_key().public_numbers()
    if p.x < 2 ** 248:
        break
keys = [
    {"kty": "RSA", "kid": "r", "use": "sig", "n": b64(b"\0" + n.to_bytes(256, "big")), "e": "AQAB"},
    {"kty": "EC", "kid": "e", "crv": "P-256", "x": b64(p.x.to_bytes(31, "big")), "y": b64(p.y.to_bytes(32, "big"))},
]
print(json.dumps({
    "jwks": {"keys": keys},
    "rsa": jwt.encode(claims, r, algorithm="RS256", headers={"kid": "r"}),
    "ec": jwt.encode(claims, e, algorithm="ES256", headers={"kid": "e"}),
}))
"#;

#[test]
fn integers_with_or_without_leading_zero_octets_verify() {
    py::require(&["jwt", "cryptography"]);
    let out: Value = serde_json::from_str(&py::run(KEYS, &[])).unwrap();
    let jwks = out["jwks"].to_string().into_bytes();
    let issuer = Origin::start(move |_, s| {
        respond(s, 200, &[("content-type", "application/json")], &jwks);
        true
    });
    for driver in DRIVERS {
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 3s, idle_timeout: 5s, drain_timeout: 1s }}
apis:
  a:
    stages: {{ $default: {{}} }}
    authorizers:
      j: {{ type: jwt, issuer: "https://issuer.test", jwks_uri: "http://{}/jwks.json", audience: [api], algorithms: [RS256, ES256] }}
    routes:
      "GET /x": {{ authorizer: j, integration: {{ type: mock, status: 200, body: ok }} }}
"#,
            issuer.addr
        );
        let p = Portico::start(&yaml, driver);
        for alg in ["rsa", "ec"] {
            let token = out[alg].as_str().unwrap();
            let r = p.raw(
                format!("GET /x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(
                r.status,
                200,
                "{alg}: {:?} {}",
                r.header("www-authenticate"),
                r.text()
            );
        }
    }
}
