"""A plain-Python recount of the expected-demand figures for all incidents of a BCU, from
the event list and the metric contract alone (never from demandmon.baseline): the last 60
minutes against the same 60 minutes of the previous weeks the source has.

The contract (docs/semantics.md, "Expected demand"): a past week's 60 minutes up to the
same minute are its hour bucket weighted by the part of the hour gone at the window end,
plus the hour before for the rest; this week's are the current hour whole (it holds only
what was created up to the window end) plus the same part of the hour before. A week
counts when the hour before its same hour starts at or after the source's first incident's;
sigma = max(sample standard deviation, sqrt(expected), 1); the band's upper edge is
expected + 2 sigma; score = (recent - expected) / sigma.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.oracle import epoch

HOUR = 3600
WEEK = 7 * 24 * HOUR
BAND_SIGMAS = 2


@dataclass(frozen=True)
class LastHour:
    recent: float
    expected: float
    sigma: float
    weeks: int

    @property
    def upper(self) -> float:
        return self.expected + BAND_SIGMAS * self.sigma

    @property
    def score(self) -> float:
        return (self.recent - self.expected) / self.sigma


def _hour(t: float) -> int:
    return int(t // HOUR) * HOUR


def last_hour_by_bcu(events: Iterable[dict[str, Any]]) -> dict[str, LastHour]:
    """Per BCU with incidents: the last hour against its expectation. The window end is
    the watermark (a replay source's), the latest event time."""
    created: dict[str, tuple[float, str]] = {}  # incident -> (created_at, bcu), first wins
    end = -math.inf
    for event in events:
        at = epoch(str(event["occurred_at"]))
        end = max(end, at)
        if event["type"] == "created":
            created.setdefault(str(event["incident_id"]), (at, str(event["bcu"])))
    counts = Counter((_hour(at), bcu) for at, bcu in created.values())
    first = _hour(min(at for at, _ in created.values()))
    now = _hour(end)
    gone = (end - now) / HOUR
    weeks = [w for w in range(1, 5) if now - HOUR - w * WEEK >= first]

    def before(hour: int, bcu: str) -> float:
        return (1 - gone) * counts[(hour - HOUR, bcu)]

    out: dict[str, LastHour] = {}
    for bcu in sorted({bcu for _, bcu in created.values()}):
        past = [gone * counts[(now - w * WEEK, bcu)] + before(now - w * WEEK, bcu) for w in weeks]
        expected = statistics.mean(past) if past else 0.0
        spread = statistics.stdev(past) if len(past) >= 2 else 0.0
        sigma = max(spread, math.sqrt(expected), 1.0)
        recent = counts[(now, bcu)] + before(now, bcu)
        out[bcu] = LastHour(recent, expected, sigma, len(weeks))
    return out
