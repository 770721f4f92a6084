"""Key lanes that only wait, packed into one ``bytes`` record each.

A busy key-scoped subscription can leave a hundred thousand lanes that hold nothing in memory
but their state: a head waiting in a delay topic (its marker durable) and the index of the
tasks parked behind it (every write acknowledged, no body held). As a :class:`Lane` with its
:class:`~worker.dispatch.backlog.Backlog`, two arrays and a :class:`HeadRef`, such a lane is
nine small objects, about 860 bytes; and small objects that live long, allocated among a
flood's short-lived ones, keep the heap's pages and arenas around them from being returned.
Packed, it is a record of about 60 bytes plus 16 per parked task, kept with its key digest in
one of a few thousand buckets (:class:`PackedLanes`): no Python object per lane at all. The
lane is unpacked when it is touched (a fresh task parks behind it, its retry comes due, its
turn comes) and packed again once it only waits again
(:meth:`worker.dispatch.partitions.Partitions.settle`); its parked tasks stay counted in the
tally throughout.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from worker.dispatch.backlog import Backlog, Tally
from worker.dispatch.ordering import HeadRef, Lane

__all__ = ["MAX_PACKED_TASKS", "PackedLanes", "pack", "packable", "parked_in", "unpack"]

# max_seq, head seq, head hop, flags, parked tasks, delivery id length; then the delivery id
# (UTF-8), the parked seqs and their offsets (8 bytes each).
_HEADER = struct.Struct("<qqiBII")
_HAS_HEAD = 1
_HEAD_DURABLE = 2
# A lane with more parked tasks stays a Lane: packing copies its index on every touch.
MAX_PACKED_TASKS = 256
# A bucket entry: the key digest (16 bytes) and the record's length, then the record.
_ENTRY = struct.Struct("<16sI")
_FIRST_BUCKETS = 64
_PER_BUCKET = 16  # past this many records a bucket on average, one more bucket is split


def packable(lane: Lane) -> bool:
    """The lane only waits: nothing in flight or held, nothing unacknowledged, a head (if
    any) durable, parked tasks behind it or a head (an idle lane is dropped, not packed)."""
    backlog = lane.backlog
    return (
        lane.busy is None
        and lane.waiting_queue is None
        and not lane.reading
        and (lane.head is None or lane.head_durable)
        and (lane.head is not None or backlog is not None)
        and (backlog is None or (len(backlog) <= MAX_PACKED_TASKS and backlog.settled))
    )


def pack(lane: Lane) -> bytes:
    head, backlog = lane.head, lane.backlog
    delivery_id = head.delivery_id.encode() if head is not None else b""
    seqs, offsets = backlog.packed() if backlog is not None else (b"", b"")
    flags = (_HAS_HEAD if head is not None else 0) | (_HEAD_DURABLE if lane.head_durable else 0)
    header = _HEADER.pack(
        lane.max_seq,
        head.seq if head is not None else -1,
        head.hop if head is not None else 0,
        flags,
        len(seqs) // 8,
        len(delivery_id),
    )
    return b"".join((header, delivery_id, seqs, offsets))


def unpack(record: bytes, tally: Tally) -> Lane:
    """The lane a record holds (its parked tasks are already counted in ``tally``)."""
    max_seq, head_seq, hop, flags, count, id_len = _HEADER.unpack_from(record)
    at = _HEADER.size
    lane = Lane(tally, max_seq=max_seq, head_durable=bool(flags & _HEAD_DURABLE))
    if flags & _HAS_HEAD:
        lane.head = HeadRef(record[at : at + id_len].decode(), hop, head_seq)
    at += id_len
    if count:
        size = count * 8
        lane.backlog = Backlog.unpacked(
            tally, record[at : at + size], record[at + size : at + 2 * size]
        )
    return lane


def parked_in(record: bytes) -> int:
    """How many parked tasks a record holds."""
    return int(_HEADER.unpack_from(record)[4])


class PackedLanes:
    """The packed key lanes of one subscription in one partition, by key digest.

    Records live in buckets (``bytes``, chosen by the digest's first four bytes, which are
    uniform), each a run of entries: so a hundred thousand lanes are a few thousand buffers of
    a few kilobytes, not two hundred thousand small objects.

    The table grows by linear hashing: past ``_PER_BUCKET`` records a bucket on average, a
    ``put`` splits one bucket (the next in turn) into itself and a new one at the end, by one
    more bit of the digest. So no ``put`` moves more than one bucket's records (doubling the
    table at once re-put every lane: 165 ms on the event loop at 100,000 lanes). Bucket
    ``h mod 2^level`` holds a digest ``h``, or ``h mod 2^(level+1)`` once that one is split
    in this round (below ``_split``)."""

    __slots__ = ("_base", "_buckets", "_count", "_split")

    def __init__(self) -> None:
        self._buckets: list[bytes] = [b""] * _FIRST_BUCKETS
        self._base = _FIRST_BUCKETS  # the buckets at the start of this round (a power of 2)
        self._split = 0  # the next bucket to split; those below it are split this round
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def pop(self, digest: bytes) -> bytes | None:
        """Take a lane's record out (None: not packed)."""
        i = self._index(digest)
        bucket = self._buckets[i]
        for at, found, start, end in _walk(bucket):
            if found == digest:
                self._buckets[i] = bucket[:at] + bucket[end:]
                self._count -= 1
                return bucket[start:end]
        return None

    def put(self, digest: bytes, record: bytes) -> None:
        """Keep a lane's record (the lane must not be packed already)."""
        i = self._index(digest)
        self._buckets[i] += _ENTRY.pack(digest, len(record)) + record
        self._count += 1
        if self._count > _PER_BUCKET * len(self._buckets):
            self._split_next()

    def records(self) -> list[bytes]:
        return [bucket[start:end] for bucket in self._buckets for _, _, start, end in _walk(bucket)]

    def _index(self, digest: bytes) -> int:
        h = int.from_bytes(digest[:4], "little")
        i = h & (self._base - 1)
        return h & (2 * self._base - 1) if i < self._split else i

    def _split_next(self) -> None:
        """Split bucket ``_split``: the entries whose next digest bit is set move to a new
        bucket at the end (its index is ``_split + _base``)."""
        bucket, bit = self._buckets[self._split], self._base
        stay: list[bytes] = []
        move: list[bytes] = []
        for at, digest, _, end in _walk(bucket):
            (move if int.from_bytes(digest[:4], "little") & bit else stay).append(bucket[at:end])
        self._buckets[self._split] = b"".join(stay)
        self._buckets.append(b"".join(move))
        self._split += 1
        if self._split == self._base:  # every bucket of the round split: the next round
            self._base *= 2
            self._split = 0


def _walk(bucket: bytes) -> Iterator[tuple[int, bytes, int, int]]:
    """Each entry of a bucket: where it starts, its digest, where its record starts and ends."""
    at = 0
    while at < len(bucket):
        digest, size = _ENTRY.unpack_from(bucket, at)
        start = at + _ENTRY.size
        yield at, digest, start, start + size
        at = start + size
