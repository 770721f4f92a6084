"""A fast webhook receiver for the benchmark, in its own process: counts requests, answers
200 after an optional delay, and reports arrival latencies (from the event's timestamp)."""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiohttp import web


def main(port: int, delay_ms: int) -> None:
    count = 0
    latencies: list[float] = []
    hang: set[str] = set()

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        name = request.match_info["name"]
        if name in hang:
            await asyncio.sleep(3600)
        body = await request.read()
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        count += 1
        if len(latencies) < 200_000:
            sent = orjson.loads(body).get("sent")
            if sent:
                latencies.append(time.time() - sent)
        return web.Response(text="ok")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"count": count, "latencies": latencies[-50_000:]})

    async def reset(_request: web.Request) -> web.Response:
        nonlocal count
        count = 0
        latencies.clear()
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
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
