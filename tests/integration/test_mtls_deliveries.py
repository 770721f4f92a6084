"""Client certificates per subscription (mTLS), end to end: set through the command line and
the API, presented by the challenge, test-fire and real deliveries to a TLS receiver that
requires a certificate issued by its CA; a subscription without one, or with another CA's,
fails the handshake (an attempt with an error and no status). The private key is never shown
and never on the subscriptions topic in plaintext."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import trustme

from tests.support.api import api_settings, client, running_api, token_maker
from tests.support.cli import cli_error, cli_json, run_cli
from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver
from tests.support.worker import running
from tests.unit.outbound.test_client_certificates import certificate, mtls_server_context
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.outbound.tls import ClientCertificate, fingerprint
from worker.subscriptions.secrets import SecretBox

SECRET = "whsec_" + "A" * 32
CODEC = RecordCodec(AvroCodec())


def _files(tmp_path: Path, name: str, cert: ClientCertificate) -> tuple[str, str]:
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_text(cert.cert)
    key_file.write_text(cert.key)
    return str(cert_file), str(key_file)


def _flags(files: tuple[str, str]) -> list[str]:
    return ["--client-cert", files[0], "--client-key", files[1]]


def _create(settings: Settings, url: str, *extra: str) -> str:
    args = ["subs", "create", "--workspace", "acme", "--url", url, "--events", "*", *extra]
    return str(cli_json(settings, *args)["id"])


def test_a_subscriptions_certificate_is_presented_and_its_key_never_shown(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    ca, other_ca = trustme.CA(), trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))  # the receiver's server certificate is CA 1's
    settings = api_settings(
        settings_factory(secrets_key=SecretBox.generate_key(), ca_bundle=str(bundle)),
        str(tmp_path / "api"),
    )
    mine, theirs, foreign = certificate(ca), certificate(ca, "api"), certificate(other_ca)
    keys = [c.key for c in (mine, theirs, foreign)]
    outputs: list[bytes] = []
    with Receiver(mtls_server_context(ca)) as receiver:
        urls = {name: receiver.endpoint(name, SECRET) for name in ("mine", "none", "foreign")}
        # The challenge goes out with the certificate: it passes only with one of CA 1's.
        cert_file, key_file = _files(tmp_path, "m", mine)
        mine_id = _create(
            settings,
            urls["mine"],
            "--secret",
            SECRET,
            "--client-cert",
            cert_file,
            "--client-key",
            key_file,
        )
        assert len(receiver.received("mine")) == 1  # the challenge
        create = ["subs", "create", "--workspace", "acme", "--events", "*", "--secret", SECRET]
        refused = cli_error(settings, *create, "--url", urls["none"])
        assert "challenge" in refused and receiver.received("none") == []
        none_id = _create(settings, urls["none"], "--secret", SECRET, "--skip-challenge")
        foreign_id = _create(
            settings,
            urls["foreign"],
            "--secret",
            SECRET,
            "--skip-challenge",
            *_flags(_files(tmp_path, "f", foreign)),
        )
        shown = cli_json(settings, "subs", "show", mine_id)
        assert shown["client_cert"] == fingerprint(mine.cert)
        for args in (["subs", "list"], ["subs", "show", mine_id], ["subs", "show", foreign_id]):
            for output in ("json", "text"):
                result = run_cli(settings, *args, "--output", output)
                assert result.returncode == 0, result.stderr
                outputs += [result.stdout, result.stderr]
        # The same through the API: PEM strings in, a fingerprint out.
        with (
            token_maker(settings) as tokens,
            running_api(settings) as api,
            client(api, tokens.workspace("acme")) as c,
        ):
            made = c.post(
                "/v1/workspaces/acme/subscriptions",
                json={
                    "url": urls["mine"],
                    "events": ["*"],
                    "client_cert": theirs.cert,
                    "client_key": theirs.key,
                },
            )
            assert made.status_code == 201, made.text
            assert made.json()["client_cert"] == fingerprint(theirs.cert)
            path = f"/v1/workspaces/acme/subscriptions/{made.json()['id']}"
            fired = c.post(f"{path}/test", json={})
            assert fired.json()["status"] == 200, fired.text
            mismatched = c.patch(path, json={"client_key": mine.key})
            assert mismatched.status_code == 422
            assert "does not match" in mismatched.text
            outputs += [made.content, fired.content, c.get(path).content, mismatched.content]
            outputs.append(c.get("/v1/workspaces/acme/subscriptions").content)
            removed = c.patch(path, json={"client_cert": None})
            assert removed.json()["client_cert"] is None, removed.text
        # Real deliveries: one event reaches each subscription (and the API's, now without
        # a certificate, is refused like "none").
        before = len(receiver.received("mine"))
        with running(settings):
            produce_json(
                settings.bootstrap_servers or "",
                settings.input_topics,
                [{"event": "a.created", "workspace": "acme", "id": "evt_mtls_1"}],
            )
            delivered = receiver.wait_for("mine", before + 1, 30)
            assert delivered[-1].json["id"] == "evt_mtls_1" and delivered[-1].verified
            attempts = _attempts_until(settings, {none_id, foreign_id}, 30)
    assert receiver.received("none") == [] and receiver.received("foreign") == []
    for sub_id in (none_id, foreign_id):
        first = attempts[sub_id][0]
        assert first.status is None and first.error and first.error.startswith("network: ")
    for topic in ("subscriptions", "attempts"):
        outputs += [
            m.value or b""
            for m in consume_all(settings.bootstrap_servers or "", settings.topic_prefix + topic)
        ]
    blob = b"\n".join(outputs)
    assert mine.cert.splitlines()[1].encode() in blob  # the scan saw the subscriptions
    for key in keys:
        body = "".join(key.splitlines()[1:-1])
        assert body[:40].encode() not in blob.replace(b"\n", b"").replace(b"\\n", b"")
    assert b"PRIVATE KEY" not in blob


def _attempts_until(settings: Settings, sub_ids: set[str], timeout: float) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list] = {}
        for m in consume_all(settings.bootstrap_servers or "", settings.topic_prefix + "attempts"):
            attempt = CODEC.decode_attempt(m.value)
            found.setdefault(attempt.subscription_id, []).append(attempt)
        if sub_ids <= found.keys() or time.monotonic() > deadline:
            assert sub_ids <= found.keys(), found.keys()
            return found
        time.sleep(0.5)


def test_command_line_errors_are_one_line(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory()
    ca = trustme.CA()
    cert_file, key_file = _files(tmp_path, "a", certificate(ca))
    _, other_key = _files(tmp_path, "b", certificate(ca, "b"))
    base = ["subs", "create", "--workspace", "acme", "--url", "https://127.0.0.1:9/h"]
    base += ["--events", "*", "--skip-challenge"]
    cases = [
        (["--client-cert", cert_file], "set together"),
        (["--client-cert", cert_file, "--client-key", other_key], "does not match"),
        (["--client-cert", key_file, "--client-key", key_file], "no PEM certificate"),
        (["--client-cert", str(tmp_path / "missing.pem"), "--client-key", key_file], "cannot read"),
    ]
    for extra, message in cases:
        error = cli_error(settings, *base, *extra)
        assert error.startswith("webhook-worker: error: ") and message in error, error
