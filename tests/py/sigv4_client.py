"""Signs and sends requests for the SigV4 tests with unmodified clients, printing one JSON
result per request: {"status", "body", "headers"}.

argv[1]: {"base": "http://127.0.0.1:PORT", "requests": [{
    "signer": "botocore" | "botocore-query" | "aws4auth" | "manual" | "none",
    "method", "path", "body"?, "headers"?, "key", "secret", "token"?, "region"?,
    "service"?, "skew"? (manual: seconds added to the clock), "signed_body"? (manual),
    "chunked"? (send the body chunked), "absolute"? (an authority such as "http://other.test":
    the signed request is sent with that absolute-form target, its Host line as signed),
    "send_path"? (send the signed headers with another path and query: a replay),
    "date_header"? (manual: the time in `Date`, not `X-Amz-Date`),
    "scope_date"? (manual: the date of the credential scope and signing key, not the day's),
    "unsigned_headers"? (added after signing),
    "append_query"? (text added to the URL after signing, e.g. "&X-Amz-Signature=0")}]}
"""

import datetime
import hashlib
import hmac
import json
import socket
import sys

import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from requests_aws4auth import AWS4Auth


def manual(r, url, body):
    """A plain SigV4 header signer with a chosen clock and signed body (negative tests)."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=r.get("skew", 0))
    amz = t.strftime("%Y%m%dT%H%M%SZ")
    day = r.get("scope_date", amz[:8])
    region, service = r.get("region", "us-east-1"), r.get("service", "execute-api")
    host = url.split("/")[2]
    path = r["path"].split("?")[0]
    signed_body = r.get("signed_body", body).encode()
    date = "date" if r.get("date_header") else "x-amz-date"
    creq = "\n".join([
        r["method"], path, "", "host:%s\n%s:%s\n" % (host, date, amz), "host;%s" % date,
        hashlib.sha256(signed_body).hexdigest(),
    ])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + r["secret"]).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return {
        date: amz,
        "authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;%s, Signature=%s"
        % (r["key"], scope, date, sig),
    }


def send(base, r):
    url = base + r["path"]
    body = r.get("body", "")
    headers = dict(r.get("headers", {}))
    region, service = r.get("region", "us-east-1"), r.get("service", "execute-api")
    creds = Credentials(r.get("key"), r.get("secret"), r.get("token"))
    signer = r["signer"]
    auth = None
    if signer == "botocore":
        req = AWSRequest(method=r["method"], url=url, data=body, headers=headers)
        SigV4Auth(creds, service, region).add_auth(req)
        headers = dict(req.headers.items())
    elif signer == "botocore-query":
        req = AWSRequest(method=r["method"], url=url, data=body, headers=headers)
        SigV4QueryAuth(creds, service, region, expires=60).add_auth(req)
        url = req.url
    elif signer == "aws4auth":
        auth = AWS4Auth(r["key"], r["secret"], region, service, session_token=r.get("token"))
    elif signer == "manual":
        headers.update(manual(r, url, body))
    headers.update(r.get("unsigned_headers", {}))
    url += r.get("append_query", "")
    if r.get("send_path"):
        url = base + r["send_path"]
        r = dict(r, path=r["send_path"])
    if r.get("absolute"):
        return send_absolute(base, r, headers, body)
    # Send the exact bytes that were signed: no re-quoting of the URL by requests.
    s = requests.Session()
    data = body.encode() if body else None
    if r.get("chunked") and data:
        # A generator makes requests send Transfer-Encoding: chunked.
        data = (part for part in (data[:3], data[3:]))
    prepared = requests.Request(r["method"], url, data=data,
                                headers=headers, auth=auth).prepare()
    prepared.url = url if signer != "aws4auth" else prepared.url
    resp = s.send(prepared, timeout=10)
    return {"status": resp.status_code, "body": resp.text, "headers": dict(resp.headers)}


def send_absolute(base, r, headers, body):
    """The signed head over a plain socket, with an absolute-form request target."""
    host, port = base.split("/")[2].split(":")
    lines = ["%s %s%s HTTP/1.1" % (r["method"], r["absolute"], r["path"])]
    if not any(k.lower() == "host" for k in headers):
        lines.append("Host: %s:%s" % (host, port))
    lines += ["%s: %s" % (k, v) for k, v in headers.items()]
    lines += ["Content-Length: %d" % len(body), "Connection: close", "", ""]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + body.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return {"status": status, "body": rest.decode(errors="replace"), "headers": {}}


def main():
    spec = json.loads(sys.argv[1])
    print(json.dumps([send(spec["base"], r) for r in spec["requests"]]))


if __name__ == "__main__":
    main()
