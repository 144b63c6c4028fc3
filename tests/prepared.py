"""Prepared batches for the tests of what the worker holds back (agents/held.py,
agents/skew.py, agents/holdback.py): event entries at whole hours, one message each."""

from __future__ import annotations

from agents.batch import Consumed, Plan, PreparedBatch
from demandmon.state.record import EVENT, Entry

HOUR_MS = 3_600_000


def ev(offset: int, hour: int) -> Entry:
    """A ``created`` event entry at ``offset``, ``hour`` hours after the epoch."""
    return [offset, EVENT, f"e{offset}", "i", "created", hour * HOUR_MS, "NE"] + [""] * 5 + [0]


def batch(shards: dict[tuple[str, int], list[Entry]]) -> PreparedBatch:
    """The shards' entries as one prepared batch, one message per entry."""
    plan = Plan()
    messages = []
    for (source, p), entries in shards.items():
        for e in entries:
            plan.add(source, p, e)
            messages.append(Consumed("t", p, int(str(e[0])), b"k", b"v"))
    messages.sort(key=lambda m: (m.partition, m.offset))
    return PreparedBatch(messages, plan, now_ms=0)
