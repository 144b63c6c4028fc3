"""Last year without waiting a year, end to end: November 2022 (categories-2022) is
backfilled with `demandmon backfill --into-stack` into the running stack's Prometheus,
which loads the blocks by itself; queried `offset 52w` from 52 weeks later, its totals are
those `evaluate` prints for the same file replayed through Kafka, the worker and Redis,
and those of a plain recount of the file; at an instant mid-month every backfilled series
is the recount of the events the stream had reached by then."""

from __future__ import annotations

import gzip
import json
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from demandmon.exporter.families import PER_BCU, PER_CATEGORY
from tests.conftest import Pipeline
from tests.oracle import Oracle, epoch

pytestmark = pytest.mark.integration

SOURCE, REPLAYED = "last-year", "cat-2022"
STEP_S = 240  # a coarser scrape than the default 60 s: 10,000 readings of Redis, not 40,000
WEEKS_52_S = 52 * 7 * 86400
MID_MONTH = datetime(2022, 11, 15, 12, 34, 56, tzinfo=UTC).timestamp()
WINDOWED = {
    *(name for name, _ in PER_CATEGORY.values()),
    *(name for name, _ in PER_BCU.values()),
    "demand_graded_incidents",
    "demand_attended_within_target_incidents",
    "demand_igrade_incidents",
}
RCRP = 'category!="not_rcrp"'


def _query(base: str, expr: str, at_s: float) -> list[dict[str, Any]]:
    args = urllib.parse.urlencode({"query": expr, "time": f"{at_s:.3f}"})
    with urllib.request.urlopen(f"{base}/api/v1/query?{args}", timeout=30) as response:
        doc = json.loads(response.read())
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def _total(base: str, name: str, matchers: str, at_s: float) -> float:
    """``sum(name{source=SOURCE,...} offset 52w)`` 52 weeks after ``at_s``."""
    expr = f'sum({name}{{source="{SOURCE}",{matchers}}} offset 52w)'
    result = _query(base, expr, at_s + WEEKS_52_S)
    assert result, expr
    return float(result[0]["value"][1])


def _backfilled(base: str, at_s: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every non-zero series of SOURCE as Prometheus reads it at ``at_s`` (52 weeks on)."""
    out = {}
    for series in _query(base, f'{{source="{SOURCE}"}} offset 52w', at_s + WEEKS_52_S):
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        value = float(series["value"][1])
        if value:
            out[(name, tuple(sorted(labels.items())))] = round(value, 6)
    return out


def _recounted(oracle: Oracle) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The oracle's figures of what backfill writes by default: the windowed families for
    24h and all, and the open list."""
    return {
        key: round(value, 6)
        for key, value in oracle.samples(SOURCE).items()
        if value
        and (
            (key[0] in WINDOWED and dict(key[1])["window"] in ("24h", "all"))
            or key[0] == "demand_open_incidents"
        )
    }


def _recount(path: Path, until_s: float | None = None) -> Oracle:
    """The file fed to the oracle in file order: every event, or those the stream had
    reached by ``until_s`` (the running maximum of event times, as backfill steps)."""
    oracle = Oracle()
    reached = float("-inf")
    with gzip.open(path, "rt") as lines:
        for line in lines:
            event = json.loads(line)
            reached = max(reached, epoch(event["occurred_at"]))
            if until_s is not None and reached > until_s:
                break
            oracle.feed(event, SOURCE)
    return oracle


def test_backfilled_november_answers_offset_52w_with_evaluate_s_totals(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    stream = tmp_path / "categories-2022.jsonl.gz"
    pipeline.run("generate", "--profile", "categories-2022", "--seed", "7", "--out", str(stream))
    pipeline.run("topics")
    pipeline.start_worker()
    pipeline.run("replay", str(stream), "--source", REPLAYED, "--quiet")

    # While the worker applies the replay: the same file into the stack's Prometheus.
    started = time.monotonic()
    done = pipeline.run(
        "backfill", str(stream), "--source", SOURCE, "--step", f"{STEP_S}s", "--into-stack"
    )
    took = time.monotonic() - started
    assert re.search(r" ([0-9,]+) events read, \1 applied, 0 duplicates, 0 rejected", done.stdout)
    assert "2022-11-29T00:00:00Z (event time)" in done.stdout, done.stdout
    data = pipeline.stack.layout.data("prometheus")
    blocks = [b for b in data.iterdir() if (b / "meta.json").is_file()]
    assert blocks, list(data.iterdir())
    # the scratch state is gone: nothing but the pipeline's own keys under its prefix
    client = pipeline.redis()
    assert not list(client.scan_iter(match=f"{pipeline.prefix}_bf*"))

    whole = _recount(stream)
    report = json.loads(
        pipeline.run("evaluate", "--source", REPLAYED, "--format", "json", "--wait", "600").stdout
    )

    # Prometheus loads new blocks at its next periodic reload (every minute).
    end_s = datetime(2022, 11, 29, tzinfo=UTC).timestamp()
    deadline = time.monotonic() + 150
    while not _query(
        pipeline.stack.prometheus, f'count({{source="{SOURCE}"}} offset 52w)', end_s + WEEKS_52_S
    ):
        assert time.monotonic() < deadline, "Prometheus never loaded the backfilled blocks"
        time.sleep(2)

    prom = pipeline.stack.prometheus
    figures = {
        "incidents": _total(prom, "demand_rcrp_incidents", f'window="all",{RCRP}', end_s),
        "deployed": _total(prom, "demand_rcrp_deployed_incidents", f'window="all",{RCRP}', end_s),
        "igrade_incidents": _total(prom, "demand_igrade_incidents", 'window="all"', end_s),
        "s136_detentions": _total(prom, "demand_s136_detentions", 'window="all"', end_s),
        "open_incidents": _total(prom, "demand_open_incidents", 'bcu!=""', end_s),
    }
    officer_s = _total(prom, "demand_officer_time_seconds", f'window="all",{RCRP}', end_s)
    evaluated = {
        "incidents": report["total"]["incidents"],
        "deployed": report["total"]["deployed"],
        "igrade_incidents": report["igrade_incidents"],
        "s136_detentions": report["s136"]["detentions"],
        "open_incidents": report["open_incidents"],
    }
    rcrp = [f for f in whole.incident_figures(SOURCE) if f.category != "not_rcrp"]
    recounted = {
        "incidents": len(rcrp),
        "deployed": sum(f.deployed for f in rcrp),
        "igrade_incidents": sum(f.grade == "I" for f in whole.incident_figures(SOURCE)),
        "s136_detentions": sum(f.detained for f in whole.incident_figures(SOURCE)),
        "open_incidents": sum(
            v for (n, _), v in whole.samples(SOURCE).items() if n == "demand_open_incidents"
        ),
    }
    assert figures == evaluated == recounted
    assert (figures["incidents"], figures["deployed"]) == (8972, 3841)  # the briefing's
    assert officer_s / 3600 == pytest.approx(report["officer_hours"], abs=0.0501)
    # Every series at the end is the recount of the whole file.
    assert _backfilled(prom, end_s) == _recounted(whole)

    # Mid-month, an instant between two steps reads the last step's figures: the recount
    # of the events the stream had reached by then, window by window.
    step = MID_MONTH // STEP_S * STEP_S
    mid = _backfilled(prom, MID_MONTH)
    assert mid == _recounted(_recount(stream, until_s=step))
    last_day = [v for (n, labels), v in mid.items() if ("window", "24h") in labels]
    assert sum(last_day) > 0 and mid != _backfilled(prom, end_s)
    print(f"backfill took {took:.1f} s, {len(blocks)} blocks")
