"""Apply planned batches to Redis, and keep the worker's Kafka position with the state.

One script call per (source, partition) shard, all shards of a batch in one pipelined
round trip (on a Redis Cluster, concurrent calls: demandmon.state.scripts); then the
position of each partition fully applied. The position is written after the shards, so
whatever Redis loses (a crash with AOF everysec, a restore from an older copy, a failover
to a lagging replica) it never holds a position ahead of its state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from demandmon.clients import AsyncRedis
from demandmon.state import keys, lua
from demandmon.state.record import META_OFFSET, Entry
from demandmon.state.scripts import Call, execute_async

APPLY_LUA = lua.script("apply.lua")
PRUNE_LIMIT = 2000
UNKNOWN_OFFSET = -2  # "no expectation": the script does not check the shard's offset

Shard = tuple[str, int]


@dataclass
class ShardResult:
    """What one script call did to one shard."""

    behind: bool = False  # Redis held less than the worker expected: nothing was applied
    offset_before: int = -1
    offset_after: int = -1
    applied: int = 0
    duplicate: int = 0
    skipped: int = 0
    orphaned: int = 0
    late: list[int] = field(default_factory=list)  # offsets owed a too_late dead letter
    rejected: Counter[str] = field(default_factory=Counter)
    watermark: int = -1  # the shard's latest event time, ms
    horizon_watermark: int = -1  # the watermark its retention followed (the source's)

    @classmethod
    def from_reply(cls, reply: list[Any]) -> ShardResult:
        if int(reply[0]) < 0:
            return cls(behind=True, offset_before=int(reply[1]), offset_after=int(reply[1]))
        flat = reply[7]
        rejected: Counter[str] = Counter()
        for i in range(0, len(flat), 2):
            reason = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            rejected[reason] += int(flat[i + 1])
        return cls(
            offset_before=int(reply[4]),
            offset_after=int(reply[5]),
            applied=int(reply[0]),
            duplicate=int(reply[1]),
            skipped=int(reply[2]),
            orphaned=int(reply[3]),
            late=[int(x) for x in reply[6]],
            rejected=rejected,
            watermark=int(reply[8]),
            horizon_watermark=int(reply[9]),
        )


@dataclass
class ApplyResult:
    shards: dict[Shard, ShardResult] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(getattr(r, name)) for r in self.shards.values())

    @property
    def applied(self) -> int:
        return self.total("applied")

    @property
    def duplicate(self) -> int:
        return self.total("duplicate")

    @property
    def skipped(self) -> int:
        return self.total("skipped")

    @property
    def rejected(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for r in self.shards.values():
            out.update(r.rejected)
        return out

    def behind(self) -> set[int]:
        """Partitions where Redis was found holding less than the worker had applied."""
        return {p for (_, p), r in self.shards.items() if r.behind}


@dataclass(frozen=True)
class StoreConfig:
    prefix: str
    retention_s: int


@dataclass
class Resume:
    """Where to resume a partition from, as Redis knows it."""

    offset: int | None  # the next offset to read; None: from the beginning
    shard_offsets: dict[str, int]  # source -> offset its shard holds


def script_args(
    config: StoreConfig,
    entries: list[Entry],
    now_ms: int,
    expect: int = UNKNOWN_OFFSET,
    source_watermark: int = -1,
) -> list[Any]:
    # orjson: several times json.dumps, and the same JSON to cjson (UTF-8 rather than
    # \u escapes; entries hold validated strings and integers only).
    batch = orjson.dumps(entries)
    return [now_ms, config.retention_s * 1000, expect, batch, PRUNE_LIMIT, source_watermark]


def _int(raw: Any, default: int = -1) -> int:
    return default if raw is None else int(raw)


class StateStore:
    """The worker's writes, through an asyncio Redis client."""

    def __init__(self, client: AsyncRedis, config: StoreConfig) -> None:
        self.client = client
        self.config = config
        self.script = client.register_script(APPLY_LUA)

    def _base(self, source: str, partition: int) -> str:
        return keys.shard(self.config.prefix, source, partition)

    async def apply(
        self,
        shards: Mapping[Shard, list[Entry]],
        now_ms: int,
        expect: Mapping[Shard, int],
    ) -> ApplyResult:
        """Apply each shard's entries; ``expect`` is the offset each shard is believed to
        hold (a shard found holding less is left alone and reported ``behind``)."""
        result = ApplyResult()
        if not shards:
            return result
        watermarks = await self.source_watermarks({source for source, _ in shards})
        pipe = self.client.pipeline(transaction=False)
        # Registering is idempotent and cheap; done every time so that a Redis that came
        # back without the registration still lists the shard.
        for source, partition in shards:
            pipe.sadd(keys.sources(self.config.prefix), source)
            pipe.sadd(keys.partitions(self.config.prefix, source), partition)
        calls: list[Call] = []
        for shard, entries in shards.items():
            expected = expect.get(shard, UNKNOWN_OFFSET)
            args = script_args(self.config, entries, now_ms, expected, watermarks[shard[0]])
            calls.append(([self._base(*shard)], args))
        _, replies = await execute_async(self.client, pipe, self.script, calls)
        for shard, reply in zip(shards, replies, strict=True):
            result.shards[shard] = ShardResult.from_reply(reply)
        return result

    async def prune(
        self, shards: Mapping[Shard, int], watermarks: Mapping[str, int], now_ms: int
    ) -> dict[Shard, ShardResult]:
        """Run retention on shards whose source has moved on in other partitions (an
        empty batch only prunes); ``shards`` maps each to the offset it should hold."""
        if not shards:
            return {}
        pipe = self.client.pipeline(transaction=False)
        calls: list[Call] = []
        for shard, expected in shards.items():
            args = script_args(self.config, [], now_ms, expected, watermarks.get(shard[0], -1))
            calls.append(([self._base(*shard)], args))
        _, replies = await execute_async(self.client, pipe, self.script, calls)
        return {
            shard: ShardResult.from_reply(reply)
            for shard, reply in zip(shards, replies, strict=True)
        }

    async def source_watermarks(self, sources: Iterable[str]) -> dict[str, int]:
        """Each source's watermark across all its partitions, as recorded (-1: none)."""
        names = sorted(sources)
        if not names:
            return {}
        scores = await self.client.zmscore(keys.watermarks(self.config.prefix), names)
        return {n: -1 if s is None else int(s) for n, s in zip(names, scores, strict=True)}

    async def save_positions(
        self,
        positions: Mapping[int, tuple[int, Mapping[str, int]]],
        watermarks: Mapping[str, int],
    ) -> None:
        """Record, per partition, the last offset applied and what each shard held then;
        and raise the sources' watermarks to what their shards now hold."""
        mapping: dict[str, int] = {}
        for partition, (offset, shard_offsets) in positions.items():
            mapping[str(partition)] = offset
            for source, held in shard_offsets.items():
                mapping[keys.source_field(partition, source)] = held
        marks = {source: wm for source, wm in watermarks.items() if wm >= 0}
        pipe = self.client.pipeline(transaction=False)
        if mapping:
            pipe.hset(keys.positions(self.config.prefix), mapping=mapping)  # type: ignore[arg-type]
        if marks:
            pipe.zadd(keys.watermarks(self.config.prefix), marks, gt=True)
        await pipe.execute()

    async def settle_late(self, shard: Shard, offsets: Iterable[int]) -> None:
        """The too-late dead letters of these offsets are delivered (or given up)."""
        fields = [str(o) for o in offsets]
        if fields:
            await self.client.hdel(self._base(*shard) + keys.LATE, *fields)

    async def registered_sources(self) -> frozenset[str]:
        """The replay sources registered now (``live`` is never stored there)."""
        members = await self.client.smembers(keys.registry(self.config.prefix))
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def _sources(self) -> list[str]:
        members = await self.client.smembers(keys.sources(self.config.prefix))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def resume(self, partition: int) -> Resume:
        """Where a newly assigned partition must be read from: just after the position
        Redis holds, or earlier where a shard holds less than the position recorded for
        it (it alone came back older) or still owes a too-late dead letter."""
        sources = await self._sources()
        pipe = self.client.pipeline(transaction=False)
        pos_key = keys.positions(self.config.prefix)
        pipe.hget(pos_key, str(partition))
        for source in sources:
            base = self._base(source, partition)
            pipe.hget(base + keys.META, META_OFFSET)
            pipe.hget(pos_key, keys.source_field(partition, source))
            pipe.hkeys(base + keys.LATE)
        replies = await pipe.execute()
        position = _int(replies[0])
        next_offset = position + 1
        held: dict[str, int] = {}
        for i, source in enumerate(sources):
            off_raw, recorded_raw, late = replies[1 + 3 * i : 4 + 3 * i]
            if off_raw is None and recorded_raw is None and not late:
                continue
            held[source] = _int(off_raw)
            recorded = _int(recorded_raw)
            if held[source] < recorded:
                next_offset = min(next_offset, held[source] + 1)
            for owed in late:
                next_offset = min(next_offset, int(owed))
        return Resume(None if next_offset <= 0 else next_offset, held)

    async def positions_held(
        self, partitions: Iterable[int], shards: Iterable[Shard]
    ) -> tuple[dict[int, int], dict[Shard, int]]:
        """What Redis holds now for these partitions and shards (-1 where nothing)."""
        parts, shard_list = list(partitions), list(shards)
        pipe = self.client.pipeline(transaction=False)
        pos_key = keys.positions(self.config.prefix)
        for partition in parts:
            pipe.hget(pos_key, str(partition))
        for shard in shard_list:
            pipe.hget(self._base(*shard) + keys.META, META_OFFSET)
        replies = await pipe.execute()
        held_parts = {p: _int(r) for p, r in zip(parts, replies, strict=False)}
        held_shards = {s: _int(r) for s, r in zip(shard_list, replies[len(parts) :], strict=True)}
        return held_parts, held_shards
