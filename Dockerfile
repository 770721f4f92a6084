# syntax=docker/dockerfile:1
# Build: wheels for the project and its dependencies. Run: a slim image, non-root.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# MALLOC_ARENA_MAX=2: glibc gives each busy thread its own malloc arena; the API's follower
# threads kept ~30 MB more resident that way (bench/api/scenario.py at 1M attempts).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MALLOC_ARENA_MAX=2
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin worker
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels webhook-worker
USER 10001
WORKDIR /home/worker
# /metrics, /healthz and /readyz (WEBHOOK_METRICS_PORT); `api` serves the management API and
# its own /metrics, /healthz and /readyz on WEBHOOK_API_PORT. The HEALTHCHECK below asks the
# worker's port: run `api` with a check of its own port (docker-compose.yml does).
EXPOSE 9400 8088
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEBHOOK_METRICS_PORT', '9400') + '/healthz', timeout=2)"]
ENTRYPOINT ["webhook-worker"]
CMD ["run", "--role", "all"]
