"""agents/skew.py and agents/held.py: partitions kept together in event time, the cut the
guard asks for, and what is held back kept up to date without scanning it again."""

from __future__ import annotations

from agents.batch import Consumed, Plan, PreparedBatch, reject
from agents.held import FirstEvent, PartitionHeld, by_partition, joined
from agents.skew import SkewGuard
from demandmon.state.record import Entry
from schemas import ContractError
from schemas.vocabulary import MALFORMED_JSON
from tests.prepared import HOUR_MS, batch, ev


def held(shards: dict[tuple[str, int], list[Entry]]) -> dict[int, PartitionHeld]:
    """The shards' entries as prepared parts, one message per entry."""
    return by_partition(batch(shards))


def test_nothing_is_cut_when_every_partition_is_caught_up() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    shards = {("r", 0): [ev(0, 0), ev(1, 100)], ("r", 1): [ev(0, 1)]}
    assert guard.cuts(held(shards), behind=set()) == {}


def test_a_partition_ahead_of_the_slowest_one_still_delivering_is_cut() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    # Partition 1 still has more to deliver and has reached hour 2; partition 0 goes to
    # hour 100: cut at its first event past hour 2 + 6.
    shards = {("r", 0): [ev(10, 1), ev(11, 8), ev(12, 9), ev(13, 100)], ("r", 1): [ev(0, 2)]}
    assert guard.cuts(held(shards), behind={1}) == {0: 12}


def test_the_slowest_partition_is_never_cut_so_every_batch_moves() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    shards = {("r", 0): [ev(0, 0), ev(1, 50)], ("r", 1): [ev(0, 3)]}
    cuts = guard.cuts(held(shards), behind={0, 1})
    # Floor = min of the frontiers (50 for 0, 3 for 1): 3; partition 1 is the floor.
    assert 1 not in cuts
    assert cuts == {0: 1}


def test_a_partition_behind_that_delivered_nothing_yet_holds_everything() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    shards = {("r", 0): [ev(5, 0), ev(6, 1)]}
    assert guard.cuts(held(shards), behind={3}) == {0: 5}
    guard.let_through(held({("r", 3): [ev(0, 0)]}).values())
    assert guard.cuts(held(shards), behind={3}) == {}


def test_sources_are_kept_together_each_on_its_own() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    guard.let_through(held({("live", 1): [ev(0, 500_000)], ("r", 1): [ev(1, 10)]}).values())
    # The live feed's hour in partition 1 says nothing about replay r's progress there.
    shards = {("r", 0): [ev(0, 11), ev(1, 12), ev(2, 30)]}
    assert guard.cuts(held(shards), behind={1}) == {0: 1}  # past hour 10 + 1


def test_forget_drops_what_a_sought_partition_delivered() -> None:
    guard = SkewGuard(bound_ms=HOUR_MS)
    guard.let_through(held({("r", 1): [ev(0, 10)]}).values())
    guard.forget({1})
    assert guard.heads == {} and guard.delivered == set()


def test_a_held_partition_splits_at_the_cut_with_rejections_in_order() -> None:
    messages = [Consumed("t", p, o, b"k", b"v") for p in (0, 1) for o in range(3)]
    plan = Plan()
    for p in (0, 1):
        plan.add("r", p, ev(0, 0))
        reject(plan, messages[3 * p + 1], "r", ContractError(MALFORMED_JSON, "not JSON"))
        plan.add("r", p, ev(2, 9))
    plan.applied_candidates = 4
    parts = by_partition(PreparedBatch(messages, plan, now_ms=7))
    assert parts[0].latest == {"r": 9 * HOUR_MS} and parts[0].events == 2
    assert parts[0].first == FirstEvent(0, "r", 0)
    now, later = parts[0].split(1)
    assert now is not None and later is not None
    assert [m.offset for m in later.messages] == [1, 2]
    assert later.shards == {"r": plan.shards[("r", 0)][1:]}
    assert [r.message.offset for r in later.rejections] == [1]
    assert later.events == 1 and later.latest == {"r": 9 * HOUR_MS}
    assert later.first == FirstEvent(2, "r", 9 * HOUR_MS) and later.start == 1
    assert [m.offset for m in now.messages] == [0] and now.events == 1
    assert now.latest == {"r": 0} and now.rejections == []
    assert parts[1].split(0) == (None, parts[1])
    assert parts[1].split(3) == (parts[1], None)
    # Held, then let through with another partition: one batch, every message once.
    batch = joined([later, now, parts[1]])
    assert batch is not None and batch.now_ms == 7
    assert sorted((m.partition, m.offset) for m in batch.messages) == [
        (m.partition, m.offset) for m in messages
    ]
    assert batch.plan.applied_candidates == 4
    assert len(batch.plan.rejections) == 2
    assert joined([]) is None


