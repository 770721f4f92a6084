"""Key lanes that only wait, packed into one ``bytes`` record each.

A busy key-scoped subscription can leave a hundred thousand lanes that hold nothing in memory
but their state: a head waiting in a delay topic (its marker durable) and the index of the
tasks parked behind it (every write acknowledged, no body held). As a :class:`Lane` with its
:class:`~worker.dispatch.backlog.Backlog`, two arrays and a :class:`HeadRef`, such a lane is
nine small objects, about 860 bytes; and small objects that live long, allocated among a
flood's short-lived ones, keep the heap pages around them from being returned. Packed, it is
one record of about 60 bytes plus 16 per parked task. The lane is unpacked when it is touched
(a fresh task parks behind it, its retry comes due, its turn comes) and packed again once it
only waits again (:meth:`worker.dispatch.partitions.Partitions.settle`); its parked tasks stay
counted in the tally throughout.
"""

from __future__ import annotations

import struct

from worker.dispatch.backlog import Backlog, Tally
from worker.dispatch.ordering import HeadRef, Lane

__all__ = ["MAX_PACKED_TASKS", "pack", "packable", "parked_in", "unpack"]

# max_seq, head seq, head hop, flags, parked tasks, delivery id length; then the delivery id
# (UTF-8), the parked seqs and their offsets (8 bytes each).
_HEADER = struct.Struct("<qqiBII")
_HAS_HEAD = 1
_HEAD_DURABLE = 2
# A lane with more parked tasks stays a Lane: packing copies its index on every touch.
MAX_PACKED_TASKS = 256


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
