"""A WebSocket client driven line by line by an end-to-end test (tests/common/ws.rs).

Usage: ws_client.py URL [OPTIONS_JSON]; options: ca (PEM file for wss://), subprotocols,
headers ({name: value}), open_timeout. Prints one JSON object per line: first
{"event": "open", ...} or {"event": "rejected", "status": ...}, then one per command.
Commands on stdin: send TEXT | sendfrag SIZE TEXT (in fragments) | sendb HEX | recv [SECS] | ping | close [CODE] | wait_closed [SECS]
"""

import asyncio
import json
import ssl
import sys

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def closed(ws):
    return {"event": "closed", "code": ws.close_code, "reason": ws.close_reason}


async def main():
    url = sys.argv[1]
    opts = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    kw = {"max_size": None, "ping_interval": None, "open_timeout": opts.get("open_timeout", 10)}
    if "ca" in opts:
        kw["ssl"] = ssl.create_default_context(cafile=opts["ca"])
        if "server_hostname" in opts:
            kw["server_hostname"] = opts["server_hostname"]
    if "subprotocols" in opts:
        kw["subprotocols"] = opts["subprotocols"]
    if "headers" in opts:
        kw["additional_headers"] = opts["headers"]
    try:
        ws = await websockets.connect(url, **kw)
    except InvalidStatus as e:
        r = e.response
        say({"event": "rejected", "status": r.status_code,
             "headers": {k.lower(): v for k, v in r.headers.raw_items()},
             "body": r.body.decode("utf-8", "replace") if r.body else ""})
        return
    except Exception as e:  # noqa: BLE001 - reported to the test as is
        say({"event": "error", "error": repr(e)})
        return
    say({"event": "open", "subprotocol": ws.subprotocol,
         "headers": {k.lower(): v for k, v in ws.response.headers.raw_items()}})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            await ws.close()
            return
        cmd, _, arg = line.rstrip("\n").partition(" ")
        try:
            if cmd == "send":
                await ws.send(arg)
                say({"event": "sent"})
            elif cmd == "sendfrag":
                size, _, text = arg.partition(" ")
                n = int(size)
                await ws.send([text[i:i + n] for i in range(0, len(text), n)])
                say({"event": "sent"})
            elif cmd == "sendb":
                await ws.send(bytes.fromhex(arg))
                say({"event": "sent"})
            elif cmd == "recv":
                m = await asyncio.wait_for(ws.recv(), float(arg or 10))
                if isinstance(m, str):
                    say({"event": "msg", "text": m})
                else:
                    say({"event": "msg", "binary": m.hex()})
            elif cmd == "ping":
                pong = await ws.ping()
                await asyncio.wait_for(pong, 10)
                say({"event": "pong"})
            elif cmd == "close":
                await ws.close(int(arg or 1000))
                say(closed(ws))
            elif cmd == "wait_closed":
                await asyncio.wait_for(ws.wait_closed(), float(arg or 10))
                say(closed(ws))
            else:
                say({"event": "error", "error": "unknown command " + cmd})
        except ConnectionClosed:
            say(closed(ws))
        except asyncio.TimeoutError:
            say({"event": "timeout"})


asyncio.run(main())
