"""The dispatcher: delivery tasks from ``deliveries`` and the delay topics to signed POSTs,
with per-subscription order, retries, dead letters, endpoint health, limits and the attempt
records. What leaves the process (the HTTP client, signing, the destination policy) is in
:mod:`worker.outbound`."""
