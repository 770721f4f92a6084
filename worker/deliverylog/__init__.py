"""The delivery log: ``api``'s index of attempts, deliveries and dead letters.

The topics stay the source of truth. A follower (:mod:`.follower`) reads ``attempts``,
``dlq`` and ``redrives`` into a SQLite file (:mod:`.store`, its tables in :mod:`.schema`,
rows cut by :mod:`.rows`) that it can always rebuild from them, so that the management API's
log routes answer from an index (:mod:`.queries`, paginated by opaque cursors from
:mod:`.cursor`) instead of scanning a topic.
"""

from worker.deliverylog.cursor import BadCursor
from worker.deliverylog.follower import LogError, LogFollower, open_log
from worker.deliverylog.queries import DeliveryLog, TaskRow
from worker.deliverylog.store import Store, index_path

__all__ = [
    "BadCursor",
    "DeliveryLog",
    "LogError",
    "LogFollower",
    "Store",
    "TaskRow",
    "index_path",
    "open_log",
]
