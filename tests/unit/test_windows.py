"""Event-time window arithmetic, checked against a brute-force hour-by-hour count."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from demandmon.state.windows import DAY, HOUR, WINDOWS, hour_bucket, window_buckets, window_range


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


def test_event_exactly_on_a_boundary_belongs_to_the_hour_it_starts() -> None:
    t = _epoch("2023-11-01T10:00:00+00:00")
    assert hour_bucket(t) == t
    assert hour_bucket(t - 0.001) == t - HOUR


def test_windows_are_whole_hours_ending_with_the_current_one() -> None:
    end = _epoch("2023-11-02T00:30:00+00:00")
    first, last = window_range(end, 24)
    assert last == _epoch("2023-11-02T00:00:00+00:00")
    assert first == _epoch("2023-11-01T01:00:00+00:00")  # crosses midnight


def test_october_clock_change_does_not_stretch_a_window() -> None:
    # 2023-10-29 01:00Z London goes from BST to GMT: local 01:00-02:00 happens twice.
    # Windows are UTC epoch hours, so 24h is always 24 buckets.
    end = _epoch("2023-10-29T12:00:00+00:00")
    b = window_buckets(end, 24)
    covered = len(b.hours) + 24 * len(b.days)
    assert covered == 24
    first, last = window_range(end, 24)
    assert (last - first) / HOUR == 23


@given(
    end=st.floats(min_value=1.5e9, max_value=2.0e9, allow_nan=False),
    hours=st.sampled_from([*WINDOWS.values(), 2, 25, 49]),
)
def test_hour_and_day_buckets_tile_the_window_exactly(end: float, hours: int) -> None:
    b = window_buckets(end, hours)
    covered: list[int] = list(b.hours)
    for day in b.days:
        assert day % DAY == 0
        covered.extend(range(day, day + DAY, HOUR))
    first, last = window_range(end, hours)
    assert sorted(covered) == list(range(first, last + HOUR, HOUR))
