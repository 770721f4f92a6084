"""Sending to incoming-webhook sources from tests the way real senders do: signed by the
``standardwebhooks`` library (not ours), and reading what landed in the source's topic."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from tests.support.kafka import consume_all


def signed_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, age_s: float = 0
) -> dict[str, str]:
    """Standard Webhooks headers made by the reference library, ``age_s`` in the past."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.now(UTC) - timedelta(seconds=age_s)
    try:
        signature = Webhook(secret).sign(webhook_id, when, body.decode("utf-8"))
    except UnicodeDecodeError:
        # The reference library signs text only; a binary body is signed as the spec says.
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{webhook_id}.{int(when.timestamp())}.".encode() + body
        signature = "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def hex_signature(secret: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def landed(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record in ``topic``, decoded, with its key under ``_key``."""
    out = []
    for record in consume_all(bootstrap, topic):
        document: dict[str, Any] = orjson.loads(record.value or b"")
        document["_key"] = (record.key or b"").decode()
        out.append(document)
    return out


def raw_body(document: dict[str, Any]) -> bytes:
    if document["body_encoding"] == "base64":
        return base64.b64decode(document["body"])
    text: str = document["body"]
    return text.encode()


def post(base_url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(base_url + path, content=body, headers=headers, timeout=60)
