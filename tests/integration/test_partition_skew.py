"""A sparse stream longer than the horizon, all in Kafka before the worker starts: the
worker must not let one partition run so far ahead in event time that the others' events
turn too late. The oracle reads the file in its own (time) order, where nothing is late."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.generate import generate_stream
from tests.conftest import Pipeline
from tests.helpers import SampleKey, scrape, wait_for
from tests.oracle import Oracle

pytestmark = pytest.mark.integration

SOURCE = "sparse"
STRETCH = 2.6  # a 28-day month becomes about 73 days, twice the 35-day horizon
BASELINE = ("demand_expected_", "demand_recent_")  # tests/integration/test_baseline_e2e.py
NOT_COMPARED = {
    "demand_stream_window_end_timestamp_seconds",
    "demand_stream_last_processed_timestamp_seconds",
}


def _stretched(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def t(e: dict[str, Any]) -> float:
        return datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")).timestamp()

    t0 = min(t(e) for e in events)
    out = []
    for e in events:
        moved = t0 + (t(e) - t0) * STRETCH
        stamp = datetime.fromtimestamp(int(moved), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({**e, "occurred_at": stamp})
    return out


def _source_samples(samples: dict[SampleKey, float]) -> dict[SampleKey, float]:
    return {
        k: round(v, 6)
        for k, v in samples.items()
        if ("source", SOURCE) in k[1]
        and v != 0
        and k[0] not in NOT_COMPARED
        and not k[0].startswith(BASELINE)
    }


def test_a_stream_longer_than_the_horizon_loses_nothing_to_partition_skew(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    events, _ = generate_stream("categories-2023", seed=5)
    # Every 8th incident: sparse, so one partition's fetch spans weeks of event time.
    created = sorted(str(e["incident_id"]) for e in events if e["type"] == "created")
    kept = set(created[::8])
    events = _stretched([e for e in events if e["incident_id"] in kept])
    path = tmp_path / "sparse.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    oracle = Oracle()
    for e in events:
        oracle.feed(e, SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}
    assert not oracle.rejected(SOURCE), "the oracle itself finds late events: bad stream"

    pipeline.run("topics")
    pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    # The whole stream waits in Kafka before the worker starts: the worst case for skew.
    pipeline.start_worker()
    pipeline.start_exporter()
    src = (("source", SOURCE),)

    def done() -> float:
        s = scrape(pipeline.metrics_url)
        return sum(
            s.get((name, (*src, ("reason", r)) if r else src), 0)
            for name, r in (
                ("demand_events_applied_total", ""),
                ("demand_events_duplicate_total", ""),
            )
        ) + sum(
            v for k, v in s.items() if k[0] == "demand_events_rejected_total" and src[0] in k[1]
        )

    wait_for(done, lambda n: n >= len(events), 180, "every event to be applied or refused")
    got = _source_samples(scrape(pipeline.metrics_url))
    late = {k: v for k, v in got.items() if k[0] == "demand_events_rejected_total"}
    assert late == {}, f"events refused: {late}"
    assert got == expected
