# syntax=docker/dockerfile:1
# The gateway's image: `gateway db upgrade`, then `gateway serve` on 0.0.0.0:8000, as a non-root user.
# Every setting comes from the environment at run time (see compose.yaml); no secret is baked in, and
# GATEWAY_ENV=production refuses to start without a GATEWAY_JWT_SECRET of your own.
# tests/test_deployment_files.py keeps this file consistent with gateway/settings.py and compose.yaml.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY schema/ schema/
COPY resolvers/ resolvers/
COPY integrations/ integrations/
RUN python -m venv /opt/gateway && /opt/gateway/bin/pip install .

FROM python:3.11-slim-bookworm
# pg_dump and pg_restore for `gateway db backup` / `gateway db restore` (bookworm's are 15, as compose's server).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --create-home --shell /usr/sbin/nologin gateway
# The code stays root's (read-only to the server); /app, the working directory, is the server's own.
COPY --from=build /opt/gateway /opt/gateway
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_ENV=production \
    GATEWAY_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['GATEWAY_PORT'] + '/healthz', timeout=2)"]
# `exec`: uvicorn becomes PID 1 and gets SIGTERM directly (graceful shutdown).
CMD ["sh", "-c", "gateway db upgrade && exec gateway serve --host 0.0.0.0"]
