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
USER nobody
ENTRYPOINT ["demandmon"]
