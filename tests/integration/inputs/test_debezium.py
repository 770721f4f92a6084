"""Rows inserted, updated and deleted in PostgreSQL arrive, through a real Debezium
connector (Kafka Connect standalone, JSON converter with schemas), as signed
record.created / record.updated (exactly the changed columns) / record.deleted webhooks in
per-row order."""

from __future__ import annotations

import time

import pytest

from tests.support.debezium import ConnectStandalone, Postgres, postgres_bin, postgres_connector
from tests.support.inputs import mapped_settings
from tests.support.receiver import Receiver
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.subscriptions.secrets import generate_secret

pytestmark = [pytest.mark.timeout(400), pytest.mark.slow]

MAPPING = """
inputs:
  - name: crm
    topics: [{p}crm.public.contacts]
    format: debezium
    workspace: field:row.tenant
"""


@pytest.fixture
def postgres():
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: scripts/test installs it (apt-get)")
    pg = Postgres().start()
    try:
        yield pg
    finally:
        pg.stop()


def test_row_changes_arrive_as_signed_webhooks_in_per_row_order(
    settings_factory, tmp_path, postgres
):
    settings = mapped_settings(
        settings_factory, tmp_path, ["crm.public.contacts"], MAPPING, partitions=1
    )
    p = settings.topic_prefix
    postgres.sql(
        "crm",
        "CREATE TABLE contacts (id integer PRIMARY KEY, tenant text NOT NULL, name text,"
        " stage text, amount numeric(10,2)); ALTER TABLE contacts REPLICA IDENTITY FULL;",
    )
    connect = ConnectStandalone(
        settings.bootstrap_servers or "",
        postgres_connector(postgres.port, f"{p}crm", **{"decimal.handling.mode": "string"}),
    )
    try:
        connect.wait_running()
        with Receiver() as receiver:
            secret = generate_secret()
            SubsWriter(settings).create(
                "acme", receiver.endpoint("ok", secret), ["record.*"], secret=secret
            )
            SubsWriter(settings).create(
                "other", receiver.endpoint("other", secret), ["*"], secret=secret
            )
            with running(settings):
                # The connector streams from its slot: a first row shows that it does.
                deadline = time.monotonic() + 90
                n = 100
                while not receiver.received("ok"):
                    assert time.monotonic() < deadline, connect.output()[-3000:]
                    n += 1
                    postgres.sql(
                        "crm", f"INSERT INTO contacts VALUES ({n}, 'acme', 'probe', 'x', 0)"
                    )
                    time.sleep(2)
                warm = len(receiver.wait_for("ok", n - 100, timeout=30))
                postgres.sql(
                    "crm",
                    "INSERT INTO contacts VALUES (1, 'acme', 'Jane', 'lead', 10.50);"
                    "INSERT INTO contacts VALUES (2, 'acme', 'Omar', 'lead', 20.00);"
                    "INSERT INTO contacts VALUES (3, 'acme', 'Ada', 'lead', 30.00);"
                    "INSERT INTO contacts VALUES (4, 'other', 'Zed', 'lead', 1.00);",
                )
                postgres.sql("crm", "UPDATE contacts SET stage = 'proposal' WHERE id = 1")
                postgres.sql(
                    "crm", "UPDATE contacts SET name = 'Omar K', amount = 25.00 WHERE id = 2"
                )
                postgres.sql("crm", "DELETE FROM contacts WHERE id = 3")
                postgres.sql("crm", "UPDATE contacts SET stage = 'won' WHERE id = 1")
                got = receiver.wait_for("ok", warm + 7, timeout=90)[warm:]
                other = receiver.wait_for("other", 1, timeout=30)
                time.sleep(1)
                assert len(receiver.received("ok")) == warm + 7
    finally:
        connect.stop()
    assert all(r.verified for r in got + other)
    by_row: dict[int, list[dict]] = {}
    for r in got:
        by_row.setdefault(r.json["record"]["id"], []).append(r.json)
    assert [b["event"] for b in by_row[1]] == ["record.created", "record.updated", "record.updated"]
    assert [b["changes"] for b in by_row[1][1:]] == [
        {"stage": {"old": "lead", "new": "proposal"}},
        {"stage": {"old": "proposal", "new": "won"}},
    ]
    assert [b["event"] for b in by_row[2]] == ["record.created", "record.updated"]
    assert by_row[2][1]["changes"] == {
        "name": {"old": "Omar", "new": "Omar K"},
        "amount": {"old": "20.00", "new": "25.00"},
    }
    assert [b["event"] for b in by_row[3]] == ["record.created", "record.deleted"]
    assert by_row[3][1]["record"] == {
        "id": 3,
        "tenant": "acme",
        "name": "Ada",
        "stage": "lead",
        "amount": "30.00",
    }
    first = by_row[1][0]
    assert first["entity"] == "contacts" and first["workspace"] == "acme"
    assert first["ordering_key"] == "contacts/1"
    assert first["record"] == {
        "id": 1,
        "tenant": "acme",
        "name": "Jane",
        "stage": "lead",
        "amount": "10.50",
    }
    assert "changes" not in first
    assert [r.json["record"]["id"] for r in other] == [4]
