#!/usr/bin/env bash
# The whole test suite: lint, types, import layers, generated-file drift, compose
# validation, then pytest (unit tests, and integration tests against a real local stack
# that the tests start).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== import layers (pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports --no-cache --no-logo
echo "== generated rules, Alertmanager config and dashboards are up to date"
.venv/bin/demandmon config generate --check
echo "== docker-compose.yml"
docker-compose -f docker-compose.yml config -q
echo "== pytest"
.venv/bin/pytest "$@"
