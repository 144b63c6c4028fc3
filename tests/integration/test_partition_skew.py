"""A sparse stream longer than the horizon, all in Kafka before the worker starts: the
worker must not let one partition run so far ahead in event time that the others' events
turn too late. The oracle reads the file in its own (time) order, where nothing is late."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deploy.stack.procs import free_port
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


def _sparse_stream(tmp_path: Path) -> tuple[Path, int, dict[SampleKey, float]]:
    """The sparse stream's file, its length and the oracle's figures (nothing late)."""
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
    return path, len(events), expected


def _taken(pipeline: Pipeline) -> float:
    """Messages of the source the state has taken: applied, duplicate or refused."""
    s = scrape(pipeline.metrics_url)
    src = (("source", SOURCE),)
    return sum(
        s.get((name, src), 0)
        for name in ("demand_events_applied_total", "demand_events_duplicate_total")
    ) + sum(v for k, v in s.items() if k[0] == "demand_events_rejected_total" and src[0] in k[1])


def _exact(pipeline: Pipeline, n: int, expected: dict[SampleKey, float]) -> None:
    wait_for(lambda: _taken(pipeline), lambda t: t >= n, 180, "every event applied or refused")
    got = _source_samples(scrape(pipeline.metrics_url))
    late = {k: v for k, v in got.items() if k[0] == "demand_events_rejected_total"}
    assert late == {}, f"events refused: {late}"
    assert got == expected


def test_a_stream_longer_than_the_horizon_loses_nothing_to_partition_skew(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    path, n, expected = _sparse_stream(tmp_path)
    pipeline.run("topics")
    pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    # The whole stream waits in Kafka before the worker starts: the worst case for skew.
    pipeline.start_worker()
    pipeline.start_exporter()
    _exact(pipeline, n, expected)


def _partitions(port: int) -> set[int]:
    """The partitions a worker applies, as its own /metrics says (empty: not answering)."""
    try:
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    except Exception:
        return set()
    return {
        int(dict(labels)["partition"])
        for name, labels in samples
        if name == "demand_worker_partition_applied_offset"
    }


def _applied(port: int) -> float:
    try:
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    except Exception:
        return 0.0
    return samples.get(("demand_worker_events_applied_total", ()), 0.0)


@pytest.mark.parametrize("fault", ["stopped", "killed"])
def test_two_workers_keep_together_while_one_is_stopped_or_killed(
    pipeline: Pipeline, tmp_path: Path, fault: str
) -> None:
    """Two workers share the partitions while the whole stream arrives, and one is
    ``stopped`` (SIGSTOP: a frozen VM, a long pause) for less than the session timeout,
    or ``killed`` (SIGKILL, not restarted: the other takes its partitions over after the
    session timeout). The other must not run so far ahead in event time that the first
    one's events turn too late when they are applied: partitions held by different
    workers are kept together too."""
    path, n, expected = _sparse_stream(tmp_path)
    partitions = int(pipeline.env["DEMANDMON_PARTITIONS"])
    ports = [free_port(), free_port()]
    pipeline.run("topics")
    workers = [pipeline.start_worker(port) for port in ports]
    pipeline.start_exporter()

    def shared(parts: tuple[set[int], set[int]]) -> bool:
        a, b = parts
        return bool(a) and bool(b) and not a & b and len(a | b) == partitions

    wait_for(lambda: (_partitions(ports[0]), _partitions(ports[1])), shared, 60, "a 2-way split")
    faulty = workers[1]
    faulty.send_signal(signal.SIGSTOP if fault == "stopped" else signal.SIGKILL)
    try:
        since = time.monotonic()
        pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
        # The running worker applies what it may; it is given until it rests a second,
        # within 6 s of the fault (the session timeout is 10 s: no rebalance yet).
        seen, rested = -1.0, time.monotonic()
        while time.monotonic() - since < 6.0 and time.monotonic() - rested < 1.0:
            now = _applied(ports[0])
            if now != seen:
                seen, rested = now, time.monotonic()
            time.sleep(0.1)
    finally:
        if fault == "stopped":
            faulty.send_signal(signal.SIGCONT)
    _exact(pipeline, n, expected)
    if fault == "killed":
        assert _partitions(ports[0]) == set(range(partitions)), "no takeover"
