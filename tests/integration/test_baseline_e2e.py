"""Expected demand end to end: four weeks and a day of incidents with a weekly pattern
(reclassified, regraded, s136 detentions, duplicates; in time order) replayed through real
Kafka and the real worker into Redis under two sources, one holding all of it and one
only its last 16 days; every demand_expected_* and demand_recent_* series the exporter
publishes equals a plain Python recount of the event file (``statistics``, not numpy),
and the scrape passes ``promtool check metrics``."""

from __future__ import annotations

import json
import math
import random
import shutil
import statistics
import subprocess
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pipeline
from tests.helpers import SampleKey, scrape, wait_for
from tests.oracle import category_of, epoch

pytestmark = pytest.mark.integration

OLD, YOUNG = "expect-old", "expect-young"
END = datetime(2025, 3, 10, 14, 24, 0, tzinfo=UTC)  # a Monday; the watermark, f = 0.4
START = END - timedelta(days=29)  # four weeks and a day: all four weeks, inside 35 days
YOUNG_FROM = END - timedelta(days=16)  # two weeks and two days: two weeks
BCUS = ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA")
CODES = ("MENTAL_HEALTH", "WELFARE_CHECK", "CONCERN_FOR_SAFETY", "COLLAPSE",
         "VULNERABLE_PERSON", "BURGLARY", "BURGLARY")  # fmt: skip
CALLERS = ("public", "partner_health")
MEASURES = ("incidents", "igrade", "s136_detentions", "concern_for_safety", "mental_health",
            "vulnerable", "collapse_illness_injury_trapped", "welfare_check_partner")  # fmt: skip
HOUR = 3600
WEEK = 7 * 24 * HOUR


