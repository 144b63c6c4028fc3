"""Event time cut into steps, pure: which events a scrape at each step would have seen.

A stream replayed at 1x reaches event time T once every event up to T has been sent: an
event that comes later in the file but earlier in time (a shuffled file) is sent at the
time the stream has reached, its running maximum. So the figures a scrape at step T
shows are those after every event whose running maximum is at most T, in file order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def step_at_or_after(t_ms: int, step_ms: int) -> int:
    """The first step time (a multiple of ``step_ms`` since the epoch) at or after ``t_ms``."""
    return -(-t_ms // step_ms) * step_ms


def by_step(items: Iterable[tuple[int, T]], step_ms: int) -> Iterator[tuple[int, list[T]]]:
    """``(event time ms, item)`` pairs in file order, grouped by the step at which a scrape
    first sees them: ``(step time ms, items)``, steps increasing, only steps that saw
    something new. Between two steps given here the figures stand still."""
    step: int | None = None
    group: list[T] = []
    reached = 0
    for t_ms, item in items:
        reached = t_ms if step is None else max(reached, t_ms)
        at = step_at_or_after(reached, step_ms)
        if step is not None and at != step:
            yield step, group
            group = []
        step = at
        group.append(item)
    if step is not None:
        yield step, group
