"""A Confluent-compatible Schema Registry stand-in on 127.0.0.1, for what a real one cannot do.

The input tests run a real registry, Apicurio Registry (tests/support/apicurio.py). This
stand-in is kept where a test needs what no real registry does: answering HTTP 503 on demand,
showing the headers it received, counting fetches (tests/integration/inputs/
test_registry_client.py), and for the inputs benchmark (bench/inputs_pipeline.py), which
needs no JVM. It serves the subset of the Confluent REST API that confluent-kafka's
serializers and the worker use: register (``POST /subjects/{s}/versions``), look up, and
``GET /schemas/ids/{id}``; it can be stopped and started again on the same port.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SchemaRegistryStandIn:
    def __init__(self) -> None:
        self.schemas: dict[int, dict[str, Any]] = {}  # id -> {"schema", "schemaType"}
        self.subjects: dict[str, list[int]] = {}
        self.fetches = 0
        self.status: int | None = None  # answer every request with this status (an outage)
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SchemaRegistryStandIn:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/vnd.schemaregistry.v1+json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                registry.authorizations.append(self.headers.get("authorization"))
                if registry.status is not None:
                    self._answer(registry.status, {"error_code": registry.status})
                    return
                match = re.fullmatch(r"/schemas/ids/(\d+)(\?.*)?", self.path)
                if match:
                    registry.fetches += 1
                    found = registry.schemas.get(int(match.group(1)))
                    if found is None:
                        self._answer(404, {"error_code": 40403, "message": "Schema not found"})
                    else:
                        self._answer(200, found)
                    return
                self._answer(404, {"error_code": 404, "message": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"] or 0)))
                match = re.fullmatch(r"/subjects/([^/?]+)(/versions)?(\?.*)?", self.path)
                if not match:
                    self._answer(404, {"error_code": 404, "message": "not found"})
                    return
                subject, register = match.group(1), bool(match.group(2))
                entry = {"schema": body["schema"], "schemaType": body.get("schemaType", "AVRO")}
                with registry._lock:
                    ids = registry.subjects.setdefault(subject, [])
                    same = [i for i in ids if registry.schemas[i] == entry]
                    if same:
                        schema_id = same[0]
                    elif register:
                        schema_id = max(registry.schemas, default=0) + 1
                        registry.schemas[schema_id] = entry
                        ids.append(schema_id)
                    else:
                        self._answer(404, {"error_code": 40403, "message": "Schema not found"})
                        return
                version = ids.index(schema_id) + 1
                self._answer(
                    200,
                    {"id": schema_id, "subject": subject, "version": version, **entry},
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
