"""Kafka plumbing shared by every stage: client construction, topic names and ``topics
ensure``, producing with back-pressure and acknowledgement, offsets that follow outcomes,
compacted-topic followers, scans, lag, and the embedded development broker."""
