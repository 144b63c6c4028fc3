"""Expected demand (demandmon/baseline) on hand-computed cases: the numbers in the comments
were worked out by hand, not by calling the code. Then what the exporter keeps between
scrapes, over a fake hour reader (no Redis), and the samples the collector publishes."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from demandmon.baseline.expected import (
    MEASURES,
    SERIES,
    Vector,
    baseline,
    elapsed,
    expectation,
    past_last_60_minutes,
    recent_last_60_minutes,
    series_of,
    weeks_with_data,
)
from demandmon.baseline.read import BaselineCache, Groups, HourSums, past_groups, past_hours
from demandmon.exporter.collector import DemandCollector
from demandmon.exporter.families import BASELINE_METRICS, HELP
from demandmon.state.reader import SourceFigures, StateReader
from demandmon.state.record import Counts, counter_field
from schemas.vocabulary import BCU_CODES, CATEGORIES, RCRP_CATEGORIES

HOUR = 3600
WEEK = 7 * 24 * HOUR
MON_0900 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC).timestamp()  # a Monday
SUN_0300 = datetime(2025, 1, 12, 3, 0, tzinfo=UTC).timestamp()
N = len(SERIES)


def one(*values: float) -> np.ndarray:
    """A weeks x 1 matrix: one series, one value per week back."""
    return np.array(values, dtype=np.float64).reshape(-1, 1)


# -- the 60-minute blend ------------------------------------------------------------------


def test_elapsed_is_the_part_of_the_hour_gone() -> None:
    assert elapsed(MON_0900) == 0.0
    assert elapsed(MON_0900 + 900) == 0.25
    assert elapsed(MON_0900 + 2700.5) == pytest.approx(2700.5 / 3600)


@pytest.mark.parametrize(
    ("f", "past", "recent"),
    [
        # a past week: cur 10, prev 4 -> f*10 + (1-f)*4; this week: 3 so far, prev 4 ->
        # 3 + (1-f)*4
        (0.0, 4.0, 7.0),
        (0.5, 7.0, 5.0),
        (1.0, 10.0, 3.0),
    ],
)
def test_the_60_minute_blend(f: float, past: float, recent: float) -> None:
    assert past_last_60_minutes(one(10), one(4), f)[0, 0] == past
    now = recent_last_60_minutes(np.array([3.0]), np.array([4.0]), f)
    assert now[0] == recent


def test_this_weeks_60_minutes_are_continuous_across_the_hour() -> None:
    # Just before 10:00 the hour 09:00 holds 6 and 08:00 held 2: 6 + 0.0001*2 ~ 6.0002;
    # just after, 10:00 holds 0 and 09:00 (now prev) 6: 0 + 1*6 = 6.
    before = recent_last_60_minutes(np.array([6.0]), np.array([2.0]), 0.9999)[0]
    after = recent_last_60_minutes(np.array([0.0]), np.array([6.0]), 0.0)[0]
    assert before == pytest.approx(6.0002) and after == 6.0


# -- mean, sigma, band, score -------------------------------------------------------------


def test_a_flat_history_expects_itself_with_the_poisson_floor() -> None:
    # Every week 4: mean 4, sample std 0, sqrt(4) = 2, so sigma 2; band 4 -/+ 4 = [0, 8].
    exp = expectation(one(4, 4, 4, 4))
    assert (exp.mean[0], exp.sigma[0], exp.lower[0], exp.upper[0]) == (4.0, 2.0, 0.0, 8.0)
    # Every week 0: mean 0, sigma 1 (the floor of 1): band [0, 2].
    zero = expectation(one(0, 0, 0, 0))
    assert (zero.mean[0], zero.sigma[0], zero.lower[0], zero.upper[0]) == (0.0, 1.0, 0.0, 2.0)
    # Every week 25: sigma sqrt(25) = 5, band [15, 35] (the lower bound above 0).
    busy = expectation(one(25, 25, 25, 25))
    assert (busy.lower[0], busy.upper[0]) == (15.0, 35.0)


def test_a_spread_history_uses_its_sample_std() -> None:
    # 2, 4, 10, 8: mean 6; deviations -4 -2 4 2, squares 16+4+16+4 = 40, /3 = 13.333,
    # sqrt = 3.6515 > sqrt(6) = 2.449: sigma 3.6515, band [0 (6-7.30), 13.303].
    exp = expectation(one(2, 4, 10, 8))
    assert exp.mean[0] == 6.0
    assert exp.sigma[0] == pytest.approx(3.6514837, abs=1e-6)
    assert exp.lower[0] == 0.0 and exp.upper[0] == pytest.approx(13.3029674, abs=1e-6)


def test_score_sign_and_size() -> None:
    # Flat 10: sigma sqrt(10) = 3.16228, upper 16.32456. 17 -> (17-10)/3.16228 = 2.21359,
    # above the band; 4 -> -1.89737; 10 -> 0.
    past = past_hours([np.full(N, v) for v in [10.0] * 16])
    now_prev = np.zeros(N)
    for recent, score in [(17.0, 2.2135944), (4.0, -1.8973666), (10.0, 0.0)]:
        b = baseline(past, np.full(N, recent), now_prev, 1.0, weeks=4)
        assert b.score[0] == pytest.approx(score, abs=1e-6)
        assert (b.score[0] > 2) == (b.recent[0] > b.last_hour.upper[0])


def test_a_missing_week_counts_as_zero_unless_left_out() -> None:
    # 60-minute values 8, 10, 12 and an empty week 4.
    # All four: mean 30/4 = 7.5; deviations .5 2.5 4.5 -7.5, squares .25+6.25+20.25+56.25
    # = 83, /3 = 27.667, sqrt 5.2599 (> sqrt 7.5 = 2.739): sigma 5.2599.
    four = expectation(one(8, 10, 12, 0))
    assert four.mean[0] == 7.5 and four.sigma[0] == pytest.approx(5.2599112, abs=1e-6)
    # Week 4 left out (the source had no data then): mean 10, std 2 (devs -2 0 2, 8/2 = 4),
    # sqrt(10) = 3.16228 wins; upper 10 + 6.32456 = 16.32456.
    three = expectation(one(8, 10, 12))
    assert three.mean[0] == 10.0 and three.sigma[0] == pytest.approx(math.sqrt(10))
    assert three.upper[0] == pytest.approx(16.3245553, abs=1e-6)


# -- the weeks a source has ---------------------------------------------------------------


def test_a_source_younger_than_four_weeks_uses_the_weeks_it_has() -> None:
    end = MON_0900 + 1800  # Monday 09:30: the hour before is 08:00
    # First incident at 08:10 two weeks back: its hour 08:00, so weeks 1 and 2 qualify.
    assert weeks_with_data(end, MON_0900 - 2 * WEEK - 3000) == 2
    # 07:59:59 two weeks back: hour 07:00, still 2 (week 3's 08:00 is before it).
    assert weeks_with_data(end, MON_0900 - 2 * WEEK - 3601) == 2
    # 09:00 two weeks back: week 2 would need 08:00, which the source did not have.
    assert weeks_with_data(end, MON_0900 - 2 * WEEK) == 1
    assert weeks_with_data(end, MON_0900 - 9 * WEEK) == 4  # never more than 4
    assert weeks_with_data(end, MON_0900 - 3600) == 0  # this week only
    assert weeks_with_data(end, None) == 0  # no incident yet


def test_one_two_and_no_weeks() -> None:
    # 60-minute values per week back: 9, 5, then two weeks the source did not have.
    past = past_hours([np.full(N, v) for v in [9, 9, 9, 0, 5, 5, 5, 0, *[50] * 8]])
    now = np.full(N, 6.0)
    # One week: mean 9, sigma max(0, 3, 1) = 3; recent 6 + 0 -> score -1.
    b1 = baseline(past, now, np.zeros(N), 0.5, weeks=1)
    assert (b1.last_hour.mean[0], b1.last_hour.sigma[0], b1.score[0]) == (9.0, 3.0, -1.0)
    # Two weeks: mean 7, std sqrt(8) = 2.828 (> sqrt 7 = 2.646); score (6-7)/2.828 = -0.35355.
    b2 = baseline(past, now, np.zeros(N), 0.5, weeks=2)
    assert b2.last_hour.mean[0] == 7.0
    assert b2.last_hour.sigma[0] == pytest.approx(2.8284271, abs=1e-6)
    assert b2.score[0] == pytest.approx(-0.3535534, abs=1e-6)
    # None: expected 0, band [0, 2], score with sigma 1: recent itself.
    b0 = baseline(past, now, np.zeros(N), 0.5, weeks=0)
    assert b0.weeks == 0 and b0.last_hour.mean[0] == 0 and b0.last_hour.upper[0] == 2.0
    assert b0.next_day.mean[0] == 0 and b0.next_day.upper[0] == 2.0 and b0.score[0] == 6.0


# -- a weekly pattern, through the plan of hour buckets -----------------------------------


def _pattern(hour_start: int) -> float:
    """Every week: Monday 09:00 busy (30), 08:00 (20); Sunday 03:00 quiet (1), 02:00
    (0); any other hour 5."""
    t = datetime.fromtimestamp(hour_start, UTC)
    return {(0, 9): 30.0, (0, 8): 20.0, (6, 3): 1.0, (6, 2): 0.0}.get((t.weekday(), t.hour), 5.0)


def _sums(groups: Groups) -> list[Vector]:
    return [np.full(N, sum(_pattern(h) for h in group)) for group in groups]


def test_each_hour_of_the_week_expects_its_own() -> None:
    # Monday 09:30: every week 0.5*30 + 0.5*20 = 25, so expected 25, sigma sqrt(25) = 5.
    # Next 24 h: 0.5*30 (rest of 09:00) + 23*5 + 0.5*5 (Tuesday 09:00 to 09:30) = 132.5.
    end = MON_0900 + 1800
    b = baseline(past_hours(_sums(past_groups(end))), np.zeros(N), np.zeros(N), 0.5, 4)
    assert (b.last_hour.mean[0], b.last_hour.sigma[0]) == (25.0, 5.0)
    assert b.next_day.mean[0] == 132.5
    # Sunday 03:30: 0.5*1 + 0.5*0 = 0.5, sigma max(0, 0.707, 1) = 1, band [0, 2.5].
    end = SUN_0300 + 1800
    b = baseline(past_hours(_sums(past_groups(end))), np.zeros(N), np.zeros(N), 0.5, 4)
    assert (b.last_hour.mean[0], b.last_hour.upper[0]) == (0.5, 2.5)
    # A Monday 09:30 with 12 so far and 20 at 08:00: 12 + 0.5*20 = 22, score (22-25)/5.
    b = baseline(past_hours(_sums(past_groups(MON_0900 + 1800))), np.full(N, 12.0),
                 np.full(N, 20.0), 0.5, 4)  # fmt: skip
    assert b.recent[0] == 22.0 and b.score[0] == -0.6


def test_past_groups_are_the_same_hours_of_past_weeks() -> None:
    groups = past_groups(MON_0900 + 1800)
    assert len(groups) == 16
    # One week back: 08:00, 09:00, 10:00..08:00 next day (23 hours), 09:00 next day.
    cur = int(MON_0900) - WEEK
    assert groups[:4] == [[cur - HOUR], [cur], [cur + k * HOUR for k in range(1, 24)],
                          [cur + 24 * HOUR]]  # fmt: skip
    assert groups[12][0] == cur - 3 * WEEK - HOUR


def test_series_are_decoded_through_the_record() -> None:
    raw = {counter_field("incidents", "SE", cat): i + 1 for i, cat in enumerate(CATEGORIES)}
    raw[counter_field("graded", "SE", "I")] = 4
    raw[counter_field("graded", "SE", "S")] = 9  # not I-grade
    raw[counter_field("s136_detentions", "SE")] = 2
    values = dict(zip(SERIES, series_of(Counts(raw)).tolist(), strict=True))
    # Categories 1..6 (not_rcrp last): every incident 21; each RCRP category its own.
    assert values["SE", "incidents"] == 21 and values["SE", "igrade"] == 4
    assert values["SE", "s136_detentions"] == 2
    assert [values["SE", cat] for cat in RCRP_CATEGORIES] == [1, 2, 3, 4, 5]
    assert values["NW", "incidents"] == 0
    assert len(SERIES) == len(BCU_CODES) * len(MEASURES) == 96


# -- what the exporter keeps between scrapes ----------------------------------------------


class FakeSums(HourSums):
    """The fixed weekly pattern for every source, no Redis; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[dict[str, int]] = []

    def read(self, wanted: Mapping[str, Groups]) -> dict[str, list[Vector]]:
        self.asked.append({source: len(groups) for source, groups in wanted.items()})
        return {source: _sums(groups) for source, groups in wanted.items()}


