"""Raw WebSocket clients that flood a server with pings (tests/websocket_flood_memory.rs).

Usage:
  ws_flood.py deaf HOST:PORT PATH N SECS
      Opens N connections, each with a 4 KiB receive buffer, and prints {"open": N}.
      At a line on stdin they send 125-byte pings for SECS seconds and read nothing;
      then it prints {"sent": bytes per connection on average} and keeps the
      connections open until the next line (or EOF) on stdin.
  ws_flood.py pings HOST:PORT PATH N
      One connection sends N pings (payload: the ping's number) as fast as it can while
      a thread reads. Prints {"pongs": how many came back, "in_order": whether each
      answered its ping in turn}.
"""

import base64
import json
import os
import socket
import struct
import sys
import threading
import time


def handshake(host, port, path, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # Before connect, so that the window the server sees is small from the start.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        b = s.recv(1)
        if not b:
            raise SystemExit(f"closed in the handshake: {head!r}")
        head += b
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"not upgraded: {head!r}")
    return s


def ping(payload):
    """A masked ping (mask 0: the payload goes as is)."""
    assert len(payload) <= 125
    return bytes([0x89, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def read_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError
        out += b
    return out


def read_frame(s):
    h = read_exact(s, 2)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read_exact(s, 8))[0]
    return h[0] & 0x0F, read_exact(s, n)


def deaf(host, port, path, n, secs):
    conns = [handshake(host, port, path, rcvbuf=4096) for _ in range(n)]
    for s in conns:
        s.setblocking(False)
    print(json.dumps({"open": n}), flush=True)
    sys.stdin.readline()
    data = ping(b"p" * 125) * 2000
    sent = [0] * n
    until = time.time() + secs
    while time.time() < until:
        for i, s in enumerate(conns):
            try:
                at = sent[i] % len(data)
                sent[i] += s.send(data[at:])
            except BlockingIOError:
                pass
        time.sleep(0.01)
    print(json.dumps({"sent": sum(sent) // n}), flush=True)
    sys.stdin.readline()
    for s in conns:
        s.close()


def pings(host, port, path, n):
    s = handshake(host, port, path)
    s.settimeout(30)
    got = {"pongs": 0, "in_order": True}

    def reader():
        try:
            while got["pongs"] < n:
                op, payload = read_frame(s)
                if op != 0x0A:
                    continue
                if payload != str(got["pongs"]).encode():
                    got["in_order"] = False
                got["pongs"] += 1
        except (EOFError, OSError):
            pass

    t = threading.Thread(target=reader)
    t.start()
    batch = b""
    for i in range(n):
        batch += ping(str(i).encode())
        if len(batch) > 64 * 1024:
            s.sendall(batch)
            batch = b""
    s.sendall(batch)
    t.join(60)
    print(json.dumps(got), flush=True)
    s.close()


def main():
    mode, addr, path = sys.argv[1], sys.argv[2], sys.argv[3]
    host, _, port = addr.rpartition(":")
    if mode == "deaf":
        deaf(host, int(port), path, int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "pings":
        pings(host, int(port), path, int(sys.argv[4]))
    else:
        raise SystemExit("unknown mode " + mode)


main()
