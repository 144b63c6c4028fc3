"""A messy stream through real Kafka, the real worker, Redis and exporter, with a kill -9
of the worker mid-stream and a restart: /metrics and Prometheus equal the oracle."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from demandmon.exporter.families import BASELINE_METRICS
from deploy.stack import control
from deploy.stack.procs import free_port, stop
from deploy.stack.services import marker
from streams.generate import generate_stream
from tests.conftest import Pipeline
from tests.helpers import SampleKey, prom_scalar, scrape, wait_for
from tests.oracle import Oracle, total

pytestmark = pytest.mark.integration

SOURCE = "messy"
NOT_COMPARED = {
    "demand_stream_window_end_timestamp_seconds",
    "demand_stream_last_processed_timestamp_seconds",
    *BASELINE_METRICS,  # not recounted by the oracle: tests/integration/test_baseline_e2e.py
}


def _source_samples(samples: dict[SampleKey, float]) -> dict[SampleKey, float]:
    return {
        k: round(v, 6)
        for k, v in samples.items()
        if ("source", SOURCE) in k[1] and v != 0 and k[0] not in NOT_COMPARED
    }


def _write(events: list[dict[str, Any]], path: Path, bad_lines: int) -> None:
    lines = [json.dumps(e) for e in events]
    # Unreadable lines are reported by the replay and never reach Kafka.
    for i in range(bad_lines):
        lines.insert(100 * (i + 1), "{this is not json")
    path.write_text("\n".join(lines) + "\n")


def _processed(pipeline: Pipeline) -> float:
    s = scrape(pipeline.metrics_url)
    src = (("source", SOURCE),)
    done = s.get(("demand_events_applied_total", src), 0) + s.get(
        ("demand_events_duplicate_total", src), 0
    )
    return done


def test_messy_stream_with_worker_crash_equals_oracle(pipeline: Pipeline, tmp_path: Path) -> None:
    events, _ = generate_stream("categories-2023", seed=11, duplicates=0.05, shuffle=True)
    path = tmp_path / "messy.jsonl"
    _write(events, path, bad_lines=3)
    oracle = Oracle()
    for e in events:
        oracle.feed(e, SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}

    pipeline.run("topics")
    sent = pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    assert f"sent {len(events):,} events" in sent.stdout
    assert "skipped 3 lines (3 not JSON)" in sent.stdout

    worker = pipeline.start_worker()
    pipeline.start_exporter()
    # Crash the worker hard once it is part-way through, then start a new one: the
    # offset guard and event-id dedupe in Redis keep every figure exact.
    wait_for(lambda: _processed(pipeline), lambda n: n > 5000, 120, "the worker to start")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    partial = _processed(pipeline)
    assert partial < len(events), "the crash came too late to test anything"
    # Two workers now share the partitions: same figures, whoever applies what.
    pipeline.start_worker()
    pipeline.start_worker(web_port=free_port())
    wait_for(lambda: _processed(pipeline), lambda n: n >= len(events), 300, "all events")

    got = _source_samples(scrape(pipeline.metrics_url))
    assert got == expected

    # The real Prometheus agrees on the headline figures.
    prom = pipeline.stack.prometheus
    rcrp = 'category!="not_rcrp",source="messy",window="all"'
    want_inc = total(expected, "demand_rcrp_incidents", window="all") - total(
        expected, "demand_rcrp_incidents", window="all", category="not_rcrp"
    )
    wait_for(
        lambda: prom_scalar(prom, f"sum(demand_rcrp_incidents{{{rcrp}}})"),
        lambda v: v == want_inc,
        60,
        "Prometheus to scrape the final figures",
    )
    want_dep = total(expected, "demand_rcrp_deployed_incidents", window="all") - total(
        expected, "demand_rcrp_deployed_incidents", window="all", category="not_rcrp"
    )
    assert prom_scalar(prom, f"sum(demand_rcrp_deployed_incidents{{{rcrp}}})") == want_dep
    want_open = total(expected, "demand_open_incidents")
    assert prom_scalar(prom, 'sum(demand_open_incidents{source="messy"})') == want_open
    dup = prom_scalar(prom, 'demand_events_duplicate_total{source="messy"}')
    assert dup == expected[("demand_events_duplicate_total", (("source", SOURCE),))]


def test_position_lives_in_redis_and_a_full_reread_changes_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A new consumer group (no offsets committed in Kafka) resumes from the position
    Redis holds: nothing is read twice. With that position gone too, the worker re-reads
    every partition from the start, and the offset guard skips all of it."""
    events, _ = generate_stream("sample", seed=5)
    path = tmp_path / "sample.jsonl"
    _write(events, path, bad_lines=0)
    pipeline.run("topics")
    pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    worker = pipeline.start_worker()
    pipeline.start_exporter()
    wait_for(lambda: _processed(pipeline), lambda n: n >= len(events), 120, "all events")
    before = _source_samples(scrape(pipeline.metrics_url))
    worker_metrics = f"http://127.0.0.1:{pipeline.env['DEMANDMON_WORKER_WEB_PORT']}/metrics"
    redelivered = "demand_worker_messages_redelivered_total"
    lag = "demand_worker_partition_lag"

    current = [worker]

    def restart(group_suffix: str) -> dict[SampleKey, float]:
        pipeline.stop(current.pop())
        pipeline.env["DEMANDMON_CONSUMER_GROUP"] += group_suffix
        current.append(pipeline.start_worker())
        return wait_for(
            lambda: scrape(worker_metrics),
            lambda s: (
                sum(1 for k in s if k[0] == lag) == 4
                and all(v == 0 for k, v in s.items() if k[0] == lag)
                and s.get(("demand_worker_messages_total", ()), 0) >= s.get((redelivered, ()), 0)
            ),
            120,
            "the new worker to take all 4 partitions with no lag",
        )

    samples = restart("-again")
    assert samples.get((redelivered, ()), 0) == 0, "a new group re-read applied messages"
    assert samples.get(("demand_worker_messages_total", ()), 0) == 0
    assert _source_samples(scrape(pipeline.metrics_url)) == before

    pipeline.redis().delete(f"{pipeline.prefix}:pos")
    samples = restart("-and-again")
    assert samples[(redelivered, ())] == len(events), "the full re-read was not skipped"
    assert _source_samples(scrape(pipeline.metrics_url)) == before


