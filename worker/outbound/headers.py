"""Which custom request headers a subscription may carry (RFC 9110 field syntax).

Checked when a subscription is created or changed (:func:`validate_header`, called by the
subscription editor) and again by the delivery client before a request is written, so that a
header stored before this check existed fails its delivery permanently instead of being
retried as a network error.
"""

from __future__ import annotations

import re

from worker.errors import InvalidInput

__all__ = ["RESERVED_HEADERS", "InvalidHeader", "check_field", "check_name", "validate_header"]

MAX_NAME_LENGTH = 256
MAX_VALUE_LENGTH = 8192

# token = 1*tchar (RFC 9110 5.6.2)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# field-value = *field-content; field-vchar = VCHAR / obs-text; SP and HTAB only inside.
_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\x20\x09]*[\x21-\x7e\x80-\xff])*)?")

# Set by the delivery itself (framing, connection management, signing): a subscription
# cannot replace or duplicate them.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "te",
        "trailer",
        "connection",
        "keep-alive",
        "upgrade",
        "expect",
        "proxy-connection",
        "proxy-authorization",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-webhook-signature",
    }
)


class InvalidHeader(InvalidInput):
    """A custom header that cannot be sent as given; the message says why."""


def validate_header(name: str, value: str) -> None:
    """InvalidHeader unless ``name: value`` is one well-formed header line a subscription
    may add: ``name`` an RFC 9110 token not in :data:`RESERVED_HEADERS`, ``value`` visible
    characters (Latin-1) with inner spaces or tabs only, no CR, LF, NUL or other control
    character, no leading or trailing white space."""
    check_field(name, value)
    if name.lower() in RESERVED_HEADERS:
        raise InvalidHeader(f"header {name!r} is set by the delivery itself")


def check_name(name: str) -> None:
    """InvalidHeader unless ``name`` is an RFC 9110 token (of at most 256 characters)."""
    if not name:
        raise InvalidHeader("empty header name")
    if len(name) > MAX_NAME_LENGTH or not _TOKEN.fullmatch(name):
        raise InvalidHeader(
            f"invalid header name {name[:100]!r}: letters, digits and !#$%&'*+-.^_`|~ only"
        )


def check_field(name: str, value: str) -> None:
    """The syntax half of :func:`validate_header` (reserved names pass): what the delivery
    client checks on every header it writes."""
    check_name(name)
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidHeader(f"value of header {name!r} is over {MAX_VALUE_LENGTH} characters")
    if not _VALUE.fullmatch(value):
        raise InvalidHeader(
            f"invalid value for header {name!r}: control characters (CR, LF, NUL, ...), "
            "characters beyond Latin-1 and leading or trailing white space are not allowed"
        )
