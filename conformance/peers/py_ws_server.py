#!/usr/bin/env python3
"""A WebSocket peer nobody here wrote: Python `websockets` (installed by
scripts/peers into $MPNET_PEERS/py), for the interop tests of SPEC §7.

    $MPNET_PEERS/py/bin/python conformance/peers/py_ws_server.py \
        --cert leaf.pem --key leaf-key.pem [--port 0] [--host 127.0.0.1]

Serves WSS (plain ws:// when neither --cert nor --key is given) on
127.0.0.1 and prints one JSON line `{"port": N}` on stdout once listening
(with --port 0 the port is an ephemeral one). Runs until killed; with
--exit-on-eof also until its stdin closes (give it a pipe: a test that dies
then takes the server with it). The same paths and
behaviour as node_ws_server.js:

| path | behaviour |
|---|---|
| /echo | echoes every text and binary message |
| /fragmented | sends "frag-1 中文 😀 end" as a text message in 4 frames (websockets adds an empty final frame: 5), then echoes; `?binary=1`: bytes 0..=255 as a binary message in 4 frames |
| /close?code=4001&reason=bye | closes with that code and reason after the client's first message; `&immediate=1`: right after the handshake |
| /ping | sends a ping with payload `ping-1`; when its pong arrives sends the text `pong:ping-1`; then echoes (no pong in 10 s: close 4002) |
| /big | sends one message of `?size=N` bytes (default 1 MiB), text `abc..z` repeating, or `?binary=1` byte i = i % 251; then echoes |
| /forbidden | rejects the handshake with HTTP 403 |
| /subprotocol | accepts without selecting any subprotocol, even when the client asks for some |
| anything else | 404 |

On the other paths the first subprotocol the client offers is selected.
Messages up to 64 MiB are accepted (`--max-size`).
"""

import argparse
import asyncio
import http
import json
import ssl
import sys
import threading
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

FRAGMENTS = ["frag-1 ", "中文 ", "😀 ", "end"]
BIN_FRAGMENTS = [bytes(range(0, 64)), bytes(range(64, 128)), bytes(range(128, 192)), bytes(range(192, 256))]
PATHS = {"/echo", "/fragmented", "/close", "/ping", "/big", "/forbidden", "/subprotocol"}
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def split(path):
    parts = urlsplit(path)
    q = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return parts.path, q


def big_payload(size, binary):
    if binary:
        pattern = bytes(range(251))
        return (pattern * (size // 251 + 1))[:size]
    return (ALPHABET * (size // 26 + 1))[:size]


def process_request(connection, request):
    path, _ = split(request.path)
    if path == "/forbidden":
        return connection.respond(http.HTTPStatus.FORBIDDEN, "Forbidden\n")
    if path not in PATHS:
        return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
    return None


def select_subprotocol(connection, subprotocols):
    path, _ = split(connection.request.path)
    if path == "/subprotocol" or not subprotocols:
        return None
    return subprotocols[0]


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def handler(ws):
    path, q = split(ws.request.path)
    try:
        if path == "/fragmented":
            await ws.send(BIN_FRAGMENTS if q.get("binary") == "1" else FRAGMENTS)
        elif path == "/close":
            code = int(q.get("code", "1000"))
            reason = q.get("reason", "")
            if q.get("immediate") != "1":
                await ws.recv()
            await ws.close(code, reason)
            return
        elif path == "/ping":
            waiter = await ws.ping(b"ping-1")
            try:
                await asyncio.wait_for(waiter, 10)
            except asyncio.TimeoutError:
                await ws.close(4002, "no pong")
                return
            await ws.send("pong:ping-1")
        elif path == "/big":
            size = int(q.get("size", str(1 << 20)))
            await ws.send(big_payload(size, q.get("binary") == "1"))
        await echo(ws)
    except ConnectionClosed:
        pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-size", type=int, default=64 << 20)
    ap.add_argument("--exit-on-eof", action="store_true", help="stop when stdin closes")
    args = ap.parse_args()
    if bool(args.cert) != bool(args.key):
        ap.error("give both --cert and --key (WSS) or neither (plain ws)")
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    async with serve(
        handler,
        args.host,
        args.port,
        ssl=ctx,
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        max_size=args.max_size,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        if args.exit_on_eof:
            def wait_eof():
                sys.stdin.buffer.read()
                loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
            threading.Thread(target=wait_eof, daemon=True).start()
        await stop


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
