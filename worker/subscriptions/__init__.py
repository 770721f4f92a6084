"""Subscriptions: the record, its rules and the service that changes it (used by the CLI and
the API alike), the table that follows the compacted topic, matching of events to
subscriptions, secrets at rest, the challenge and test-fire."""
