# The worker and exporter image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY demandmon demandmon
COPY streams streams
COPY agents agents
COPY schemas schemas
COPY deploy deploy
RUN pip install --no-cache-dir .
# A dedicated unprivileged user with a fixed uid (volume ownership survives rebuilds), and
# the worker's data folder it owns. A named volume mounted there starts with this owner.
RUN groupadd --system --gid 10001 demandmon \
    && useradd --system --uid 10001 --gid demandmon --home-dir /var/lib/demandmon \
        --no-create-home --shell /usr/sbin/nologin demandmon \
    && install -d -o demandmon -g demandmon -m 0750 /var/lib/demandmon
ENV DEMANDMON_WORKER_DATA_DIR=/var/lib/demandmon
# Numeric, so that a runtime can check it is not root (e.g. Kubernetes runAsNonRoot).
USER 10001:10001
ENTRYPOINT ["demandmon"]
