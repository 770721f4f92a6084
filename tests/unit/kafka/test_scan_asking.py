"""A scan asks again while a partition's leader is not known yet, and says why in one line
when the broker still cannot answer (no broker: the answers are scripted)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from worker.kafka.scan import ScanError, asked_until_answered


def scripted(*answers: object) -> Callable[[], object]:
    calls = iter(answers)

    def ask() -> object:
        answer = next(calls)
        if isinstance(answer, KafkaException):
            raise answer
        return answer

    return ask


def refusal(code: int) -> KafkaException:
    return KafkaException(KafkaError(code, "Broker: refused"))


def test_not_leader_yet_is_asked_again_until_answered() -> None:
    ask = scripted(
        refusal(KafkaError.NOT_LEADER_FOR_PARTITION),
        refusal(KafkaError.LEADER_NOT_AVAILABLE),
        (0, 7),
    )
    assert asked_until_answered(ask, "reading the ends of t [0]", pause_s=0.001) == (0, 7)


def test_not_leader_past_the_timeout_is_one_line() -> None:
    ask = scripted(*[refusal(KafkaError.NOT_LEADER_FOR_PARTITION)] * 1000)
    with pytest.raises(ScanError) as raised:
        asked_until_answered(ask, "reading the ends of t [0]", timeout_s=0.05, pause_s=0.01)
    assert str(raised.value) == "reading the ends of t [0]: Broker: refused"


def test_other_errors_are_not_asked_again() -> None:
    ask = scripted(refusal(KafkaError.TOPIC_AUTHORIZATION_FAILED), (0, 7))
    with pytest.raises(ScanError, match=r"^reading t: Broker: refused$"):
        asked_until_answered(ask, "reading t", pause_s=0.001)
