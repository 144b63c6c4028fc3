"""The briefing's s136 figure end to end: the met-nov profiles, generated, replayed through
real Kafka, the worker and Redis, and read from the exporter, give "200+ fewer s136
detentions equating to 4,500+ officer hours per month": s136 officer time (each unit's
officers x assigned-to-cleared, on incidents with a detention) saved above 4,500 hours,
15-30 officer hours per detention in each year, every figure equal to the oracle's
recount of the same files."""

from __future__ import annotations

import gzip
import json
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import Pipeline
from tests.helpers import SampleKey, scrape, wait_for
from tests.oracle import Oracle, total

pytestmark = pytest.mark.integration

SEED = "20231101"  # the demo's
YEARS = ("2022", "2023")
FIGURES = (
    "demand_s136_detentions",
    "demand_s136_officer_time_seconds",
    "demand_s136_detention_seconds",
)


def _recount(path: Path, source: str) -> tuple[int, dict[str, float]]:
    """(events in the file, the oracle's window-``all`` totals of FIGURES)."""
    oracle = Oracle()
    lines = 0
    with gzip.open(path, "rt") as f:
        for line in f:
            oracle.feed(json.loads(line), source)
            lines += 1
    s = oracle.samples(source)
    return lines, {name: round(total(s, name, window="all"), 3) for name in FIGURES}


def _read(samples: dict[SampleKey, float], source: str) -> dict[str, float]:
    return {name: round(total(samples, name, source=source, window="all"), 3) for name in FIGURES}


def _processed(pipeline: Pipeline, source: str) -> float:
    s = scrape(pipeline.metrics_url)
    src = (("source", source),)
    return s.get(("demand_events_applied_total", src), 0) + s.get(
        ("demand_events_duplicate_total", src), 0
    )


def test_met_nov_s136_officer_hours_saved_match_the_briefing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run("topics")
    pipeline.start_worker()
    pipeline.start_exporter()
    expected: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for year in YEARS:
        out = tmp_path / f"met-nov-{year}.jsonl.gz"
        source = f"nov-{year}"
        pipeline.run("generate", "--profile", f"met-nov-{year}", "--seed", SEED, "--out", str(out))
        pipeline.run("replay", str(out), "--source", source, "--quiet")
        sizes[source], expected[source] = _recount(out, source)
    for source, size in sizes.items():
        done = partial(_processed, pipeline, source)
        wait_for(done, partial(float.__le__, float(size)), 900, f"{source}'s events")

    samples = scrape(pipeline.metrics_url)
    got = {source: _read(samples, source) for source in sizes}
    assert got == expected

    hours = {s: f["demand_s136_officer_time_seconds"] / 3600 for s, f in got.items()}
    detentions = {s: f["demand_s136_detentions"] for s, f in got.items()}
    for source in sizes:
        # Officer time, not detention time: each detention ties up officers far longer.
        assert 15 <= hours[source] / detentions[source] <= 30, (source, got[source])
        assert (
            got[source]["demand_s136_detention_seconds"]
            < got[source]["demand_s136_officer_time_seconds"] / 2
        )
    assert detentions["nov-2022"] - detentions["nov-2023"] >= 200
    assert hours["nov-2022"] - hours["nov-2023"] > 4500
