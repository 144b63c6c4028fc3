"""agents/skew.py: partitions kept together in event time, and the batch cut it asks for."""

from __future__ import annotations

from agents.batch import Consumed, Plan, PreparedBatch, reject
from agents.skew import SkewGuard
from demandmon.state.record import EVENT, Entry
from schemas import ContractError
from schemas.vocabulary import MALFORMED_JSON

HOUR_MS = 3_600_000


def ev(offset: int, hour: int) -> Entry:
    return [
        offset,
        EVENT,
        f"e{offset}",
        "i",
        "created",
        hour * HOUR_MS,
        "NE",
        "",
        "",
        "",
        "",
        "",
        0,
    ]


def test_nothing_is_cut_when_every_partition_is_caught_up() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    shards = {("r", 0): [ev(0, 0), ev(1, 100)], ("r", 1): [ev(0, 1)]}
    assert guard.cuts(shards, behind=set()) == {}


def test_a_partition_ahead_of_the_slowest_one_still_delivering_is_cut() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    # Partition 1 still has more to deliver and has reached hour 2; partition 0 goes to
    # hour 100: cut at its first event past hour 2 + 6.
    shards = {("r", 0): [ev(10, 1), ev(11, 8), ev(12, 9), ev(13, 100)], ("r", 1): [ev(0, 2)]}
    assert guard.cuts(shards, behind={1}) == {0: 12}


def test_the_slowest_partition_is_never_cut_so_every_batch_moves() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    shards = {("r", 0): [ev(0, 0), ev(1, 50)], ("r", 1): [ev(0, 3)]}
    cuts = guard.cuts(shards, behind={0, 1})
    # Floor = min of the frontiers (50 for 0, 3 for 1): 3; partition 1 is the floor.
    assert 1 not in cuts
    assert cuts == {0: 1}


def test_a_partition_behind_that_delivered_nothing_yet_holds_everything() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    shards = {("r", 0): [ev(5, 0), ev(6, 1)]}
    assert guard.cuts(shards, behind={3}) == {0: 5}
    guard.let_through({("r", 3): [ev(0, 0)]})
    assert guard.cuts(shards, behind={3}) == {}


def test_sources_are_kept_together_each_on_its_own() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    guard.let_through({("live", 1): [ev(0, 500_000)], ("r", 1): [ev(1, 10)]})
    # The live feed's hour in partition 1 says nothing about replay r's progress there.
    shards = {("r", 0): [ev(0, 11), ev(1, 12), ev(2, 30)]}
    assert guard.cuts(shards, behind={1}) == {0: 1}  # past hour 10 + 1


def test_forget_drops_what_a_sought_partition_delivered() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    guard.let_through({("r", 1): [ev(0, 10)]})
    guard.forget({1})
    assert guard.heads == {} and guard.delivered == set()


def test_a_prepared_batch_splits_at_the_cuts_with_rejections_in_order() -> None:
    messages = [Consumed("t", p, o, b"k", b"v") for p in (0, 1) for o in range(3)]
    plan = Plan()
    for p in (0, 1):
        plan.add("r", p, ev(0, 0))
        reject(plan, messages[3 * p + 1], "r", ContractError(MALFORMED_JSON, "not JSON"))
        plan.add("r", p, ev(2, 9))
    plan.applied_candidates = 4
    batch = PreparedBatch(messages, plan, now_ms=0)
    now, held = batch.split({0: 1})
    assert now is not None and held is not None
    assert [(m.partition, m.offset) for m in held.messages] == [(0, 1), (0, 2)]
    assert held.plan.shards == {("r", 0): plan.shards[("r", 0)][1:]}
    assert [r.message.offset for r in held.plan.rejections] == [1]
    assert held.plan.applied_candidates == 1
    assert [(m.partition, m.offset) for m in now.messages] == [(0, 0), (1, 0), (1, 1), (1, 2)]
    assert [e[0] for e in now.plan.shards[("r", 0)]] == [0]
    assert [e[0] for e in now.plan.shards[("r", 1)]] == [0, 1, 2]
    assert now.plan.applied_candidates == 3
    assert batch.split({}) == (batch, None)
    nothing, everything = batch.split({0: 0, 1: 0})
    assert nothing is None and everything is not None and len(everything.messages) == 6
    # Held, then put back in front of the next batch: the same batch again.
    again = now.then(None)
    assert again is now
    whole = held.then(now)
    assert sorted((m.partition, m.offset) for m in whole.messages) == [
        (m.partition, m.offset) for m in messages
    ]
    assert whole.plan.applied_candidates == 4
