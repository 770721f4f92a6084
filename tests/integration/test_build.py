"""The build of a worker is separate from running it: ``build_worker`` wires the stages of a
role and starts nothing but the subscription table's follower."""

from __future__ import annotations

import pytest

from worker.app import build_worker
from worker.dispatch.dispatcher import Dispatcher
from worker.router import Router


@pytest.mark.parametrize(
    ("role", "stages"),
    [("all", [Router, Dispatcher]), ("router", [Router]), ("dispatcher", [Dispatcher])],
)
def test_a_role_builds_its_stages_and_nothing_runs(settings_factory, role, stages):
    worker = build_worker(settings_factory(), role)
    try:
        assert [type(stage) for stage in worker.stages] == stages
        assert not any(stage.assigned for stage in worker.stages)  # nothing subscribed yet
        assert (worker.sender is not None) == (Dispatcher in stages)
    finally:
        worker.follower.stop()


def test_an_unknown_role_is_refused_before_anything_is_built(settings_factory):
    with pytest.raises(ValueError, match="unknown role 'both'"):
        build_worker(settings_factory(), "both")
