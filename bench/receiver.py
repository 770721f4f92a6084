"""A webhook receiver for the benchmark, in its own process: counts requests, answers 200
after an optional delay, never answers the names it is told to hang on, and records each
arrival's latency from the event's ``sent`` field (Unix seconds, set by the bench's producer
on the same clock) in milliseconds."""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiohttp import web

MAX_LATENCIES = 200_000


def main(port: int, delay_ms: int) -> None:
    count = 0
    latencies: list[float] = []
    hang: set[str] = set()
    first: dict[str, float] = {}  # each name's first arrival: when its lane started

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        name = request.match_info["name"]
        if name in hang:
            await asyncio.sleep(3600)
        body = await request.read()
        arrived = time.time()
        first.setdefault(name, arrived)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        count += 1
        if len(latencies) < MAX_LATENCIES and b'"sent"' in body:
            sent = orjson.loads(body).get("sent")
            if sent:
                latencies.append((arrived - sent) * 1000)
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        data: dict[str, object] = {"count": count}
        if request.query.get("first"):
            data["first"] = first
        if request.query.get("latencies"):
            data["latencies_ms"] = latencies
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def reset(_request: web.Request) -> web.Response:
        nonlocal count
        count = 0
        latencies.clear()
        first.clear()
        return web.json_response({"ok": True})

    async def set_hang(request: web.Request) -> web.Response:
        hang.clear()
        hang.update((await request.json())["names"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/_hang", set_hang)
    app.router.add_post("/{name}", hook)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        backlog=4096,
        shutdown_timeout=1,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
