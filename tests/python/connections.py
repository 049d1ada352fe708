"""Calls the @connections management API with boto3's unmodified
`apigatewaymanagementapi` client, as a backend would, and prints the outcome as JSON.

Usage: connections.py ENDPOINT_URL post|get|delete CONNECTION_ID [DATA | @size:N]
"""

import json
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, op, cid = sys.argv[1], sys.argv[2], sys.argv[3]
client = boto3.client(
    "apigatewaymanagementapi",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="AKIDEXAMPLE",
    aws_secret_access_key="secret",
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
except client.exceptions.ForbiddenException:
    out = {"error": "ForbiddenException"}
except ClientError as e:
    out = {"error": e.response["Error"]["Code"],
           "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
print(json.dumps(out))
