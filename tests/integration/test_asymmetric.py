"""Standard Webhooks ``v1a`` (ed25519) signatures, verified by an implementation that is not
ours (the ``cryptography`` package's Ed25519PublicKey) on the spec's signed content
``{webhook-id}.{webhook-timestamp}.{body}``: the challenge, test-fire and real deliveries,
and both key pairs during a rotation's grace period."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from tests.support.api import api_settings, client, running_api, token_maker
from tests.support.cli import cli_json
from tests.support.kafka import produce_json
from tests.support.receiver import Received, Receiver
from tests.support.worker import running
from worker.catalogue import Catalogue, example_catalogue_path
from worker.config import Settings


def v1a_verified_by(public_key: str, sent: Received) -> int:
    """How many ``v1a`` signatures of ``sent`` the public key verifies."""
    assert public_key.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_") :]))
    headers = sent.headers
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + sent.body
    verified = 0
    for part in headers["webhook-signature"].split():
        version, _, signature = part.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
            verified += 1
        except InvalidSignature:
            pass
    return verified


def test_v1a_signs_the_challenge_test_fire_and_deliveries(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    catalogue = example_catalogue_path()
    settings = api_settings(settings_factory(event_types=str(catalogue)), str(tmp_path / "api"))
    with Receiver() as receiver, token_maker(settings) as tokens, running_api(settings) as api:
        url = receiver.endpoint("ed", "whsec_" + "A" * 32)
        with client(api, tokens.workspace("acme")) as c:
            created = c.post(
                "/v1/workspaces/acme/subscriptions",
                json={"url": url, "events": ["deal.*"], "asymmetric": True},
            )
            assert created.status_code == 201, created.text
            sub = created.json()
            public = sub["public_key"]
            path = f"/v1/workspaces/acme/subscriptions/{sub['id']}"
            assert c.get(path).json()["public_key"] == public
            (challenge,) = receiver.received("ed")
            assert challenge.json.keys() == {"challenge"}
            assert v1a_verified_by(public, challenge) == 1
            Webhook(sub["secret"]).verify(challenge.body, challenge.headers)  # v1 stays

            fired = c.post(f"{path}/test", json={"event_type": "deal.stage_changed"}).json()
            assert fired["status"] == 200, fired
            test_fire = receiver.received("ed")[-1]
            assert v1a_verified_by(public, test_fire) == 1
            assert "x-webhook-signature" in test_fire.headers

            before = len(receiver.received("ed"))
            with running(settings):
                event = Catalogue.load(str(catalogue)).example_event("deal.stage_changed", "acme")
                event["id"] = "evt_v1a_1"
                produce_json(settings.bootstrap_servers or "", settings.input_topics, [event])
                delivered = receiver.wait_for("ed", before + 1, 30)
            delivery = delivered[before]
            assert delivery.json["id"] == "evt_v1a_1"
            assert v1a_verified_by(public, delivery) == 1
            Webhook(sub["secret"]).verify(delivery.body, delivery.headers)

            rolled = c.post(f"{path}/roll-secret", json={"grace": "1h"}).json()
            assert rolled["public_key"] != public
            c.post(f"{path}/test", json={"event_type": "deal.stage_changed"})
            during_grace = receiver.received("ed")[-1]
            assert v1a_verified_by(rolled["public_key"], during_grace) == 1
            assert v1a_verified_by(public, during_grace) == 1

            off = c.patch(path, json={"asymmetric": False}).json()
            assert off["public_key"] is None
            c.post(f"{path}/test", json={"event_type": "deal.stage_changed"})
            assert "v1a," not in receiver.received("ed")[-1].headers["webhook-signature"]


def test_subs_create_asymmetric_on_the_command_line(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    with Receiver() as receiver:
        url = receiver.endpoint("cli", "whsec_" + "A" * 32)
        created = cli_json(
            settings,
            "subs",
            "create",
            "--workspace",
            "acme",
            "--url",
            url,
            "--events",
            "*",
            "--asymmetric",
        )
        (challenge,) = receiver.received("cli")
        shown = cli_json(settings, "subs", "show", created["id"])
        assert shown["public_key"].startswith("whpk_") and "private" not in str(shown)
        assert v1a_verified_by(shown["public_key"], challenge) == 1
        plain = cli_json(
            settings, "subs", "update", created["id"], "--no-asymmetric", "--skip-challenge"
        )
        assert plain["public_key"] is None
