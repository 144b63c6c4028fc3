"""Fakes for the worker's batch applier: the state store in memory and a dead-letter sender
that only records. Both subclass the real classes, so mypy holds them to the real
signatures; neither talks to Redis or Kafka."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import redis

from agents.applier import BatchApplier
from agents.batch import Consumed, Rejection
from agents.classify import load_mapping
from agents.deadletter_sender import DeadLetterSender
from agents.metrics import WorkerMetrics
from demandmon.settings import Settings
from demandmon.state.record import EVENT, REJECTED, Entry, entry_offset
from demandmon.state.store import ApplyResult, Resume, Shard, ShardResult, StateStore, StoreConfig
from schemas.vocabulary import SOURCE_HEADER, TOO_LATE

MAPPING = load_mapping()
# What redis-py raises when a Lua script fails at run time.
SCRIPT_ERROR = "Error running script (call to f_0): @user_script:1: attempt to index a nil value"


def event_value(n: int) -> bytes:
    """A valid `created` event, number ``n``."""
    return json.dumps(
        {
            "schema": "cad.incident-event/1",
            "event_id": f"e{n}",
            "incident_id": f"CAD/{n}",
            "type": "created",
            "occurred_at": "2023-11-01T10:00:00Z",
            "bcu": "SE",
            "opening_code": "MENTAL_HEALTH",
            "caller": "public",
        }
    ).encode()


def message(
    n: int, source: str | None = None, partition: int = 0, ts: int | None = None
) -> Consumed:
    """Event ``n`` as consumed at offset ``n`` of ``partition``, from ``source``."""
    headers = [] if source is None else [(SOURCE_HEADER, source.encode())]
    return Consumed("t", partition, n, f"CAD/{n}".encode(), event_value(n), headers, ts)


class FakeStore(StateStore):
    """Just enough of StateStore for the applier, in memory: shards' offsets, partitions'
    positions, the registry, and what a script call reports. ``too_late``: offsets of
    events the script finds too late (owed a dead letter until settled); ``fail_on``:
    offsets of events the script fails on (a Lua runtime error, every time)."""

    def __init__(
        self,
        registry: Iterable[str] = (),
        *,
        too_late: Iterable[int] = (),
        fail_on: Iterable[int] = (),
    ) -> None:
        # No client: every method the applier calls is replaced below.
        self.config = StoreConfig("dm", 35 * 86400)
        self.registry = set(registry)
        self.held: dict[Shard, int] = {}
        self.positions: dict[int, int] = {}
        self.saved_fields: dict[str, int] = {}
        self.registry_reads = 0
        self.too_late = set(too_late)
        self.fail_on = set(fail_on)
        self.owed: dict[Shard, set[int]] = {}  # too-late offsets not settled yet
        self.settled: list[tuple[Shard, list[int]]] = []
        self.calls: list[str] = []  # the writes, in order

    async def registered_sources(self) -> frozenset[str]:
        self.registry_reads += 1
        return frozenset(self.registry)

    async def apply(
        self, shards: Mapping[Shard, list[Entry]], now_ms: int, expect: Mapping[Shard, int]
    ) -> ApplyResult:
        for entries in shards.values():
            if any(e[1] == EVENT and entry_offset(e) in self.fail_on for e in entries):
                raise redis.ResponseError(SCRIPT_ERROR)
        self.calls.append("apply")
        result = ApplyResult()
        for shard, entries in shards.items():
            held = self.held.get(shard, -1)
            if expect.get(shard, -2) >= 0 and held < expect[shard]:
                result.shards[shard] = ShardResult(behind=True, offset_before=held)
                continue
            fresh = [e for e in entries if entry_offset(e) > held]
            after = max([held, *(entry_offset(e) for e in fresh)])
            late = [
                entry_offset(e) for e in fresh if e[1] == EVENT and entry_offset(e) in self.too_late
            ]
            self.owed.setdefault(shard, set()).update(late)
            rejected = Counter(str(e[2]) for e in fresh if e[1] == REJECTED)
            if late:
                rejected[TOO_LATE] += len(late)
            self.held[shard] = after
            result.shards[shard] = ShardResult(
                offset_before=held,
                offset_after=after,
                applied=sum(1 for e in fresh if e[1] == EVENT) - len(late),
                skipped=len(entries) - len(fresh),
                late=late,
                rejected=rejected,
                watermark=1,
                horizon_watermark=1,
            )
        return result

    async def save_positions(
        self,
        positions: Mapping[int, tuple[int, Mapping[str, int]]],
        watermarks: Mapping[str, int],
    ) -> None:
        self.calls.append("save_positions")
        for p, (offset, shard_offsets) in positions.items():
            self.positions[p] = offset
            for source, held in shard_offsets.items():
                self.saved_fields[f"{p}:{source}"] = held

    async def positions_held(
        self, partitions: Iterable[int], shards: Iterable[Shard]
    ) -> tuple[dict[int, int], dict[Shard, int]]:
        return (
            {p: self.positions.get(p, -1) for p in partitions},
            {s: self.held.get(s, -1) for s in shards},
        )

    async def source_watermarks(self, sources: Iterable[str]) -> dict[str, int]:
        return dict.fromkeys(sources, 1)

    async def prune(
        self, shards: Mapping[Shard, int], watermarks: Mapping[str, int], now_ms: int
    ) -> dict[Shard, ShardResult]:
        return {s: ShardResult(horizon_watermark=1) for s in shards}

    async def resume(self, partition: int) -> Resume:
        held = {s: off for (s, p), off in self.held.items() if p == partition}
        return Resume(self.positions.get(partition, -1) + 1 or None, held)

    async def settle_late(self, shard: Shard, offsets: Iterable[int]) -> None:
        done = sorted(offsets)
        self.calls.append("settle_late")
        self.settled.append((shard, done))
        self.owed.get(shard, set()).difference_update(done)

    def delete(self, source: str) -> None:
        """What `demandmon sources delete` does: deregister, then delete the keys."""
        self.registry.discard(source)
        for shard in [s for s in self.held if s[0] == source]:
            del self.held[shard]
        for name in [f for f in self.saved_fields if f.endswith(f":{source}")]:
            del self.saved_fields[name]


class NoDeadletters(DeadLetterSender):
    """Dead letters recorded, never sent; into ``calls`` too when given (for order)."""

    def __init__(self, calls: list[str] | None = None) -> None:
        # No producer: send() is replaced below.
        self.sent: list[Rejection] = []
        self.calls = calls

    async def send(self, rejections: Sequence[Rejection]) -> int:
        self.sent.extend(rejections)
        if self.calls is not None:
            self.calls.append("deadletters")
        return 0


def make_applier(
    store: FakeStore, partitions: Iterable[int] = (0, 1)
) -> tuple[BatchApplier, NoDeadletters]:
    """An applier over ``store`` holding ``partitions`` from the beginning; its dead
    letters are logged into the store's ``calls``."""
    letters = NoDeadletters(store.calls)
    applier = BatchApplier(Settings(), store, MAPPING, WorkerMetrics.create(), letters)
    for p in partitions:
        applier.take(p, Resume(None, {}))
    return applier, letters