def test_what_stays_held_keeps_its_latest_time_without_a_rescan_unless_it_went() -> None:
    part = held({("r", 0): [ev(0, 1), ev(1, 50), ev(2, 3), ev(3, 20)]})[0]
    _, later = part.split(2)  # hour 50 goes: the latest of what stays is found again
    assert later is not None and later.latest == {"r": 20 * HOUR_MS}
    _, later = held({("r", 0): [ev(0, 1), ev(1, 3), ev(2, 50)]})[0].split(1)
    assert later is not None and later.latest == {"r": 50 * HOUR_MS}


def test_a_later_part_extends_what_is_held() -> None:
    part = held({("r", 0): [ev(5, 10)]})[0]
    part.extend(held({("r", 0): [ev(6, 2)], ("live", 0): [ev(7, 90)]})[0])
    assert [m.offset for m in part.messages] == [5, 6, 7]
    assert part.latest == {"r": 10 * HOUR_MS, "live": 90 * HOUR_MS}
    assert part.first == FirstEvent(5, "r", 10 * HOUR_MS) and part.events == 3
    # The first event is under the limit, a later one of another source over its own.
    assert part.first_over({"r": 20 * HOUR_MS, "live": 80 * HOUR_MS}) == 7
    assert part.first_over({"r": 5 * HOUR_MS}) == 5
    assert part.first_over({"r": 20 * HOUR_MS}) is None


# -- Other workers' partitions (agents/peers.py) ------------------------------------------


def test_another_workers_partition_behind_bounds_these_as_a_slowest_one_would() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    shards = {("r", 0): [ev(0, 1), ev(1, 5), ev(2, 20)], ("r", 1): [ev(0, 3), ev(1, 30)]}
    # Partition 7 (another worker's) stands at hour 10: nothing past hour 16 goes.
    assert guard.cuts(held(shards), behind=set(), peers={("r", 7): 10 * HOUR_MS}) == {
        0: 2,
        1: 1,
    }
    # Another source's standing bounds nothing of this one.
    assert guard.cuts(held(shards), behind=set(), peers={("x", 7): 0}) == {}


def test_another_workers_partition_behind_with_nothing_published_holds_everything() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    shards = {("r", 0): [ev(4, 1)], ("r", 1): [ev(9, 2)]}
    assert guard.cuts(held(shards), behind=set(), peers_waiting=True) == {0: 4, 1: 9}


def test_where_a_shard_stands_is_its_first_held_event_else_the_latest_let_through() -> None:
    guard = SkewGuard(bound_ms=6 * HOUR_MS)
    parts = held({("r", 0): [ev(0, 1), ev(1, 2)], ("r", 1): [ev(0, 5)], ("s", 1): [ev(1, 7)]})
    guard.let_through([parts[0]])
    # Partition 0 holds nothing now: the latest let through. Partition 1: its first held
    # event per source, not the latest held (another worker's batch is applied apart).
    rest = held({("r", 1): [ev(0, 5), ev(2, 9)], ("s", 1): [ev(1, 7)]})
    assert guard.next_times(rest) == {
        ("r", 0): 2 * HOUR_MS,
        ("r", 1): 5 * HOUR_MS,
        ("s", 1): 7 * HOUR_MS,
    }
    # Held again after a later let-through: what is held decides, not the older head.
    guard.let_through([held({("r", 1): [ev(0, 9)]})[1]])
    assert guard.next_times(held({("r", 1): [ev(3, 4)]}))[("r", 1)] == 4 * HOUR_MS


def test_first_times_skip_refused_messages_at_the_head() -> None:
    plan = Plan()
    msgs = [Consumed("t", 0, o, b"k", b"v") for o in range(3)]
    reject(plan, msgs[0], "r", ContractError(MALFORMED_JSON, "x"))
    plan.add("r", 0, ev(1, 6))
    plan.add("r", 0, ev(2, 3))
    part = by_partition(PreparedBatch(msgs, plan, now_ms=0))[0]
    assert part.first_times() == {"r": 6 * HOUR_MS}
