"""What an attempt record keeps of the exchange, for the delivery log's attempt detail: the
request's header fields as sent (the signatures included, the values of the subscription's
custom headers hidden: they may be credentials) and the response's fields and body size."""

from __future__ import annotations

from collections.abc import Iterable

from worker import __version__
from worker.model import Attempt
from worker.outbound.client import Response

__all__ = ["HIDDEN", "REQUEST_BODY_KEPT", "recorded"]

HIDDEN = "(hidden)"
# The request body kept on an attempt record: whole up to this size, so the portal can show
# it and re-send a delivery that did not fail for good (it has no dead letter to take it from).
REQUEST_BODY_KEPT = 65_536
MAX_VALUE = 2048  # a longer header value is cut (the record is not a packet capture)


def recorded(
    attempt: Attempt,
    sent: dict[str, str],
    custom: Iterable[tuple[str, str]],
    response: Response | None = None,
) -> Attempt:
    """``attempt`` with the exchange's headers and sizes filled in (and returned)."""
    secret = {name.lower() for name, _ in custom}
    attempt.request_headers = {
        name.lower(): HIDDEN if name.lower() in secret else value[:MAX_VALUE]
        for name, value in sent.items()
    }
    # The fields the client adds to every request (worker.outbound.client).
    attempt.request_headers.setdefault("user-agent", f"webhook-worker/{__version__}")
    if attempt.request_size is not None:
        attempt.request_headers["content-length"] = str(attempt.request_size)
    if response is not None:
        fields: dict[str, str] = {}
        for name, value in response.headers:
            # A repeated field is one comma-joined value (RFC 9110 5.3).
            fields[name] = f"{fields[name]}, {value}"[:MAX_VALUE] if name in fields else value
        attempt.response_headers = fields
        length = fields.get("content-length", "")
        attempt.response_size = int(length) if length.isdigit() else len(response.body)
    return attempt
