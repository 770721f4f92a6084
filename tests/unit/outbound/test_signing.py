import base64
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from worker.outbound.signing import (
    decode_secret,
    generate_signing_key,
    load_signing_key,
    sign_headers,
)
from worker.subscriptions.secrets import generate_secret


def test_standardwebhooks_verifies_our_signature():
    secret = generate_secret()
    body = b'{"event":"contact.created"}'
    now = int(datetime.now(UTC).timestamp())
    headers = sign_headers("msg_1", now, body, [decode_secret(secret)])
    assert Webhook(secret).verify(body, headers) == {"event": "contact.created"}


def test_both_secrets_verify_during_rotation():
    old, new = generate_secret(), generate_secret()
    body = b'{"a":1}'
    now = int(datetime.now(UTC).timestamp())
    headers = sign_headers("msg_2", now, body, [decode_secret(new), decode_secret(old)])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_hex_body_signature():
    import hashlib
    import hmac

    secret = generate_secret()
    body = b"{}"
    headers = sign_headers("msg_3", 1, body, [decode_secret(secret)])
    expected = hmac.new(decode_secret(secret), body, hashlib.sha256).hexdigest()
    assert headers["x-webhook-signature"] == expected


def test_custom_headers_cannot_override_signature_or_content_headers():
    from worker.dispatch.delivery import Attempter
    from worker.model import DeliveryTask
    from worker.subscriptions.model import SecretEntry, Subscription

    secret = generate_secret()
    sub = Subscription(
        "s",
        "w",
        "https://x",
        ("*",),
        (SecretEntry(secret),),
        headers=(
            ("X-Team", "core"),
            ("webhook-signature", "forged"),
            ("Content-Type", "text/plain"),
        ),
    )
    attempter = Attempter(lookup=lambda _: sub, sender=None, metrics=None)  # type: ignore[arg-type]
    task = DeliveryTask("msg_1", "s", "w", "e", "x.created", b"{}")
    headers = attempter._headers(sub, task, int(datetime.now(UTC).timestamp()))
    assert headers["X-Team"] == "core"
    assert headers["content-type"] == "application/json"
    assert "Content-Type" not in headers
    assert headers["webhook-signature"].startswith("v1,")
    Webhook(secret).verify(b"{}", headers)


def test_v1a_signatures_follow_the_v1_ones_and_verify_with_the_public_key() -> None:
    secret = generate_secret()
    seeds = [generate_signing_key() for _ in range(2)]
    body = b'{"x": 1}'
    now = int(datetime.now(UTC).timestamp())
    headers = sign_headers(
        "msg_1", now, body, [decode_secret(secret)], [load_signing_key(s) for s, _ in seeds]
    )
    parts = headers["webhook-signature"].split()
    assert [p.split(",")[0] for p in parts] == ["v1", "v1a", "v1a"]
    signed = f"msg_1.{now}.".encode() + body
    for (_, public), part in zip(seeds, parts[1:], strict=True):
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
        key.verify(base64.b64decode(part[len("v1a,") :]), signed)
    Webhook(secret).verify(body, headers)  # receivers of v1 ignore the v1a entries
