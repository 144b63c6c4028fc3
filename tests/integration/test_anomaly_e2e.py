"""Expected demand to a delivered anomaly alert, for real: the `surge` stream (four weeks
of steady demand, then NE at about four times its usual demand) replays through Kafka,
the worker, Redis and the exporter; the real Prometheus evaluates the generated
DemandAboveExpected rule and the real Alertmanager delivers it to a webhook this test
listens on. It fires for NE and for no other BCU, and nothing else fires for the source.

A plain recount of the events by the metric contract's formula (tests/expected_recount.py)
shows NE really is above its band, so a broken generator cannot pass for a working alert,
and the exporter's figures for the alert's measure are compared with the same recount."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from demandmon.alerting import names as n
from demandmon.alerting.alertmanager import render_alertmanager
from demandmon.alerting.rules import rule_files
from demandmon.alerting.thresholds import THRESHOLDS_FILE, parse_thresholds
from streams.generate import generate_events
from streams.generate.profiles import SURGE_BCU
from tests.alerting_stack import Webhook, alertmanager_routing, listening, rules_loaded
from tests.conftest import REPO, Pipeline, Stack
from tests.expected_recount import LastHour, last_hour_by_bcu
from tests.helpers import (
    SampleKey,
    event_messages,
    metric,
    produce,
    prom_query,
    register_source,
    scrape,
    wait_for,
)

pytestmark = pytest.mark.integration

SOURCE = "surge"
# Every per-BCU alert at once, so "nothing else fires" means something within the test's
# time; the anomaly waits a little, to show `for` holding against the real Prometheus.
PER_BCU_SETTINGS = (
    "rcrp_deployment_rate",
    "igrade_open_list",
    "oldest_open_igrade",
    "igrade_attended_within_target",
    "sgrade_attended_within_target",
    "s136_handover_over_60_minutes",
)
ANOMALY_FOR = "10s"


@pytest.fixture
def surge_rules(stack: Stack, tmp_path: Path) -> Iterator[None]:
    doc = yaml.safe_load((REPO / THRESHOLDS_FILE).read_text())
    for name in PER_BCU_SETTINGS:
        doc["alerts"][name]["for"] = "0s"
    doc["alerts"]["above_expected"]["for"] = ANOMALY_FOR
    doc["sources"]["alerts"] = f"live|{SOURCE}"  # a replay alerts only when opted in
    with rules_loaded(stack, tmp_path / "rules", rule_files(parse_thresholds(yaml.safe_dump(doc)))):
        yield


@pytest.fixture
def webhook(stack: Stack) -> Iterator[Webhook]:
    """The webhook the stack's Alertmanager posts to, with the generated routing but
    groups sent after 1 s instead of a warning's 30 s."""
    doc = yaml.safe_load(render_alertmanager(stack.state.webhook_url))
    with listening(stack) as hook, alertmanager_routing(stack, doc):
        yield hook


def _figures(last: LastHour) -> dict[str, float]:
    return {
        "weeks": last.weeks,
        "recent": last.recent,
        "expected": last.expected,
        "upper": last.upper,
        "score": last.score,
    }


def _exported(samples: dict[SampleKey, float], bcu: str) -> dict[str, float]:
    """The exporter's figures for every incident of ``bcu`` in the last 60 minutes."""

    def get(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"source": SOURCE, **labels}.items())))
        assert key in samples, f"{key} missing"
        return samples[key]

    mine = {"bcu": bcu, "measure": "incidents"}
    return {
        "weeks": get(n.EXPECTED_BASIS),
        "recent": get(n.RECENT_INCIDENTS, **mine),
        "expected": get(n.EXPECTED_INCIDENTS, period="60m", **mine),
        "upper": get(n.EXPECTED_UPPER, period="60m", **mine),
        "score": get(n.EXPECTED_SCORE, **mine),
    }


def test_surge_fires_the_anomaly_alert_for_the_surging_bcu_only(
    pipeline: Pipeline, surge_rules: None, webhook: Webhook
) -> None:
    events = generate_events("surge", 1)
    recount = last_hour_by_bcu(events)
    ne = recount[SURGE_BCU]
    # The stream itself, by the contract's formula: NE above its band, on 4 weeks, at
    # least the alert's 5 incidents; every other BCU inside its band.
    assert ne.weeks == 4 and ne.recent > ne.upper and ne.score > 2 and ne.recent >= 5
    assert all(f.score <= 2 for bcu, f in recount.items() if bcu != SURGE_BCU)

    pipeline.run("topics")
    register_source(pipeline.stack.redis_url, pipeline.prefix, SOURCE)
    pipeline.start_worker()
    pipeline.start_exporter()
    produce(
        pipeline.stack.kafka,
        pipeline.topic,
        event_messages(events),
        [("demandmon-source", SOURCE.encode())],
    )
    url = pipeline.metrics_url
    wait_for(
        lambda: metric(url, "demand_events_applied_total", source=SOURCE),
        lambda applied: applied == len(events),
        120,
        "every event applied",
    )

    # The exporter's figures for the alert's measure agree with the recount.
    samples = scrape(url)
    for bcu, want in recount.items():
        assert _exported(samples, bcu) == pytest.approx(_figures(want), abs=1e-6), bcu

    firing = (n.ALERT_ABOVE_EXPECTED, SOURCE, SURGE_BCU)
    wait_for(webhook.firing, lambda got: firing in got, 120, "the anomaly alert at the webhook")
    alert = [
        a
        for a in webhook.alerts
        if a["status"] == "firing"
        and a["labels"]["alertname"] == n.ALERT_ABOVE_EXPECTED
        and a["labels"].get("source") == SOURCE
    ][-1]
    assert alert["labels"]["severity"] == "warning"
    description = alert["annotations"]["description"]
    assert description.startswith(
        f"{SURGE_BCU} ({SOURCE}): {ne.recent:.1f} incidents in the last hour against "
        f"{ne.expected:.1f} expected for these hours of the week (band up to {ne.upper:.1f}): "
        f"{ne.score:.1f} sigmas above expected"
    ), description
    assert alert["annotations"]["runbook_url"].endswith("#demandaboveexpected")

    # Every alert the rules hold for this source, pending ones included: the anomaly for
    # NE, nothing else (another BCU, or another per-BCU alert tripped by the stream).
    def held() -> set[tuple[str, str, str]]:
        return {
            (a["metric"]["alertname"], a["metric"].get("bcu", ""), a["metric"]["alertstate"])
            for a in prom_query(pipeline.stack.prometheus, f'ALERTS{{source="{SOURCE}"}}')
        }

    assert held() == {(n.ALERT_ABOVE_EXPECTED, SURGE_BCU, "firing")}
    # Nor did the anomaly reach the webhook for any other BCU while the stream went in.
    anomalies = {
        (source, bcu) for name, source, bcu in webhook.firing() if name == n.ALERT_ABOVE_EXPECTED
    }
    assert anomalies == {(SOURCE, SURGE_BCU)}