def _at(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stream(seed: int) -> list[dict[str, Any]]:
    """Incidents along a weekly curve (busy weekday afternoons, quiet nights), more in a
    few BCUs, each created once and maybe reclassified, regraded or detained later."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []

    def add(iid: str, n: int, kind: str, at: datetime, **fields: Any) -> None:
        events.append(
            {
                "schema": "cad.incident-event/1",
                "event_id": f"{iid.replace('/', '-')}.{n}",
                "incident_id": iid,
                "type": kind,
                "occurred_at": _at(at),
                **fields,
            }
        )

    t = START
    n = 0
    while t < END:
        busy = 5 if 12 <= t.hour < 20 else 1 if t.hour < 6 else 3
        busy += 2 if t.weekday() == 0 and t.hour in (9, 14) else 0
        for _ in range(rng.randint(0, 2 * busy)):
            created = t + timedelta(seconds=rng.uniform(0, HOUR - 1))
            if created > END:
                continue
            n += 1
            iid = f"CAD/{n:06d}"
            grade = rng.choice(("I", "S", "E", None))
            add(iid, 0, "created", created, bcu=rng.choice(BCUS[:4] * 3 + BCUS),
                opening_code=rng.choice(CODES), caller=rng.choice(CALLERS),
                **({"grade": grade} if grade else {}))  # fmt: skip
            later = created + timedelta(seconds=rng.uniform(1, 5400))
            if later > END:
                continue
            if rng.random() < 0.15:
                add(iid, 1, "classified", later, opening_code=rng.choice(CODES))
            if rng.random() < 0.15:
                add(iid, 2, "graded", later, grade=rng.choice("IS"))
            if rng.random() < 0.05:
                add(iid, 3, "s136_detained", later)
        t += timedelta(hours=1)
    add("CAD/LAST", 0, "created", END, bcu="SE", opening_code="MENTAL_HEALTH", caller="public")
    events += rng.sample(events, 40)  # duplicates: ignored
    # In time order, as a replay file of a month is (reordering is test_pipeline_exact's).
    return sorted(events, key=lambda e: str(e["occurred_at"]))


def _counts(events: list[dict[str, Any]]) -> tuple[dict[tuple[int, str, str], int], float]:
    """Per (hour start, BCU, measure): incidents created in that hour, by their latest
    category and grade; and the earliest creation time."""
    seen: set[str] = set()
    by_incident: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            by_incident.setdefault(e["incident_id"], []).append(e)
    counts: Counter[tuple[int, str, str]] = Counter()
    first = math.inf
    for evs in by_incident.values():
        created = next(e for e in evs if e["type"] == "created")
        at = epoch(created["occurred_at"])
        first = min(first, at)
        hour = int(at // HOUR) * HOUR
        codes = [(epoch(e["occurred_at"]), e["opening_code"]) for e in evs if "opening_code" in e]
        grades = [(epoch(e["occurred_at"]), e["grade"]) for e in evs if e.get("grade")]
        category = category_of(max(codes)[1], created["caller"])
        bcu = created["bcu"]
        counts[hour, bcu, "incidents"] += 1
        if category != "not_rcrp":
            counts[hour, bcu, category] += 1
        if grades and max(grades)[1] == "I":
            counts[hour, bcu, "igrade"] += 1
        if any(e["type"] == "s136_detained" for e in evs):
            counts[hour, bcu, "s136_detentions"] += 1
    return dict(counts), first


def _expected(events: list[dict[str, Any]], source: str) -> dict[SampleKey, float]:
    """Every expected-demand sample of ``source``, recounted: docs/semantics.md
    "Expected demand" in plain Python."""
    counts, first = _counts(events)
    end = max(epoch(e["occurred_at"]) for e in events)
    cur = int(end // HOUR) * HOUR
    f = (end - cur) / HOUR
    weeks = [w for w in range(1, 5) if cur - w * WEEK - HOUR >= int(first // HOUR) * HOUR]
    out: dict[SampleKey, float] = {("demand_expected_basis", (("source", source),)): len(weeks)}

    def band(values: list[float]) -> tuple[float, float]:
        mean = statistics.fmean(values) if values else 0.0
        spread = statistics.stdev(values) if len(values) >= 2 else 0.0
        return mean, max(spread, math.sqrt(mean), 1.0)

    for bcu in BCUS:
        for measure in MEASURES:

            def n(hour: int) -> int:
                return counts.get((hour, bcu, measure), 0)  # noqa: B023

            hours = [cur - w * WEEK for w in weeks]
            last_hour = [f * n(h) + (1 - f) * n(h - HOUR) for h in hours]
            next_day = [(1 - f) * n(h) + sum(n(h + k * HOUR) for k in range(1, 24))
                        + f * n(h + 24 * HOUR) for h in hours]  # fmt: skip
            recent = n(cur) + (1 - f) * n(cur - HOUR)
            labels = (("bcu", bcu), ("measure", measure), ("source", source))
            for period, values in (("60m", last_hour), ("next_24h", next_day)):
                mean, sigma = band(values)
                with_period = tuple(sorted((*labels, ("period", period))))
                out["demand_expected_incidents", with_period] = mean
                out["demand_expected_incidents_lower", with_period] = max(0.0, mean - 2 * sigma)
                out["demand_expected_incidents_upper", with_period] = mean + 2 * sigma
                if period == "60m":
                    out["demand_recent_incidents", labels] = recent
                    out["demand_expected_score", labels] = (recent - mean) / sigma
    return out


def _mismatches(got: dict[SampleKey, float], want: dict[SampleKey, float]) -> list[str]:
    return [
        f"{key}: got {got.get(key)}, want {value}"
        for key, value in sorted(want.items())
        if key not in got or not math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9)
    ]


def test_expected_demand_equals_the_recount(pipeline: Pipeline, tmp_path: Path) -> None:
    events = _stream(seed=13)
    young = [e for e in events if epoch(e["occurred_at"]) >= YOUNG_FROM.timestamp()]
    young_ids = {e["incident_id"] for e in young if e["type"] == "created"}
    young = [e for e in young if e["incident_id"] in young_ids]
    streams = {OLD: events, YOUNG: young}
    want = {source: _expected(evs, source) for source, evs in streams.items()}
    assert want[OLD][("demand_expected_basis", (("source", OLD),))] == 4
    assert want[YOUNG][("demand_expected_basis", (("source", YOUNG),))] == 2
    # The stream is busy enough to mean something: most 60-minute expectations non-zero.
    means = [v for (name, _), v in want[OLD].items() if name == "demand_expected_incidents"]
    assert sum(1 for v in means if v > 0) > len(means) / 4

    pipeline.run("topics")
    for source, evs in streams.items():
        path = tmp_path / f"{source}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in evs))
        pipeline.run("replay", str(path), "--source", source, "--quiet")
    pipeline.start_worker()
    pipeline.start_exporter()

    def progress() -> dict[str, float]:
        """Per source, events applied or ignored as repeats, and rejected."""
        s = scrape(pipeline.metrics_url)
        out = {}
        for source in streams:
            mine = {k: v for k, v in s.items() if ("source", source) in k[1]}
            out[source] = mine.get(("demand_events_applied_total", (("source", source),)), 0)
            out[source] += mine.get(("demand_events_duplicate_total", (("source", source),)), 0)
            out[f"{source} rejected"] = sum(
                v for k, v in mine.items() if k[0] == "demand_events_rejected_total"
            )
        return out

    wait_for(
        progress,
        lambda p: all(p[s] >= len(evs) for s, evs in streams.items()),
        180,
        f"the streams applied ({ {s: len(e) for s, e in streams.items()} } events)",
    )
    samples = scrape(pipeline.metrics_url)
    for source in streams:
        got = {k: v for k, v in samples.items() if ("source", source) in k[1]}
        wrong = _mismatches(got, want[source])
        assert not wrong, f"{len(wrong)} of {len(want[source])} differ:\n" + "\n".join(wrong[:10])

    if shutil.which("promtool"):
        with urllib.request.urlopen(pipeline.metrics_url, timeout=30) as response:
            body = response.read()
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
        )
        assert (check.stdout + check.stderr).decode() == ""
