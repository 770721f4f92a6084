"""The API's routes, one module per resource: subscriptions, their delivery log, and the
deployment's metadata (event types, health, metrics)."""
