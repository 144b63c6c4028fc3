"""Expected demand from the same hours of the week over the previous weeks. Pure numpy:
no clock, no I/O.

Every figure is worked out for all series at once: a series is one (BCU, measure) pair,
a column of the arrays below; a row is one past week (row 0: one week back). The method,
and why each choice, is in docs/semantics.md ("Expected demand").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from demandmon.state.record import Counts
from demandmon.state.windows import HOUR, hour_bucket
from schemas.vocabulary import BCU_CODES, CATEGORIES, I_GRADE, RCRP_CATEGORIES

BAND_SIGMAS: Final = 2.0
WEEKS: Final = 4  # the previous weeks the expectation looks at, at most
WEEK: Final = 7 * 24 * HOUR
NEXT_HOURS: Final = 24  # the period after the window end that is forecast
# What is expected, per BCU: every incident created, I-grade, s136 detentions, and each
# RCRP category (incidents by their latest category and grade, as every window counts).
MEASURES: Final[tuple[str, ...]] = ("incidents", "igrade", "s136_detentions", *RCRP_CATEGORIES)
SERIES: Final[tuple[tuple[str, str], ...]] = tuple(
    (bcu, measure) for bcu in BCU_CODES for measure in MEASURES
)

Vector = NDArray[np.float64]  # one value per series
Matrix = NDArray[np.float64]  # one row per past week, one column per series


def series_of(counts: Counts) -> Vector:
    """A bucket's (or a sum of buckets') counters as one value per series."""
    out: list[float] = []
    for bcu in BCU_CODES:
        by_category = {cat: counts.get("incidents", bcu, cat) for cat in CATEGORIES}
        out += [
            sum(by_category.values()),
            counts.get("graded", bcu, I_GRADE),
            counts.get("s136_detentions", bcu),
            *(by_category[cat] for cat in RCRP_CATEGORIES),
        ]
    return np.array(out, dtype=np.float64)


def elapsed(end_s: float) -> float:
    """The fraction of the hour holding ``end_s`` that has passed at ``end_s``."""
    return (end_s - hour_bucket(end_s)) / HOUR


def weeks_with_data(end_s: float, first_created_s: float | None) -> int:
    """How many of the previous weeks the source has: week w counts when the hour before
    the same hour w weeks back starts at or after the hour of the source's first incident
    (so every hour the week is read from is one the source could have filled). The weeks
    counted are always the most recent ones."""
    if first_created_s is None:
        return 0
    first = hour_bucket(first_created_s)
    prev = hour_bucket(end_s) - HOUR
    return sum(1 for w in range(1, WEEKS + 1) if prev - w * WEEK >= first)


@dataclass(frozen=True)
class PastHours:
    """Per past week (rows) and series (columns): the hour of the week that holds the
    window end (``cur``), the hour before (``prev``), the 23 hours after ``cur`` summed
    (``next23``) and the 24th hour after it (``hour24``)."""

    prev: Matrix
    cur: Matrix
    next23: Matrix
    hour24: Matrix

    def weeks(self, n: int) -> PastHours:
        """The ``n`` most recent weeks only."""
        return PastHours(self.prev[:n], self.cur[:n], self.next23[:n], self.hour24[:n])


def past_last_60_minutes(cur: Matrix, prev: Matrix, f: float) -> Matrix:
    """A past week's count in the 60 minutes up to the same minute: hour buckets are all
    Redis keeps, so the part of each hour inside those minutes is taken pro rata."""
    return f * cur + (1.0 - f) * prev


def recent_last_60_minutes(cur_so_far: Vector, prev: Vector, f: float) -> Vector:
    """This week's count in the 60 minutes up to the window end. The current hour holds
    only what was created up to the window end, all of it inside those minutes, so it
    counts whole; of the hour before, the part still inside them, pro rata. Continuous
    across the hour: at f -> 1 it is the whole hour, at f = 0 that hour again as prev."""
    return cur_so_far + (1.0 - f) * prev


def past_next_24_hours(past: PastHours, f: float) -> Matrix:
    """A past week's count in the 24 hours after the same minute: the rest of its hour,
    the 23 whole hours after it, and the part of the 24th up to the same minute."""
    return (1.0 - f) * past.cur + past.next23 + f * past.hour24


@dataclass(frozen=True)
class Expectation:
    """The mean over the weeks used and the spread the band and score are measured in."""

    mean: Vector
    sigma: Vector

    @property
    def lower(self) -> Vector:
        return np.maximum(self.mean - BAND_SIGMAS * self.sigma, 0.0)

    @property
    def upper(self) -> Vector:
        return self.mean + BAND_SIGMAS * self.sigma


def expectation(values: Matrix) -> Expectation:
    """Mean over the rows; sigma is the largest of the rows' sample standard deviation
    (0 with fewer than two rows), sqrt(mean) (what a Poisson count of that mean spreads
    by) and 1: a flat history or a near-empty cell must not turn one extra incident into
    an anomaly. With no rows: mean 0, sigma 1."""
    weeks, series = values.shape
    if weeks == 0:
        return Expectation(np.zeros(series), np.ones(series))
    mean = values.mean(axis=0)
    spread = values.std(axis=0, ddof=1) if weeks >= 2 else np.zeros(series)
    return Expectation(mean, np.maximum(np.maximum(spread, np.sqrt(mean)), 1.0))


@dataclass(frozen=True)
class Baseline:
    """A source's expected demand at its window end, per series."""

    weeks: int
    last_hour: Expectation  # the 60 minutes up to the window end
    next_day: Expectation  # the 24 hours after it
    recent: Vector  # what the last 60 minutes actually held
    score: Vector  # (recent - expected) / sigma: sigmas above expected


def baseline(past: PastHours, now_cur: Vector, now_prev: Vector, f: float, weeks: int) -> Baseline:
    """Expected demand from the ``weeks`` most recent rows of ``past`` (the weeks the
    source has, ``weeks_with_data``), at ``f`` of the current hour (``elapsed``)."""
    used = past.weeks(weeks)
    last_hour = expectation(past_last_60_minutes(used.cur, used.prev, f))
    recent = recent_last_60_minutes(now_cur, now_prev, f)
    return Baseline(
        weeks=weeks,
        last_hour=last_hour,
        next_day=expectation(past_next_24_hours(used, f)),
        recent=recent,
        score=(recent - last_hour.mean) / last_hour.sigma,
    )
