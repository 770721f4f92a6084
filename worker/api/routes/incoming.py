"""``POST /in/{source_id}`` in the OpenAPI description.

The gate hands every request under ``/in/`` to :class:`worker.sources.intake.Intake` before
FastAPI routes it (the hot path skips the routing), so the function below only describes the
route; it answers only where incoming webhooks are not served."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel

from worker.api.problems import PROBLEM_JSON, Problem

__all__ = ["router"]

router = APIRouter(tags=["incoming webhooks"])
_PROBLEM = {"content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}


class Received(BaseModel):
    received: bool
    webhook_id: str | None
    duplicate: bool


@router.post(
    "/in/{source_id}",
    response_model=Received,
    responses={
        400: {"description": "a webhook-id longer than 256 characters", **_PROBLEM},
        401: {"description": "the signature does not verify (nothing is written)", **_PROBLEM},
        404: {"description": "unknown source", **_PROBLEM},
        413: {"description": "body larger than WEBHOOK_MAX_EVENT_BYTES", **_PROBLEM},
        429: {"description": "the source's rate limit (see Retry-After)", **_PROBLEM},
        431: {"description": "request headers too large", **_PROBLEM},
        503: {"description": "the broker did not acknowledge, or a repeat in flight", **_PROBLEM},
    },
    openapi_extra={
        "security": [],
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": {}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
)
async def receive(source_id: Annotated[str, PathParam(max_length=200)]) -> Received:
    """An incoming webhook for a source (`webhook-worker sources create`): verified as the
    source says (Standard Webhooks headers, a hex HMAC in `x-webhook-signature`, or none),
    answered 200 only once the broker acknowledged its record on the source's topic; the same
    signed `webhook-id` again within the dedupe window is answered 200 with `duplicate` true
    and written once. No bearer token: the signature is the credential."""
    raise Problem(404, "incoming webhooks are not served here")
