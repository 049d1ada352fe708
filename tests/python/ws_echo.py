"""A WebSocket echo server for end-to-end tests: prints its port, then echoes every
message. The text message "headers?" is answered with the handshake's request headers
as JSON; "bye" makes the server close with 4001; "push N" sends N numbered messages.

Usage: ws_echo.py [CERT KEY]  (with a certificate and key: wss)
"""

import asyncio
import json
import ssl
import sys

import websockets

async def handler(ws):
    async for m in ws:
        if m == "headers?":
            h = {k.lower(): v for k, v in ws.request.headers.raw_items()}
            await ws.send(json.dumps({"path": ws.request.path, "headers": h}))
        elif m == "bye":
            await ws.close(4001, "bye")
        elif isinstance(m, str) and m.startswith("push "):
            for i in range(int(m[5:])):
                await ws.send("push %d" % i)
        else:
            await ws.send(m)

def first_offered(connection, subprotocols):
    return subprotocols[0] if subprotocols else None


async def main():
    ctx = None
    if len(sys.argv) > 2:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    async with websockets.serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=None,
                                ping_interval=None, select_subprotocol=first_offered) as server:
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
        await asyncio.Future()

asyncio.run(main())
