"""The catalogue derived for Debezium tables is a valid catalogue whose names are what the
debezium format emits, so the portal's Select All by table covers every change."""

from __future__ import annotations

import pytest

from worker.catalogue.parse import parse_catalogue
from worker.inputs.catalogue import debezium_catalogue, table_of


def test_tables_give_created_updated_deleted_each():
    types = parse_catalogue(debezium_catalogue(["deals", "contacts"], by_entity=True), "derived")
    assert [t.name for t in types] == [
        "contacts.created",
        "contacts.updated",
        "contacts.deleted",
        "deals.created",
        "deals.updated",
        "deals.deleted",
    ]
    assert {t.category for t in types} == {"contacts", "deals"}


def test_record_events_are_one_category():
    types = parse_catalogue(debezium_catalogue(["deals"], by_entity=False), "derived")
    assert [t.name for t in types] == ["record.created", "record.updated", "record.deleted"]


def test_the_table_is_the_topics_last_part():
    assert table_of("crm.public.contacts") == "contacts"


def test_inputs_catalogue_prints_it_for_the_mapped_tables(tmp_path, monkeypatch, capsys):
    import orjson

    from worker.cli.main import build_parser
    from worker.config import ConfigError

    def run(*argv: str) -> int:
        # The handler itself: main() first checks that a broker answers, and this command
        # needs none when the mapping names its topics.
        args = build_parser().parse_args(argv)
        return int(args.handler(args))

    mapping = tmp_path / "inputs.yaml"
    mapping.write_text(
        "inputs:\n  - {topics: [crm.public.contacts, crm.public.deals], format: debezium,"
        " workspace: 'const:w', events: entity}\n"
    )
    monkeypatch.setenv("WEBHOOK_INPUTS", str(mapping))
    monkeypatch.setenv("WEBHOOK_INPUT_TOPICS", "crm.public.contacts,crm.public.deals")
    assert run("inputs", "catalogue") == 0
    document = orjson.loads(capsys.readouterr().out)
    names = [t.name for t in parse_catalogue(document, "printed")]
    assert names[:3] == ["contacts.created", "contacts.updated", "contacts.deleted"]
    assert len(names) == 6
    monkeypatch.setenv("WEBHOOK_INPUTS", str(tmp_path / "none.yaml"))
    with pytest.raises(ConfigError, match="cannot read"):
        run("inputs", "catalogue")
