"""Event-time bucket and window arithmetic. Pure: no clock, no I/O.

Every figure of an incident sits in the hour bucket of its creation time. A window of H
hours ending at ``end`` is the H hour buckets ending with the one that holds ``end``.
Redis keeps hour buckets and day buckets, so a long window is read as whole days plus the
hours at either edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HOUR: Final = 3600
DAY: Final = 86400
WINDOWS: Final = {"1h": 1, "24h": 24, "7d": 168, "28d": 672}


def hour_bucket(epoch_s: float) -> int:
    return int(epoch_s // HOUR) * HOUR


def day_bucket(epoch_s: float) -> int:
    return int(epoch_s // DAY) * DAY


@dataclass(frozen=True)
class WindowBuckets:
    """The hour buckets and day buckets whose sum is one window, with no overlap."""

    hours: tuple[int, ...]
    days: tuple[int, ...]


def window_range(end_s: float, hours: int) -> tuple[int, int]:
    """[first, last] hour bucket starts of an ``hours``-long window ending at ``end_s``."""
    if hours < 1:
        raise ValueError("a window holds at least one hour")
    last = hour_bucket(end_s)
    return last - (hours - 1) * HOUR, last


def window_buckets(end_s: float, hours: int) -> WindowBuckets:
    first, last = window_range(end_s, hours)
    stop = last + HOUR  # exclusive end of the covered time
    first_day = -(-first // DAY) * DAY  # first day boundary at or after `first`
    days = tuple(range(first_day, stop - DAY + 1, DAY)) if first_day + DAY <= stop else ()
    if not days:
        return WindowBuckets(tuple(range(first, stop, HOUR)), ())
    head = range(first, days[0], HOUR)
    tail = range(days[-1] + DAY, stop, HOUR)
    return WindowBuckets((*head, *tail), days)