def _figures(source: str, end: float, windows: dict[str, Counter[str]]) -> SourceFigures:
    fig = SourceFigures(source, end, end, end, windows=windows)
    fig.first_created_s = end - 9 * WEEK
    return fig


def test_the_cache_reads_only_what_may_have_changed() -> None:
    clock = [1000.0]
    sums = FakeSums()
    cache = BaselineCache(sums, clock=lambda: clock[0])
    w1: dict[str, Counter[str]] = {"1h": Counter()}
    end = MON_0900 + 1800
    first = cache.baselines([_figures("r", end, w1)])["r"]
    assert sums.asked == [{"r": 18}]  # this week's 2 hours and 4 x 4 past groups
    # Nothing written, same end: nothing read, the same figures.
    assert cache.baselines([_figures("r", end, w1)])["r"] is first
    # Nothing written, the end moved within the hour (live's clock): nothing read, new f.
    later = cache.baselines([_figures("r", end + 900, w1)])["r"]
    assert len(sums.asked) == 1 and later is not first
    assert later.last_hour.mean[0] == 0.75 * 30 + 0.25 * 20
    # Written (new windows), 30 s on: this week's hours only.
    clock[0] += 30
    cache.baselines([_figures("r", end, {"1h": Counter()})])
    assert sums.asked[-1] == {"r": 2}
    # Written again, 60 s after the past weeks were read: those too.
    clock[0] += 30
    cache.baselines([_figures("r", end, {"1h": Counter()})])
    assert sums.asked[-1] == {"r": 18}
    # The hour moved: everything.
    cache.baselines([_figures("r", end + 3600, {"1h": Counter()})])
    assert sums.asked[-1] == {"r": 18}
    # A source gone is forgotten.
    cache.baselines([])
    assert cache.kept == {}


