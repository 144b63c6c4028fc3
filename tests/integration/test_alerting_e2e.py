"""Thresholds to a delivered alert, for real: a stream built to breach replays through the
pipeline, the real Prometheus fires the generated rules, and the real Alertmanager
delivers them to a webhook this test listens on and e-mails them to an SMTP server this
test runs (aiosmtpd), which reads each message's subject and body. Then every dashboard
panel query runs against the same Prometheus and finds data, and the open-incident
table's URL answers from the exporter."""

from __future__ import annotations

import email
import email.policy
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from demandmon.alerting.alertmanager import render_alertmanager
from demandmon.alerting.email import email_routing
from demandmon.alerting.rules import rule_files
from demandmon.alerting.thresholds import THRESHOLDS_FILE, parse_thresholds
from demandmon.dashboards import bcu_map
from demandmon.dashboards.common import panel_queries, panels, variable_defaults
from demandmon.dashboards.open_list import COLUMNS, infinity_targets
from demandmon.settings import Settings
from deploy.stack.procs import free_port
from schemas.vocabulary import BCU_CODES
from streams.generate import generate_events
from tests.alerting_stack import Webhook, alertmanager_routing, listening, rules_loaded
from tests.conftest import REPO, Pipeline, Stack
from tests.helpers import event_messages, produce, prom_query, register_source, wait_for

pytestmark = pytest.mark.integration

SOURCE = "breach"
LAST_YEAR = "last-year"
RATE_MAP = "RCRP deployment rate, last 24h, against target"
# The per-BCU alerts wait 1-30 min in production before firing; the rules under test are
# generated from the same thresholds with the waits set to zero.
FAST = (
    "rcrp_deployment_rate",
    "igrade_open_list",
    "oldest_open_igrade",
    "igrade_attended_within_target",
    "s136_handover_over_60_minutes",
)


class Mailbox:
    """An SMTP server on a free local port (aiosmtpd, in a thread of this process) that
    keeps every message it is given: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        box = self

        class Handler:
            async def handle_DATA(self, server: SMTP, session: Session, env: Envelope) -> str:
                raw = env.original_content or b""
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(parsed, email.message.EmailMessage)
                box.messages.append((list(env.rcpt_tos), parsed))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def received(self) -> dict[str, tuple[list[str], str]]:
        """Subject -> (recipients, plain-text body) of every message so far."""
        out = {}
        for rcpts, message in list(self.messages):
            part = message.get_body(preferencelist=("plain",))
            body = part.get_content() if part is not None else ""
            out[str(message["Subject"])] = (rcpts, str(body))
        return out


@pytest.fixture
def fast_rules(stack: Stack, tmp_path: Path) -> Iterator[None]:
    doc = yaml.safe_load((REPO / THRESHOLDS_FILE).read_text())
    for name in FAST:
        doc["alerts"][name]["for"] = "0s"
    # A replay alerts only when the thresholds opt it in; this one does.
    doc["sources"]["alerts"] = f"live|{SOURCE}"
    # The breach's 95-minute handover is 1 h 37 min before the stream's last event.
    doc["defaults"]["s136_handover_over_60_minutes"]["within_seconds"] = 7200
    thresholds = parse_thresholds(yaml.safe_dump(doc))
    # The centres the dashboards' maps join on, too.
    files = {**rule_files(thresholds), **bcu_map.rule_files()}
    with rules_loaded(stack, tmp_path / "rules", files):
        yield


@pytest.fixture
def webhook(stack: Stack) -> Iterator[Webhook]:
    with listening(stack) as hook:
        yield hook


GENERAL = "duty-inspector@force.example"
SE_TEAM = "se-inspectors@force.example"


@pytest.fixture
def mailbox(stack: Stack) -> Iterator[Mailbox]:
    """The stack's Alertmanager, for this test, with the e-mail receivers the settings
    give (SMTP to the mailbox, general and SE recipients), groups sent after 1 s."""
    box = Mailbox()
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=box.port,
        smtp_from="demandmon@force.example",
        smtp_require_tls=False,
        alert_email_to=GENERAL,
        alert_email_bcu_to=f"SE={SE_TEAM}",
    )
    doc = yaml.safe_load(
        render_alertmanager(stack.state.webhook_url, email=email_routing(settings))
    )
    with alertmanager_routing(stack, doc):
        try:
            yield box
        finally:
            box.controller.stop()


def _backfill_last_year(pipeline: Pipeline, events: list[dict[str, Any]]) -> None:
    """The same stream as last year's, for the wall's comparison row (offset 52w):
    backfilled into the stack's Prometheus so that 52 weeks ago falls mid-stream."""
    times = [
        datetime.fromisoformat(str(e["occurred_at"]).replace("Z", "+00:00")).timestamp()
        for e in events
    ]
    middle = (min(times) + max(times)) / 2
    shift = int(time.time() - 52 * 7 * 86400 - middle)
    path = pipeline.workdir / "last-year.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    pipeline.run("backfill", str(path), "--source", LAST_YEAR, f"--shift={shift}s", "--into-stack")


