"""The exporter's /metrics, fed by the real pipeline (replay -> Kafka -> worker -> Redis),
passes ``promtool check metrics`` with no warning, and its s136 and oldest I-grade
figures equal the oracle's."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from demandmon.exporter.families import BASELINE_METRICS
from streams.generate import generate_stream
from tests.conftest import Pipeline
from tests.helpers import SampleKey, scrape, wait_for
from tests.oracle import Oracle, epoch, total

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not found"),
]

SOURCE = "promtool"
NOT_COMPARED = {
    "demand_stream_window_end_timestamp_seconds",
    "demand_stream_last_processed_timestamp_seconds",
    *BASELINE_METRICS,  # not recounted by the oracle: tests/integration/test_baseline_e2e.py
}
OLD_NAMES = (
    "demand_officer_hours",
    "demand_s136_officer_hours",
    "demand_s136_handovers_over_60_minutes",
    "demand_s136_handover_wait_seconds_sum",
    "demand_oldest_open_igrade_age_seconds",
)


def _source_samples(samples: dict[SampleKey, float]) -> dict[SampleKey, float]:
    return {
        k: round(v, 6)
        for k, v in samples.items()
        if ("source", SOURCE) in k[1] and v != 0 and k[0] not in NOT_COMPARED
    }


def _processed(pipeline: Pipeline) -> float:
    s = scrape(pipeline.metrics_url)
    src = (("source", SOURCE),)
    return s.get(("demand_events_applied_total", src), 0) + s.get(
        ("demand_events_duplicate_total", src), 0
    )


def test_a_real_scrape_passes_promtool_and_equals_the_oracle(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # The sample profile (seed 7): s136 detentions, one with a long handover wait, an open
    # I-grade incident that was attended; shuffled with repeats, so the order is not the
    # file's. Plus an open I-grade incident nobody attended, with a unit assigned after
    # its detention, before its creation arrives.
    events, _ = generate_stream("sample", seed=7, duplicates=0.05, shuffle=True)
    first = min(events, key=lambda e: epoch(str(e["occurred_at"])))["occurred_at"]
    extra = {"schema": "cad.incident-event/1", "incident_id": "PT/1", "occurred_at": first}
    events[:0] = [
        {**extra, "event_id": "pt-1", "type": "s136_detained"},
        {**extra, "event_id": "pt-2", "type": "resource_assigned"}
        | {"resource_id": "NE1", "officers": 2},
    ]
    events.append(
        {**extra, "event_id": "pt-3", "type": "created", "bcu": "NE", "grade": "I"}
        | {"opening_code": "MENTAL_HEALTH", "caller": "public"}
    )
    path = tmp_path / "breach.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    oracle = Oracle()
    for e in events:
        oracle.feed(e, SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}
    # The figures this test is about are there to compare.
    assert total(expected, "demand_s136_officer_time_seconds", window="all") > 0
    assert total(expected, "demand_s136_detention_seconds", window="all") > 0
    assert total(expected, "demand_s136_last_long_wait_handover_timestamp_seconds") > 0
    assert total(expected, "demand_oldest_unattended_igrade_age_seconds", bcu="NE") > 0
    assert total(expected, "demand_oldest_attended_open_igrade_age_seconds") > 0

    pipeline.run("topics")
    pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    pipeline.start_worker()
    pipeline.start_exporter()
    wait_for(lambda: _processed(pipeline), lambda n: n >= len(events), 180, "all events")

    with urllib.request.urlopen(pipeline.metrics_url, timeout=30) as response:
        body = response.read()
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
    )
    warnings = (check.stdout + check.stderr).decode()
    assert (check.returncode, warnings) == (0, "")
    text = body.decode()
    for old in OLD_NAMES:
        assert f"{old}{{" not in text and f"# HELP {old} " not in text, old

    assert _source_samples(scrape(pipeline.metrics_url)) == expected