def _service_outage(
    pipeline: Pipeline, tmp_path: Path, profile: str, seed: int, service: str
) -> None:
    """Replay a messy stream, take ``service`` away under the running worker once it is
    part-way through, bring it back with `stack up`, and check the figures are exact."""
    events, _ = generate_stream(profile, seed=seed, duplicates=0.02, shuffle=True)
    oracle = Oracle()
    for e in events:
        oracle.feed(e, SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}
    path = tmp_path / "stream.jsonl"
    _write(events, path, bad_lines=0)
    pipeline.run("topics")
    pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    pipeline.start_worker()
    pipeline.start_exporter()
    wait_for(lambda: _processed(pipeline), lambda n: n > 5000, 120, "the worker to start")
    layout = pipeline.stack.layout
    state = layout.load()
    assert state is not None
    if service == "redis":
        os.kill(state.pids["redis"], signal.SIGKILL)
    else:
        stop(state.pids[service], marker(service, layout, state))
    time.sleep(2)
    control.up(layout.dir.parent, layout.name)
    wait_for(lambda: _processed(pipeline), lambda n: n >= len(events), 300, "all events")
    assert _source_samples(scrape(pipeline.metrics_url)) == expected


def test_redis_killed_mid_stream_loses_and_doubles_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """kill -9 Redis while the worker applies; the worker retries until `stack up` brings
    Redis back from its append-only file, then finishes with exact figures."""
    _service_outage(pipeline, tmp_path, "categories-2022", 4, "redis")


def test_kafka_restarted_mid_stream_loses_and_doubles_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The broker goes away under a running worker and comes back (faust-streaming has
    known hangs after a Kafka restart): the worker resumes and the figures stay exact."""
    _service_outage(pipeline, tmp_path, "categories-2023", 9, "kafka")
