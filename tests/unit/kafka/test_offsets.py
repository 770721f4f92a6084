from hypothesis import given, settings
from hypothesis import strategies as st

from worker.kafka.offsets import OffsetTracker, expand_ranges, ranges_of


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


def test_finished_offsets_a_restart_could_read_again_are_reported_when_they_change():
    tracker = OffsetTracker()
    for offset in range(10, 20):
        tracker.start(offset)
    assert tracker.take_finished_ranges() is None  # nothing finished yet
    for offset in (10, 11, 13, 14, 15, 18):
        tracker.finish(offset)
    # Nothing is confirmed committed: from the first offset read, every finished one.
    assert tracker.take_finished_ranges() == [10, 12, 13, 16, 18, 19]
    assert tracker.take_finished_ranges() is None  # unchanged since
    tracker.finish(12)
    assert tracker.take_new_commit() == 16
    # Stored, not yet committed: a crash now restarts at 10, so 10..15 stay reported.
    assert tracker.take_finished_ranges() == [10, 16, 18, 19]
    tracker.committed(16)  # the broker confirms the commit
    tracker.finish(19)
    assert tracker.take_finished_ranges() == [18, 20]
    tracker.committed(12)  # a late, older confirmation never lowers the floor
    assert tracker.floor == 16


def test_ranges_round_trip_and_are_capped_lowest_first():
    offsets = [1, 2, 3, 7, 9, 10]
    assert ranges_of(offsets, 100) == [1, 4, 7, 8, 9, 11]
    assert expand_ranges(ranges_of(offsets, 100)) == set(offsets)
    assert ranges_of(offsets, 2) == [1, 4, 7, 8]
    assert ranges_of([], 10) == [] and expand_ranges([]) == set()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("finish"), st.integers(0, 60)),
            st.tuples(st.just("commit"), st.integers(0, 60)),
            st.tuples(st.just("report"), st.just(0)),
        ),
        max_size=120,
    )
)
def test_the_runs_report_what_sorting_every_finished_offset_reports(ops):
    # The tracker keeps finished offsets as runs so a report does not sort them all; it must
    # say exactly what the sorted set says: the prefix from the floor, then each run above.
    tracker = OffsetTracker()
    for offset in range(60):
        tracker.start(offset)
    finished: set[int] = set()
    changed = False
    for op, offset in ops:
        if op == "finish":
            tracker.finish(offset)
            changed |= offset not in finished
            finished.add(offset)
        elif op == "commit":
            tracker.committed(offset)
        else:
            low, high = tracker.floor, tracker.committable()
            assert high is not None
            prefix = [low, high] if low is not None and low < high else []
            expected = prefix + ranges_of(sorted(o for o in finished if o >= high), 4096)
            got = tracker.take_finished_ranges()
            assert got == expected if changed else got in (expected, None)
            changed = False