def test_breach_fires_and_reaches_the_webhook_and_email(
    pipeline: Pipeline, fast_rules: None, webhook: Webhook, mailbox: Mailbox
) -> None:
    # Every event at once, handovers included, as fast as a full-speed replay: the s136
    # alert needs no scrape to have seen a lower value first.
    events = generate_events("breach", 1)
    headers = [("demandmon-source", SOURCE.encode())]
    pipeline.run("topics")
    register_source(pipeline.stack.redis_url, pipeline.prefix, SOURCE)
    pipeline.start_worker()
    pipeline.start_exporter()
    prom = pipeline.stack.prometheus
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(events), headers)
    _backfill_last_year(pipeline, events)
    # A live trickle too, so the live panels of the wall have something to show.
    live = generate_events("sample", 2)
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(live))

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

    # The same alerts by e-mail: one message per alert, BCU and source, to the general
    # recipient and SE's own, saying what, where and the runbook.
    subjects = {
        f"[demandmon FIRING] warning: {name} in {bcu} ({source})": name
        for name, source, bcu in expected
    }
    mail = wait_for(
        mailbox.received, lambda got: set(subjects) <= set(got), 60, "the alert e-mails"
    )
    descriptions = {a["labels"]["alertname"]: a["annotations"] for a in delivered}
    for subject, name in subjects.items():
        rcpts, body = mail[subject]
        assert sorted(rcpts) == sorted([GENERAL, SE_TEAM]), subject
        assert f"FIRING: {descriptions[name]['summary']}" in body
        assert descriptions[name]["description"] in body
        assert f"Runbook: {descriptions[name]['runbook_url']}" in body
        assert f"alertname={name}" in body and f"source={SOURCE}" in body
    s136 = mail[next(s for s, name in subjects.items() if "S136" in name)][1]
    assert "waited over 60 minutes at the place of safety" in s136

    # Every panel query of every dashboard finds data in the real Prometheus (polled: the
    # worker publishes partition lag on its own timer).
    variables = {"source": SOURCE, "compare_source": LAST_YEAR, "bcu": "SE"}
    queries = [
        (path.name, expr)
        for path in sorted((REPO / "grafana" / "dashboards").glob("*.json"))
        for expr in panel_queries(json.loads(path.read_text()), variables)
    ]

    def empty() -> list[str]:
        return [f"{name}: {expr}" for name, expr in queries if not prom_query(prom, expr)]

    # Prometheus loads backfilled blocks on its once-a-minute reload.
    wait_for(empty, lambda left: not left, 150, "every panel query to return data")

    # The wall's deployment-rate map: a marker at each of the 12 BCU centres, SE (whose
    # rate alert fired above) marked above its target.
    wall = json.loads((REPO / "grafana/dashboards/control-room-wall.json").read_text())
    [rate_map] = [p for p in panels(wall) if p["title"] == RATE_MAP]
    [expr] = panel_queries({"panels": [rate_map]}, variables)
    markers = {r["metric"]["bcu"]: float(r["value"][1]) for r in prom_query(prom, expr)}
    assert sorted(markers) == sorted(BCU_CODES) and markers["SE"] == 1

    # The open-incident table's query URL, variables filled in, answers from the exporter
    # with the columns the panel shows.
    detail = json.loads((REPO / "grafana/dashboards/bcu-detail.json").read_text())
    [target] = infinity_targets(detail)
    values = {**variable_defaults(detail), "source": "live", "bcu": "SE"}
    params = {p["key"]: p["value"].lstrip("$") for p in target["url_options"]["params"]}
    query = urllib.parse.urlencode({key: values[var] for key, var in params.items()})
    base = pipeline.metrics_url.removesuffix("/metrics")
    with urllib.request.urlopen(f"{base}{target['url']}?{query}", timeout=10) as response:
        rows = json.loads(response.read())
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == set(COLUMNS) and row["bcu"] == "SE"


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
