"""Calls the @connections management API with boto3's unmodified
`apigatewaymanagementapi` client, as a backend would, and prints the outcome as JSON.

Usage: connections.py ENDPOINT_URL post|get|delete CONNECTION_ID [DATA | @size:N]
Credentials: $CONN_ACCESS_KEY and $CONN_SECRET (default AKIDEXAMPLE / secret);
CONN_UNSIGNED=1 sends the calls unsigned.
"""

import json
import os
import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, op, cid = sys.argv[1], sys.argv[2], sys.argv[3]
extra = {}
if os.environ.get("CONN_UNSIGNED") == "1":
    extra["config"] = Config(signature_version=UNSIGNED)
client = boto3.client(
    "apigatewaymanagementapi",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ.get("CONN_ACCESS_KEY", "AKIDEXAMPLE"),
    aws_secret_access_key=os.environ.get("CONN_SECRET", "secret"),
    **extra,
)
try:
    if op == "post":
        data = sys.argv[4]
        if data.startswith("@size:"):
            data = b"x" * int(data[6:])
        client.post_to_connection(ConnectionId=cid, Data=data)
        out = {"ok": True}
    elif op == "get":
        r = client.get_connection(ConnectionId=cid)
        out = {
            "connectedAt": r["ConnectedAt"].isoformat(),
            "lastActiveAt": r["LastActiveAt"].isoformat(),
            "identity": r["Identity"],
        }
    else:
        client.delete_connection(ConnectionId=cid)
        out = {"ok": True}
except client.exceptions.GoneException:
    out = {"error": "GoneException"}
except client.exceptions.PayloadTooLargeException:
    out = {"error": "PayloadTooLargeException"}
except client.exceptions.ForbiddenException as e:
    out = {"error": "ForbiddenException",
           "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
except ClientError as e:
    out = {"error": e.response["Error"]["Code"],
           "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
print(json.dumps(out))
