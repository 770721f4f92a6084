"""``python -m bench.api.frameworks``: the measurement behind the management API's framework.

Serves the same route (bearer check, a 50-row JSON list, a pydantic-validated POST) with
FastAPI on uvicorn, Starlette on uvicorn and aiohttp, each in its own process, drives each
with the same load (50 concurrent clients) and reports server CPU per 1,000 requests (from
/proc, so the load generator's own CPU does not count), requests/s and RSS.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx

from bench.procstat import process_cpu_s, rss_mb
from bench.receivers import free_port

ROWS = [
    {"id": f"sub_{i:024d}", "url": "https://example.com/hook", "events": ["*"]} for i in range(50)
]
TOKEN = "Bearer wwt_tok0123456789_secretsecretsecret"

FASTAPI = """
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
import uvicorn, sys
from bench.api.frameworks import ROWS, TOKEN
app = FastAPI()
class Body(BaseModel):
    url: str
    events: list[str]
@app.get("/v1/items")
async def items(authorization: str = Header("")) -> dict:
    if authorization != TOKEN:
        raise HTTPException(401)
    return {"data": ROWS, "next_cursor": None}
@app.post("/v1/items", status_code=201)
async def create(body: Body, authorization: str = Header("")) -> dict:
    if authorization != TOKEN:
        raise HTTPException(401)
    return {"id": "sub_1", **body.model_dump()}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error",
            loop="uvloop", http="httptools")
"""

STARLETTE = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from pydantic import BaseModel
import uvicorn, sys, orjson
from bench.api.frameworks import ROWS, TOKEN
class Body(BaseModel):
    url: str
    events: list[str]
async def items(request):
    if request.headers.get("authorization") != TOKEN:
        return JSONResponse({}, 401)
    return JSONResponse({"data": ROWS, "next_cursor": None})
async def create(request):
    if request.headers.get("authorization") != TOKEN:
        return JSONResponse({}, 401)
    body = Body.model_validate_json(await request.body())
    return JSONResponse({"id": "sub_1", **body.model_dump()}, 201)
app = Starlette(routes=[Route("/v1/items", items), Route("/v1/items", create, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error",
            loop="uvloop", http="httptools")
"""

AIOHTTP = """
from aiohttp import web
from pydantic import BaseModel
import sys, orjson, uvloop
from bench.api.frameworks import ROWS, TOKEN
class Body(BaseModel):
    url: str
    events: list[str]
async def items(request):
    if request.headers.get("authorization") != TOKEN:
        return web.json_response({}, status=401)
    return web.json_response({"data": ROWS, "next_cursor": None},
                             dumps=lambda o: orjson.dumps(o).decode())
async def create(request):
    if request.headers.get("authorization") != TOKEN:
        return web.json_response({}, status=401)
    body = Body.model_validate_json(await request.read())
    return web.json_response({"id": "sub_1", **body.model_dump()}, status=201)
app = web.Application()
app.add_routes([web.get("/v1/items", items), web.post("/v1/items", create)])
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def _load(port: int, requests: int, clients: int) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def one() -> None:
            for i in counter:
                start = time.perf_counter()
                if i % 5 == 0:
                    r = await client.post(
                        "/v1/items",
                        json={"url": "https://e.com", "events": ["a.b"]},
                        headers={"authorization": TOKEN},
                    )
                else:
                    r = await client.get("/v1/items", headers={"authorization": TOKEN})
                assert r.status_code in (200, 201), r.status_code
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one() for _ in range(clients)))
    return latencies


def measure(name: str, source: str, requests: int = 10_000, clients: int = 50) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", source, str(port)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/items", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(_load(port, 500, clients))  # warm-up
        cpu0, t0 = process_cpu_s(proc.pid), time.perf_counter()
        latencies = sorted(asyncio.run(_load(port, requests, clients)))
        cpu1, t1 = process_cpu_s(proc.pid), time.perf_counter()
        return {
            "cpu_ms_per_1000": round((cpu1 - cpu0) * 1e6 / requests, 1),
            "requests_per_s": round(requests / (t1 - t0)),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
            "rss_mb": round(rss_mb(proc.pid), 1),
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    for name, source in (("fastapi", FASTAPI), ("starlette", STARLETTE), ("aiohttp", AIOHTTP)):
        print(name, measure(name, source), flush=True)


if __name__ == "__main__":
    main()
