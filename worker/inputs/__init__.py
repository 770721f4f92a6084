"""Input formats: the records producers already write, turned into our envelope.

Kafka Connect keeps converters (bytes to a typed value) apart from transforms (one value to
another); so does this package. A record is first decoded (:mod:`.converters`: JSON, our Avro,
or a Schema Registry framed value through :mod:`.registry`), then mapped by its topic's format
(:mod:`.formats`: ``envelope``, ``debezium``, ``cloudevents``, ``custom``) to the envelope the
router validates and routes. :mod:`.spec` reads the mapping file (``WEBHOOK_INPUTS``);
:class:`.decoder.InputDecoder` is the one entry point the router calls.
"""

from worker.inputs.decoder import InputDecoder, PartitionHeldError
from worker.inputs.spec import InputSpec, load_inputs

__all__ = ["InputDecoder", "InputSpec", "PartitionHeldError", "load_inputs"]
