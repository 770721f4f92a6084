from worker.kafka.offsets import OffsetTracker


def test_commit_advances_only_over_a_finished_prefix():
    tracker = OffsetTracker()
    assert tracker.committable() is None
    for offset in (10, 11, 12, 13):
        tracker.start(offset)
    assert tracker.committable() == 10
    tracker.finish(12)
    tracker.finish(11)
    assert tracker.committable() == 10
    tracker.finish(10)
    assert tracker.committable() == 13
    tracker.finish(13)
    assert tracker.committable() == 14
    assert tracker.take_new_commit() == 14
    assert tracker.take_new_commit() is None
    assert tracker.pending == 0
