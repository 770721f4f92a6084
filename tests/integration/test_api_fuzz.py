"""schemathesis (from PyPI) fuzzes the management API from its served ``/openapi.json``:
no request may get a 5xx, and every answer must match the schema the API describes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.support.api import api_settings, client, running_api, token_maker
from worker.catalogue import example_catalogue_path
from worker.config import Settings

EXAMPLES = 30


def test_the_openapi_description_is_generated_and_complete(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(settings_factory(), str(tmp_path / "api"))
    with running_api(settings) as api:
        spec = httpx.get(f"{api.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    base = "/v1/workspaces/{ws}/subscriptions"
    expected = {
        "/v1/event-types": {"get"},
        base: {"get", "post"},
        base + "/{id}": {"get", "patch", "delete"},
        base + "/{id}/enable": {"post"},
        base + "/{id}/disable": {"post"},
        base + "/{id}/roll-secret": {"post"},
        base + "/{id}/test": {"post"},
        base + "/{id}/attempts": {"get"},
        base + "/{id}/deliveries": {"get"},
        base + "/{id}/deliveries/{webhook_id}": {"get"},
        base + "/{id}/deliveries/{webhook_id}/resend": {"post"},
        base + "/{id}/health": {"get"},
        base + "/{id}/activity": {"get"},
        "/v1/workspaces/{ws}/subscription-health": {"get"},
        base + "/{id}/dead-letters": {"get"},
        base + "/{id}/dead-letters/redrive": {"post"},
        "/in/{source_id}": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert (
        "bearerAuth" in str(spec["components"]["securitySchemes"])
        or spec["components"]["securitySchemes"]
    )


def test_fuzzed_requests_never_get_a_5xx_and_answers_match_the_schema(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(
        settings_factory(event_types=str(example_catalogue_path())), str(tmp_path / "api")
    )
    with token_maker(settings) as tokens, running_api(settings) as api:
        token = tokens.admin()
        with client(api, token) as c:
            # Something to find: one workspace with a subscription (fuzzed ids rarely match).
            created = c.post(
                "/v1/workspaces/acme/subscriptions",
                json={"url": "http://127.0.0.1:9/x", "events": ["*"], "skip_challenge": True},
            )
            assert created.status_code == 201, created.text
        schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
        headers = {"authorization": f"Bearer {token}"}
        checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: Any) -> None:
                if (
                    isinstance(case.body, dict)
                    and case.method == "POST"
                    and not case.path.endswith("/test")
                ):
                    # Never challenge fuzzed URLs: that would send requests off this machine.
                    # (Send test goes to the one subscription's URL, on this machine: its
                    # edited events are fuzzed as they are.)
                    case.body["skip_challenge"] = True
                if isinstance(case.body, dict) and case.method == "PATCH":
                    case.body.pop("url", None)
                case.call_and_validate(headers=headers, checks=checks)

            check()
