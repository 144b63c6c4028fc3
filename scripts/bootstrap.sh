#!/usr/bin/env bash
# Install what the monitor needs on a Debian machine, idempotently: the Debian packages
# (Redis, Prometheus, Alertmanager, kcat, a JDK and Maven for the Kafka broker jars,
# docker-compose to validate the compose file), the Python virtualenv, and the Kafka jars.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
for pair in redis-server:redis-server redis-cli:redis-tools prometheus:prometheus \
            promtool:prometheus prometheus-alertmanager:prometheus-alertmanager \
            amtool:prometheus-alertmanager kcat:kcat java:openjdk-17-jre-headless \
            mvn:maven docker-compose:docker-compose python3:python3 git:git; do
  have "${pair%%:*}" || need+=("${pair#*:}")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing Debian packages, install them as root: ${need[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import demandmon' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: creating the Python environment in .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test,dev]' > .venv/install.log 2>&1 \
    || { echo "bootstrap: pip install failed (log: .venv/install.log)" >&2; exit 1; }
  touch .venv/.installed
fi

# The broker jars come from Maven Central once, into ~/.cache/demandmon.
.venv/bin/python -c '
import sys
from pathlib import Path
from deploy.stack.install import ensure_kafka_jars
from deploy.stack.procs import StackError
try:
    ensure_kafka_jars(Path(".stack/install.log"))
except StackError as exc:
    sys.exit(f"bootstrap: {exc}")
'
