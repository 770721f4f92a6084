"""Bytes on topics <-> records: the input events (JSON or Avro, validated) and the worker's
own records (Avro single-object encoding against ``schemas/``, every released schema version
kept readable)."""
