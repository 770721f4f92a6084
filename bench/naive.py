"""The naive webhook worker scenario B compares against: consume one event, POST it with a
synchronous client, wait for the answer, commit, and only then read the next.

This is the loop people write first (confluent-kafka + httpx, no router, no retries): the
workspace -> URL map is given, the request is signed like the real worker's. Its rate is
bounded by one endpoint's latency, so it runs for a fixed window instead of to the end.

    python -m bench.naive BOOTSTRAP TOPIC GROUP URLS_JSON SECONDS

prints ``{"delivered": n, "seconds": s, "rate": r}`` (the window starts at the first delivery).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
import time
from pathlib import Path

import httpx
import orjson
from confluent_kafka import Consumer

SECRET = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def signed_headers(msg_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    signature = base64.b64encode(hmac.digest(SECRET, signed, hashlib.sha256)).decode()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def run(bootstrap: str, topic: str, group: str, urls: dict[str, str], seconds: float) -> dict:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    delivered = 0
    first: float | None = None
    try:
        with httpx.Client(timeout=15) as client:
            while first is None or time.monotonic() - first < seconds:
                msg = consumer.poll(1.0)
                if msg is None or msg.error():
                    continue
                body = msg.value()
                event = orjson.loads(body)
                headers = signed_headers(event["id"], body)
                response = client.post(urls[event["workspace"]], content=body, headers=headers)
                if response.is_success:
                    delivered += 1
                    first = first or time.monotonic()
                consumer.commit(message=msg, asynchronous=False)
        elapsed = time.monotonic() - (first or time.monotonic())
    finally:
        consumer.close()
    # The first delivery opens the window, so it is not counted in the rate.
    rate = (delivered - 1) / elapsed if elapsed > 0 else 0.0
    return {"delivered": delivered, "seconds": round(elapsed, 2), "rate": rate}


def main(argv: list[str]) -> int:
    bootstrap, topic, group, urls_path, seconds = argv
    urls = orjson.loads(Path(urls_path).read_bytes())
    print(orjson.dumps(run(bootstrap, topic, group, urls, float(seconds))).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
