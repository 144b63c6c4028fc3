#!/usr/bin/env bash
# The main job on one machine: install what is missing, start Kafka, Redis, Prometheus and
# Alertmanager as local processes, start the worker and the exporter, replay a month of
# synthetic demand for November 2022 and November 2023, and print live figures and the
# year-on-year RCRP comparison. Stop everything with: bash scripts/demo.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/demandmon demo "$@"
