"""Thresholds to a delivered alert, for real: a stream built to breach replays through the
pipeline, the real Prometheus fires the generated rules, and the real Alertmanager
delivers them to a webhook this test listens on. Then every dashboard panel query runs
against the same Prometheus and finds data."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting.rules import rule_files
from demandmon.alerting.thresholds import THRESHOLDS_FILE, parse_thresholds
from demandmon.dashboards.common import panel_queries
from deploy.stack.services import reload_prometheus
from streams.generate import generate_events
from tests.conftest import REPO, Pipeline, Stack
from tests.helpers import event_messages, produce, prom_query, register_source, wait_for

pytestmark = pytest.mark.integration

SOURCE = "breach"
# The per-BCU alerts wait 1-30 min in production before firing; the rules under test are
# generated from the same thresholds with the waits set to zero.
FAST = (
    "rcrp_deployment_rate",
    "igrade_open_list",
    "oldest_open_igrade",
    "igrade_attended_within_target",
    "s136_handover_over_60_minutes",
)


class Webhook:
    def __init__(self, port: int) -> None:
        self.alerts: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.alerts.extend(json.loads(body).get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self) -> set[tuple[str, str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("source", ""), a["labels"].get("bcu", ""))
            for a in self.alerts
            if a.get("status") == "firing"
        }


@pytest.fixture
def fast_rules(stack: Stack, tmp_path: Path) -> Iterator[None]:
    doc = yaml.safe_load((REPO / THRESHOLDS_FILE).read_text())
    for name in FAST:
        doc["alerts"][name]["for"] = "0s"
    thresholds = parse_thresholds(yaml.safe_dump(doc))
    rules = tmp_path / "rules"
    rules.mkdir()
    for path, text in rule_files(thresholds).items():
        (rules / Path(path).name).write_text(text)
    stack.state.rules_dir = str(rules)
    reload_prometheus(stack.layout, stack.state)
    try:
        yield
    finally:
        stack.state.rules_dir = ""
        reload_prometheus(stack.layout, stack.state)


@pytest.fixture
def webhook(stack: Stack) -> Iterator[Webhook]:
    hook = Webhook(stack.webhook_port)
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def _series_present(prom: str, expr: str) -> bool:
    return bool(prom_query(prom, expr))


def test_breach_fires_and_reaches_the_webhook(
    pipeline: Pipeline, fast_rules: None, webhook: Webhook
) -> None:
    events = generate_events("breach", 1)
    handovers = [e for e in events if e["type"] == "s136_handover"]
    first = [e for e in events if e["type"] != "s136_handover"]
    headers = [("demandmon-source", SOURCE.encode())]
    pipeline.run("topics")
    register_source(pipeline.stack.redis_url, pipeline.prefix, SOURCE)
    pipeline.start_worker()
    pipeline.start_exporter()
    prom = pipeline.stack.prometheus
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(first), headers)
    # A live trickle too, so the live panels of the wall have something to show.
    live = generate_events("sample", 2)
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(live))
    before = (
        f'demand_s136_handovers_over_60_minutes{{source="{SOURCE}",bcu="SE",window="all"}} == 0'
    )
    wait_for(lambda: _series_present(prom, before), bool, 90, "Prometheus to see no breach yet")
    # Handovers arrive later, as in a live feed: one waited 95 minutes.
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(handovers), headers)

    expected = {
        ("DemandRcrpDeploymentRateHigh", SOURCE, "SE"),
        ("DemandS136HandoverOver60Minutes", SOURCE, "SE"),
    }
    wait_for(webhook.firing, lambda got: expected <= got, 180, "alerts at the webhook")
    # Only the breached thresholds fire for this source.
    firing = {
        (a["labels"]["alertname"], a["labels"].get("bcu", ""))
        for a in prom_query(prom, f'ALERTS{{alertstate="firing",source="{SOURCE}"}}')
        for a in [{"labels": a["metric"]}]
    }
    assert firing == {(name, bcu) for name, _, bcu in expected}
    delivered = [a for a in webhook.alerts if a["labels"]["alertname"] in {e[0] for e in expected}]
    for alert in delivered:
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"])

    # Every panel query of every dashboard finds data in the real Prometheus.
    variables = {"source": SOURCE, "compare_source": SOURCE, "bcu": "SE"}
    empty = []
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        for expr in panel_queries(json.loads(path.read_text()), variables):
            if not prom_query(prom, expr):
                empty.append(f"{path.name}: {expr}")
    assert not empty, "\n".join(empty)


def _post_alerts(alertmanager: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _alertmanager_alerts(alertmanager: str) -> list[dict[str, Any]]:
    url = f"{alertmanager}/api/v2/alerts?inhibited=true&silenced=false&active=true"
    with urllib.request.urlopen(url, timeout=10) as response:
        result: list[dict[str, Any]] = json.loads(response.read())
    return result


def test_bcu_alerts_are_inhibited_while_the_feed_is_stale(stack: Stack, webhook: Webhook) -> None:
    """The real Alertmanager with the generated configuration: while the live feed is
    stale, per-BCU alerts of that source are held back; other sources' are not."""
    common = {"severity": "warning", "alertname": "DemandIGradeOpenListHigh", "bcu": "NE"}
    _post_alerts(
        stack.alertmanager,
        [
            {
                "labels": {
                    "alertname": "DemandLiveFeedStale",
                    "severity": "critical",
                    "source": "live-inhibit",
                }
            },
            {"labels": {**common, "source": "live-inhibit"}},
            {"labels": {**common, "source": "other-inhibit"}},
        ],
    )

    def states() -> dict[tuple[str, str], str]:
        return {
            (a["labels"]["alertname"], a["labels"]["source"]): a["status"]["state"]
            for a in _alertmanager_alerts(stack.alertmanager)
            if a["labels"].get("source", "").endswith("-inhibit")
        }

    wait_for(states, lambda s: len(s) == 3, 30, "Alertmanager to hold the three alerts")
    assert states() == {
        ("DemandLiveFeedStale", "live-inhibit"): "active",
        ("DemandIGradeOpenListHigh", "live-inhibit"): "suppressed",
        ("DemandIGradeOpenListHigh", "other-inhibit"): "active",
    }
    wait_for(
        webhook.firing,
        lambda got: (
            ("DemandIGradeOpenListHigh", "other-inhibit", "NE") in got
            and ("DemandLiveFeedStale", "live-inhibit", "") in got
        ),
        90,
        "the uninhibited alerts at the webhook",
    )
    assert ("DemandIGradeOpenListHigh", "live-inhibit", "NE") not in webhook.firing()
