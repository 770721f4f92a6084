"""``webhook-worker api``: the management API (``/v1``), over the same topics as the worker.

What belongs here: the HTTP surface only — routes, request and response models, auth,
problem+json errors, pagination, idempotency and rate limits, and the process that serves
them. The rules about subscriptions live in :mod:`worker.subscriptions.service`, the
delivery log in :mod:`worker.deliverylog`, tokens in :mod:`worker.tokens`.
"""
