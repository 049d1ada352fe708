"""A test identity provider on 127.0.0.1: OIDC discovery, a JWKS it can rotate, slow
down or bloat, and real JWTs minted by PyJWT. Prints its port on the first line; with
`--tls CHAIN KEY` it also serves the same documents over HTTPS and prints
"PORT TLS_PORT" (minting and control stay on the plain port).

GET  /.well-known/openid-configuration  {"issuer", "jwks_uri"}
GET  /jwks.json                          the published keys (see /control; any query ignored)
POST /mint      {"key": "k1"|"k2"|"ec"|"hs-public"|"none", "kid"?, "alg"?, "claims": {...}}
POST /control   {"publish": ["k1", ...], "delay_ms": 0, "oversize": false, "status": 200}
GET  /stats     {"discovery": n, "jwks": n}
"""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

KEYS = {
    "k1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "k2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec": ec.generate_private_key(ec.SECP256R1()),
}
STATE = {"publish": ["k1"], "delay_ms": 0, "oversize": False, "status": 200, "discovery_issuer": None}
STATS = {"discovery": 0, "jwks": 0}
LOCK = threading.Lock()


def public_jwk(name):
    key = KEYS[name].public_key()
    algo = ECAlgorithm if name == "ec" else RSAAlgorithm
    jwk = json.loads(algo.to_jwk(key))
    jwk.update({"kid": name, "use": "sig"})
    return jwk


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(spec):
    key = spec.get("key", "k1")
    claims = spec.get("claims", {})
    kid = spec.get("kid", key)
    if key == "none":
        header = {"alg": "none", "typ": "JWT", "kid": kid}
        return (
            b64(json.dumps(header).encode())
            + "."
            + b64(json.dumps(claims).encode())
            + "."
        )
    if key == "hs-public":
        # The classic key-confusion attack: HMAC keyed with the issuer's public key.
        pem = (
            KEYS["k1"]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = hmac.new(pem, signing.encode(), hashlib.sha256).digest()
        return signing + "." + b64(sig)
    alg = spec.get("alg", "ES256" if key == "ec" else "RS256")
    return jwt.encode(claims, KEYS[key], algorithm=alg, headers={"kid": kid})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        # A query names another key source for the same document (`/jwks.json?copy=2`).
        self.path = self.path.split("?", 1)[0]
        port = self.server.server_address[1]
        base = "%s://127.0.0.1:%d" % (getattr(self.server, "scheme", "http"), port)
        if self.path == "/.well-known/openid-configuration":
            with LOCK:
                STATS["discovery"] += 1
            with LOCK:
                issuer = STATE["discovery_issuer"] or base
            self.send(200, {"issuer": issuer, "jwks_uri": base + "/jwks.json"})
        elif self.path == "/jwks.json":
            with LOCK:
                STATS["jwks"] += 1
                state = dict(STATE)
            if state["delay_ms"]:
                time.sleep(state["delay_ms"] / 1000)
            keys = [public_jwk(k) for k in state["publish"]]
            doc = {"keys": keys}
            if state["oversize"]:
                doc["padding"] = "x" * 200_000
            self.send(state["status"], doc)
        elif self.path == "/stats":
            with LOCK:
                self.send(200, dict(STATS))
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        spec = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/mint":
            self.send(200, mint(spec).encode(), "text/plain")
        elif self.path == "/control":
            with LOCK:
                STATE.update(spec)
            self.send(200, {"ok": True})
        else:
            self.send(404, {"error": "not found"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ports = [str(server.server_address[1])]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        import ssl

        tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        tls.scheme = "https"
        ports.append(str(tls.server_address[1]))
        threading.Thread(target=tls.serve_forever, daemon=True).start()
    print(" ".join(ports), flush=True)
    # Stop when the test (our parent) closes stdin.
    sys.stdin.read()


if __name__ == "__main__":
    main()
