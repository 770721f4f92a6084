"""The event-type catalogue of Debezium tables: ``<table>.created``, ``.updated`` and
``.deleted`` for each (with ``events: entity``), or ``record.*`` once, so that the portal's
Select All by category stays meaningful for change data capture (docs/usage.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["ACTIONS", "debezium_catalogue", "table_of"]

ACTIONS = {
    "created": "A row was inserted (or read by the connector's snapshot) into {table}.",
    "updated": "A row of {table} was updated; `changes` holds the columns that changed.",
    "deleted": "A row was deleted from {table}; `record` is the row as it was.",
}


def table_of(topic: str) -> str:
    """The table of a Debezium topic: ``<topic.prefix>.<schema>.<table>`` ends with it."""
    return topic.rsplit(".", 1)[-1]


def debezium_catalogue(tables: list[str], *, by_entity: bool) -> dict[str, Any]:
    """A catalogue document (the ``WEBHOOK_EVENT_TYPES`` format) for ``tables``."""
    categories = sorted(set(tables)) if by_entity else ["record"]
    types = []
    for category in categories:
        subject = category if by_entity else "the captured tables"
        for action, text in ACTIONS.items():
            name = f"{category}.{action}"
            example: dict[str, Any] = {
                "id": "evt_example",
                "event": name,
                "workspace": "acme",
                "timestamp": "2026-03-31T14:30:00.000Z",
                "record": {"id": 7},
            }
            if by_entity:
                example["entity"] = category
            if action == "updated":
                example["changes"] = {"stage": {"old": "lead", "new": "won"}}
            types.append(
                {
                    "name": name,
                    "category": category,
                    "description": text.format(table=subject),
                    "schema": {
                        "type": "object",
                        "required": ["id", "event", "workspace", "timestamp", "record"],
                        "properties": {
                            "event": {"const": name},
                            "record": {"type": "object"},
                            "changes": {"type": "object"},
                        },
                    },
                    "example": example,
                }
            )
    return {"event_types": types}
