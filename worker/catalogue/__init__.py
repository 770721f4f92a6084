"""The event-type catalogue: the events a deployment's producers emit, from the JSON file named
by ``WEBHOOK_EVENT_TYPES``.

What belongs here: reading and validating that file (``parse``), the immutable catalogue and
the questions asked of it (``catalogue``: which patterns match no type, what "Select All" of a
category stores, a type's example as a fresh test event), and the example catalogue shipped
with the package (``example.json``, which ``dev`` uses). Matching itself is the subscriptions'
rule (``worker.subscriptions.patterns``); the router never consults the catalogue.
"""

from worker.catalogue.catalogue import Catalogue, example_catalogue_path, load_catalogue
from worker.catalogue.model import CatalogueError, EventType

__all__ = [
    "Catalogue",
    "CatalogueError",
    "EventType",
    "example_catalogue_path",
    "load_catalogue",
]
