"""agents/holdback.py: what is held per partition, what goes now, the give-way after a
stall, and which partitions are full."""

from __future__ import annotations

import logging

import pytest

from agents.batch import PreparedBatch
from agents.holdback import STALL_S, HoldBack
from tests.prepared import HOUR_MS, batch, ev


def offsets(prepared: PreparedBatch | None) -> list[tuple[int, int]]:
    if prepared is None:
        return []
    return sorted((m.partition, m.offset) for m in prepared.messages)


def test_a_partition_ahead_is_held_until_the_one_behind_catches_up() -> None:
    hold = HoldBack(bound_ms=HOUR_MS)
    # Partition 0 reaches hour 100 while partition 1, still behind, is at hour 1.
    hold.keep(batch({("r", 0): [ev(0, 0), ev(1, 1), ev(2, 100)], ("r", 1): [ev(0, 1)]}))
    assert offsets(hold.release(behind={1}, now=0.0)) == [(0, 0), (0, 1), (1, 0)]
    assert [m.offset for m in hold.held[0].messages] == [2]
    # Partition 1 is still behind and moved only to hour 2: hour 100 stays held.
    hold.keep(batch({("r", 1): [ev(1, 2)]}))
    assert offsets(hold.release(behind={1}, now=1.0)) == [(1, 1)]
    assert 0 in hold.held
    # Partition 1 has delivered all it has: nothing holds partition 0 back any more.
    assert offsets(hold.release(behind=set(), now=2.0)) == [(0, 2)]
    assert hold.held == {}
    assert hold.release(behind=set(), now=3.0) is None


def test_after_a_stall_what_is_held_goes_regardless(caplog: pytest.LogCaptureFixture) -> None:
    hold = HoldBack(bound_ms=HOUR_MS)
    # Partition 3 is behind and has delivered nothing yet: everything waits for it.
    hold.keep(batch({("r", 0): [ev(0, 0), ev(1, 50)]}))
    assert hold.release(behind={3}, now=100.0) is None  # the stall starts here
    assert hold.release(behind={3}, now=100.0 + STALL_S - 1) is None
    with caplog.at_level(logging.WARNING, logger="demandmon.worker"):
        released = hold.release(behind={3}, now=100.0 + STALL_S)
    assert offsets(released) == [(0, 0), (0, 1)]
    assert "applying regardless" in caplog.text
    # Letting something through restarts the clock: a new hold waits its full time again.
    hold.keep(batch({("r", 0): [ev(2, 60)]}))
    assert hold.release(behind={3}, now=200.0) is None
    assert hold.release(behind={3}, now=200.0 + STALL_S - 1) is None


def test_forget_drops_what_a_partition_holds() -> None:
    hold = HoldBack(bound_ms=HOUR_MS)
    hold.keep(batch({("r", 0): [ev(0, 0), ev(1, 50)], ("r", 1): [ev(0, 1)]}))
    assert offsets(hold.release(behind={1}, now=0.0)) == [(0, 0), (1, 0)]
    hold.forget({0, 1})
    assert hold.held == {}
    assert hold.skew.heads == {} and hold.skew.delivered == set()
    assert hold.release(behind=set(), now=1.0) is None


def test_later_messages_extend_what_a_partition_holds() -> None:
    hold = HoldBack(bound_ms=HOUR_MS)
    hold.keep(batch({("r", 0): [ev(0, 5)]}))
    hold.keep(batch({("r", 0): [ev(1, 6)], ("r", 2): [ev(0, 5)]}))
    assert [m.offset for m in hold.held[0].messages] == [0, 1]
    assert offsets(hold.release(behind=set(), now=0.0)) == [(0, 0), (0, 1), (2, 0)]


def test_full_names_the_partitions_holding_a_batchs_worth() -> None:
    hold = HoldBack(bound_ms=HOUR_MS)
    hold.keep(batch({("r", 0): [ev(o, 0) for o in range(3)], ("r", 1): [ev(0, 0)]}))
    hold.keep(batch({("r", 2): [ev(o, 0) for o in range(4)]}))
    assert hold.full(batch_max=3) == {0, 2}
    assert hold.full(batch_max=5) == set()
    assert hold.full(batch_max=1) == {0, 1, 2}
