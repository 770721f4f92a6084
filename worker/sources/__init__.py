"""Incoming webhooks: sources, and requests that land in Kafka.

A **source** is a URL (``/in/{source_id}`` on the API port) that an external service POSTs
to, with the topic its requests land in and how they are verified. Here belong the source
record and its Avro form (``model``), the table every API replica follows (``table``), the
rules shared by the CLI and the API (``service``), signature checks (``verify``), the durable
webhook-id ledger that makes a repeat land once (``dedupe``), and the request handler that
ties them together (``intake``). HTTP routing and authentication stay in :mod:`worker.api`.
"""
