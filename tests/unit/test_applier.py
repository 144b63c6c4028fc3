"""The batch applier (agents/applier.py) over a fake store and a recording dead-letter
sender: a shard Redis holds less of is rewound, not applied over; positions are saved
after the state; too-late dead letters are sent, then settled; an event the apply script
fails on is dead-lettered as apply_error and the rest of its batch applied."""

from __future__ import annotations

import asyncio
import time

from agents.applier import APPLY_ERROR_DETAIL, TOO_LATE_DETAIL, BatchApplier
from agents.batch import Consumed
from schemas.vocabulary import APPLY_ERROR, TOO_LATE
from tests.unit.fakes import FakeStore, make_applier, message


def _now_ms() -> int:
    return int(time.time() * 1000)


def _process(applier: BatchApplier, messages: list[Consumed]) -> dict[int, int | None]:
    return asyncio.run(applier.process(messages))


def _sample(applier: BatchApplier, name: str, **labels: str) -> float | None:
    return applier.metrics.registry.get_sample_value(name, labels)


def test_positions_are_saved_after_the_state_of_a_batch() -> None:
    store = FakeStore({"r1"})
    applier, letters = make_applier(store)
    now = _now_ms()
    rewinds = _process(
        applier,
        [
            message(0, None, 0, now),
            message(1, "r1", 0, now),
            message(2, "r1", 0, now),
            message(5, None, 1, now),
        ],
    )
    assert rewinds == {}
    assert store.calls == ["apply", "save_positions"]  # never a position before its state
    assert store.positions == {0: 2, 1: 5}
    assert store.saved_fields == {"0:live": 0, "0:r1": 2, "1:live": 5}
    assert applier.applied_through == {0: 2, 1: 5}
    assert _sample(applier, "demand_worker_partition_applied_offset", partition="0") == 2
    assert _sample(applier, "demand_worker_partition_applied_offset", partition="1") == 5
    assert _sample(applier, "demand_worker_events_applied_total") == 4
    assert not letters.sent


def test_a_shard_redis_holds_less_of_is_rewound_not_applied_over() -> None:
    store = FakeStore({"r1"})
    applier, _ = make_applier(store)
    now = _now_ms()
    _process(applier, [message(0, "r1", 0, now), message(1, "r1", 0, now)])
    # Redis comes back from an older copy: it holds offset 0 of the shard, position 0.
    store.held[("r1", 0)] = 0
    store.positions[0] = 0
    store.calls.clear()

    rewinds = _process(applier, [message(2, "r1", 0, now), message(3, None, 1, now)])

    assert rewinds == {0: 1}  # read partition 0 again from the first offset it lost
    assert store.held[("r1", 0)] == 0  # nothing applied over the gap
    assert store.positions[0] == 0  # and no position saved for the rewound partition
    assert store.positions[1] == 3  # the other partition goes on
    assert applier.applied_through[0] == 0 and applier.shard_offsets[("r1", 0)] == 0
    assert _sample(applier, "demand_worker_rewinds_total") == 1


def test_too_late_dead_letters_are_sent_then_settled() -> None:
    store = FakeStore(too_late={1, 2})
    applier, letters = make_applier(store)
    now = _now_ms()
    _process(
        applier, [message(0, None, 0, now), message(1, None, 0, now), message(2, None, 0, now)]
    )
    assert [(r.message.offset, r.source, r.reason, r.detail) for r in letters.sent] == [
        (1, "live", TOO_LATE, TOO_LATE_DETAIL),
        (2, "live", TOO_LATE, TOO_LATE_DETAIL),
    ]
    # Delivered before they are settled, and settled before the position moves on: a
    # crash in between re-reads them (a dead letter may repeat, none is lost).
    assert store.calls == ["apply", "deadletters", "settle_late", "save_positions"]
    assert store.settled == [(("live", 0), [1, 2])]
    assert store.owed == {("live", 0): set()}
    assert _sample(applier, "demand_worker_deadlettered_total", reason=TOO_LATE) == 2
    assert _sample(applier, "demand_worker_events_applied_total") == 1
    assert store.positions == {0: 2}


def test_an_event_the_script_fails_on_is_dead_lettered_and_the_rest_applied() -> None:
    store = FakeStore({"r1"}, fail_on={1})
    applier, letters = make_applier(store)
    now = _now_ms()
    rewinds = _process(
        applier,
        [
            message(0, "r1", 0, now),
            message(1, "r1", 0, now),  # the script fails on this one, every time
            message(2, "r1", 0, now),
            message(3, None, 1, now),
        ],
    )
    assert rewinds == {}
    assert [(r.message.offset, r.source, r.reason, r.detail) for r in letters.sent] == [
        (1, "r1", APPLY_ERROR, APPLY_ERROR_DETAIL)
    ]
    # The others are applied, the failing one counted as rejected through the script.
    assert store.held == {("r1", 0): 2, ("live", 1): 3}
    assert store.positions == {0: 2, 1: 3}
    assert _sample(applier, "demand_worker_events_applied_total") == 3
    assert _sample(applier, "demand_worker_deadlettered_total", reason=APPLY_ERROR) == 1
    # No retry loop: the batch went through on the way that isolates the failing event.
    assert _sample(applier, "demand_worker_apply_failures_total") == 0
