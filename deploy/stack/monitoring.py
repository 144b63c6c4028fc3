"""Prometheus and Alertmanager for the local stack: their configuration (plain, or the
secure shape from deploy/stack/secure.py), start-up, and a live reload of Prometheus."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from deploy.stack import secure
from deploy.stack.layout import StackLayout, StackState, marker
from deploy.stack.procs import StackError, alive, spawn
from deploy.stack.web import request

REPO_DEPLOY = Path(__file__).resolve().parent.parent
RULES_DIR = REPO_DEPLOY / "prometheus" / "rules"
ALERTMANAGER_TEMPLATE = REPO_DEPLOY / "alertmanager" / "alertmanager.yml.tmpl"
RETENTION = "3650d"  # by time; RETENTION_SIZE bounds the disk
RETENTION_SIZE = "4GB"


def prometheus_config(state: StackState) -> str:
    interval = state.scrape_interval
    rules = state.rules_dir or str(RULES_DIR)
    if state.secure:
        return secure.prometheus_config(state, rules)
    p = state.ports
    return f"""\
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
rule_files:
  - {rules}/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{p["alertmanager"]}"]
scrape_configs:
  - job_name: demandmon-exporter
    static_configs:
      - targets: ["127.0.0.1:{p["exporter"]}"]
  - job_name: demandmon-worker
    static_configs:
      - targets: ["127.0.0.1:{p["worker"]}"]
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{p["prometheus"]}"]
"""


RELOAD_TIMEOUT_S = 15.0
RELOADED = "prometheus_config_last_reload_success_timestamp_seconds"
RELOAD_OK = "prometheus_config_last_reload_successful"


def _reload_gauges(state: StackState) -> tuple[float, float]:
    """(time of the last successful reload, 1 if the last reload succeeded) from the
    secure Prometheus's own /metrics."""
    _, text = request(
        f"https://127.0.0.1:{state.ports['prometheus']}/metrics",
        ca_file=str(state.secrets().ca_cert),
        auth=secure.web_auth(state),
        timeout_s=5,
    )
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (RELOADED, RELOAD_OK):
                values[sample.name] = sample.value
    return values.get(RELOADED, 0.0), values.get(RELOAD_OK, 0.0)


def _reload_by_signal(layout: StackLayout, state: StackState) -> None:
    """A secure Prometheus has no lifecycle API: SIGHUP its process (only if the pid is
    still this stack's Prometheus), then wait until it reports the reload."""
    log = layout.log("prometheus")
    pid = state.pids.get("prometheus")
    if pid is None or not alive(pid, marker("prometheus", layout, state)):
        raise StackError(f"prometheus: not running, nothing to reload (log: {log})")
    try:
        before, ok_before = _reload_gauges(state)
    except (OSError, urllib.error.HTTPError, ValueError) as exc:
        raise StackError(f"prometheus: no answer before the reload (log: {log})") from exc
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            reloaded, ok = _reload_gauges(state)
        except (OSError, urllib.error.HTTPError, ValueError):
            continue
        if reloaded > before:
            return
        if ok_before and not ok:  # this reload failed (the config is kept as it was)
            raise StackError(f"prometheus: reload failed (log: {log})")
    raise StackError(f"prometheus: no reload within {RELOAD_TIMEOUT_S:.0f} s (log: {log})")


def reload_prometheus(layout: StackLayout, state: StackState) -> None:
    """Rewrite the configuration (e.g. after ``rules_dir`` changed) and reload it live:
    through /-/reload on a plain stack, by SIGHUP on a secure one (no lifecycle API)."""
    layout.conf("prometheus.yml").write_text(prometheus_config(state))
    layout.save(state)
    if state.secure:
        _reload_by_signal(layout, state)
        return
    url = f"http://127.0.0.1:{state.ports['prometheus']}/-/reload"
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        if int(response.status) != 200:
            raise StackError(f"prometheus: reload failed (log: {layout.log('prometheus')})")


def start_prometheus(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    conf = layout.conf("prometheus.yml")
    conf.write_text(prometheus_config(state))
    argv = [
        "prometheus",
        f"--config.file={conf}",
        f"--storage.tsdb.path={layout.data('prometheus')}",
        f"--web.listen-address=127.0.0.1:{state.ports['prometheus']}",
        # A secure stack: TLS and basic auth, and no lifecycle API (reload by SIGHUP).
        *(
            [f"--web.config.file={state.secrets().prometheus_web_config}"]
            if state.secure
            else ["--web.enable-lifecycle"]
        ),
        # Backfilled history (demandmon backfill) lives only within retention, counted
        # back from the newest block: ten years keep any backfilled November for the
        # wall's `offset 52w` row and for comparing years; size bounds the disk instead
        # (docs/runbook.md, "Backfilling last year").
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--storage.tsdb.retention.size={RETENTION_SIZE}",
    ]
    return spawn(argv, layout.log("prometheus"), layout.dir)


def alertmanager_config(state: StackState) -> str:
    rendered = _alertmanager_rendered(state)
    return secure.alertmanager_config(state, rendered) if state.secure else rendered


def _alertmanager_rendered(state: StackState) -> str:
    if ALERTMANAGER_TEMPLATE.exists():
        return ALERTMANAGER_TEMPLATE.read_text().replace("__WEBHOOK_URL__", state.webhook_url)
    return f"""\
route:
  receiver: webhook
  group_by: [alertname, source, bcu]
  group_wait: 1s
receivers:
  - name: webhook
    webhook_configs:
      - url: "{state.webhook_url}"
"""


def start_alertmanager(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    conf = layout.conf("alertmanager.yml")
    conf.write_text(alertmanager_config(state))
    argv = [
        "prometheus-alertmanager",
        f"--config.file={conf}",
        f"--storage.path={layout.data('alertmanager')}",
        f"--web.listen-address=127.0.0.1:{state.ports['alertmanager']}",
        "--cluster.listen-address=",
        *([f"--web.config.file={state.secrets().alertmanager_web_config}"] if state.secure else []),
    ]
    return spawn(argv, layout.log("alertmanager"), layout.dir)
