"""Errors as ``application/problem+json`` (RFC 9457): one shape for every failure."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from worker.errors import ConflictError, InvalidInput, NotFoundError

__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "field_error",
    "install_handlers",
    "problem_response",
    "service_errors",
]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise to answer with a problem document; ``headers`` are added (e.g. Retry-After)."""

    def __init__(
        self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


@contextmanager
def service_errors() -> Iterator[None]:
    """The services' errors as problem documents, by their branch of the error tree:
    NotFoundError 404, ConflictError 409, InvalidInput 422."""
    try:
        yield
    except NotFoundError as exc:
        raise Problem(404, str(exc)) from None
    except ConflictError as exc:
        if exc.public:
            errors = [{"field": "", "message": exc.public}]
            raise Problem(409, str(exc), errors=errors) from None
        raise Problem(409, str(exc)) from None
    except InvalidInput as exc:
        raise Problem(422, str(exc), errors=[field_error(exc)]) from None


def field_error(exc: InvalidInput) -> dict[str, str]:
    """One entry of a problem's ``errors``: the field and the end user's words for it."""
    return {"field": exc.field or "", "message": exc.public or _sentence(str(exc))}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# Pydantic's error types in an end user's words (``ctx`` fills the limits in).
_WORDS = {
    "missing": "Required.",
    "string_too_short": "Required.",
    "string_too_long": "At most {max_length} characters.",
    "string_pattern_mismatch": "Enter a value.",
    "too_long": "At most {max_length} entries.",
    "too_short": "Pick at least {min_length}.",
    "greater_than_equal": "At least {ge}.",
    "less_than_equal": "At most {le}.",
    "greater_than": "More than {gt}.",
    "less_than": "Less than {lt}.",
    "int_parsing": "Enter a whole number.",
    "int_from_float": "Enter a whole number.",
    "literal_error": "Choose one of {expected}.",
    "extra_forbidden": "Not a field of this request.",
}


def _words(error: dict[str, Any]) -> str:
    template = _WORDS.get(str(error.get("type", "")))
    if template is None:
        return _sentence(str(error.get("msg", "invalid value")))
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError):
        return _sentence(str(error.get("msg", "invalid value")))


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    phrase = HTTPStatus(status).phrase
    document = {
        "type": f"https://webhook-worker.dev/problems/{phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(
        orjson.dumps(document), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _validation_detail(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = []
    status = 422
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        if error.get("type") == "json_invalid":
            status = 400
        errors.append({"field": location, "message": _words(dict(error))})
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    if status == 400:
        return 400, "malformed JSON body", errors
    where = f"{first['field']}: " if first["field"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return status, f"{where}{first['message']}{more}", errors


def install_handlers(app: FastAPI) -> None:
    """Turn every error FastAPI or a route raises into a problem document."""

    async def on_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.detail, exc.headers, **exc.extra)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        status, detail, errors = _validation_detail(exc)
        return problem_response(status, detail, errors=errors)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, detail, dict(exc.headers or {}))

    async def on_error(_request: Request, exc: Exception) -> Response:
        log.error("unhandled error in the API: %s", exc, exc_info=exc)
        return problem_response(500, "internal error (logged by the API)")

    app.add_exception_handler(Exception, on_error)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
