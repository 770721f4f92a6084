"""``python -m tests.support.debezium.capture DIR``: one real Debezium update, captured for
``tests/unit/inputs/data/`` (what bench/debezium.py is checked against).

A throwaway PostgreSQL cluster with a table of the input benches' row columns
(``REPLICA IDENTITY FULL``), a local Apache Kafka node and Kafka Connect standalone with the
Debezium PostgreSQL connector (JsonConverter, ``schemas.enable=true``, as the Debezium
integration test runs it); the row is inserted, then updated, and the update's value and key
are written to ``DIR/debezium-update.value.json`` and ``DIR/debezium-update.key.json`` as
they came off the topic.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from confluent_kafka import Consumer

from tests.support.debezium import ConnectStandalone, Postgres, postgres_connector
from worker.kafka.kafkabroker import KafkaCluster

TABLE = (
    "CREATE TABLE contacts (id integer PRIMARY KEY, name text, email text, stage text,"
    " owner text, amount integer, tenant text); ALTER TABLE contacts REPLICA IDENTITY FULL;"
)
INSERT = (
    "INSERT INTO contacts VALUES"
    " (7, 'Jane Smith', 'jane@example.com', 'qualification', 'vincent', 1200, 'acme')"
)
UPDATE = "UPDATE contacts SET stage = 'proposal' WHERE id = 7"


def connector(port: int) -> dict[str, str]:
    return postgres_connector(port, "crm")


def capture(out: Path) -> None:
    pg = Postgres().start()
    try:
        pg.sql("crm", TABLE)
        with KafkaCluster(nodes=1, heap_mb=512) as cluster:
            connect = ConnectStandalone(cluster.bootstrap, connector(pg.port))
            try:
                connect.wait_running()
                consumer = Consumer(
                    {
                        "bootstrap.servers": cluster.bootstrap,
                        "group.id": "capture",
                        "auto.offset.reset": "earliest",
                    }
                )
                consumer.subscribe(["crm.public.contacts"])
                pg.sql("crm", INSERT)
                got = []
                deadline = time.monotonic() + 120
                while len(got) < 2:
                    assert time.monotonic() < deadline, connect.output()[-3000:]
                    message = consumer.poll(2)
                    if message is None or message.error() is not None:
                        continue
                    got.append(message)
                    if len(got) == 1:  # the insert arrived: the connector streams
                        pg.sql("crm", UPDATE)
                consumer.close()
            finally:
                connect.stop()
    finally:
        pg.stop()
    update = got[1]
    (out / "debezium-update.value.json").write_bytes(update.value())
    (out / "debezium-update.key.json").write_bytes(update.key())


if __name__ == "__main__":
    capture(Path(sys.argv[1]))
