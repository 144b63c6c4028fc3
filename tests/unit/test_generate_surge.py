"""The `surge` profile, checked by plain recounts of its events: four weeks of steady demand
with a weekly pattern, then NE alone far above its expected band; nothing else that any
per-BCU alert watches is breached."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from streams.generate import PROFILES, generate_events
from streams.generate.cli import main
from streams.generate.profiles import ALL_PROFILES, SURGE_BCU
from tests.expected_recount import HOUR, WEEK, last_hour_by_bcu
from tests.oracle import Oracle, epoch, total

BCUS = ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA")
RCRP = (
    "concern_for_safety",
    "mental_health",
    "vulnerable",
    "collapse_illness_injury_trapped",
    "welfare_check_partner",
)


@cache
def surge(seed: int = 1) -> list[dict[str, Any]]:
    return generate_events("surge", seed)


def test_size_period_and_order() -> None:
    assert "surge" in PROFILES
    events = surge()
    # Small enough to replay through the whole pipeline in a few seconds.
    assert 20_000 < len(events) < 50_000
    times = [epoch(str(e["occurred_at"])) for e in events]
    assert times == sorted(times)
    prof = ALL_PROFILES["surge"]
    assert prof.start <= times[0] and times[-1] < prof.end
    assert times[-1] - times[0] > 4 * WEEK + 23 * HOUR  # four weeks of history and a day


def test_determinism_by_seed(tmp_path: Path) -> None:
    assert generate_events("surge", 1) == surge(1)
    assert surge(2) != surge(1)
    out = tmp_path / "surge.jsonl"
    assert main(["--profile", "surge", "--seed", "1", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == len(surge(1))


def _created_by_cell(events: list[dict[str, Any]]) -> Counter[tuple[int, str]]:
    return Counter(
        (int(epoch(str(e["occurred_at"])) // HOUR) * HOUR, str(e["bcu"]))
        for e in events
        if e["type"] == "created"
    )


def test_steady_weekly_pattern_with_no_chance_anomaly() -> None:
    cells = _created_by_cell(surge())
    first = min(hour for hour, _ in cells)
    prof = ALL_PROFILES["surge"]
    ordinary = range(first, prof.end - 3 * HOUR, HOUR)  # before the surge hours
    # The same hour of the week, week after week, within one incident, for every BCU.
    by_hour_of_week: dict[tuple[int, str], list[int]] = defaultdict(list)
    for hour in ordinary:
        for bcu in BCUS:
            by_hour_of_week[((hour - first) % WEEK, bcu)].append(cells[(hour, bcu)])
    for key, counts in by_hour_of_week.items():
        assert max(counts) - min(counts) <= 1, (key, counts)
    # A weekly pattern: evenings far busier than the small hours, London-wide.
    london: Counter[int] = Counter()
    for (hour, _), count in cells.items():
        london[(hour // HOUR) % 24] += count  # UTC = London time in November
    assert london[19] > 3 * london[4]
    assert {bcu for _, bcu in cells} == set(BCUS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_only_ne_is_above_its_band(seed: int) -> None:
    got = last_hour_by_bcu(surge(seed))
    assert set(got) == set(BCUS)
    ne = got[SURGE_BCU]
    assert ne.weeks == 4
    assert ne.recent > ne.upper and ne.score > 3.0 and ne.recent >= 5
    assert 3.0 <= ne.recent / ne.expected <= 6.0  # "about 4x" its usual demand
    for bcu, figures in got.items():
        if bcu != SURGE_BCU:
            assert figures.score < 1.5 and figures.recent <= figures.upper, (bcu, figures)


def test_no_other_per_bcu_alert_condition_holds() -> None:
    oracle = Oracle()
    for event in surge():
        oracle.feed(event, "s")
    s = oracle.samples("s")
    assert total(s, "demand_open_incidents") == 0
    assert total(s, "demand_s136_detentions", window="all") == 0
    for bcu in BCUS:
        for grade in ("I", "S"):
            graded = total(s, "demand_graded_incidents", bcu=bcu, grade=grade, window="24h")
            attended = total(
                s, "demand_attended_within_target_incidents", bcu=bcu, grade=grade, window="24h"
            )
            assert attended == graded, (bcu, grade)
        incidents = sum(
            total(s, "demand_rcrp_incidents", bcu=bcu, category=c, window="24h") for c in RCRP
        )
        deployed = sum(
            total(s, "demand_rcrp_deployed_incidents", bcu=bcu, category=c, window="24h")
            for c in RCRP
        )
        assert incidents < 20 or deployed / incidents <= 0.35, (bcu, deployed, incidents)