class FixedReader(StateReader):
    def __init__(self, figures: list[SourceFigures]) -> None:
        self.figures = figures

    def exported_sources(self) -> list[str]:
        return [f.source for f in self.figures]

    def read_sources(self, sources: object, now_s: float) -> list[SourceFigures]:
        return self.figures


def test_the_collector_publishes_every_series_both_ways_alike() -> None:
    end = MON_0900 + 1800
    reader = FixedReader([_figures("live", end, {}), _figures("r", end, {})])
    collector = DemandCollector(reader, clock=lambda: end, expected=BaselineCache(FakeSums()))
    registry = CollectorRegistry()
    registry.register(collector)
    get = registry.get_sample_value
    labels = {"source": "r", "bcu": "SE", "measure": "incidents"}
    assert get("demand_expected_incidents", {**labels, "period": "60m"}) == 25
    assert get("demand_expected_incidents_upper", {**labels, "period": "60m"}) == 35
    assert get("demand_expected_incidents_lower", {**labels, "period": "60m"}) == 15
    assert get("demand_expected_incidents", {**labels, "period": "next_24h"}) == 132.5
    # This week follows the pattern too: 30 so far + 0.5 * 20 = 40, score (40 - 25) / 5 = 3.
    assert get("demand_recent_incidents", labels) == 40
    assert get("demand_expected_score", labels) == 3
    assert get("demand_expected_basis", {"source": "r"}) == 4
    # Every allow-listed combination, for every source; the families last, in HELP's order.
    body, _ = collector.exposition(None)
    text = body.decode()
    for name in BASELINE_METRICS:
        per_series = 2 if name.startswith("demand_expected_incidents") else 1
        lines = [x for x in text.splitlines() if x.startswith(name + "{")]
        assert len(lines) == (2 * N * per_series if name != "demand_expected_basis" else 2)
    assert list(HELP)[-len(BASELINE_METRICS) :] == sorted(BASELINE_METRICS, key=list(HELP).index)
    encoder, _ = choose_encoder("")
    assert (
        body.split(b"demand_exporter_redis_up")[0]
        == encoder(registry).split(b"demand_exporter_redis_up")[0]
    )
