"""What operators see: the metrics facades and their shared parts (the only modules that import
prometheus_client), the health and readiness HTTP server, and structured logging."""
